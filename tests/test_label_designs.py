"""Labelling designs recorded and checked (issue 34): plans followed or refused, convenience labels bounded,
judge transport shown by equivalence, uninformative intervals said, plans that land. The study-level run is
analyses/label_designs.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from judgekit import cli
from judgekit.analysis import StatsSettings, compute_stats
from judgekit.engine.labelling import import_labels_step, plan_labels_step
from judgekit.errors import InputError
from judgekit.stats.ppi import ppi_clustered
from judgekit.stats.selection import paired_selection_bounds, selection_bounds
from judgekit.stats.transport import judge_error_shift
from judgekit.store.study import load_study
from judgekit.testing.active_study import write_active_study

ROWS = ("finetune_effect_corrected", "harmful_rate_corrected", "finetune_effect_paired", "judge_error_shift")


def _stats(study: Path) -> pd.DataFrame:
    stats, _ = compute_stats(load_study(study), StatsSettings(n_boot=20, seed=0), version="t", only=ROWS)
    return stats


def _filled_plan(study: Path, truth: pd.Series, out: Path, *, strategy: str = "active", samples_kept=None) -> Path:
    plan_labels_step(study, out, target_halfwidth=0.01, budget=30, seed=1, strategy=strategy)
    filled = pd.read_csv(out)
    filled["label"], filled["annotator_id"] = truth.reindex(filled["item_id"]).to_numpy(), "sim"
    if samples_kept is not None:
        filled.loc[~filled["item_id"].str.endswith(samples_kept), "label"] = None
    filled.to_csv(out, index=False)
    return out


def test_a_part_filled_plan_is_refused_naming_its_empty_rows_or_weighted_two_phase(tmp_path: Path):
    """The audit's case: an active plan asks for both samples of each drawn prompt, annotators label one. Before,
    the empty rows were skipped and the prompt's probability kept (Σ1/π about a third of the items)."""
    study = tmp_path / "study"
    truth = write_active_study(study, seed=3, prompts=80, pilot=10, samples=2)
    requests = _filled_plan(study, truth, tmp_path / "plan.csv", samples_kept="-0")
    before = load_study(study).annotations.copy()
    with pytest.raises(InputError) as caught:
        import_labels_step(study, requests)
    message = str(caught.value)
    assert "\n" not in message and "labelled only in part" in message
    named = re.findall(r"row (\d+) \(([^)]+)\)", message)
    plan = pd.read_csv(requests)
    assert len(named) == 5 and all(item.endswith("-1") and plan["item_id"].iloc[int(row) - 1] == item
                                   for row, item in named)
    assert "--allow-partial" in message and "plan.csv" in message
    assert load_study(study).annotations.equals(before)  # nothing half-written
    note = import_labels_step(study, requests, allow_partial=True)
    assert "two-phase" in note
    stored = load_study(study).annotations
    added = stored[stored["annotator_id"] == "sim"]
    plan = pd.read_csv(requests).set_index("item_id")
    # by hand: the prompt's probability times 1 of its 2 requested responses of that model labelled
    assert added["inclusion_probability"].to_numpy() == pytest.approx(
        plan.loc[added["item_id"], "inclusion_probability"].to_numpy() / 2)
    assert set(added["design"]) == {"two-phase"}
    row = _stats(study).set_index("statistic").loc["finetune_effect_corrected"]
    assert "two-phase weights assume" in row["warning"] and "two-phase" in row["method"]


def test_labels_added_behind_the_plans_back_fail_the_design_total(tmp_path: Path):
    """The old silent path (part-filled plan rows appended with the prompts' probabilities): the inverse weights
    sum to about half the items, and the corrected rows now say the design was not followed."""
    study = tmp_path / "study"
    truth = write_active_study(study, seed=5, prompts=150, pilot=10, samples=2)
    requests = _filled_plan(study, truth, tmp_path / "plan.csv", samples_kept="-0")
    filled = pd.read_csv(requests).dropna(subset=["label"])
    annotations = load_study(study).annotations
    annotations["design"] = "random"
    combined = pd.concat([annotations, filled[["item_id", "annotator_id", "label", "inclusion_probability"]]
                          .assign(design="plan")], ignore_index=True)
    combined.to_parquet(study / "annotations.parquet", index=False)
    row = _stats(study).set_index("statistic").loc["finetune_effect_corrected"]
    assert "labels do not follow the recorded design" in row["warning"]


def test_the_design_defaults_to_plan_with_probabilities_else_convenience_and_shows_in_every_human_row(tmp_path):
    study = tmp_path / "study"
    truth = write_active_study(study, seed=2, prompts=100, pilot=0)
    picked = truth.index[::3]
    labels = tmp_path / "picked.csv"
    pd.DataFrame({"item_id": picked, "annotator_id": "a", "label": truth[picked].to_numpy()}).to_csv(labels,
                                                                                                   index=False)
    assert cli.main(["data", "import-labels", str(study), str(labels)]) == 0
    assert set(load_study(study).annotations["design"]) == {"convenience"}
    stats = _stats(study)
    human = stats[(stats["judge_id"] == "human_majority")
                  | stats["statistic"].isin(["finetune_effect_corrected", "harmful_rate_corrected"])]
    assert len(human) and human["method"].str.contains("labels by design: convenience").all()


def test_convenience_labels_always_qualify_the_corrected_rows_with_a_gamma_range(tmp_path: Path):
    """Labels picked with odds 4 when truly unsafe, nothing recorded: every corrected row and the humans' paired
    effect say so (before: warned in 14-42% of studies by the KS check alone)."""
    study = tmp_path / "study"
    truth = write_active_study(study, seed=4, prompts=200, pilot=0)
    rng = np.random.default_rng(0)
    chance = np.where(truth == "unsafe", 0.4, 0.12)
    picked = truth.index[rng.random(len(truth)) < chance]
    labels = tmp_path / "picked.csv"
    pd.DataFrame({"item_id": picked, "annotator_id": "a", "label": truth[picked].to_numpy()}).to_csv(labels,
                                                                                                   index=False)
    import_labels_step(study, labels)
    stats = _stats(study)
    corrected = stats[stats["statistic"].isin(["finetune_effect_corrected", "harmful_rate_corrected"])]
    human = stats[(stats["statistic"] == "finetune_effect_paired") & (stats["judge_id"] == "human_majority")]
    for warning in [*corrected["warning"], *human["warning"]]:
        assert "chosen by convenience" in warning and "Gamma = 2" in warning or "odds up to 2x" in warning, warning
        assert "Zhao, Small & Bhattacharya 2019" in warning


def test_labels_on_every_item_are_a_census_and_carry_no_selection_warning(tmp_path: Path):
    """xstest labels all 150 prompts' responses, no design recorded: nothing was chosen, so no row may say the
    labels were chosen by convenience (they did, before)."""
    study = tmp_path / "study"
    truth = write_active_study(study, seed=4, prompts=60, pilot=0)
    labels = tmp_path / "all.csv"
    pd.DataFrame({"item_id": truth.index, "annotator_id": "a", "label": truth.to_numpy()}).to_csv(labels, index=False)
    import_labels_step(study, labels)
    assert set(load_study(study).annotations["design"]) == {"convenience"}
    stats = _stats(study)
    rows = stats[stats["statistic"].isin(["finetune_effect_corrected", "harmful_rate_corrected"])
                 | ((stats["statistic"] == "finetune_effect_paired") & (stats["judge_id"] == "human_majority"))]
    assert len(rows) and not rows["warning"].fillna("").str.contains("chosen by convenience").any()


def test_selection_bounds_are_the_linear_fractional_programme_solved_by_linprog():
    """Independent check: max and min of the weighted mean over the box, by Charnes-Cooper + scipy's linprog."""
    rng = np.random.default_rng(1)
    values = rng.random(12)
    labelled = np.ones(12, dtype=bool)
    extra = np.zeros(28, dtype=bool)  # 12 labelled of 40 items: e = 0.3
    gamma = 2.0
    bounds = selection_bounds(np.concatenate([values, np.full(28, np.nan)]), np.concatenate([labelled, extra]),
                              gamma=gamma)
    odds_inverse = 40 / 12 - 1
    low_w, high_w = 1 + odds_inverse / gamma, 1 + gamma * odds_inverse
    # variables (u_1..u_n, t): maximise v'u subject to sum u = 1, low_w t <= u_i <= high_w t
    n = len(values)
    box = np.vstack([np.hstack([np.eye(n), -high_w * np.ones((n, 1))]), np.hstack([-np.eye(n), low_w * np.ones((n, 1))])])
    equal = np.hstack([np.ones(n), [0.0]])[None, :]
    for sign, expected in ((-1, bounds.high), (1, bounds.low)):
        solved = linprog(sign * np.append(values, 0.0), A_ub=box, b_ub=np.zeros(2 * n), A_eq=equal, b_eq=[1.0],
                         bounds=[(0, None)] * (n + 1))
        assert sign * solved.fun == pytest.approx(expected, abs=1e-9)


def _side_box(n_units: int, n_labelled: int, gamma: float) -> tuple[float, float]:
    """The marginal sensitivity model's range of one side's inverse labelling probability, at its labelled share."""
    odds_inverse = n_units / n_labelled - 1
    return 1 + odds_inverse / gamma, 1 + gamma * odds_inverse


def test_paired_selection_bounds_are_the_extremes_over_each_sides_own_weights():
    """Issue 34 (the humans' Gamma range covered 0.77): selection acts on each response, so a prompt labelled for
    both models carries the product of two inverse probabilities, each in its side's box. Checked three ways: the
    bounds equal the linear-fractional programme over the product box (Charnes-Cooper, scipy's linprog); they are
    attained by per-side weights and no per-side choice leaves them (all 2^16 vertex choices); and the box of the
    pair taken as one selected unit (today's bound) is left by a per-side choice within Gamma."""
    rng = np.random.default_rng(4)
    n_units, gamma = 30, 2.0
    treated = np.full(n_units, np.nan)
    control = np.full(n_units, np.nan)
    treated[:12] = rng.integers(0, 2, 12)  # 12 of 30 fine-tune sides labelled, 10 of 30 base sides; 8 prompts both
    control[4:14] = rng.integers(0, 2, 10)
    bounds = paired_selection_bounds(treated, control, gamma=gamma)
    differences = (treated - control)[4:12]
    (low_t, high_t), (low_c, high_c) = _side_box(30, 12, gamma), _side_box(30, 10, gamma)
    n = len(differences)
    box = np.vstack([np.hstack([np.eye(n), -high_t * high_c * np.ones((n, 1))]),
                     np.hstack([-np.eye(n), low_t * low_c * np.ones((n, 1))])])
    equal = np.hstack([np.ones(n), [0.0]])[None, :]
    for sign, expected in ((-1, bounds.high), (1, bounds.low)):
        solved = linprog(sign * np.append(differences, 0.0), A_ub=box, b_ub=np.zeros(2 * n), A_eq=equal, b_eq=[1.0],
                         bounds=[(0, None)] * (n + 1))
        assert sign * solved.fun == pytest.approx(expected, abs=1e-9)
    choices = np.array(np.meshgrid(*[[0, 1]] * (2 * n))).reshape(2 * n, -1).T.astype(bool)
    weights = np.where(choices[:, :n], high_t, low_t) * np.where(choices[:, n:], high_c, low_c)
    means = weights @ differences / weights.sum(axis=1)
    assert means.min() == pytest.approx(bounds.low, abs=1e-12) and means.max() == pytest.approx(bounds.high, abs=1e-12)
    pair_as_unit = selection_bounds(np.where(np.isnan(treated - control), np.nan, treated - control),
                                    ~np.isnan(treated - control), gamma=gamma)
    assert means.max() > pair_as_unit.high + 0.05 and means.min() < pair_as_unit.low - 0.05
    with pytest.raises(ValueError, match="gamma"):
        paired_selection_bounds([1.0], [0.0], gamma=0.9)
    assert np.isnan(paired_selection_bounds([1.0, np.nan], [np.nan, 0.0]).low)  # no prompt labelled for both


def test_selection_bounds_contain_the_truth_when_selection_is_within_gamma():
    """Population check (20 000 items): labels picked with odds 2 when unsafe within each verdict, Gamma = 2: the
    range contains the true rate; with Gamma = 1 (random within verdicts) it does not."""
    rng = np.random.default_rng(2)
    truth = (rng.random(20_000) < 0.3).astype(float)
    verdict = np.where(rng.random(20_000) < 0.15, 1 - truth, truth)
    odds = 0.1 / 0.9 * np.where(truth == 1, 2.0, 1.0)
    chosen = rng.random(20_000) < odds / (1 + odds)
    within = selection_bounds(np.where(chosen, truth, np.nan), chosen, verdict, gamma=2.0)
    assert within.low <= truth.mean() <= within.high
    naive = selection_bounds(np.where(chosen, truth, np.nan), chosen, verdict, gamma=1.0)
    assert naive.low == pytest.approx(naive.high) and naive.high > truth.mean() + 0.02
    with pytest.raises(ValueError, match="gamma"):
        selection_bounds([1.0], [True], gamma=0.5)


def test_judge_error_shift_says_why_it_is_undefined_and_its_mover_interval_covers():
    """No labelled unsafe item of the base: NaN with a reason (before: NaN, no reason). Coverage of the shift
    interval in 300 simulated label sets with 60 unsafe items per model (the linearized interval: 0.915/0.886)."""
    shifts = judge_error_shift([0, 1, 0, 0] * 10, [1, 0, 0, 0] * 10, [True, False] * 20, list(range(40)))
    assert np.isnan(shifts[0].shift[0]) and "no labelled unsafe item of the fine-tune" in shifts[0].reason
    covered = []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        truth = (rng.random(400) < 0.3).astype(float)
        treated = np.repeat([True, False], 200)
        sensitivity = np.where(treated, 0.6, 0.9)
        verdict = np.where(truth == 1, rng.random(400) < sensitivity, rng.random(400) < 0.1).astype(float)
        shift = judge_error_shift(truth, verdict, treated, np.tile(np.arange(200), 2))[0]
        covered.append(shift.shift[1] <= 0.3 <= shift.shift[2])
    assert np.mean(covered) >= 0.93


def test_the_judge_only_effect_stands_alone_only_when_its_error_shift_is_shown_small(tmp_path: Path):
    """Every response labelled, the judge equal to the labels on both models: the shifts are 0 with 90% intervals
    inside +-0.05, so no transport warning; a judge missing a third of the fine-tune's unsafe answers warns."""
    study = tmp_path / "study"
    truth = write_active_study(study, seed=6, prompts=400, pilot=0)
    labels = tmp_path / "all.csv"
    pd.DataFrame({"item_id": truth.index, "annotator_id": "a", "label": truth.to_numpy()}).to_csv(labels, index=False)
    import_labels_step(study, labels, design="random")
    judgments = pd.read_parquet(study / "judgments.parquet")
    judgments["label"] = truth.reindex(judgments["item_id"]).to_numpy()
    judgments.to_parquet(study / "judgments.parquet", index=False)
    stats = _stats(study)
    judge_only = stats[(stats["statistic"] == "finetune_effect_paired") & (stats["judge_id"] == "sim-judge")]
    assert "read finetune_effect_corrected" not in judge_only["warning"].iloc[0]
    missed = judgments["item_id"].str.startswith("ft-") & (judgments["label"] == "unsafe")
    judgments.loc[missed & (np.arange(len(judgments)) % 3 == 0), "label"] = "safe"
    judgments.to_parquet(study / "judgments.parquet", index=False)
    stats = _stats(study)
    judge_only = stats[(stats["statistic"] == "finetune_effect_paired") & (stats["judge_id"] == "sim-judge")]
    assert "read finetune_effect_corrected" in judge_only["warning"].iloc[0]


def _uninformative_note(prevalence: float, seed: int = 0) -> str:
    """The note on a corrected rate with 100 of 2000 items labelled, a judge wrong on 1% of them."""
    from judgekit.analysis.blocks.finetune import LabelChecks

    rng = np.random.default_rng(seed)
    truth = (rng.random(2000) < prevalence).astype(float)
    verdict = np.where(rng.random(2000) < 0.01, 1 - truth, truth)
    labels = np.where(np.arange(2000) < 100, truth, np.nan)
    units = np.arange(2000)

    class Data:  # the one field LabelChecks.uninformative reads
        reference = labels

    checks = LabelChecks(Data(), verdict, np.ones(2000, dtype=bool), None, None, units, units, 0.95)
    return checks.uninformative(ppi_clustered(labels, verdict, units))


def test_a_rare_harm_rate_with_a_wide_interval_says_uninformative_with_the_plans_count():
    """Prevalence 0.005: the corrected rate's interval is many times its scale (before: 0.20 wide, no note); at
    prevalence 0.3 the same design is informative."""
    note = _uninformative_note(0.005)
    assert note.startswith("uninformative: label more") and "judgekit plan-labels" in note
    assert re.search(r"\+\d+ prompts would bring|even labelling every prompt", note), note
    assert _uninformative_note(0.3) == ""


def test_target_met_writes_no_file_and_says_so(tmp_path: Path):
    """Before: a header-only file that import-labels then rejected."""
    study = tmp_path / "study"
    write_active_study(study, seed=1, prompts=60, pilot=20)
    out = tmp_path / "plan.csv"
    lines = plan_labels_step(study, out, target_halfwidth=0.9)
    assert not out.exists() and "no file written" in lines[-1] and "target met" in lines[0]


def test_fpr_over_twenty_very_unequal_clusters_warns_and_twenty_equal_ones_do_not():
    """The audit's case: FPR intervals at 20 very unequal clusters covered 0.900, unwarned."""
    from judgekit.analysis.blocks.common import CONFUSION
    from judgekit.analysis.rows import block_intervals
    from judgekit.analysis.settings import StatsSettings
    from judgekit.stats.classification import confusion_item_sums
    from judgekit.stats.resampling import cluster_sums

    rng = np.random.default_rng(0)
    fpr = {"fpr": CONFUSION["fpr"]}
    for sizes, warned in ((np.full(20, 12), False), (np.array([200, 90, 40, 20] + [3] * 16), True)):
        clusters = np.repeat(np.arange(20), sizes)
        reference = np.zeros(len(clusters))  # all negatives: every item counts toward the FPR
        verdict = (rng.random(len(clusters)) < 0.1).astype(float)
        sums = cluster_sums(confusion_item_sums(reference, verdict), clusters)
        interval = block_intervals(fpr, sums, StatsSettings(n_boot=20), np.random.default_rng(0))["fpr"]
        assert ("unequal clusters: the rate's trials fall effectively" in interval.warning) is warned, interval
