"""Every statistic against an outside reference: sklearn, statsmodels, krippendorff, scipy,
and worked examples from the literature (source beside each number)."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau
from sklearn import metrics as skm
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa as sm_fleiss
from statsmodels.stats.proportion import proportion_confint

from judgekit.stats import agreement as ag
from judgekit.stats import calibration as cal
from judgekit.stats.classification import classification_metrics
from judgekit.stats.comparison import kendall_tau_b
from judgekit.stats.resampling import wilson_interval

MANY = settings(max_examples=220, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tables(n_raters: int | tuple[int, int], *, missing: bool, n_categories: int = 3):
    raters = st.integers(*n_raters) if isinstance(n_raters, tuple) else st.just(n_raters)
    value = st.integers(0, n_categories - 1).map(float)
    cell = st.one_of(value, st.just(np.nan)) if missing else value
    return raters.flatmap(
        lambda r: st.lists(st.lists(cell, min_size=r, max_size=r), min_size=2, max_size=40).map(np.array)
    )


# ---------------------------------------------------------------- Cohen's kappa


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@MANY
@given(tables(2, missing=True))
def test_cohen_kappa_matches_sklearn_with_missing_rows_dropped(ratings: np.ndarray) -> None:
    complete = ratings[~np.isnan(ratings).any(axis=1)]
    ours = ag.cohen_kappa(ratings)
    if len(complete) == 0 or len(np.unique(complete)) == 1:
        assert np.isnan(ours)  # undefined: no pairs, or p_e = 1
        return
    assert ours == pytest.approx(skm.cohen_kappa_score(complete[:, 0], complete[:, 1]), abs=1e-12)


@MANY
@given(tables(2, missing=False))
def test_cohen_kappa_matches_statsmodels(ratings: np.ndarray) -> None:
    assume(len(np.unique(ratings)) > 1)
    categories = np.unique(ratings)
    table = np.array([[np.sum((ratings[:, 0] == a) & (ratings[:, 1] == b)) for b in categories] for a in categories])
    assert ag.cohen_kappa(ratings) == pytest.approx(cohens_kappa(table, return_results=False), abs=1e-12)


# ---------------------------------------------------------------- Fleiss, Scott


@MANY
@given(tables((2, 6), missing=False))
def test_fleiss_kappa_matches_statsmodels(ratings: np.ndarray) -> None:
    assume(len(np.unique(ratings)) > 1)
    counts, _ = aggregate_raters(ratings.astype(int))
    assert ag.fleiss_kappa(ratings) == pytest.approx(sm_fleiss(counts, method="fleiss"), abs=1e-12)


@MANY
@given(tables(2, missing=False))
def test_scott_pi_equals_two_rater_fleiss(ratings: np.ndarray) -> None:
    assume(len(np.unique(ratings)) > 1)
    assert ag.scott_pi(ratings) == pytest.approx(ag.fleiss_kappa(ratings), abs=1e-12)


# ---------------------------------------------------------------- Krippendorff


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@MANY
@given(ratings=tables((2, 8), missing=True, n_categories=4))
def test_krippendorff_alpha_matches_the_krippendorff_package(ratings: np.ndarray, level: str) -> None:
    pairable = (~np.isnan(ratings)).sum(axis=1) >= 2
    assume(pairable.any() and len(np.unique(ratings[pairable][~np.isnan(ratings[pairable])])) > 1)
    reference = krippendorff.alpha(reliability_data=ratings.T, level_of_measurement=level)
    assert ag.krippendorff_alpha(ratings, level=level) == pytest.approx(reference, abs=1e-9)


def test_krippendorff_rejects_unknown_level() -> None:
    with pytest.raises(ValueError, match="must be one of \\('nominal', 'ordinal', 'interval'\\). Got 'nomimal'"):
        ag.krippendorff_alpha([[0, 1], [1, 1]], level="nomimal")


# ---------------------------------------------------------------- worked examples from the literature

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 observers x 12 units with missing
# values; the same data are Gwet (2014), Handbook of Inter-Rater Reliability, 4th ed., p. 120.
KRIPPENDORFF_2011 = np.array([
    [1, 1, NAN, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4],
    [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [NAN, 5, 5, 5], [NAN, NAN, 1, 1], [NAN, NAN, 3, NAN],
])


def test_krippendorff_2011_published_values() -> None:
    # Krippendorff (2011), p. 4-6: alpha nominal 0.743, ordinal 0.815, interval 0.849.
    assert round(ag.krippendorff_alpha(KRIPPENDORFF_2011, level="nominal"), 3) == 0.743
    assert round(ag.krippendorff_alpha(KRIPPENDORFF_2011, level="ordinal"), 3) == 0.815
    assert round(ag.krippendorff_alpha(KRIPPENDORFF_2011, level="interval"), 3) == 0.849


def test_gwet_handbook_four_raters_with_missing() -> None:
    # Gwet (2014), Handbook, 4th ed., p. 120 (as tested in irrCAC test/unit/irrCAC/raw/test_gwet.py and
    # test_fleiss.py): AC1 0.775 (pa 0.818, pe 0.190); generalised Fleiss kappa 0.761 (pe 0.239).
    assert round(ag.gwet_ac1(KRIPPENDORFF_2011), 3) == 0.775
    assert round(ag.percent_agreement(KRIPPENDORFF_2011), 3) == 0.818
    assert round(ag.fleiss_kappa(KRIPPENDORFF_2011), 3) == 0.761


def test_gwet_handbook_two_abstractors() -> None:
    # Gwet (2014), Handbook: 100 pregnancies classified by 2 abstractors into 3 types (irrCAC
    # datasets.table_cont3x3abstractors): AC1 = 0.849.
    table = np.array([[13, 0, 0], [0, 20, 7], [0, 4, 56]])
    pairs = np.array([[i, j] for i in range(3) for j in range(3) for _ in range(table[i, j])], dtype=float)
    assert round(ag.gwet_ac1(pairs), 3) == 0.849


def test_pabak_and_indices_cunningham_2009() -> None:
    # Cunningham (2009), SAS Global Forum paper 242-2009, Figure 2: table (95, 4 / 1, 0).
    # PABAK = 2 * 0.95 - 1 = 0.90, prevalence index (a - d)/n = 0.95, bias index (b - c)/n = 0.03,
    # while kappa is slightly negative (-0.016): the kappa paradox.
    pairs = np.array([[1, 1]] * 95 + [[1, 0]] * 4 + [[0, 1]] * 1, dtype=float)
    assert ag.pabak(pairs) == pytest.approx(0.90)
    assert ag.prevalence_index(pairs) == pytest.approx(0.95)
    assert ag.bias_index(pairs) == pytest.approx(0.03)
    assert round(ag.cohen_kappa(pairs), 3) == -0.016


# ---------------------------------------------------------------- judge vs reference


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@MANY
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=2, max_size=50))
def test_classification_metrics_match_sklearn(pairs: list[tuple[int, int]]) -> None:
    y_true, y_pred = np.array(pairs, dtype=float).T
    ours = classification_metrics(y_true, y_pred)
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    if (y_pred == 1).any():
        assert ours["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, zero_division=0))
    else:
        assert np.isnan(ours["precision"])
    if (y_true == 1).any():
        assert ours["recall"] == pytest.approx(skm.recall_score(y_true, y_pred))
    if (y_true == 1).any() or (y_pred == 1).any():
        assert ours["f1"] == pytest.approx(skm.f1_score(y_true, y_pred))
    if len(np.unique(y_true)) == 2:
        assert ours["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    if len(np.unique(y_true)) == 2 and len(np.unique(y_pred)) == 2:
        assert ours["mcc"] == pytest.approx(skm.matthews_corrcoef(y_true, y_pred))
        tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred).ravel()
        assert ours["fpr"] == pytest.approx(fp / (fp + tn)) and ours["fnr"] == pytest.approx(fn / (fn + tp))


# ---------------------------------------------------------------- calibration and ranking


probabilities = st.lists(
    st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.05, 0.3, 0.5, 0.5, 0.7, 0.93, 1.0])),  # ties on purpose
    min_size=3, max_size=60,
)


@MANY
@given(probabilities)
def test_brier_log_loss_auroc_auprc_match_sklearn(pairs: list[tuple[int, float]]) -> None:
    y, p = np.array(pairs, dtype=float).T
    assert cal.brier_score(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)
    assert cal.log_loss(y, p) == pytest.approx(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]), abs=1e-9)
    if len(np.unique(y)) == 2:
        assert cal.auroc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
        assert cal.auprc(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)


def test_reliability_curve_matches_sklearn_on_non_empty_bins() -> None:
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(0)
    p = rng.beta(0.5, 0.5, 2000)
    y = (rng.random(2000) < p**1.3).astype(float)
    curve = cal.reliability_curve(y, p, n_bins=10)
    frac, mean = calibration_curve(y, p, n_bins=10, strategy="uniform")
    nonempty = curve[curve["count"] > 0]
    np.testing.assert_allclose(nonempty["frac_unsafe"], frac, atol=1e-12)
    np.testing.assert_allclose(nonempty["mean_p"], mean, atol=1e-12)
    # ECE (L1) is the count-weighted gap of those same bins.
    weights = nonempty["count"] / nonempty["count"].sum()
    assert cal.expected_calibration_error(y, p) == pytest.approx(float((weights * (nonempty["frac_unsafe"] - nonempty["mean_p"]).abs()).sum()))


def test_empty_bins_are_kept_and_tied_probabilities_share_a_bin() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.2, 0.2, 0.2, 0.2, 0.9, 0.9])
    curve = cal.reliability_curve(y, p, n_bins=5)
    assert curve["count"].tolist() == [0, 4, 0, 0, 2]
    assert curve["frac_unsafe"].isna().tolist() == [True, False, True, True, False]
    edges = cal.bin_edges(p, n_bins=4, strategy="quantile")  # quantiles coincide at 0.2: merged
    assert len(edges) - 1 < 4
    assert len(set(cal.bin_index(p[p == 0.2], edges))) == 1


def test_debiased_l2_ece_is_unbiased_for_a_calibrated_judge() -> None:
    """Over 300 calibrated samples of 500 items, the plain squared L2 ECE averages about
    (bins x 0.2) / n = 0.004 above zero; the debiased estimate averages zero."""
    rng = np.random.default_rng(1)
    plain, debiased = [], []
    for _ in range(300):
        p = rng.random(500)
        y = (rng.random(500) < p).astype(float)
        plain.append(cal.expected_calibration_error(y, p, norm="l2") ** 2)
        debiased.append(cal.expected_calibration_error(y, p, norm="l2", debiased=True))
    assert np.mean(plain) > 0.003
    assert abs(np.mean(debiased)) < 0.0005
    with pytest.raises(ValueError, match="needs norm='l2'"):
        cal.expected_calibration_error(y, p, debiased=True)


def test_brier_decomposition_is_exact_when_bins_hold_one_probability() -> None:
    y = np.array([0, 1, 0, 1, 1, 1, 0, 0])
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.8, 0.8, 0.8, 0.8])
    parts = cal.brier_decomposition(y, p, n_bins=10)
    assert parts["within_bin_variance"] == pytest.approx(0.0, abs=1e-12)
    assert parts["within_bin_covariance"] == pytest.approx(0.0, abs=1e-12)
    assert parts["brier"] == pytest.approx(parts["reliability"] - parts["resolution"] + parts["uncertainty"])


def test_recalibration_is_held_out_and_fixes_an_overconfident_judge() -> None:
    rng = np.random.default_rng(2)
    truth = rng.random(3000)
    y = (rng.random(3000) < truth).astype(float)
    logit = np.log(truth / (1 - truth))
    overconfident = 1 / (1 + np.exp(-3 * logit))
    groups = np.arange(3000) // 10
    before = cal.expected_calibration_error(y, overconfident)
    for method in ("platt", "temperature", "isotonic"):
        after = cal.expected_calibration_error(y, cal.recalibrate_cv(y, overconfident, method=method, groups=groups, rng=0))
        assert after < before / 2, method


def test_kendall_tau_b_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        x, z = rng.integers(0, 4, 7).astype(float), rng.integers(0, 4, 7).astype(float)
        if len(np.unique(x)) > 1 and len(np.unique(z)) > 1:
            assert float(kendall_tau_b(x, z)) == pytest.approx(kendalltau(x, z, variant="b").statistic, abs=1e-12)


@given(st.integers(0, 300), st.integers(1, 300))
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    assume(k <= n)
    low, high = wilson_interval(k, n)
    ref_low, ref_high = proportion_confint(k, n, method="wilson")
    assert (float(low), float(high)) == pytest.approx((ref_low, ref_high), abs=1e-12)


def test_equal_width_bins_put_decimal_edges_in_the_bin_they_open() -> None:
    """0.3 belongs to [0.3, 0.4): with np.linspace edges it fell into [0.2, 0.3) and this ECE read 0.0."""
    y = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0] + [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    p = [0.2] * 10 + [0.3] * 10
    assert cal.expected_calibration_error(y, p, n_bins=10) == pytest.approx(0.1)
    edges = cal.bin_edges(p, n_bins=10)
    for k, value in enumerate([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]):
        assert cal.bin_index(np.array([value]), edges)[0] == k
    assert cal.reliability_curve(y, p, n_bins=10)["count"].tolist()[2:4] == [10, 10]


def test_brier_decomposition_is_exact_and_its_variance_term_is_not_negative() -> None:
    rng = np.random.default_rng(8)
    for _ in range(50):
        p = rng.random(200)
        y = (rng.random(200) < p**2).astype(float)
        parts = cal.brier_decomposition(y, p, n_bins=5)
        assert parts["within_bin_variance"] >= 0
        rebuilt = (parts["reliability"] - parts["resolution"] + parts["uncertainty"]
                   + parts["within_bin_variance"] - 2 * parts["within_bin_covariance"])
        assert rebuilt == pytest.approx(parts["brier"], abs=1e-12)
        assert parts["brier"] == pytest.approx(skm.brier_score_loss(y, p))


def test_pabak_of_one_category_is_defined_for_binary_codes() -> None:
    assert ag.pabak([[1, 1]] * 3) == 1.0
    assert ag.pabak([[0, 0], [0, 0]]) == 1.0
    assert np.isnan(ag.pabak([[3, 3]] * 3))  # codes outside {0, 1}: the number of categories is unknown


# ---------------------------------------------------------------- ranking histograms, Brier terms, accuracy gap, aliasing


def test_ranking_histograms_of_a_cluster_resample_match_sklearn_with_weights() -> None:
    """One resample's level histograms (cluster multiplicities summed into the sparse one-hot columns) give
    sklearn's roc_auc_score and average_precision_score with the multiplicities as sample weights."""
    from judgekit.stats.resampling import cluster_sums, multiplicities

    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(200):
        n = int(rng.integers(6, 90))
        p = rng.choice([0.0, 0.1, 0.3, 0.3, 0.5, 0.8, 1.0], n)  # ties on purpose
        y = (rng.random(n) < 0.15 + 0.7 * p).astype(float)
        clusters = rng.integers(0, 12, n)
        item_sums = cal.ranking_item_sums(y, p, cal.score_levels(p))
        assert item_sums.nnz == n  # one value per item, whatever the number of levels
        weights = multiplicities(rng, len(np.unique(clusters)), 1)[0].astype(float)
        totals = weights @ cluster_sums(item_sums, clusters)
        item_weights = weights[np.searchsorted(np.unique(clusters), clusters)]
        if len(np.unique(y[item_weights > 0])) < 2:
            continue
        assert float(cal.auroc_from_sums(totals)) == pytest.approx(skm.roc_auc_score(y, p, sample_weight=item_weights), abs=1e-12)
        assert float(cal.auprc_from_sums(totals)) == pytest.approx(
            skm.average_precision_score(y, p, sample_weight=item_weights), abs=1e-12)
        checked += 1
    assert checked > 150


def test_ranking_gradients_match_central_differences() -> None:
    from judgekit.stats.intervals import numeric_gradient

    rng = np.random.default_rng(12)
    for _ in range(50):
        p = np.round(rng.random(120), 1)
        y = (rng.random(120) < p).astype(float)
        totals = np.asarray(cal.ranking_item_sums(y, p, cal.score_levels(p)).sum(axis=0), dtype=float)
        occupied = totals > 0  # only filled columns ever meet a cluster's sums
        for from_sums, gradient in ((cal.auroc_from_sums, cal.auroc_gradient), (cal.auprc_from_sums, cal.auprc_gradient)):
            np.testing.assert_allclose(gradient(totals)[occupied], numeric_gradient(from_sums, totals)[occupied], atol=1e-6)


def test_brier_decomposition_by_hand() -> None:
    # Bins [0, .5) and [.5, 1]: p {.1, .3} and {.6, .8}, each bin with y {0, 1}: bin means p .2/.7, y .5/.5, base rate .5.
    # reliability (2 (.2-.5)^2 + 2 (.7-.5)^2) / 4 = .065; resolution 0; uncertainty .25;
    # within-bin variance mean (p - bin mean)^2 = .01; covariance mean (.1)(.5) = .05; Brier (.01+.49+.36+.04)/4 = .225
    # = .065 - 0 + .25 + .01 - 2 x .05.
    parts = cal.brier_decomposition([0, 1, 0, 1], [0.1, 0.3, 0.6, 0.8], n_bins=2)
    expected = {"brier": 0.225, "reliability": 0.065, "resolution": 0.0, "uncertainty": 0.25,
                "within_bin_variance": 0.01, "within_bin_covariance": 0.05}
    assert parts == pytest.approx(expected, abs=1e-12)


def test_accuracy_gap_by_hand() -> None:
    from judgekit.stats.classification import accuracy_gap

    y_true = [1, 0, 1, 0, 1, 0, 1, np.nan]
    y_pred = [1, 0, 0, 0, 1, 1, 0, 1]
    first = [True, True, True, True, False, False, False, False]
    second = [False, False, False, False, True, True, True, True]
    # first: 3 of 4 right (0.75); second: 1 of 3 scored right (the last item has no reference): 0.75 - 1/3.
    assert accuracy_gap(y_true, y_pred, first=first, second=second) == pytest.approx(0.75 - 1 / 3)
    with pytest.raises(ValueError, match="must not share items"):
        accuracy_gap(y_true, y_pred, first=first, second=first)


def test_an_aliased_regression_term_is_dropped_and_named() -> None:
    """Length that only tells the two response texts apart duplicates the refusal marker: it has no coefficient.
    Before, statsmodels returned an arbitrary one after 100 non-converging IRLS iterations."""
    import pandas as pd
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    from judgekit.stats.bias import error_regression

    rng = np.random.default_rng(13)
    refusal = rng.random(600) < 0.5
    frame = pd.DataFrame({"refusal_marker": np.where(refusal, "yes", "no"), "log_length": np.where(refusal, 3.0, 5.0),
                          "cluster": np.arange(600) // 3, "error": (rng.random(600) < np.where(refusal, 0.1, 0.3)).astype(float)})
    table = error_regression(frame, formula="error ~ C(refusal_marker) + log_length", cluster="cluster").set_index("term")
    assert np.isnan(table.loc["log_length", "odds_ratio"]) and table.loc["log_length", "note"].startswith("aliased")
    reference = smf.glm("error ~ C(refusal_marker)", data=frame, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": frame["cluster"].to_numpy()})
    assert table.loc["C(refusal_marker)[T.yes]", "odds_ratio"] == pytest.approx(np.exp(reference.params["C(refusal_marker)[T.yes]"]))
    assert table.loc["C(refusal_marker)[T.yes]", "p_value"] == pytest.approx(reference.pvalues["C(refusal_marker)[T.yes]"])


def test_noise_floor_draws_in_chunks_are_the_ece_of_each_simulated_label_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Label sets are drawn a few at a time (bounded memory); each draw is still the ECE of Bernoulli(p) labels
    from one (n_sim, n) stream of the generator."""
    p = np.random.default_rng(14).random(300)
    monkeypatch.setattr(cal, "_DRAW_ELEMENTS", 700)  # two label sets per chunk, and a last chunk of one
    draws = cal.ece_noise_floor_draws(p, n_sim=5, rng=4)
    labels = (np.random.default_rng(4).random((5, 300)) < p).astype(float)
    expected = [cal.expected_calibration_error(y, p) for y in labels]
    np.testing.assert_allclose(draws, expected, atol=1e-12)
