"""Properties every statistic must have, checked over all of them (sklearn's test_common pattern)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import judgekit.stats as stats
from judgekit.stats import agreement as ag
from judgekit.stats import calibration as cal
from judgekit.stats import classification as cl

# Rater-agreement statistics: ratings (n_items, n_raters) -> float.
AGREEMENT = {
    "percent_agreement": ag.percent_agreement,
    "cohen_kappa": ag.cohen_kappa,
    "scott_pi": ag.scott_pi,
    "fleiss_kappa": ag.fleiss_kappa,
    "krippendorff_alpha": ag.krippendorff_alpha,
    "krippendorff_alpha_ordinal": ag.krippendorff_alpha_ordinal,
    "krippendorff_alpha_interval": ag.krippendorff_alpha_interval,
    "weighted_kappa_linear": ag.weighted_kappa_linear,
    "weighted_kappa_quadratic": ag.weighted_kappa_quadratic,
    "spearman_rho": ag.spearman_rho,
    "gwet_ac1": partial(ag.gwet_ac1, labels=[0, 1]),
    "pabak": partial(ag.pabak, labels=[0, 1]),
    "prevalence_index": ag.prevalence_index,
    "bias_index": ag.bias_index,
}
TWO_RATER_ONLY = {"cohen_kappa", "scott_pi", "pabak", "prevalence_index", "bias_index", "weighted_kappa_linear",
                  "weighted_kappa_quadratic", "spearman_rho"}
NOT_RATER_SYMMETRIC = {"bias_index"}  # changes sign when the raters swap
NOT_LABEL_SYMMETRIC = {"prevalence_index", "bias_index", "spearman_rho"}  # they change sign when 0 and 1 swap

# Statistics of (y_true, y_pred or p_unsafe) -> float.
AGAINST_REFERENCE = {
    "classification_metrics": lambda y, p: cl.classification_metrics(y, (p > 0.5).astype(float))["mcc"],
    "harmful_rate": lambda y, p: cl.harmful_rate((p > 0.5).astype(float)),
    "soft_agreement": lambda y, p: cl.soft_agreement((p > 0.5).astype(float), y),
    "confusion_matrix": lambda y, p: cl.confusion_matrix(y, (p > 0.5).astype(float))["tp"],
    "expected_calibration_error": cal.expected_calibration_error,
    "maximum_calibration_error": cal.maximum_calibration_error,
    "brier_score": cal.brier_score,
    "brier_decomposition": lambda y, p: cal.brier_decomposition(y, p)["reliability"],
    "log_loss": cal.log_loss,
    "reliability_curve": lambda y, p: float(cal.reliability_curve(y, p)["frac_unsafe"].sum()),
}
# Machinery rather than statistics; tested in their own files.
NOT_STATISTICS = {"bootstrap_ci", "cluster_sums", "wilson_interval", "item_agreement", "pairwise_cohen_kappa"}


def test_no_statistic_is_left_out() -> None:
    covered = set(AGREEMENT) | set(AGAINST_REFERENCE) | NOT_STATISTICS
    assert set(stats.__all__) <= covered, set(stats.__all__) - covered


def random_ratings(rng: np.random.Generator, n_raters: int) -> np.ndarray:
    truth = rng.random(60) < 0.35
    ratings = np.where(rng.random((60, n_raters)) < 0.8, truth[:, None], ~truth[:, None]).astype(float)
    ratings[rng.random(ratings.shape) < 0.1] = np.nan
    return ratings


def same(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("name", sorted(AGREEMENT))
def test_item_permutation_invariance(name: str) -> None:
    rng = np.random.default_rng(10)
    for _ in range(20):
        ratings = random_ratings(rng, 2 if name in TWO_RATER_ONLY else 4)
        assert same(AGREEMENT[name](ratings), AGREEMENT[name](ratings[rng.permutation(len(ratings))]))


@pytest.mark.parametrize("name", sorted(set(AGREEMENT) - NOT_RATER_SYMMETRIC))
def test_rater_order_invariance(name: str) -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        ratings = random_ratings(rng, 2 if name in TWO_RATER_ONLY else 4)
        assert same(AGREEMENT[name](ratings), AGREEMENT[name](ratings[:, ::-1]))


def test_bias_index_flips_sign_with_rater_order_and_prevalence_with_labels() -> None:
    ratings = random_ratings(np.random.default_rng(12), 2)
    assert ag.bias_index(ratings[:, ::-1]) == pytest.approx(-ag.bias_index(ratings))
    assert ag.prevalence_index(1 - ratings) == pytest.approx(-ag.prevalence_index(ratings))
    assert ag.bias_index(1 - ratings) == pytest.approx(-ag.bias_index(ratings))


@pytest.mark.parametrize("name", sorted(set(AGREEMENT) - NOT_LABEL_SYMMETRIC))
def test_label_relabelling_invariance(name: str) -> None:
    rng = np.random.default_rng(13)
    for _ in range(20):
        ratings = random_ratings(rng, 2 if name in TWO_RATER_ONLY else 4)
        assert same(AGREEMENT[name](ratings), AGREEMENT[name](1 - ratings))


@pytest.mark.parametrize("name", sorted(AGREEMENT))
def test_perfect_agreement_is_maximal(name: str) -> None:
    if name in ("prevalence_index", "bias_index"):
        return
    column = np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=float)
    ratings = np.column_stack([column] * (2 if name in TWO_RATER_ONLY else 3))
    assert AGREEMENT[name](ratings) == pytest.approx(1.0)


@pytest.mark.parametrize("name", sorted(AGAINST_REFERENCE))
def test_reference_statistics_are_item_order_invariant(name: str) -> None:
    rng = np.random.default_rng(14)
    p = rng.random(80)
    y = (rng.random(80) < p).astype(float)
    order = rng.permutation(80)
    assert same(AGAINST_REFERENCE[name](y, p), AGAINST_REFERENCE[name](y[order], p[order]))


def test_missing_pairs_are_dropped_not_coerced() -> None:
    y = np.array([1, 0, 1, np.nan, 0])
    p = np.array([0.9, 0.2, np.nan, 0.7, 0.1])
    assert cal.brier_score(y, p) == pytest.approx(np.mean([(0.9 - 1) ** 2, 0.2**2, 0.1**2]))
    assert cl.confusion_matrix(y, np.array([1, 0, np.nan, 1, 0]))["n"] == 3


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="'ratings' parameter must have 2 columns"):
        ag.cohen_kappa(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="'ratings' parameter must have shape"):
        ag.fleiss_kappa([1, 2, 3])
    with pytest.raises(ValueError, match="not in 'labels'"):
        ag.gwet_ac1([[0, 2], [1, 1]], labels=[0, 1])
    with pytest.raises(ValueError, match="'strategy' parameter"):
        cal.expected_calibration_error([0, 1], [0.2, 0.8], strategy="kmeans")
    with pytest.raises(ValueError, match="p_unsafe must lie in"):
        cal.brier_score([0, 1], [0.2, 1.8])
    with pytest.raises(ValueError, match="coded 0"):
        cl.classification_metrics([0, 2], [0, 1])
