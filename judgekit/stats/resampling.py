"""Cluster bootstrap over summed sufficient statistics, all resamples at once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray


def cluster_sums(item_sums: ArrayLike, clusters: ArrayLike) -> NDArray[np.float64]:
    """Add up per-item sufficient statistics within each cluster.

    Parameters
    ----------
    item_sums : array-like of shape (n_items, k)
    clusters : array-like of shape (n_items,)
        Cluster label of each item (e.g. ``behavior_id``).

    Returns
    -------
    ndarray of shape (n_clusters, k)
    """
    values = np.asarray(item_sums, dtype=float)
    _, codes = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
    out = np.zeros((codes.max() + 1 if len(codes) else 0, values.shape[1]))
    np.add.at(out, codes, values)
    return out


def bootstrap_ci(
    sums: ArrayLike,
    statistic: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> tuple[float, float, float]:
    """Percentile cluster-bootstrap interval of a statistic of summed sufficient statistics.

    Clusters are drawn with replacement; each resample's statistic is computed
    from the cluster sums weighted by how often each cluster was drawn, so all
    ``n_boot`` resamples are one matrix product.

    Parameters
    ----------
    sums : array-like of shape (n_clusters, k)
        Per-cluster sums, as from :func:`cluster_sums`.
    statistic : callable
        Maps an array ``(..., k)`` of totals to the statistic ``(...)``.
    n_boot : int, default=1000
        Number of resamples (>= 1).
    level : float, default=0.95
        Interval coverage, in (0, 1).
    rng : numpy Generator, int or None
        Source of randomness; an int is a seed.

    Returns
    -------
    (estimate, low, high) : tuple of float
        ``low``/``high`` are ``nan`` when fewer than two clusters exist or when
        more than half of the resamples give an undefined statistic.

    References
    ----------
    .. [1] Efron, B., & Tibshirani, R. J. (1993). An Introduction to the
       Bootstrap. Chapman & Hall. doi:10.1201/9780429246593
    .. [2] Field, C. A., & Welsh, A. H. (2007). Bootstrapping clustered data.
       JRSS B, 69(3), 369-390. doi:10.1111/j.1467-9868.2007.00593.x
    """
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"The 'n_boot' parameter must be a positive integer. Got {n_boot!r} instead.")
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    totals = np.asarray(sums, dtype=float)
    estimate = float(statistic(totals.sum(axis=0)))
    n_clusters = totals.shape[0]
    if n_clusters < 2:
        return estimate, float("nan"), float("nan")
    generator = np.random.default_rng(rng)
    weights = generator.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot)
    replicates = statistic(weights @ totals)
    finite = replicates[np.isfinite(replicates)]
    if len(finite) < n_boot / 2:
        return estimate, float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return estimate, float(low), float(high)
