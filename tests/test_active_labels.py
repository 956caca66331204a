"""plan-labels --strategy active -> labels -> import-labels -> the inverse-probability-weighted corrected effect
(issue 25, build item 3). The coverage run is analyses/active_labels_coverage.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from judgekit import cli
from judgekit.analysis import StatsSettings, compute_stats
from judgekit.stats.labelplan import active_inclusion_probabilities, defensive_uniform_share, systematic_draw
from judgekit.errors import InputError
from judgekit.engine.labelling import import_labels_step, plan_labels
from judgekit.store.study import load_study, validate_path
from judgekit.testing.active_study import true_effect, write_active_study

ONLY = ("finetune_effect_corrected", "harmful_rate_corrected")


def _corrected(study: Path) -> pd.DataFrame:
    stats, _ = compute_stats(load_study(study), StatsSettings(n_boot=20, seed=0), version="t", only=ONLY)
    return stats.set_index("statistic")


def test_active_probabilities_mix_uniform_and_uncertainty_sum_to_the_count_and_stay_positive():
    u = np.array([0.0, 0.0, 0.0, 1.0, 3.0, 0.0])
    pi = active_inclusion_probabilities(u, 3, uniform_share=0.5)
    assert pi.sum() == pytest.approx(3) and (pi > 0).all() and (pi <= 1).all()
    # by hand: shape 0.5/6 + 0.5 u/4 = [1/12]*3 + [1/12 + 1/8, 1/12 + 3/8] + [1/12]; the last prompt capped at 1,
    # the rest scaled to the remaining 2: c * (4/12 + 5/24) = 2 -> c = 48/13
    assert pi[4] == 1.0 and pi[0] == pytest.approx(48 / 13 / 12) and pi[3] == pytest.approx(48 / 13 * 5 / 24)
    assert np.allclose(active_inclusion_probabilities(np.zeros(4), 2), 0.5)  # no uncertainty: uniform


def test_the_active_draw_takes_the_count_exactly_each_prompt_with_its_probability_spread_over_the_uncertainty():
    """Systematic sampling along the uncertainty: exactly sum(pi) drawn every time (Poisson sampling varied the
    count), each candidate's frequency over 4000 draws its probability (the weighted estimate stays unbiased;
    binomial s.e. at most 0.008, tolerance 0.03), and every stretch of the uncertainty order takes its share of the
    draw to within one prompt (implicit stratification)."""
    rng = np.random.default_rng(1)
    uncertainty = np.concatenate([np.zeros(30), rng.random(20)])
    pi = active_inclusion_probabilities(uncertainty, 10)
    draws = np.array([systematic_draw(pi, order=uncertainty, rng=s) for s in range(4000)])
    assert (draws.sum(axis=1) == 10).all()
    assert np.abs(draws.mean(axis=0) - pi).max() < 0.03, np.abs(draws.mean(axis=0) - pi).max()
    # stretches of the order: the 30 tied at 0 (drawn among themselves in a random order), the rest by quarters
    for part in [np.arange(30), *np.array_split(30 + np.argsort(uncertainty[30:]), 4)]:
        assert np.abs(draws[:, part].sum(axis=1) - pi[part].sum()).max() < 1 + 1e-9
    odd = systematic_draw(np.full(7, 0.5), rng=0)  # sum 3.5: 3 or 4 drawn
    assert odd.sum() in (3, 4)
    with pytest.raises(ValueError, match="order"):
        systematic_draw(pi, order=uncertainty[:3])


def test_an_active_plan_requests_exactly_the_prompts_it_planned(tmp_path: Path):
    """plan-labels --strategy active at target 0.05 on the simulated study (where active pays: about half the random
    count), five seeds: the file asks for the planned number of prompts every time (a Poisson draw asked for 18 where
    it planned 26), each row drawn actively."""
    write_active_study(tmp_path / "s", seed=3)
    study = load_study(tmp_path / "s")
    for seed in range(5):
        requests, lines = plan_labels(study, target_halfwidth=0.05, seed=seed, strategy="active")
        planned = int(lines[0].split("with +")[1].split()[0])
        assert requests["unit"].nunique() == planned and "does not pay" not in lines[0], lines[0]
        assert set(requests["strategy"]) == {"active"}


def test_an_active_plan_that_saves_no_labels_is_drawn_at_random_and_says_so(tmp_path: Path):
    """At target 0.10 on the simulated study the active and random plans need about as many prompts (the uniform
    share is raised to near 1 for so small a draw): the plan is the random one, its rows say so, and the import
    keeps the unweighted estimate. With a budget the draw stays active."""
    study_dir = tmp_path / "s"
    truth = write_active_study(study_dir, seed=3)
    study = load_study(study_dir)
    random_requests, random_lines = plan_labels(study, target_halfwidth=0.1, seed=0, strategy="random")
    requests, lines = plan_labels(study, target_halfwidth=0.1, seed=0, strategy="active")
    counts = re.search(r"\+(\d+) prompts active, \+(\d+) random", lines[0])
    assert counts and "active does not pay here" in lines[0], lines[0]
    active_count, random_count = int(counts[1]), int(counts[2])
    assert active_count > 0.9 * random_count and f"with +{random_count} prompts" in random_lines[0]
    assert requests["unit"].nunique() == random_count and set(requests["strategy"]) == {"random"}
    assert requests.drop(columns="strategy").equals(random_requests.drop(columns="strategy"))  # the random draw
    requests["label"], requests["annotator_id"] = truth.reindex(requests["item_id"]).to_numpy(), "sim"
    path = tmp_path / "requests.csv"
    requests.to_csv(path, index=False)
    assert "random within strata" in import_labels_step(study_dir, path)
    effect = _corrected(study_dir).loc["finetune_effect_corrected"]
    assert "inverse-probability" not in effect["method"]
    # with a budget the count is the user's: the draw stays active, even where it narrows nothing
    picked, said = plan_labels(study, target_halfwidth=0.01, budget=10, seed=0, strategy="active")
    assert set(picked["strategy"]) == {"active"} and "does not pay" not in said[0], said[0]


def test_small_active_draws_get_a_larger_uniform_share_keeping_45_effective_prompts():
    """Kish's effective size n^2 / sum(1/pi) of the draw's weights, computed here from the probabilities themselves:
    a draw of 40 of 300 (below 45 even when uniform) is uniform; one of 50 is raised from the default 0.65 until its
    effective size is 45; one of 60 keeps 0.65 (already above 45)."""
    uncertainty = np.concatenate([np.full(200, 0.01), np.linspace(0.2, 1.0, 100)])

    def effective(count: int, share: float) -> float:
        return len(uncertainty) ** 2 / np.sum(1 / active_inclusion_probabilities(uncertainty, count,
                                                                                 uniform_share=share))

    assert defensive_uniform_share(uncertainty, 40) == 1.0
    raised = defensive_uniform_share(uncertainty, 50)
    assert 0.65 < raised < 1 and effective(50, raised) == pytest.approx(45, rel=1e-3)
    assert effective(50, 0.65) < 42  # what the default share gives: about 41.3 effective prompts
    assert defensive_uniform_share(uncertainty, 60) == 0.65 and effective(60, 0.65) > 45
    assert defensive_uniform_share(np.array([]), 0) == 0.65  # every prompt labelled: nothing to draw


def test_active_plan_import_and_weighted_effect_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture):
    study, requests = tmp_path / "study", tmp_path / "requests.csv"
    truth = write_active_study(study, seed=4)
    before = _corrected(study).loc["finetune_effect_corrected"]
    assert "labels not drawn at random" not in before["warning"]  # the pilot was random
    assert cli.main(["plan-labels", str(study), "--target-halfwidth", "0.01", "--budget", "60", "--strategy",
                     "active", "--seed", "4", "--out", str(requests)]) == 0
    assert "inclusion_probability" in capsys.readouterr().out
    filled = pd.read_csv(requests)
    pi = filled["inclusion_probability"]
    assert ((pi > 0) & (pi <= 1)).all() and pi.nunique() > 5  # not uniform: drawn by uncertainty
    # both models' responses of a chosen prompt, one probability per prompt
    assert filled.groupby(filled["item_id"].str.split("-").str[1])["inclusion_probability"].nunique().max() == 1
    filled["label"] = truth.reindex(filled["item_id"]).to_numpy()
    filled.to_csv(requests, index=False)
    assert cli.main(["data", "import-labels", str(study), str(requests), "--annotator", "sim"]) == 0
    stored = load_study(study).annotations
    assert stored["inclusion_probability"].notna().sum() == len(filled)
    assert stored.loc[stored["annotator_id"] == "pilot", "inclusion_probability"].isna().all()
    after = _corrected(study)
    effect = after.loc["finetune_effect_corrected"]
    assert "inverse-probability weighted" in effect["method"]
    assert f"{len(filled)} labels weighted by their recorded inclusion probabilities, 40 without one counted as " \
           "labelled with certainty" in effect["method"]
    assert "labels not drawn at random" not in effect["warning"]
    assert effect["ci_low"] <= true_effect() <= effect["ci_high"]
    # the probabilities dropped: the unweighted estimator (and its non-random-labels check) again
    annotations = next(study.glob("annotations.*"))
    pd.read_parquet(annotations).drop(columns="inclusion_probability").to_parquet(annotations, index=False)
    unweighted = _corrected(study).loc["finetune_effect_corrected"]
    assert "inverse-probability" not in unweighted["method"] and "pseudo-labels" in unweighted["method"]


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_import_and_validate_reject_an_inclusion_probability_outside_0_1(tmp_path: Path, value: str):
    study = tmp_path / "study"
    write_active_study(study, seed=0, prompts=30, pilot=5)
    labels = tmp_path / "labels.csv"
    labels.write_text(f"item_id,annotator_id,label,inclusion_probability\nft-1,a,safe,0.5\nft-2,a,safe,{value}\n")
    with pytest.raises(InputError) as caught:
        import_labels_step(study, labels)
    message = str(caught.value)
    assert "labels.csv" in message and "row 2" in message and "inclusion_probability" in message, message
    annotations = pd.read_parquet(study / "annotations.parquet")
    annotations["inclusion_probability"] = float(value)
    annotations.to_parquet(study / "annotations.parquet", index=False)
    with pytest.raises(InputError) as caught:
        validate_path(study)
    assert "annotations" in str(caught.value) and "inclusion_probability" in str(caught.value), str(caught.value)


def test_after_an_active_round_plan_labels_states_the_weighted_rows_halfwidth(tmp_path: Path):
    import re

    from judgekit.engine.labelling import plan_labels, plan_labels_step

    study, requests = tmp_path / "study", tmp_path / "requests.csv"
    truth = write_active_study(study, seed=2)
    plan_labels_step(study, requests, target_halfwidth=0.01, budget=60, seed=2, strategy="active")
    filled = pd.read_csv(requests)
    filled["label"], filled["annotator_id"] = truth.reindex(filled["item_id"]).to_numpy(), "sim"
    filled.to_csv(requests, index=False)
    import_labels_step(study, requests)
    row = _corrected(study).loc["finetune_effect_corrected"]
    assert "inverse-probability weighted" in row["method"]
    _, lines = plan_labels(load_study(study), target_halfwidth=0.01, budget=10)
    stated = float(re.search(r"half-width now ([0-9.]+)", lines[0]).group(1))
    assert stated == pytest.approx((row["ci_high"] - row["ci_low"]) / 2, abs=5e-5), (lines[0], row)
