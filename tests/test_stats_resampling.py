"""Cluster bootstrap: correctness of the shortcut, coverage, BCa and its fallback."""

from __future__ import annotations

import numpy as np
import pytest

from judgekit.stats import agreement as ag
from judgekit.stats.resampling import bootstrap_ci, cluster_sums, multiplicities


def rate(s: np.ndarray) -> np.ndarray:
    return s[..., 1] / s[..., 0]


def test_summed_statistics_equal_explicit_resampling() -> None:
    """The multiplicity shortcut gives exactly the kappa of the explicitly rebuilt resample."""
    rng = np.random.default_rng(0)
    clusters = np.array([f"b{k:02d}" for k in rng.integers(0, 30, 300)])
    a, b = rng.integers(0, 2, 300).astype(float), rng.integers(0, 2, 300).astype(float)
    sums = cluster_sums(ag.two_rater_item_sums(a, b, np.array([0.0, 1.0])), clusters)
    result = bootstrap_ci(sums, ag.cohen_kappa_from_sums, n_boot=50, rng=7)
    names = np.unique(clusters)
    for replicate, counts in zip(result.replicates, multiplicities(np.random.default_rng(7), len(names), 50)):
        index = np.concatenate([np.repeat(np.flatnonzero(clusters == name), k) for name, k in zip(names, counts) if k])
        assert replicate == pytest.approx(ag.cohen_kappa(np.column_stack([a[index], b[index]]), labels=[0, 1]))


def test_multiplicities_are_uniform_multinomial() -> None:
    counts = multiplicities(np.random.default_rng(4), 5, 20000)
    assert (counts.sum(axis=1) == 5).all()
    # Multinomial(5, 1/5): each count has mean 1 and variance 5 * 0.2 * 0.8 = 0.8.
    np.testing.assert_allclose(counts.mean(axis=0), 1.0, atol=0.03)
    np.testing.assert_allclose(counts.var(axis=0), 0.8, atol=0.05)


def test_seeded_and_seed_zero_is_a_seed() -> None:
    rng = np.random.default_rng(1)
    sums = cluster_sums(np.column_stack([np.ones(200), rng.integers(0, 2, 200)]), rng.integers(0, 40, 200))
    assert bootstrap_ci(sums, rate, rng=0).scalar() == bootstrap_ci(sums, rate, rng=0).scalar()
    assert bootstrap_ci(sums, rate, rng=0).scalar() != bootstrap_ci(sums, rate, rng=1).scalar()


def test_multi_output_statistics_share_resamples() -> None:
    rng = np.random.default_rng(2)
    sums = cluster_sums(np.column_stack([np.ones(100), rng.integers(0, 2, 100)]), np.arange(100) % 20)
    both = bootstrap_ci(sums, lambda s: np.stack([rate(s), 1 - rate(s)], axis=-1), n_boot=200, rng=3)
    np.testing.assert_allclose(both.replicates[:, 0], 1 - both.replicates[:, 1])


def test_single_cluster_has_no_interval() -> None:
    result = bootstrap_ci(np.array([[10.0, 3.0]]), rate)
    assert result.estimate == pytest.approx(0.3) and np.isnan(result.low) and "fewer than 2" in result.method


def test_bca_falls_back_to_percentile_and_says_so() -> None:
    constant = cluster_sums(np.column_stack([np.ones(50), np.ones(50)]), np.arange(50) % 10)
    result = bootstrap_ci(constant, rate, method="bca", rng=0)
    assert result.method == "percentile (BCa undefined: constant statistic across resamples)"
    assert result.low == result.high == 1.0


def test_bca_is_decided_per_output_with_the_true_reason() -> None:
    """One output undefined in some resamples falls back alone; its neighbour keeps BCa."""
    rng = np.random.default_rng(5)
    items = np.column_stack([np.ones(60), rng.integers(0, 2, 60), np.zeros(60)])
    items[0, 2] = 1.0  # the third column is non-zero in one cluster only: some resamples miss it
    sums = cluster_sums(items, np.arange(60) % 15)
    both = lambda s: np.stack([rate(s), s[..., 2] / s[..., 2] * rate(s)], axis=-1)  # noqa: E731
    with np.errstate(invalid="ignore"):
        result = bootstrap_ci(sums, both, n_boot=300, method="bca", rng=1)
    assert result.methods[0] == "bca"
    assert result.methods[1].startswith("percentile (BCa undefined: statistic undefined in ")
    assert result.methods[1].endswith(" of 300 resamples)")
    alone = bootstrap_ci(sums, rate, n_boot=300, method="bca", rng=1)
    assert (alone.low, alone.high) == (result.low[0], result.high[0])


def test_validation() -> None:
    with pytest.raises(ValueError, match="'n_boot'"):
        bootstrap_ci(np.ones((3, 2)), rate, n_boot=0)
    with pytest.raises(ValueError, match="'level'"):
        bootstrap_ci(np.ones((3, 2)), rate, level=1.5)
    with pytest.raises(ValueError, match="'method'"):
        bootstrap_ci(np.ones((3, 2)), rate, method="studentized")


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_interval_covers_the_truth_95_percent_of_the_time(method: str) -> None:
    """Clustered binary data with known rate 0.3 (cluster rates ~ Beta(3, 7)): over 400 simulated
    studies of 60 clusters x 5 items, the 95% interval covers 0.3 in 92-98% of them."""
    rng = np.random.default_rng(12345)
    truth, n_clusters, per_cluster, n_studies = 0.3, 60, 5, 400
    covered = 0
    for _ in range(n_studies):
        labels = rng.random((n_clusters, per_cluster)) < rng.beta(3, 7, size=n_clusters)[:, None]
        sums = cluster_sums(np.column_stack([np.ones(labels.size), labels.ravel()]), np.repeat(np.arange(n_clusters), per_cluster))
        result = bootstrap_ci(sums, rate, n_boot=500, method=method, rng=rng)
        covered += result.low <= truth <= result.high
    assert abs(covered / n_studies - 0.95) <= 0.03, covered / n_studies


def test_kappa_interval_covers_the_truth() -> None:
    """Two raters who each copy a latent label with 85% accuracy (prevalence 0.3): the population kappa
    is known in closed form; the cluster-bootstrap BCa interval covers it in 92-98% of 300 studies."""
    prevalence, accuracy = 0.3, 0.85
    p1 = prevalence * accuracy + (1 - prevalence) * (1 - accuracy)
    p_o = accuracy**2 + (1 - accuracy) ** 2
    p_e = p1**2 + (1 - p1) ** 2
    truth = (p_o - p_e) / (1 - p_e)
    rng = np.random.default_rng(99)
    covered = 0
    for _ in range(300):
        latent = rng.random(400) < prevalence
        a = np.where(rng.random(400) < accuracy, latent, ~latent).astype(float)
        b = np.where(rng.random(400) < accuracy, latent, ~latent).astype(float)
        sums = cluster_sums(ag.two_rater_item_sums(a, b, np.array([0.0, 1.0])), np.arange(400) // 4)
        result = bootstrap_ci(sums, ag.cohen_kappa_from_sums, n_boot=500, method="bca", rng=rng)
        covered += result.low <= truth <= result.high
    assert abs(covered / 300 - 0.95) <= 0.03, covered / 300


# ---------------------------------------------------------------- sparse sums, analytic gradients, the accuracy gap


def _ranking_case(n: int, n_clusters: int, seed: int):
    from judgekit.stats import calibration as cal

    rng = np.random.default_rng(seed)
    p = np.round(rng.random(n), 2)
    y = (rng.random(n) < p).astype(float)
    item_sums = cal.ranking_item_sums(y, p, cal.score_levels(p))
    return item_sums, rng.integers(0, n_clusters, n)


def ranking(s: np.ndarray) -> np.ndarray:
    from judgekit.stats import calibration as cal

    return np.stack([cal.auroc_from_sums(s), cal.auprc_from_sums(s)], axis=-1)


def test_sparse_level_histograms_bootstrap_exactly_as_dense_ones() -> None:
    item_sums, clusters = _ranking_case(400, 40, 5)
    sparse_sums, dense_sums = cluster_sums(item_sums, clusters), cluster_sums(item_sums.toarray(), clusters)
    np.testing.assert_array_equal(sparse_sums.toarray(), dense_sums)
    sparse_result = bootstrap_ci(sparse_sums, ranking, n_boot=300, method="bca", rng=2)
    dense_result = bootstrap_ci(dense_sums, ranking, n_boot=300, method="bca", rng=2)
    np.testing.assert_allclose(sparse_result.replicates, dense_result.replicates, rtol=1e-12)
    np.testing.assert_allclose([sparse_result.low, sparse_result.high], [dense_result.low, dense_result.high], rtol=1e-12)
    assert sparse_result.methods == dense_result.methods == ("bca", "bca")


def test_linearized_ranking_interval_with_analytic_gradients_equals_the_numeric_one() -> None:
    from judgekit.stats import calibration as cal
    from judgekit.stats.intervals import linearized_interval

    item_sums, clusters = _ranking_case(3000, 2500, 6)
    sums = cluster_sums(item_sums, clusters)
    analytic = linearized_interval(sums, ranking, gradient=lambda t: np.stack([cal.auroc_gradient(t), cal.auprc_gradient(t)], axis=-1))
    numeric = linearized_interval(sums.toarray(), ranking)
    np.testing.assert_allclose(np.array(analytic), np.array(numeric), rtol=1e-5)


def test_accuracy_gap_interval_covers_the_known_gap() -> None:
    """Clusters share a difficulty: coherent accuracy p_c ~ U(0.75, 1), incoherent p_c - 0.25, so the gap is 0.25
    in every cluster and the population. The paired cluster bootstrap of the difference covers it at about 95%."""
    from judgekit.analysis.blocks.judges import GAP
    from judgekit.analysis.rows import block_intervals
    from judgekit.analysis.settings import StatsSettings

    rng = np.random.default_rng(7)
    settings = StatsSettings(n_boot=400)
    covered, runs = 0, 300
    for _ in range(runs):
        n_clusters = 60
        accuracy = rng.uniform(0.75, 1.0, n_clusters)
        coherent, incoherent = rng.integers(1, 7, n_clusters), rng.integers(1, 4, n_clusters)
        sums = np.column_stack([coherent, rng.binomial(coherent, accuracy), incoherent,
                                rng.binomial(incoherent, accuracy - 0.25)]).astype(float)
        interval = block_intervals(GAP, sums, settings, rng)["accuracy_gap"]
        covered += interval.low <= 0.25 <= interval.high
    assert 0.91 <= covered / runs <= 0.99, covered / runs


def test_ece_interval_never_excludes_its_estimate() -> None:
    """Binned ECE of a calibrated judge near 0: BCa's bias correction put the interval below the estimate (audit:
    0.0029 in [0.0020, 0.0021]) and the percentile interval lies above it; the interval now contains it and says so."""
    from judgekit.stats import calibration as cal

    rng = np.random.default_rng(15)
    n = int(rng.integers(40, 400))
    p = rng.beta(0.3, 8, n)
    y = (rng.random(n) < p).astype(float)
    sums = cluster_sums(cal.binned_item_sums(y, p, cal.bin_edges(p, n_bins=10, strategy="uniform")),
                        np.arange(n) // int(rng.integers(1, 4)))
    result = bootstrap_ci(sums, cal.ece_from_sums, n_boot=300, method="bca", rng=15)
    estimate, low, high = result.scalar()
    assert low <= estimate <= high, (estimate, low, high)
    assert "excluded the estimate" in result.method and "stretched" in result.method
