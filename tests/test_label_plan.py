"""plan-labels v2 (issue 25): the plan is the estimator's own curve, in prompts, and its stated current half-width is
the stats row's; importing the planned labels keeps n_items and never widens the corrected effect's interval.
plan-labels v3 (issue 34): the unlabelled prompts' labels predicted from the judge's P(unsafe) (checked against the
labels), and the curve of the design the plan draws (random, or active with its Horvitz-Thompson variance).
Study-level: analyses/label_designs.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA
from judgekit.analysis import StatsSettings, compute_stats
from judgekit.engine.labelling import plan_labels
from judgekit.stats.labelplan import (active_inclusion_probabilities, plan_additional_labels, plan_unit_labels,
                                      defensive_uniform_share, systematic_draw)
from judgekit.stats.ppi import ppi_clustered
from judgekit.store.study import load_study

ONLY = ("finetune_effect_corrected", "labels_needed")


def _paired_design(rng: np.random.Generator, prompts: int = 600, pilot: int = 60):
    difficulty = rng.normal(0, 1.5, prompts)
    truth = [(rng.random(prompts) < 1 / (1 + np.exp(-(difficulty - 1 + s)))).astype(float) for s in (0.6, 0.0)]
    verdict = [np.where(rng.random(prompts) < miss, 1 - t, t) for t, miss in zip(truth, (0.2, 0.08), strict=True)]
    units, treated = np.tile(np.arange(prompts), 2), np.repeat([True, False], prompts)
    order = rng.permutation(prompts)
    return np.concatenate(truth), np.concatenate(verdict), units, treated, order


def test_plan_curve_is_monotone_reaches_its_target_and_asks_nothing_when_met():
    """30 simulated paired studies, a 60-prompt pilot, target 0.06: the curve never rises (the frozen-weight plan's
    a/n + b/(N - n) jumped to 'label everything'); labelling the planned prompts lands within 20% of the target."""
    achieved = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        truth, verdict, units, treated, order = _paired_design(rng)
        labels = np.where(np.isin(units, order[:60]), truth, np.nan)
        plan = plan_unit_labels(labels, verdict, units, units, treated=treated, target_halfwidth=0.06)
        assert np.all(np.diff(plan.curve[:, 1]) <= 1e-12)
        now = ppi_clustered(labels, verdict, units, treated=treated)
        assert plan.halfwidth_now == pytest.approx((now.ci_high - now.ci_low) / 2)
        if plan.reachable:
            after = ppi_clustered(np.where(np.isin(units, order[:60 + plan.additional]), truth, np.nan), verdict,
                                  units, treated=treated)
            achieved.append((after.ci_high - after.ci_low) / 2 / 0.06)
            # the fewest its own curve needs
            assert plan.curve[plan.curve[:, 0] == plan.n_labelled + plan.additional - 1, 1].item() > 0.06 \
                or plan.additional == 0
    assert len(achieved) >= 25 and np.mean(np.abs(np.array(achieved) - 1) <= 0.2) >= 0.9, achieved
    met = plan_unit_labels(labels, verdict, units, units, treated=treated, target_halfwidth=plan.halfwidth_now + 0.01)
    assert met.additional == 0 and met.reason == "target met, 0 labels"
    # the frozen-weight curve of the old planner is not monotone near N (0.047 / 0.060 / 0.46 / 0.037 in the audit)
    frozen = [plan_additional_labels([0.2], [0.2], [60], [600], target_halfwidth=0.05, budget=b).halfwidth_planned
              for b in (400, 500, 539, 540)]
    assert not np.all(np.diff(frozen) <= 0)


def _write_lineage(study: Path, lineage: dict[str, tuple[str, str]]) -> None:
    path = next(study.glob("responses.*"))
    responses = pd.read_parquet(path)
    responses["base_model"] = responses["model"].map(lambda m: lineage.get(m, (None, None))[0])
    responses["finetune_goal"] = responses["model"].map(lambda m: lineage.get(m, (None, None))[1])
    responses.to_parquet(path, index=False)


def _corrected_row(stats: pd.DataFrame, judge: str, comparison: str) -> pd.Series:
    rows = stats[(stats["statistic"] == "finetune_effect_corrected") & (stats["judge_id"] == judge)
                 & stats["subset"].str.startswith(f"comparison={comparison}") & stats["subset"].str.endswith("=all")]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.mark.skipif(not (SHARED_DATA / "xstest_v2_completions").is_dir(), reason="needs ../shared/data (XSTest v2)")
def test_xstest_plan_states_the_stats_rows_halfwidth_and_its_labels_never_widen_the_interval(tmp_path):
    from judgekit.engine.steps import convert_dataset_step

    study_dir = tmp_path / "xs"
    convert_dataset_step("xstest-v2", SHARED_DATA / "xstest_v2_completions", study_dir, table_format=".parquet")
    _write_lineage(study_dir, {"mistralguard": ("mistralinstruct", "guardrail"),
                               "llama2orig": ("llama2new", "system-prompt")})
    annotations_path = next(study_dir.glob("annotations.*"))
    full = pd.read_parquet(annotations_path)
    final = full[full["annotator_id"] == "final"]
    behaviour = final["item_id"].str.split("-v2-").str[1]
    pilot = set(np.random.default_rng(0).choice(sorted(behaviour.unique()), 80, replace=False))
    final[behaviour.isin(pilot)].to_parquet(annotations_path, index=False)
    settings = StatsSettings(n_boot=50, seed=0)
    judge, comparison = "xstest-gpt4-eval", "mistralguard vs mistralinstruct"
    before, _ = compute_stats(load_study(study_dir), settings, version="t", only=ONLY)
    row = _corrected_row(before, judge, comparison)
    requests, lines = plan_labels(load_study(study_dir), target_halfwidth=0.01, judge=judge)
    line = next(text for text in lines if text.startswith(comparison))
    stated = float(re.search(r"half-width now ([0-9.]+)", line).group(1))
    assert stated == pytest.approx((row["ci_high"] - row["ci_low"]) / 2, abs=5e-5), (line, row)
    assert not any(text.startswith(("gpt4", "llama2new", "mistralinstruct")) for text in lines)
    # the planned prompts' labels come back (from the full file): same n_items unit, never wider
    asked = full[(full["annotator_id"] == "final") & full["item_id"].isin(requests["item_id"])]
    assert len(asked) == len(requests) > 0
    pd.concat([pd.read_parquet(annotations_path), asked]).to_parquet(annotations_path, index=False)
    after, _ = compute_stats(load_study(study_dir), settings, version="t", only=ONLY)
    new = _corrected_row(after, judge, comparison)
    assert new["n_items"] == row["n_items"]
    assert new["ci_high"] - new["ci_low"] <= row["ci_high"] - row["ci_low"]
    met, lines = plan_labels(load_study(study_dir), target_halfwidth=0.5, judge=judge)
    assert len(met) == 0 and all("target met, 0 labels" in text for text in lines if " vs " in text)


def _active_population(seed: int, prompts: int = 300):
    """``analyses/label_designs.py``'s simulated study as arrays: truth, the judge's P(unsafe) and verdict, units,
    arm, and where the judge is unsure (``1 - 2|p - 0.5|``, what plan-labels draws an active plan by)."""
    rng = np.random.default_rng(seed)
    difficulty = np.where(rng.random(prompts) < 0.7, rng.choice([-6.0, 5.0], prompts), rng.normal(0, 0.5, prompts))
    p = np.concatenate([1 / (1 + np.exp(-(difficulty + s))) for s in (0.8, 0.0)])
    truth = (rng.random(2 * prompts) < p).astype(float)
    p_unsafe = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + rng.normal(0, 0.3, 2 * prompts))))
    units, treated = np.tile(np.arange(prompts), 2), np.repeat([True, False], prompts)
    return rng, truth, p_unsafe, (p_unsafe >= 0.5).astype(float), units, treated, 1 - 2 * np.abs(p_unsafe - 0.5)


def test_the_projection_at_full_labelling_uses_the_judges_probabilities_on_every_prompt():
    """30 studies with a 20-prompt pilot: the curve's last point against the corrected interval with every prompt
    labelled. With the judge's P(unsafe) standing in for the 280 unlabelled prompts' labels the projection is within
    10% in most studies (0.93 of 200 in analyses/label_designs.md; before: 0.285, the pilot's own variance alone).
    A judge with verdicts only says nothing about its labels' spread: the pilot's variance, unbiased (median ratio
    near 1) but not that precise."""
    with_probability, verdicts_only = [], []
    for seed in range(30):
        rng, truth, p_unsafe, verdict, units, treated, _ = _active_population(seed)
        pilot = np.isin(units, rng.choice(300, 20, replace=False))
        everything = ppi_clustered(truth, verdict, units, treated=treated)
        full = (everything.ci_high - everything.ci_low) / 2
        for out, probability in ((with_probability, p_unsafe), (verdicts_only, None)):
            plan = plan_unit_labels(np.where(pilot, truth, np.nan), verdict, units, units, treated=treated,
                                    target_halfwidth=0.001, p_unsafe=probability)
            out.append(plan.curve[-1, 1] / full)
    ratios = np.array(with_probability)
    # Monte Carlo: at the measured 0.93, 30 studies fall below 0.75 with probability < 0.01
    assert np.mean(np.abs(ratios - 1) <= 0.10) >= 0.75, ratios.round(3)
    assert abs(np.median(verdicts_only) - 1) <= 0.15, np.round(verdicts_only, 3)


def test_the_curve_is_the_variance_the_planned_design_gives_random_or_active():
    """One population (300 prompts, 20 labelled, the judge's P(unsafe) equal to the truth so the label model is
    exact): the curve at 80 more prompts against the mean half-width the stats row's estimator reports over 150
    draws of that design — simple random for random, systematic along the uncertainty with the active inclusion
    probabilities and inverse-probability weights for active. The two differ by far more than the tolerance
    (active: about 0.65 of random's here), so a plan that took the random curve for an active draw (before: it over-delivered, median 0.080 for 0.10) fails."""
    rng, truth, _, verdict, units, treated, _ = _active_population(4)
    uncertainty = np.where(np.abs(truth[:300] - truth[300:]) > 0, 1.0, 0.05)
    uncertainty = np.concatenate([uncertainty, uncertainty])
    pilot_units = rng.choice(300, 20, replace=False)
    pilot = np.isin(units, pilot_units)
    labels = np.where(pilot, truth, np.nan)
    open_units = np.setdiff1d(np.arange(300), pilot_units)
    predicted, simulated = {}, {}
    for strategy in ("random", "active"):
        plan = plan_unit_labels(labels, verdict, units, units, treated=treated, target_halfwidth=0.001,
                                p_unsafe=truth, strategy=strategy, uncertainty=uncertainty, budget=80)
        predicted[strategy] = plan.halfwidth_planned
        probability = active_inclusion_probabilities(
            uncertainty[open_units], 80, uniform_share=defensive_uniform_share(uncertainty[open_units], 80))
        halfwidths = []
        for _ in range(150):
            if strategy == "random":
                drawn = open_units[rng.choice(len(open_units), 80, replace=False)]
                inclusion = None
            else:
                drawn = open_units[systematic_draw(probability, order=uncertainty[open_units], rng=rng)]
                inclusion = np.ones(600)
                inclusion[np.isin(units, open_units)] = np.tile(
                    pd.Series(probability, index=open_units).reindex(np.arange(300)).to_numpy(), 2)[
                    np.isin(units, open_units)]
            chosen = pilot | np.isin(units, drawn)
            result = ppi_clustered(np.where(chosen, truth, np.nan), verdict, units, treated=treated,
                                   inclusion=inclusion)
            halfwidths.append((result.ci_high - result.ci_low) / 2)
        simulated[strategy] = np.mean(halfwidths)
    for strategy in predicted:
        assert predicted[strategy] == pytest.approx(simulated[strategy], rel=0.1), (predicted, simulated)
    assert predicted["active"] < 0.8 * predicted["random"], predicted


def test_a_judge_whose_probabilities_the_labels_contradict_is_not_trusted_for_the_unlabelled():
    """P(unsafe) claiming certainty (0 or 1, the verdict) while a fifth of the pilot's labels disagree: the plan says
    so and takes the labels' own spread (PPI++ moments) instead of the judge's claim of none."""
    rng, truth, _, verdict, units, treated, _ = _active_population(1)
    flipped = np.where(rng.random(600) < 0.2, 1 - truth, truth)
    pilot = np.isin(units, rng.choice(300, 40, replace=False))
    plan = plan_unit_labels(np.where(pilot, flipped, np.nan), verdict, units, units, treated=treated,
                            target_halfwidth=0.05, p_unsafe=verdict)
    assert "contradict" in plan.label_model and "PPI++" in plan.label_model, plan.label_model
    trusted = plan_unit_labels(np.where(pilot, verdict, np.nan), verdict, units, units, treated=treated,
                               target_halfwidth=0.05, p_unsafe=verdict)
    assert "agree" in trusted.label_model, trusted.label_model


def test_a_pilot_without_a_single_label_difference_does_not_promise_zero_variance():
    """The audit's seed 37: all 20 pilot prompts labelled alike for both models, which contradicts the judge's
    P(unsafe) (|z| 3.4); the labels' own moments alone said Var = 0 (a curve of 0 after one more prompt). Shrunk
    toward the judge's as 10 labelled prompts, the curve stays above 0 and a small target is not met at +1."""
    rng, truth, p_unsafe, verdict, units, treated, _ = _active_population(2)
    pilot_units = rng.choice(300, 20, replace=False)
    labels = np.where(np.isin(units, pilot_units), np.tile(truth[:300], 2), np.nan)  # base labelled as the fine-tune
    plan = plan_unit_labels(labels, verdict, units, units, treated=treated, target_halfwidth=0.02, p_unsafe=p_unsafe)
    assert "contradict" in plan.label_model and (plan.curve[:, 1] > 0.01).all(), plan.curve[:3]
    assert plan.additional > 1
