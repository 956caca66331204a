"""Agreement on graded scores (alpha interval/ordinal, weighted kappa, Spearman) against krippendorff, sklearn, scipy."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score

from judgekit.registry import STATISTICS
from judgekit.stats import agreement as ag
from judgekit.stats.resampling import bootstrap_ci, cluster_sums

MANY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCALE = np.arange(4.0)  # a 0-3 judge scale


def score_tables(n_raters, *, missing: bool, values=st.integers(0, 3).map(float)):
    raters = st.integers(*n_raters) if isinstance(n_raters, tuple) else st.just(n_raters)
    cell = st.one_of(values, st.just(np.nan)) if missing else values
    return raters.flatmap(lambda r: st.lists(st.lists(cell, min_size=r, max_size=r), min_size=2, max_size=40).map(np.array))


def _reference_alpha(ratings, **options) -> float:
    try:
        return krippendorff.alpha(reliability_data=ratings.T, **options)
    except ValueError:  # the package refuses data with one value or no pairable unit; ours says nan
        return np.nan


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@MANY
@given(score_tables((2, 5), missing=True, values=st.floats(-50, 100, allow_nan=False).map(lambda v: round(v, 2))))
def test_interval_alpha_matches_krippendorff_on_any_values(ratings):
    reference = _reference_alpha(ratings, level_of_measurement="interval")
    ours = ag.krippendorff_alpha_interval(ratings)
    assert (np.isnan(ours) and not np.isfinite(reference)) or ours == pytest.approx(reference, abs=1e-9)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@MANY
@given(score_tables((2, 5), missing=True))
def test_ordinal_alpha_with_a_value_domain_matches_krippendorff(ratings):
    reference = _reference_alpha(ratings, level_of_measurement="ordinal", value_domain=SCALE.tolist())
    ours = ag.krippendorff_alpha_ordinal(ratings, values=SCALE)
    assert (np.isnan(ours) and not np.isfinite(reference)) or ours == pytest.approx(reference, abs=1e-9)


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
@MANY
@given(score_tables(2, missing=True, values=st.integers(1, 10).map(float)))
def test_weighted_kappa_matches_sklearn_on_a_declared_1_to_10_scale(ratings):
    both = ratings[~np.isnan(ratings).any(axis=1)]
    assume(len(both) >= 1)
    domain = np.arange(1.0, 11.0)
    for weights, ours in (("linear", ag.weighted_kappa_linear), ("quadratic", ag.weighted_kappa_quadratic)):
        reference = cohen_kappa_score(both[:, 0], both[:, 1], labels=domain, weights=weights)
        value = ours(ratings, values=domain)
        assert (np.isnan(value) and not np.isfinite(reference)) or value == pytest.approx(reference, abs=1e-9)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@MANY
@given(score_tables(2, missing=True, values=st.one_of(st.integers(0, 3).map(float), st.floats(0, 100, allow_nan=False))))
def test_spearman_matches_scipy_with_ties(ratings):
    both = ratings[~np.isnan(ratings).any(axis=1)]
    ours = ag.spearman_rho(ratings)
    constant = len(both) < 2 or np.ptp(both[:, 0]) == 0 or np.ptp(both[:, 1]) == 0
    if constant:
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(spearmanr(both[:, 0], both[:, 1]).statistic, abs=1e-9)


def test_a_bootstrap_resample_is_the_statistic_of_the_resampled_items():
    """from_sums on resampled cluster sums equals the plain function on the duplicated items: Spearman's ranks,
    kappa's margins and alpha's expected disagreement are recomputed in every resample, never frozen."""
    rng = np.random.default_rng(3)
    ratings = rng.integers(0, 4, size=(60, 2)).astype(float)
    ratings[rng.random(60) < 0.2, 1] = np.nan
    clusters = np.repeat(np.arange(20), 3)
    draw = rng.integers(0, 20, size=20)
    weights = np.bincount(draw, minlength=20).astype(float)
    resampled = np.concatenate([ratings[clusters == c] for c in draw])
    table = cluster_sums(ag.pair_table_item_sums(ratings[:, 0], ratings[:, 1], SCALE, SCALE), clusters)
    total = weights @ table
    rho = ag.spearman_rho_from_sums(total, n_first=4, n_second=4)
    assert rho == pytest.approx(ag.spearman_rho(resampled), abs=1e-12)
    assert ag.weighted_kappa_from_sums(total, values=SCALE, power=1) == pytest.approx(
        ag.weighted_kappa_linear(resampled, values=SCALE), abs=1e-12)
    interval = weights @ cluster_sums(ag.interval_alpha_item_sums(ratings), clusters)
    assert ag.krippendorff_alpha_interval_from_sums(interval) == pytest.approx(
        ag.krippendorff_alpha_interval(resampled), abs=1e-12)
    result = bootstrap_ci(table, lambda s: ag.weighted_kappa_from_sums(s, values=SCALE, power=1), n_boot=200, rng=0)
    assert result.low < result.estimate < result.high


def test_a_score_outside_the_declared_domain_is_refused():
    with pytest.raises(ValueError, match="not in"):
        ag.weighted_kappa_linear([[0, 4], [1, 1]], values=SCALE)
    with pytest.raises(ValueError, match="not in"):
        ag.krippendorff_alpha_ordinal([[0, 4], [1, 1]], values=SCALE)


def test_graded_statistics_are_registered():
    for name in ("krippendorff_alpha_interval", "krippendorff_alpha_ordinal", "weighted_kappa_linear",
                 "weighted_kappa_quadratic", "spearman_rho"):
        assert STATISTICS.get(name).load() is getattr(ag, name)
