"""Statistics against outside references (sklearn) and properties of the bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from judgekit.stats.agreement import (
    binary_agreement_sums,
    cohen_kappa,
    cohen_kappa_from_sums,
    harmful_rate,
    percent_agreement,
    percent_agreement_from_sums,
)
from judgekit.stats.resampling import bootstrap_ci, cluster_sums

pairs = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=2, max_size=60)


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn warns on single-label inputs; compared anyway
@settings(max_examples=250, deadline=None)
@given(pairs)
def test_cohen_kappa_matches_sklearn(data: list[tuple[int, int]]) -> None:
    ratings = np.array(data, dtype=float)
    ours = cohen_kappa(ratings)
    theirs = cohen_kappa_score(ratings[:, 0], ratings[:, 1])
    if np.isnan(ours):
        # Both raters constant and equal: kappa is undefined (sklearn returns nan or 0 by version).
        assert len(np.unique(ratings)) == 1
    else:
        assert ours == pytest.approx(theirs, abs=1e-12)


@settings(max_examples=250, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=2, max_size=60))
def test_binary_sums_forms_equal_the_direct_forms(data: list[tuple[int, int]]) -> None:
    ratings = np.array(data, dtype=float)
    totals = binary_agreement_sums(ratings[:, 0], ratings[:, 1]).sum(axis=0)
    assert percent_agreement_from_sums(totals) == pytest.approx(percent_agreement(ratings))
    direct = cohen_kappa(ratings, labels=[0, 1])
    from_sums = cohen_kappa_from_sums(totals)
    assert (np.isnan(direct) and np.isnan(from_sums)) or from_sums == pytest.approx(direct, abs=1e-12)


def test_missing_ratings_are_left_out() -> None:
    ratings = np.array([[1, 1], [0, 1], [np.nan, 0], [0, 0]])
    assert percent_agreement(ratings) == pytest.approx(2 / 3)
    assert cohen_kappa(ratings) == pytest.approx(cohen_kappa_score([1, 0, 0], [1, 1, 0]))
    totals = binary_agreement_sums(ratings[:, 0], ratings[:, 1]).sum(axis=0)
    assert totals[0] == 3
    assert harmful_rate([1, np.nan, 0, 0]) == pytest.approx(1 / 3)


def test_percent_agreement_many_raters_is_pairwise() -> None:
    # Item 1: all agree (1.0); item 2: one of three pairs agree (1/3) -> mean 2/3.
    assert percent_agreement([[1, 1, 1], [1, 0, 0]]) == pytest.approx((1 + 1 / 3) / 2)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="'ratings' parameter must have 2 columns"):
        cohen_kappa(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="'n_boot'"):
        bootstrap_ci(np.ones((3, 2)), lambda s: s[..., 0], n_boot=0)
    with pytest.raises(ValueError, match="'level'"):
        bootstrap_ci(np.ones((3, 2)), lambda s: s[..., 0], level=1.5)


def test_bootstrap_is_seeded_and_seed_zero_is_a_seed() -> None:
    rng = np.random.default_rng(1)
    sums = cluster_sums(np.column_stack([np.ones(200), rng.integers(0, 2, 200)]), rng.integers(0, 40, 200))
    rate = lambda s: s[..., 1] / s[..., 0]  # noqa: E731
    assert bootstrap_ci(sums, rate, rng=0) == bootstrap_ci(sums, rate, rng=0)
    assert bootstrap_ci(sums, rate, rng=0) != bootstrap_ci(sums, rate, rng=1)


def test_single_cluster_has_no_interval() -> None:
    estimate, low, high = bootstrap_ci(np.array([[10.0, 3.0]]), lambda s: s[..., 1] / s[..., 0])
    assert estimate == pytest.approx(0.3) and np.isnan(low) and np.isnan(high)


def test_cluster_bootstrap_interval_covers_the_truth_about_95_percent() -> None:
    """Clustered binary data with known rate 0.3: the percentile interval covers it in ~95% of studies."""
    rng = np.random.default_rng(12345)
    truth, n_clusters, per_cluster, n_studies = 0.3, 60, 5, 400
    covered = 0
    for _ in range(n_studies):
        cluster_p = rng.beta(3, 7, size=n_clusters)  # cluster rates with mean 3 / (3 + 7) = 0.3
        labels = rng.random((n_clusters, per_cluster)) < cluster_p[:, None]
        item_sums = np.column_stack([np.ones(labels.size), labels.ravel()])
        sums = cluster_sums(item_sums, np.repeat(np.arange(n_clusters), per_cluster))
        _, low, high = bootstrap_ci(sums, lambda s: s[..., 1] / s[..., 0], n_boot=500, rng=rng)
        covered += low <= truth <= high
    assert abs(covered / n_studies - 0.95) <= 0.03
