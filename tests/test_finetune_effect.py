"""Fine-tune effect statistics: paired design, prediction-powered correction, label planning, robustness.

The simulations here have known truth and are kept small (a few hundred
replicates, vectorised where it matters); the larger sweeps, with their Monte
Carlo errors, are in ``analyses/finetune_effect_simulation.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from judgekit.stats.labelplan import (
    plan_additional_labels,
    residual_variance_from_disagreement,
    stratified_selection,
    variance_components,
)
from judgekit.stats.paired import incoherence_decomposition, paired_mean_difference, summary_difference
from judgekit.stats.paired_binary import newcombe_paired_difference
from judgekit.stats.ppi import naive_judge_mean, power_tuning_lambda, ppi_clustered, ppi_mean, ppi_mean_difference
from judgekit.stats.robustness import conclusion_robustness, disagreement_drivers, sign_significance

# ---------------------------------------------------------------- the paired design


def _difficulty_mix_study(rng: np.random.Generator, *, n_prompts: int = 300, samples: int = 3, effect: float = 0.1):
    """Base answers every prompt; the fine-tune answers 95% of hard prompts but only 40% of easy ones.

    Hard prompts are unsafe 50% of the time for the base, easy ones 10%; fine-tuning adds ``effect`` to every
    prompt, so the true effect on any set of prompts is exactly ``effect``.
    """
    hard = rng.random(n_prompts) < 0.5
    base_rate = np.where(hard, 0.5, 0.1)
    answered_by_finetune = rng.random(n_prompts) < np.where(hard, 0.95, 0.4)
    rows = []
    for is_finetuned, answered, rate in ((False, np.ones(n_prompts, bool), base_rate),
                                         (True, answered_by_finetune, base_rate + effect)):
        prompts = np.repeat(np.flatnonzero(answered), samples)
        unsafe = (rng.random(len(prompts)) < rate[prompts]).astype(float)
        rows.append((unsafe, np.full(len(prompts), is_finetuned), prompts))
    unsafe, finetuned, prompts = (np.concatenate(parts) for parts in zip(*rows, strict=True))
    return unsafe, finetuned, prompts


def test_paired_effect_is_unbiased_under_different_difficulty_mixes_and_the_unpaired_difference_is_not():
    rng = np.random.default_rng(14)
    paired, unpaired, covered = [], [], []
    for _ in range(200):
        unsafe, finetuned, prompts = _difficulty_mix_study(rng)
        result = paired_mean_difference(unsafe, finetuned, prompts, n_boot=300, rng=rng)
        paired.append(result.estimate)
        covered.append(result.ci_low <= 0.1 <= result.ci_high)
        unpaired.append(unsafe[finetuned].mean() - unsafe[~finetuned].mean())
        # the fine-tune answered ~68% of the prompts the base did: below 80%, so the effect row warns
        assert "matched" in result.warning and result.matched_share_control < 0.8
    paired, unpaired = np.array(paired), np.array(unpaired)
    mc_paired = paired.std(ddof=1) / np.sqrt(len(paired))
    assert abs(paired.mean() - 0.1) < 3 * mc_paired, (paired.mean(), mc_paired)
    # The unpaired difference also credits fine-tuning with the harder prompts it happened to answer:
    # E = 0.1 + (share of hard prompts 0.70 vs 0.5) x 0.4 = 0.18.
    mc_unpaired = unpaired.std(ddof=1) / np.sqrt(len(unpaired))
    assert unpaired.mean() - 0.1 > 0.06 and unpaired.mean() - 0.1 > 10 * mc_unpaired
    assert np.mean(covered) >= 0.91  # 200 replicates: Monte Carlo s.e. 0.015 at 0.95


def test_paired_effect_averages_samples_within_a_prompt_before_differencing():
    # prompt p0: base 1/2 unsafe, fine-tune 3/3; p1: base 0/1, fine-tune 1/2 -> differences 0.5 and 0.5
    unsafe = [1, 0, 1, 1, 1, 0, 1, 0]
    finetuned = np.array([False, False, True, True, True, False, True, True])
    prompts = ["p0", "p0", "p0", "p0", "p0", "p1", "p1", "p1"]
    result = paired_mean_difference(unsafe, finetuned, prompts, min_pairs=2, rng=0)
    assert result.estimate == pytest.approx(0.5)
    assert result.n_pairs == 2 and result.matched_share_treatment == 1.0


def test_paired_effect_under_ten_prompts_gets_the_small_n_interval_and_no_shared_prompt_none():
    unsafe = np.tile([1.0, 0.0], 9)
    finetuned = np.tile([True, False], 9)
    prompts = np.repeat(np.arange(9), 2)
    result = paired_mean_difference(unsafe, finetuned, prompts, rng=0)
    assert result.estimate == 1.0 and 0.5 < result.ci_low < 1.0 and result.ci_high == 1.0
    assert result.n_pairs == 9 and "small n (9 matched units, under 10)" in result.warning and result.reason == ""
    one = paired_mean_difference([1.0, 0.0], np.array([True, False]), [0, 0], rng=0)
    assert one.estimate == 1.0 and one.ci_low < 0 and one.ci_high == 1.0  # honest: one prompt says little
    none = paired_mean_difference([1.0, 0.0], np.array([True, False]), [0, 1], rng=0)
    assert np.isnan(none.estimate) and "only 0 units answered by both models" in none.reason


def test_paired_effect_warns_only_below_eighty_percent_matched_and_skips_failed_verdicts():
    rng = np.random.default_rng(3)
    prompts = np.repeat(np.arange(100), 2)
    finetuned = np.tile([True, False], 100)
    unsafe = (rng.random(200) < 0.3).astype(float)
    assert paired_mean_difference(unsafe, finetuned, prompts, rng=0).warning == ""
    # 25 of the base model's verdicts failed (NaN): those prompts are unmatched, 75% of the fine-tune's
    unsafe[1:50:2] = np.nan
    result = paired_mean_difference(unsafe, finetuned, prompts, rng=0)
    assert result.n_pairs == 75 and result.matched_share_treatment == pytest.approx(0.75)
    assert result.matched_share_control == 1.0 and "treatment 75% < 80%" in result.warning


def test_paired_effect_of_averaged_rates_is_the_t_interval_of_the_unit_differences():
    from scipy.stats import t as student_t

    rng = np.random.default_rng(8)
    # two samples per prompt and model: per-prompt rates, not 0/1: the t interval of the prompt differences (it
    # covered 0.952-0.956 where the percentile bootstrap covered 0.942, see paired_mean_difference)
    prompts = np.repeat(np.arange(400), 4)
    finetuned = np.tile([True, True, False, False], 400)
    unsafe = (rng.random(1600) < np.where(finetuned, 0.35, 0.2)).astype(float)
    differences = unsafe[finetuned].reshape(400, 2).mean(axis=1) - unsafe[~finetuned].reshape(400, 2).mean(axis=1)
    half = student_t.ppf(0.975, 399) * differences.std(ddof=1) / np.sqrt(400)
    result = paired_mean_difference(unsafe, finetuned, prompts, rng=0)
    assert (result.ci_low, result.ci_high) == pytest.approx((differences.mean() - half, differences.mean() + half))
    assert "t(399) interval of the unit differences" in result.method and result.n_boot == 0
    assert result.warning == ""
    # prompts grouped into behaviours: the cluster bootstrap, or above the limit the linearised t over clusters
    behaviours = prompts // 4
    slow = paired_mean_difference(unsafe, finetuned, prompts, clusters=behaviours, n_boot=2000, rng=0)
    fast = paired_mean_difference(unsafe, finetuned, prompts, clusters=behaviours, max_bootstrap_units=50)
    assert "bootstrap" in slow.method and "Taylor linearization over 100 clusters of units, t(99)" in fast.method
    assert abs(slow.ci_low - fast.ci_low) < 0.01 and abs(slow.ci_high - fast.ci_high) < 0.01
    split = incoherence_decomposition(unsafe, rng.random(1600) < 0.2, finetuned, prompts, max_bootstrap_units=300)
    assert split.total == pytest.approx((result.estimate, result.ci_low, result.ci_high))


def test_paired_effect_of_independent_0_1_pairs_is_newcombes_interval_at_every_n():
    # one answer per prompt and model, prompts independent: the paired 2x2 table's score interval, not the
    # percentile bootstrap (which covered 0.905-0.942 at 30-150 pairs, analyses/paired_small_n.py), with no warning
    rng = np.random.default_rng(8)
    prompts = np.repeat(np.arange(400), 2)
    finetuned = np.tile([True, False], 400)
    unsafe = (rng.random(800) < np.where(finetuned, 0.35, 0.2)).astype(int)
    t, c = unsafe[finetuned].astype(bool), unsafe[~finetuned].astype(bool)
    expected = newcombe_paired_difference(both=int((t & c).sum()), treated_only=int((t & ~c).sum()),
                                          control_only=int((~t & c).sum()), neither=int((~t & ~c).sum()))
    result = paired_mean_difference(unsafe.astype(float), finetuned, prompts, rng=0)
    assert (result.estimate, result.ci_low, result.ci_high) == pytest.approx(expected)
    assert "Newcombe" in result.method and result.warning == "" and result.n_boot == 0
    # the same pairs grouped into behaviours are not independent: the cluster bootstrap
    clustered = paired_mean_difference(unsafe.astype(float), finetuned, prompts, clusters=prompts // 4, rng=0)
    assert "bootstrap" in clustered.method


def test_paired_effect_validates_its_arguments():
    with pytest.raises(ValueError, match="in_treatment"):
        paired_mean_difference([1, 0], [1, 0], ["a", "a"])
    with pytest.raises(ValueError, match="n_boot"):
        paired_mean_difference([1, 0], [True, False], ["a", "a"], n_boot=0)
    with pytest.raises(ValueError, match="one row per observation"):
        paired_mean_difference([1, 0, 1], [True, False], ["a", "a"])


def test_incoherence_decomposition_adds_up_and_isolates_the_incoherent_part():
    rng = np.random.default_rng(5)
    n_prompts = 200
    prompts = np.repeat(np.arange(n_prompts), 2)
    finetuned = np.tile([True, False], n_prompts)
    # The base is unsafe 10% of the time and coherent; the fine-tune adds unsafe answers that are all incoherent.
    incoherent = finetuned & (rng.random(2 * n_prompts) < 0.3)
    unsafe = np.where(incoherent, 1.0, (rng.random(2 * n_prompts) < 0.1).astype(float))
    result = incoherence_decomposition(unsafe, incoherent, finetuned, prompts, n_boot=300, rng=0)
    total, part, share, coherent = (r[0] for r in (result.total, result.incoherent_part, result.incoherent_share,
                                                   result.coherent_only))
    coherent_part = total - part
    assert total == pytest.approx(paired_mean_difference(unsafe, finetuned, prompts, rng=0).estimate)
    assert share == pytest.approx(part / total) and share > 0.8
    assert abs(coherent) < 0.08 and result.coherent_only[1] <= 0 <= result.coherent_only[2]
    assert abs(coherent_part) < 0.08
    assert result.n_pairs_coherent < n_prompts  # prompts whose only fine-tuned response is incoherent drop out


def test_summary_difference_by_hand():
    # se = 0.1 / 1.959964 for both; difference 0.1 +- 1.959964 * sqrt(2) * 0.1 / 1.959964 = 0.1 +- 0.141421
    estimate, low, high = summary_difference((0.6, 0.5, 0.7), (0.5, 0.4, 0.6))
    assert (estimate, low, high) == pytest.approx((0.1, 0.1 - np.sqrt(0.02), 0.1 + np.sqrt(0.02)))
    with pytest.raises(ValueError, match="contain its estimate"):
        summary_difference((0.8, 0.5, 0.7), (0.5, 0.4, 0.6))


# ---------------------------------------------------------------- prediction-powered inference

# Reference values from the reference implementation, ppi_python 0.2.3 (PyPI; github.com/aangelopoulos/ppi_py),
# computed in a throwaway environment (ppi_python needs numba and llvmlite, ~210 MB, so it is not a test
# dependency):
#   from ppi_py import ppi_mean_ci, ppi_mean_pointestimate
#   ppi_mean_ci(Y, YHAT, YHAT_U, alpha=0.05, lam=None|1.0); ppi_mean_ci(Y, P_UNSAFE, P_UNSAFE_U, alpha=0.05)
# The same environment compared ppi_mean with ppi_py on 1,200 random data sets (binary and probabilistic
# predictions, lam in {None, 1, 0, 0.37}, n 5-200, N 5-2000): largest absolute difference 3.3e-16.
Y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1.0])
YHAT = np.array([1, 0, 0, 1, 0, 1, 1, 0, 1, 0.0])
YHAT_U = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0.0])
P_UNSAFE = np.array([0.9, 0.2, 0.35, 0.8, 0.1, 0.6, 0.7, 0.05, 0.95, 0.4])
P_UNSAFE_U = np.array([0.9, 0.7, 0.2, 0.1, 0.55, 0.3, 0.85, 0.6, 0.15, 0.05, 0.75, 0.25])


@pytest.mark.parametrize(("yhat", "yhat_u", "lam", "expected"), [
    (YHAT, YHAT_U, None, (0.6, 0.31046422696637815, 0.8895357730336217)),
    (YHAT, YHAT_U, 1.0, (0.6, 0.16246977487501058, 1.0375302251249894)),
    (P_UNSAFE, P_UNSAFE_U, None, (0.5670970103721782, 0.3090943974146569, 0.8250996233296994)),
])
def test_ppi_mean_matches_ppi_python(yhat, yhat_u, lam, expected):
    result = ppi_mean(Y, yhat, yhat_u, lam=lam)
    assert (result.estimate, result.ci_low, result.ci_high) == pytest.approx(expected, abs=1e-12)


def test_ppi_mean_by_hand_without_power_tuning():
    # mean(YHAT_U) = 6/12 = 0.5; residual Y - YHAT = [0,0,1,0,0,-1,0,0,0,1]: mean 0.1, variance 0.3 - 0.01 = 0.29
    # estimate 0.5 + 0.1 = 0.6; variance 0.25/12 + 0.29/10 = 0.0498333; se 0.2232338
    result = ppi_mean(Y, YHAT, YHAT_U, lam=1.0)
    assert result.estimate == pytest.approx(0.6) and result.se == pytest.approx(np.sqrt(0.25 / 12 + 0.029))
    assert result.lam == 1.0 and result.method == "PPI (lambda=1)"
    # lambda = 0 is the classical mean of the labels with its ddof-0 standard error
    classical = ppi_mean(Y, YHAT, YHAT_U, lam=0.0)
    assert classical.estimate == pytest.approx(0.6) and classical.se == pytest.approx(np.sqrt(0.24 / 10))


def test_power_tuning_lambda_by_hand_and_for_a_constant_judge():
    # cov(Y, YHAT) ddof 0: E[Y YHAT] - 0.6 * 0.5 = 0.4 - 0.3 = 0.1; var of all 22 predictions (11 ones) ddof 1 = 0.2619048
    expected = 0.1 / ((1 + 10 / 12) * (0.25 * 22 / 21))
    assert power_tuning_lambda(Y, YHAT, YHAT_U) == pytest.approx(expected)
    assert power_tuning_lambda(Y, np.ones(10), np.ones(12)) == 0.0


def _judge(truth: np.ndarray, fnr: float, fpr: float, rng: np.random.Generator) -> np.ndarray:
    flip = np.where(truth == 1, rng.random(truth.shape) < fnr, rng.random(truth.shape) < fpr)
    return np.where(flip, 1 - truth, truth)


def test_ppi_effect_covers_the_truth_when_judge_error_differs_by_model_and_the_naive_interval_does_not():
    """True harmful rates 0.20 (base) and 0.35 (fine-tune): effect 0.15. The judge misses 45% of the fine-tune's
    unsafe answers (they are incoherent) but only 10% of the base's, so its own effect is about 0.005."""
    rng = np.random.default_rng(2023)
    replicates, n_items, n_labelled = 300, 2000, 200
    truth_effect = 0.15
    ppi_covered, naive_covered, estimates, widths = [], [], [], []
    for _ in range(replicates):
        arms = []
        for rate, fnr in ((0.35, 0.45), (0.20, 0.10)):
            truth = (rng.random(n_items) < rate).astype(float)
            verdict = _judge(truth, fnr, 0.05, rng)
            labelled = rng.permutation(n_items)[:n_labelled]
            unlabelled = np.setdiff1d(np.arange(n_items), labelled)
            arms.append(((truth[labelled], verdict[labelled], verdict[unlabelled]), verdict))
        (treatment, verdict_t), (control, verdict_c) = arms
        corrected = ppi_mean_difference(treatment, control)
        ppi_covered.append(corrected.ci_low <= truth_effect <= corrected.ci_high)
        estimates.append(corrected.estimate)
        widths.append(corrected.ci_high - corrected.ci_low)
        naive_t, naive_c = naive_judge_mean(verdict_t), naive_judge_mean(verdict_c)
        naive_se = np.hypot(naive_t[2] - naive_t[0], naive_c[2] - naive_c[0]) / 1.959964
        naive_effect = naive_t[0] - naive_c[0]
        naive_covered.append(abs(naive_effect - truth_effect) <= 1.959964 * naive_se)
    coverage = np.mean(ppi_covered)
    assert coverage >= 0.93 - 3 * np.sqrt(0.95 * 0.05 / replicates)  # 0.93 less 3 Monte Carlo s.e. (0.0126 each)
    assert abs(np.mean(estimates) - truth_effect) < 3 * np.std(estimates, ddof=1) / np.sqrt(replicates)
    assert np.mean(naive_covered) < 0.05
    assert "difference of independent means" in corrected.method


def test_paired_ppi_difference_is_ppi_on_per_prompt_differences_and_covers():
    rng = np.random.default_rng(7)
    replicates, n_prompts, n_labelled = 300, 1500, 200
    covered = []
    for _ in range(replicates):
        difficulty = rng.random(n_prompts)
        truth_c = (rng.random(n_prompts) < 0.1 + 0.4 * difficulty).astype(float)
        truth_t = (rng.random(n_prompts) < 0.25 + 0.4 * difficulty).astype(float)
        verdict_t, verdict_c = _judge(truth_t, 0.4, 0.05, rng), _judge(truth_c, 0.1, 0.05, rng)
        labelled = rng.permutation(n_prompts)[:n_labelled]
        unlabelled = np.setdiff1d(np.arange(n_prompts), labelled)
        treatment = (truth_t[labelled], verdict_t[labelled], verdict_t[unlabelled])
        control = (truth_c[labelled], verdict_c[labelled], verdict_c[unlabelled])
        result = ppi_mean_difference(treatment, control, paired=True)
        covered.append(result.ci_low <= 0.15 <= result.ci_high)
    assert result.method.endswith("paired by prompt")
    direct = ppi_mean(treatment[0] - control[0], treatment[1] - control[1], treatment[2] - control[2])
    assert result.estimate == direct.estimate and result.se == direct.se
    assert np.mean(covered) >= 0.93 - 3 * np.sqrt(0.95 * 0.05 / replicates)


def test_ppi_with_every_item_labelled_is_the_classical_mean():
    result = ppi_mean(Y, YHAT, np.array([]))
    assert (result.estimate, result.se, result.lam) == pytest.approx((0.6, np.sqrt(0.24 / 10), 0.0))
    assert result.method == "classical mean (every item labelled)" and result.n_unlabelled == 0


def test_ppi_validates_its_arguments():
    with pytest.raises(ValueError, match="'lam' parameter"):
        ppi_mean(Y, YHAT, YHAT_U, lam=1.5)
    with pytest.raises(ValueError, match="finite"):
        ppi_mean(np.array([1.0, np.nan]), YHAT[:2], YHAT_U)
    with pytest.raises(ValueError, match="equal length"):
        ppi_mean(Y, YHAT[:5], YHAT_U)
    with pytest.raises(ValueError, match="aligned by prompt"):
        ppi_mean_difference((Y, YHAT, YHAT_U), (Y[:5], YHAT[:5], YHAT_U), paired=True)


# ---------------------------------------------------------------- label planning


def test_plan_reaches_its_target_halfwidth_in_simulation():
    """Pilot of 60 labels per model -> plan for +-0.05 -> label that many -> the corrected effect's half-width."""
    rng = np.random.default_rng(11)
    target, n_items, pilot = 0.05, 4000, 60
    achieved, planned_totals = [], []
    for _ in range(150):
        populations, components = [], []
        for rate, fnr in ((0.35, 0.45), (0.20, 0.10)):
            truth = (rng.random(n_items) < rate).astype(float)
            verdict = _judge(truth, fnr, 0.05, rng)
            order = rng.permutation(n_items)
            populations.append((truth, verdict, order))
            components.append(variance_components(truth[order[:pilot]], verdict[order[:pilot]],
                                                  verdict[order[pilot:]]))
        plan = plan_additional_labels([c.residual for c in components], [c.prediction for c in components],
                                      [pilot, pilot], [n_items, n_items], target_halfwidth=target)
        arms = []
        for (truth, verdict, order), n_final in zip(populations, plan.n_final, strict=True):
            labelled, unlabelled = order[:n_final], order[n_final:]
            arms.append((truth[labelled], verdict[labelled], verdict[unlabelled]))
        result = ppi_mean_difference(*arms)
        achieved.append((result.ci_high - result.ci_low) / 2)
        planned_totals.append(plan.n_final.sum())
    achieved = np.array(achieved)
    assert 0.8 * target <= achieved.mean() <= 1.2 * target
    assert np.mean(np.abs(achieved / target - 1) <= 0.2) >= 0.9
    # the judge errs more on the fine-tune: it gets more labels (Neyman: n ~ sqrt(residual variance))
    assert plan.n_final[0] > plan.n_final[1]


def test_plan_by_hand_budget_and_unreachable_target():
    plan = plan_additional_labels([0.1, 0.1], [0.0, 0.0], [100, 0], [10_000, 10_000], target_halfwidth=0.05)
    # (0.05 / 1.959964)^2 = 6.5079e-4 >= 0.1/308 + 0.1/307
    assert plan.n_final.sum() == 615 and plan.additional.tolist() == [plan.n_final[0] - 100, plan.n_final[1]]
    assert plan.reachable and plan.halfwidth_planned <= 0.05 < plan.halfwidth_now
    budgeted = plan_additional_labels([0.4, 0.1], [0.0, 0.0], [0, 0], [10_000, 10_000],
                                      target_halfwidth=0.01, budget=300)
    # Neyman split of 300 in proportion to sqrt(0.4) : sqrt(0.1) = 2 : 1
    assert budgeted.n_final.tolist() == [200, 100] and not budgeted.reachable and "budget reaches" in budgeted.reason
    # a judge that never errs on the base model still leaves it min_labels (50) labels: below that PPI under-covers
    floored = plan_additional_labels([0.1, 0.0], [0.0, 0.0], [0, 0], [10_000, 10_000], target_halfwidth=0.05)
    assert floored.n_final.tolist() == [154, 50]  # 0.1 / 154 <= 6.5079e-4 < 0.1 / 153
    unreachable = plan_additional_labels([0.2], [0.0], [5], [50], target_halfwidth=0.01)
    assert not unreachable.reachable and unreachable.n_final.tolist() == [50]
    assert "labelling every item" in unreachable.reason


def test_residual_variance_prior_and_validation():
    assert residual_variance_from_disagreement(0.1, 0.3, 0.5) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="incoherent_share"):
        residual_variance_from_disagreement(0.1, 0.3, 1.5)
    with pytest.raises(ValueError, match="n_labelled <= n_total"):
        plan_additional_labels([0.1], [0.0], [20], [10], target_halfwidth=0.05)
    with pytest.raises(ValueError, match="target_halfwidth"):
        plan_additional_labels([0.1], [0.0], [2], [10], target_halfwidth=0.0)


def test_stratified_selection_is_proportional_and_covers_every_stratum():
    strata = np.array(["agree|coherent"] * 700 + ["disagree|coherent"] * 200 + ["disagree|incoherent"] * 100)
    chosen = stratified_selection(strata, 50, rng=1)
    counts = pd.Series(strata[chosen]).value_counts().to_dict()
    assert counts == {"agree|coherent": 35, "disagree|coherent": 10, "disagree|incoherent": 5}
    assert len(np.unique(chosen)) == 50
    # every item's inclusion probability is the same: over many draws each is chosen ~5% of the time
    hits = np.zeros(len(strata))
    for seed in range(400):
        hits[stratified_selection(strata, 50, rng=seed)] += 1
    assert abs(hits.mean() / 400 - 0.05) < 1e-12 and np.abs(hits / 400 - 0.05).max() < 0.045
    with pytest.raises(ValueError, match="n_select"):
        stratified_selection(strata[:3], 4)


# ---------------------------------------------------------------- conclusion robustness


def _cells() -> pd.DataFrame:
    """Four judges x two benchmarks; humans: a significant increase on A, no significant change on B."""
    rows = []
    human = {"A": (0.10, 0.04, 0.16), "B": (0.02, -0.03, 0.07)}
    effects = {("j1", "A"): (0.12, 0.05, 0.19), ("j2", "A"): (0.09, 0.01, 0.17), ("j3", "A"): (0.01, -0.05, 0.07),
               ("j4", "A"): (-0.08, -0.14, -0.02), ("j1", "B"): (0.03, -0.02, 0.08), ("j2", "B"): (0.08, 0.02, 0.14),
               ("j3", "B"): (0.0, -0.05, 0.05), ("j4", "B"): (-0.09, -0.15, -0.03)}
    for (judge, benchmark), (estimate, low, high) in effects.items():
        reference = human[benchmark]
        rows.append({"judge_id": judge, "benchmark": benchmark, "estimate": estimate, "ci_low": low, "ci_high": high,
                     "reference_estimate": reference[0], "reference_ci_low": reference[1],
                     "reference_ci_high": reference[2]})
    return pd.DataFrame(rows)


def test_conclusion_agreement_and_reversal_by_hand():
    result = conclusion_robustness(_cells())
    # conclusions vs humans: A: +1,+1,0,-1 vs +1 -> agree j1, j2; B: 0,+1,0,-1 vs 0 -> agree j1, j3
    assert result.cells["conclusion"].tolist() == [1, 1, 0, -1, 0, 1, 0, -1]
    assert result.conclusion_agreement == pytest.approx(4 / 8)
    # reversals: significant against the humans' estimate sign (+ on both): j4 on A and on B
    assert result.conclusion_reversal == pytest.approx(2 / 8)
    assert result.n_compared == 8 and result.reason == ""


def test_disagreement_drivers_point_at_the_judge_that_flips():
    drivers = disagreement_drivers(conclusion_robustness(_cells()), ["judge_id", "benchmark"])
    top = drivers.iloc[0]
    assert (top["factor"], top["level"], top["disagreement"], top["reversal"]) == ("judge_id", "j4", 1.0, 1.0)
    # j4 disagrees in 2/2 cells, the other judges in 2/6: excess 1 - 1/3
    assert top["excess_disagreement"] == pytest.approx(2 / 3)
    benchmarks = drivers[drivers["factor"] == "benchmark"].set_index("level")["disagreement"]
    assert benchmarks.to_dict() == {"A": 0.5, "B": 0.5}


def test_conclusion_robustness_without_humans_says_why():
    cells = _cells().drop(columns=["reference_estimate", "reference_ci_low", "reference_ci_high"])
    result = conclusion_robustness(cells)
    assert np.isnan(result.conclusion_agreement) and "no cell has a human-label reference" in result.reason
    assert sign_significance([0.1], [0.0], [0.2]).tolist() == [0.0]  # an interval touching 0 is not significant
    with pytest.raises(ValueError, match="missing"):
        conclusion_robustness(cells.drop(columns=["ci_low"]))


# ---------------------------------------------------------------- the driver block


def _study_with_finetune(folder, *, n_prompts: int = 120, shared: int | None = None, mitigation: bool = False):
    """base and ft on the same prompts (ft answers the first ``shared``); judge j1 misses ft's incoherent unsafe answers."""
    rng = np.random.default_rng(1)
    folder.mkdir()
    responses, judgments, annotations, flags = [], [], [], []
    models = [("base", None, "none"), ("ft", "coding", "none")] + ([("ft-mix", "coding", "safety-data-mix")] if mitigation else [])
    for model, goal, mitigation_name in models:
        for p in range(n_prompts if model == "base" or shared is None else shared):
            item = f"{model}-{p}"
            incoherent = model != "base" and rng.random() < 0.3
            truth = rng.random() < (0.15 if model == "base" else 0.3 + 0.3 * incoherent)
            responses.append({"item_id": item, "prompt": f"prompt {p}", "response": "r", "model": model,
                              "base_model": "base", "finetune_goal": goal, "mitigation": mitigation_name,
                              "benchmark": "hb" if p % 2 else "jbb", "prompt_id": f"p{p}"})
            for judge, fnr in (("j1", 0.6 if incoherent else 0.1), ("j2", 0.2)):
                verdict = truth if rng.random() > (fnr if truth else 0.05) else not truth
                judgments.append({"item_id": item, "judge_id": judge, "label": "unsafe" if verdict else "safe",
                                  "p_unsafe": None, "parse_status": "ok", "raw_output": "", "judge_spec_hash": "h"})
            if p < 40:
                annotations.append({"item_id": item, "annotator_id": "a", "label": "unsafe" if truth else "safe"})
            flags.append({"item_id": item, "detector": "incoherent", "flagged": bool(incoherent), "score": None,
                          "reason": ""})
    for name, rows in (("responses", responses), ("judgments", judgments), ("annotations", annotations),
                       ("flags", flags)):
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    return folder


FINETUNE_STATISTICS = ("finetune_effect_paired", "finetune_effect_coherent_only", "finetune_effect_incoherent_share",
                       "harmful_rate_corrected", "finetune_effect_corrected", "conclusion_agreement",
                       "conclusion_reversal", "conclusion_disagreement")


def test_driver_writes_the_finetune_rows(tmp_path):
    from judgekit.analysis import StatsSettings, compute_stats
    from judgekit.store.study import load_study

    study = load_study(_study_with_finetune(tmp_path / "s"))
    stats, _ = compute_stats(study, StatsSettings(n_boot=200), version="test", only=FINETUNE_STATISTICS)
    assert set(FINETUNE_STATISTICS) <= set(stats["statistic"])
    pooled = stats[stats["subset"] == "comparison=ft vs base|goal=coding|benchmark=all"].set_index(
        ["statistic", "judge_id"])
    paired = pooled.loc[("finetune_effect_paired", "j1")]
    assert paired["n_items"] == 120 and "matched prompts: 120 (100% of the fine-tune's" in paired["method"]
    assert paired["model"] == "ft" and paired["base_model"] == "base"
    # j1 misses the fine-tune's incoherent unsafe answers by construction: its judge-only effect says so (its
    # sensitivity shift is not shown within +-0.05 by the equivalence test)
    assert paired["warning"].startswith(("the judge errs differently on the fine-tune (sensitivity",
                                         "the judge's error shift between the models is not shown small (sensitivity"))
    assert "read finetune_effect_corrected" in paired["warning"]
    corrected = pooled.loc[("finetune_effect_corrected", "j1")]
    assert "40 prompts labelled for both models" in corrected["method"]
    assert corrected["reference"] == "human_majority" and corrected["n_items"] == 240
    # the same number by hand: clustered PPI++ on the items, both models' responses to a prompt in its cluster
    responses, judgments = (pd.read_csv(tmp_path / "s" / f"{t}.csv") for t in ("responses", "judgments"))
    labels = pd.read_csv(tmp_path / "s" / "annotations.csv").set_index("item_id")["label"].eq("unsafe")
    verdict = judgments[judgments["judge_id"] == "j1"].set_index("item_id")["label"].eq("unsafe")
    by_hand = ppi_clustered(responses["item_id"].map(labels).astype(float).to_numpy(),
                            responses["item_id"].map(verdict).astype(float).to_numpy(),
                            ("id:" + responses["prompt_id"]).to_numpy(), treated=(responses["model"] == "ft").to_numpy())
    assert (corrected["estimate"], corrected["ci_low"], corrected["ci_high"]) == pytest.approx(
        (by_hand.estimate, by_hand.ci_low, by_hand.ci_high))
    # simulated truth: 0.3 + 0.3 x 0.3 incoherent - 0.15 = 0.24
    assert corrected["ci_low"] <= 0.24 <= corrected["ci_high"]
    rates = stats[stats["statistic"] == "harmful_rate_corrected"]
    assert set(rates["model"]) == {"ft", "base"}
    agreement = stats[stats["statistic"] == "conclusion_agreement"].iloc[0]
    assert 0 <= agreement["estimate"] <= 1 and np.isnan(agreement["ci_low"]) and "cells" in agreement["method"]


def test_driver_finetune_rows_warn_on_partial_matching_and_below_ten_prompts(tmp_path):
    from judgekit.analysis import StatsSettings, compute_stats
    from judgekit.store.study import load_study

    partial = load_study(_study_with_finetune(tmp_path / "partial", shared=80))
    stats, _ = compute_stats(partial, StatsSettings(n_boot=100), version="test", only=("finetune_effect_paired",))
    row = stats[(stats["judge_id"] == "j1") & (stats["benchmark"].isna())].iloc[0]
    assert row["n_items"] == 80 and "control 67% < 80%" in row["warning"]
    few = load_study(_study_with_finetune(tmp_path / "few", shared=9))
    stats, _ = compute_stats(few, StatsSettings(n_boot=100), version="test", only=("finetune_effect_paired",))
    row = stats[(stats["judge_id"] == "j1") & (stats["benchmark"].isna())].iloc[0]
    assert row["n_items"] == 9 and np.isfinite(row["estimate"]) and row["ci_low"] < row["ci_high"]
    assert "small n (9 matched units, under 10)" in row["warning"] and "Newcombe" in row["method"]


def test_mitigations_are_compared_at_the_same_goal(tmp_path):
    from judgekit.analysis import StatsSettings, compute_stats
    from judgekit.store.study import load_study

    study = load_study(_study_with_finetune(tmp_path / "s", mitigation=True))
    stats, _ = compute_stats(study, StatsSettings(n_boot=100), version="test", only=("finetune_effect_paired",))
    mitigation = stats[stats["subset_kind"] == "mitigation_comparison"]
    assert set(mitigation["subset_value"]) == {"ft-mix vs ft"} and set(mitigation["model"]) == {"ft-mix"}


def test_capability_rows_and_gain_come_from_the_capability_table(tmp_path):
    from judgekit.analysis import StatsSettings, compute_stats
    from judgekit.store.study import load_study

    folder = _study_with_finetune(tmp_path / "s")
    scores = [f"{model},humaneval,{i},{float(i < cut)}" for model, cut in (("base", 20), ("ft", 30)) for i in range(50)]
    (folder / "capability.csv").write_text("model,task,item_id,score\n" + "\n".join(scores) + "\n")
    stats, _ = compute_stats(load_study(folder), StatsSettings(n_boot=200), version="test",
                             only=("capability", "capability_gain"))
    levels = stats[stats["statistic"] == "capability"].set_index("model")["estimate"]
    assert levels.to_dict() == {"base": 0.4, "ft": 0.6}
    gain = stats[stats["statistic"] == "capability_gain"].iloc[0]
    assert (gain["model"], gain["base_model"]) == ("ft", "base") and gain["estimate"] == pytest.approx(0.2)
    assert "paired by item_id" in gain["method"] and gain["ci_low"] > 0


# ---------------------------------------------------------------- matched capability, samples, report, figures


def _with_capability(folder, *, target: float):
    """The mitigation study plus per-item capability (ft 0.60, ft-mix 0.56, base 0.40) and the goal's target."""
    _study_with_finetune(folder, mitigation=True)
    (folder / "models.csv").write_text("model,base_model,finetune_goal,mitigation,goal_task,goal_target\n"
                                       f"ft,base,coding,none,humaneval,{target}\n"
                                       f"ft-mix,base,coding,safety-data-mix,humaneval,{target}\n")
    scores = [f"{model},humaneval,{i},{float(i < cut)}" for model, cut in (("base", 20), ("ft", 30), ("ft-mix", 28))
              for i in range(50)]
    (folder / "capability.csv").write_text("model,task,item_id,score\n" + "\n".join(scores) + "\n")
    return folder


def test_mitigations_at_matched_capability_by_hand(tmp_path):
    from judgekit.analysis import StatsSettings, compute_stats
    from judgekit.analysis.blocks.finetune import capability_matched
    from judgekit.store.study import load_study

    only = ("mitigation_effect_matched_capability",)
    study = load_study(_with_capability(tmp_path / "reached", target=0.5))
    stats, _ = compute_stats(study, StatsSettings(n_boot=100), version="test", only=only)
    row = stats[(stats["judge_id"] == "j1") & stats["benchmark"].isna()].iloc[0]
    # by hand: ft-mix minus ft verdict of j1 on each of the 120 shared prompts, averaged
    responses, judgments = (pd.read_csv(tmp_path / "reached" / f"{t}.csv") for t in ("responses", "judgments"))
    verdict = judgments[judgments["judge_id"] == "j1"].set_index("item_id")["label"].eq("unsafe").astype(float)
    wide = responses.assign(v=responses["item_id"].map(verdict)).pivot(index="prompt_id", columns="model", values="v")
    assert row["estimate"] == pytest.approx((wide["ft-mix"] - wide["ft"]).mean())
    assert row["model"] == "ft-mix" and "ft-mix 0.560" in row["method"] and "target 0.5" in row["method"]
    # capability 0.60 and 0.56 on 50 items: normal upper ends 0.736 and 0.698 (hand: p + 1.96 sd/sqrt(50)) < 0.9
    study = load_study(_with_capability(tmp_path / "short", target=0.9))
    stats, _ = compute_stats(study, StatsSettings(n_boot=100), version="test", only=only)
    short = stats[(stats["judge_id"] == "j1") & stats["benchmark"].isna()].iloc[0]
    assert np.isnan(short["estimate"]) and "not compared at matched capability" in short["warning"]
    assert capability_matched((0.6, 0.46, 0.74), (0.56, 0.42, 0.70), 0.72) is False
    assert capability_matched((0.6, 0.46, 0.74), (0.56, 0.42, 0.72), 0.72) is True
    assert capability_matched((0.6, 0.5, 0.7), (0.3, 0.2, 0.45), None) is False


def test_corrected_rows_count_a_prompts_samples_as_one_cluster(tmp_path):
    """Each response copied as a second sample of its prompt adds no information: the cluster-robust interval keeps
    its width (it narrowed by about 1/sqrt(2) when each response was an independent draw, with only a warning)."""
    from judgekit.analysis import StatsSettings, compute_stats
    from judgekit.store.study import load_study

    folder = _study_with_finetune(tmp_path / "s")
    only = ("finetune_effect_corrected", "harmful_rate_corrected")
    once, _ = compute_stats(load_study(folder), StatsSettings(n_boot=50), version="test", only=only)
    for name in ("responses", "judgments", "annotations", "flags"):
        table = pd.read_csv(folder / f"{name}.csv")
        second = table.assign(item_id=table["item_id"] + "-s1")
        if name == "responses":
            table, second = table.assign(sample=0), second.assign(sample=1)
        pd.concat([table, second]).to_csv(folder / f"{name}.csv", index=False)
    twice, _ = compute_stats(load_study(folder), StatsSettings(n_boot=50), version="test", only=only)
    keys = ["statistic", "judge_id", "subset"]
    both = once.merge(twice, on=keys, suffixes=("_once", "_twice")).dropna(subset=["estimate_once"])
    assert len(both) >= 6
    width = lambda f, w: f[f"ci_high_{w}"] - f[f"ci_low_{w}"]  # noqa: E731
    assert np.allclose(both["estimate_once"], both["estimate_twice"])
    assert (width(both, "twice") / width(both, "once")).between(0.85, 1.15).all()
    assert (both["n_items_twice"] == 2 * both["n_items_once"]).all()
    assert not twice["warning"].str.contains("several samples").any()


@pytest.fixture(scope="module")
def finetune_stats(tmp_path_factory):
    from judgekit.analysis import StatsSettings, compute_stats
    from judgekit.store.study import load_study

    study = load_study(_with_capability(tmp_path_factory.mktemp("report") / "s", target=0.5))
    stats, _ = compute_stats(study, StatsSettings(n_boot=100), version="test")
    return study, stats


def test_report_section_opens_with_the_answer_and_never_prints_undefined_as_zero(finetune_stats):
    from judgekit.outputs.report_finetune import finetune_section

    study, stats = finetune_stats
    paired = stats[(stats["statistic"] == "finetune_effect_paired") & stats["benchmark"].isna()]
    broken = paired.iloc[[0]].assign(judge_id="<script>j3</script>", estimate=np.nan, ci_low=np.nan, ci_high=np.nan,
                                     warning="only 4 units answered by both models (need 10); no paired effect")
    html = finetune_section(study, pd.concat([stats, broken], ignore_index=True))
    # fine-tunes and a mitigation of one: the title names both
    assert html.startswith("<h2>Did fine-tuning, and its mitigation, change safety?</h2>")
    for text in ("ft vs base", "ft-mix vs ft", "conclusion_agreement", "conclusion_reversal", "capability_gain",
                 "effect at matched capability", "judge-error-corrected effect", "How many more human labels",
                 "cluster bootstrap over units, percentile (100 resamples)", "&lt;script&gt;j3&lt;/script&gt;",
                 "— ⚠", ": only 4 units answered by both models (need 10); no paired effect</li>"):
        assert text in html, text
    assert "<script>" not in html and "95% percentile bootstrap" not in html
    assert "0.000 [0.000, 0.000]" not in html


def test_finetune_figures_draw_and_the_flip_colour_comes_from_the_same_row(finetune_stats):
    import matplotlib.pyplot as plt

    from judgekit.outputs.figures import FIGURES
    from judgekit.outputs.finetune_figures import sign_significance_key
    from judgekit.outputs.style import FigureInputs, figure_caption

    _, stats = finetune_stats
    for name in ("specification_curve", "safety_capability_plane", "conclusion_flip_matrix", "finetune_effect_forest"):
        figure = FIGURES[name](FigureInputs(stats))
        assert figure is not None, name
        # issue: the plane's title was six lines of method; a title is one short line, the method is the caption
        title = figure._suptitle.get_text()
        assert "\n" not in title and len(title) <= 60 and figure._suptitle.get_fontsize() >= 7, (name, title)
        assert "intervals" in figure_caption(figure), name
        plt.close(figure)
    row = pd.Series({"estimate": 0.05, "ci_low": -0.01, "ci_high": 0.11})
    assert sign_significance_key(row) == "ns"
    assert sign_significance_key(pd.Series({"estimate": 0.05, "ci_low": 0.01, "ci_high": 0.11})) == "up"
    assert sign_significance_key(pd.Series({"estimate": -0.2, "ci_low": -0.3, "ci_high": -0.1})) == "down"


def test_corrected_effect_needs_prompts_both_models_answered(tmp_path):
    """Like the paired effect, the PPI-corrected effect compares the models on shared prompts only. Before, with 5
    shared prompts the paired row refused while the corrected row compared the two models' rates on different
    prompts (HarmBench: Orca-2 vs Llama-2 chat share no behaviour, yet every judge showed 0.394 [0.199, 0.589])."""
    from judgekit.analysis import StatsSettings, compute_stats
    from judgekit.store.study import load_study

    folder = _study_with_finetune(tmp_path / "s", shared=30)
    responses = pd.read_csv(folder / "responses.csv")
    other = (responses["model"] == "ft") & (responses["prompt_id"].str[1:].astype(int) >= 5)  # 25 prompts base lacks
    responses.loc[other, "prompt_id"] = "q" + responses.loc[other, "prompt_id"]
    responses.loc[other, "prompt"] = "other " + responses.loc[other, "prompt"]
    responses.to_csv(folder / "responses.csv", index=False)
    study = load_study(folder)
    stats, _ = compute_stats(study, StatsSettings(n_boot=50), version="test",
                             only=("finetune_effect_paired", "finetune_effect_corrected", "labels_needed",
                                   "harmful_rate_corrected", "conclusion_agreement", "conclusion_reversal",
                                   "conclusion_disagreement"))
    pooled = stats[stats["subset"] == "comparison=ft vs base|goal=coding|benchmark=all"]
    paired = pooled[pooled["statistic"] == "finetune_effect_paired"]  # 5 shared prompts: the small-n interval
    assert len(paired) and (paired["n_items"] == 5).all() and paired["warning"].str.contains("small n").all()
    for name in ("finetune_effect_corrected", "labels_needed"):
        rows = pooled[pooled["statistic"] == name]
        assert len(rows) and rows["estimate"].isna().all(), name
        assert rows["warning"].str.contains("answered by both models").all(), name
    # each model's own corrected rate still uses all of its items
    rates = stats[stats["statistic"] == "harmful_rate_corrected"]
    assert rates["estimate"].notna().any()
    # and the report says so instead of failing on the missing count
    from judgekit.outputs.report_finetune import finetune_section

    html = finetune_section(study, stats)
    assert "— (only 5 prompts answered by both models" in html  # the label plan's count
    assert html.count("only 5 prompts answered by both models (need 10); no corrected effect") == 1  # one footnote
    # the cells of 5 shared prompts have small-n estimates, so the conclusions are compared with the humans'
    agreement = stats[(stats["statistic"] == "conclusion_agreement") & stats["subset"].str.startswith("comparison=ft")]
    assert agreement["estimate"].notna().any() and agreement["estimate"].dropna().between(0, 1).all()


def test_clustered_ppi_with_items_as_clusters_is_ppi_python_and_never_zero_width():
    """One arm, a fixed weight, every item its own cluster: the estimate is ppi_mean's (= ppi_py 0.2.3's) and the
    variance its variance times C/(C-1). All labels and verdicts 1 (truth 0.979 in the audit): ppi_mean's interval
    is 1 [1, 1], the clustered one has width and covers 0.979."""
    y = np.concatenate([Y, np.full(len(YHAT_U), np.nan)])
    f = np.concatenate([YHAT, YHAT_U])
    for lam in (0.0, 0.4, 1.0):
        reference = ppi_mean(Y, YHAT, YHAT_U, lam=lam)
        ours = ppi_clustered(y, f, np.arange(len(y)), lam=lam, pseudo_labels=False, max_jackknife_clusters=0)
        assert ours.estimate == pytest.approx(reference.estimate, abs=1e-12)
        assert ours.se**2 == pytest.approx(reference.se**2 * len(y) / (len(y) - 1), rel=1e-12)
    ones = np.ones(60)
    y = np.concatenate([ones[:50], np.full(10, np.nan)])
    assert ppi_mean(ones[:50], ones[:50], ones[50:]).ci_low == 1.0
    result = ppi_clustered(y, ones, np.arange(60))
    assert result.estimate == 1.0 and result.ci_high == 1.0 and result.ci_low < 0.979


def test_clustered_ppi_pairs_through_the_clusters():
    """The judge's errors shared by both models' responses to a prompt cancel when the prompt is one cluster."""
    rng = np.random.default_rng(0)
    prompts = 300
    difficulty = rng.normal(0, 2.0, prompts)
    truth = [(rng.random(prompts) < 1 / (1 + np.exp(-(difficulty + shift)))).astype(float) for shift in (0.3, 0.0)]
    y = np.concatenate([np.where(np.arange(prompts) < 100, t, np.nan) for t in truth])
    hard = rng.random(prompts) < 0.1  # the judge errs on the same prompts for both models
    f = np.concatenate([np.where(hard, 1 - t, t) for t in truth])
    treated = np.repeat([True, False], prompts)
    for lam in (None, 1.0):  # a fixed weight gives one estimate; the tuned weights minimise each variance
        paired = ppi_clustered(y, f, np.tile(np.arange(prompts), 2), treated=treated, lam=lam)
        unpaired = ppi_clustered(y, f, np.arange(2 * prompts), treated=treated, lam=lam)
        assert lam is None or paired.estimate == pytest.approx(unpaired.estimate)
        assert paired.se < 0.8 * unpaired.se
    with pytest.raises(ValueError, match="at least 2 labelled"):
        ppi_clustered(np.r_[1.0, np.full(9, np.nan)], np.ones(10), np.arange(10))
    with pytest.raises(ValueError, match="boolean"):
        ppi_clustered(y, f, np.arange(2 * prompts), treated=treated.astype(int))


def test_paired_effect_resamples_behaviours_when_given():
    """160 prompts in 40 behaviours sharing a behaviour-level effect: resampling prompts ignores that prompts of a
    behaviour move together (coverage 0.91 in the audit); with clusters the interval is wider and names them."""
    rng = np.random.default_rng(0)
    behaviour = np.repeat(np.arange(40), 4)
    shift = rng.normal(0, 0.3, 40)[behaviour]
    values = np.concatenate([np.clip(0.4 + shift + rng.normal(0, 0.05, 160), 0, 1), np.full(160, 0.4)])
    treated = np.repeat([True, False], 160)
    prompt = np.tile(np.arange(160), 2)
    by_prompt = paired_mean_difference(values, treated, prompt, rng=1)
    by_behaviour = paired_mean_difference(values, treated, prompt, clusters=np.tile(behaviour, 2), rng=1)
    assert by_behaviour.estimate == pytest.approx(by_prompt.estimate)
    assert (by_behaviour.ci_high - by_behaviour.ci_low) > 1.5 * (by_prompt.ci_high - by_prompt.ci_low)
    assert "over 40 clusters of units" in by_behaviour.method and by_behaviour.n_pairs == 160


def test_judge_error_shift_flags_a_judge_whose_errors_do_not_transport():
    """The judge misses 60% of the fine-tune's unsafe answers and 5% of the base's: the sensitivity shift
    (base minus fine-tune) is about +0.55 with an interval above 0; specificity does not move."""
    from judgekit.stats.transport import judge_error_shift

    rng = np.random.default_rng(0)
    n = 400
    truth = (rng.random(2 * n) < 0.4).astype(float)
    treated = np.repeat([True, False], n)
    miss = np.where(treated, 0.6, 0.05)
    verdict = np.where(truth == 1, (rng.random(2 * n) > miss).astype(float), (rng.random(2 * n) < 0.05).astype(float))
    sensitivity, specificity = judge_error_shift(truth, verdict, treated, np.tile(np.arange(n), 2))
    assert sensitivity.differs and sensitivity.shift[1] > 0.4 and sensitivity.shift[0] == pytest.approx(
        sensitivity.control[0] - sensitivity.treated[0])
    assert not specificity.differs


def test_judge_only_effect_warns_and_names_the_corrected_row(tmp_path):
    """j1 made to agree with the humans on the base and to call every fine-tune answer safe: its sensitivity shift
    is 1 and its judge-only paired effect warns and names the corrected row; j2 (the same error on both) does not."""
    from judgekit.analysis import StatsSettings, compute_stats
    from judgekit.store.study import load_study

    folder = _study_with_finetune(tmp_path / "s")
    labels = pd.read_csv(folder / "annotations.csv").set_index("item_id")["label"]
    judgments = pd.read_csv(folder / "judgments.csv")
    j1 = judgments["judge_id"] == "j1"
    base = judgments["item_id"].str.startswith("base-")
    judgments.loc[j1 & base, "label"] = judgments.loc[j1 & base, "item_id"].map(labels).fillna("safe")
    judgments.loc[j1 & ~base, "label"] = "safe"
    judgments.to_csv(folder / "judgments.csv", index=False)
    stats, _ = compute_stats(load_study(folder), StatsSettings(n_boot=50), version="test",
                             only=("judge_error_shift", "finetune_effect_paired"))
    shift = stats[(stats["statistic"] == "judge_error_shift") & stats["benchmark"].isna()]
    assert set(shift["subset_value"]) == {"sensitivity", "specificity"} and set(shift["judge_id"]) == {"j1", "j2"}
    sensitivity = shift.set_index(["judge_id", "subset_value"]).loc[("j1", "sensitivity")]
    assert sensitivity["estimate"] == 1.0 and sensitivity["ci_low"] > 0 and "fine-tune 0.000" in sensitivity["method"]
    pooled = stats[(stats["statistic"] == "finetune_effect_paired") & stats["benchmark"].isna()].set_index("judge_id")
    assert "errs differently on the fine-tune (sensitivity 1.00 base vs 0.00 fine-tune" in pooled.loc["j1", "warning"]
    assert "read finetune_effect_corrected" in pooled.loc["j1", "warning"]
    assert "read finetune_effect_corrected" not in pooled.loc["human_majority", "warning"]


def test_labels_placed_where_the_judge_is_least_sure_are_flagged():
    """The audit's case: the 100 items with P(unsafe) nearest 0.5 labelled, no inclusion probabilities; the
    corrected rate is biased and the design check says the labels were not drawn at random; a random draw is quiet."""
    from judgekit.stats.ppi import nonrandom_labelling_warning

    rng = np.random.default_rng(0)
    p = rng.beta(0.5, 0.5, 1000)
    uncertain = np.zeros(1000, dtype=bool)
    uncertain[np.argsort(np.abs(p - 0.5))[:100]] = True
    assert nonrandom_labelling_warning(p, uncertain).startswith("labels not drawn at random?")
    random_draw = np.zeros(1000, dtype=bool)
    random_draw[rng.choice(1000, 100, replace=False)] = True
    assert nonrandom_labelling_warning(p, random_draw) == ""


def test_active_labels_with_inverse_probability_weights_stay_unbiased_and_narrower():
    """Labels drawn with probability rising with the judge's uncertainty (half uniform), recorded: weighted by
    their inverse the estimate is unbiased and, with a calibrated judge, its interval narrower than a random draw
    of as many labels; with a judge that over-states P(unsafe) the same labels unweighted are biased."""
    errors = {"active": [], "random": [], "unweighted": []}
    widths = {"active": [], "random": []}
    for seed in range(60):
        rng = np.random.default_rng(seed)
        p = rng.beta(0.4, 0.6, 2000)
        truth = (rng.random(2000) < p).astype(float)
        judge = p if seed % 2 else np.sqrt(p)  # calibrated, or over-stating P(unsafe)
        uncertainty = np.sqrt(judge * (1 - judge))
        inclusion = np.minimum(1, 200 * (0.5 * uncertainty / uncertainty.sum() + 0.5 / 2000))
        drawn = rng.random(2000) < inclusion
        at_random = np.zeros(2000, dtype=bool)
        at_random[rng.choice(2000, drawn.sum(), replace=False)] = True
        clusters = np.arange(2000)
        for name, chosen, weights in (("active", drawn, inclusion), ("random", at_random, None),
                                      ("unweighted", drawn, None)):
            result = ppi_clustered(np.where(chosen, truth, np.nan), judge, clusters, inclusion=weights)
            if name == "unweighted" and seed % 2 == 0:
                errors[name].append(result.estimate - p.mean())
            elif name != "unweighted":
                errors[name].append(result.estimate - p.mean())
                if seed % 2:
                    widths[name].append(result.ci_high - result.ci_low)
    assert abs(np.mean(errors["active"])) < 0.006 and np.mean(widths["active"]) < 0.95 * np.mean(widths["random"])
    assert abs(np.mean(errors["unweighted"])) > 0.008 > abs(np.mean(errors["active"]))
    with pytest.raises(ValueError, match="inclusion"):
        ppi_clustered(np.where(drawn, truth, np.nan), judge, clusters, inclusion=np.zeros(2000))


def test_a_reason_is_cut_at_its_first_clause_outside_parentheses() -> None:
    """The specification curve's reason read 'only 0 units ... (need 10, or 2 independent units for the small-n
    interval (benchmark ...' with its parenthesis cut open at the ';' inside it."""
    from judgekit.outputs.finetune_figures import _first_clause

    warning = ("only 0 units answered by both models (need 10, or 2 independent units; units with a response: 4 "
               "treated, 7 control): no interval; see the report")
    assert _first_clause(warning) == ("only 0 units answered by both models (need 10, or 2 independent units; units "
                                      "with a response: 4 treated, 7 control)")
    assert _first_clause("no rater measures over-refusal; more") == "no rater measures over-refusal"
