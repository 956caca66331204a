"""Cluster bootstrap over summed sufficient statistics, and Wilson intervals.

A statistic is written as a function of per-item sufficient statistics summed
over items (``from_sums``). Summing them within clusters once turns every
bootstrap resample into a weighted sum of cluster rows, so all resamples are
one matrix product: multiplicities ``(n_boot, n_clusters)`` @ sums
``(n_clusters, k)``. The jackknife that BCa needs is the same trick with one
cluster left out.

Sums over many columns of which each item fills one (AUROC/AUPRC level
histograms) may be a ``scipy.sparse`` array: memory then grows with the
items, not items x columns, and each resample's totals are still one
product (a weighted bincount of the cluster weights into the columns).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.special import ndtr, ndtri

FromSums = Callable[[NDArray[np.float64]], NDArray[np.float64]]
IntervalMethod = Literal["percentile", "bca"]
_CHUNK_ELEMENTS = 10_000_000
STRETCHED = "; stretched to its estimate: the resamples lie on one side of it, as binned ECE's near 0"  # bound the (resamples x clusters) block held in memory at once


@dataclass(frozen=True)
class BootstrapResult:
    """Estimate and interval(s); arrays when the statistic has several outputs.

    ``methods`` names, per output (flattened), the interval actually used:
    ``"bca"``, ``"percentile"``, or ``"percentile (BCa undefined: <reason>)"``.
    ``replicates`` holds the bootstrap distribution (n_boot, ...) for callers
    that need more than an interval.
    """

    estimate: NDArray[np.float64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    methods: tuple[str, ...]
    replicates: NDArray[np.float64]

    @property
    def method(self) -> str:
        """The interval method of a single-output statistic."""
        if len(self.methods) != 1:
            raise ValueError(f"{len(self.methods)} outputs have one method each; read 'methods'")
        return self.methods[0]

    def scalar(self) -> tuple[float, float, float]:
        return float(self.estimate), float(self.low), float(self.high)


def cluster_sums(item_sums: ArrayLike | sparse.sparray, clusters: ArrayLike) -> NDArray[np.float64] | sparse.csr_array:
    """Add up per-item sufficient statistics within each cluster.

    Parameters
    ----------
    item_sums : array-like or scipy sparse array of shape (n_items, k)
    clusters : array-like of shape (n_items,)
        Cluster label of each item (e.g. ``behavior_id``); clusters are
        ordered by their string form, or by value when given as integer
        codes (the fast path for callers that factorize once).

    Returns
    -------
    ndarray of shape (n_clusters, k), or a sparse ``csr_array`` for sparse ``item_sums``
    """
    values = sparse.csr_array(item_sums, dtype=float) if sparse.issparse(item_sums) else np.asarray(item_sums, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"The 'item_sums' parameter must be 2-d (n_items, k). Got shape {values.shape} instead.")
    labels = np.asarray(clusters)
    if labels.shape != (values.shape[0],):
        raise ValueError(f"The 'clusters' parameter must have one label per item. Got {labels.shape} for {values.shape[0]} items.")
    if labels.dtype.kind not in "iu":
        labels = labels.astype(object).astype(str)
    present, codes = np.unique(labels, return_inverse=True)
    if sparse.issparse(values):
        membership = sparse.csr_array((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(len(present), len(codes)))
        return sparse.csr_array(membership @ values)
    return np.column_stack([np.bincount(codes, weights=column, minlength=len(present)) for column in values.T]) if len(
        present) else np.zeros((0, values.shape[1]))


def multiplicities(generator: np.random.Generator, n_clusters: int, n_boot: int) -> NDArray[np.int64]:
    """How often each cluster is drawn in each of ``n_boot`` resamples of ``n_clusters`` draws.

    Drawing cluster indices and counting them is distributed exactly as
    Multinomial(n_clusters, uniform) and, for many clusters, several times
    faster than ``Generator.multinomial``.
    """
    draws = generator.integers(0, n_clusters, size=(n_boot, n_clusters), dtype=np.int32)
    offsets = (np.arange(n_boot, dtype=np.int64) * n_clusters)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n_clusters).reshape(n_boot, n_clusters)


def _exact_in_float32(sums: NDArray | sparse.sparray) -> bool:
    """Integer-valued sums whose every weighted partial sum stays below 2**24 are exact in float32."""
    values = sums.data if sparse.issparse(sums) else sums
    return bool(np.all(values == np.round(values)) and sums.shape[0] * np.abs(values).max(initial=0) < 2**24)


def bootstrap_replicates(
    sums: NDArray[np.float64] | sparse.sparray, from_sums: FromSums, *, n_boot: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Statistic of ``n_boot`` cluster resamples, computed in memory-bounded chunks.

    A chunk holds at most about ``_CHUNK_ELEMENTS`` multiplicities and as many
    resampled totals (resamples x columns), whichever is larger.
    """
    n_clusters, n_columns = sums.shape
    dtype = np.float32 if _exact_in_float32(sums) else np.float64
    matrix = sums.astype(dtype)
    chunk = max(1, min(n_boot, _CHUNK_ELEMENTS // max(n_clusters, n_columns, 1)))
    parts = []
    for start in range(0, n_boot, chunk):
        weights = multiplicities(rng, n_clusters, min(chunk, n_boot - start)).astype(dtype)
        parts.append(np.asarray(from_sums((weights @ matrix).astype(np.float64)), dtype=float))
    return np.concatenate(parts, axis=0)


def _validate(n_boot: int, level: float, method: str) -> None:
    if not isinstance(n_boot, int | np.integer) or isinstance(n_boot, bool) or n_boot < 1:
        raise ValueError(f"The 'n_boot' parameter must be a positive integer. Got {n_boot!r} instead.")
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    if method not in ("percentile", "bca"):
        raise ValueError(f"The 'method' parameter must be one of ('percentile', 'bca'). Got {method!r} instead.")


def bootstrap_ci(
    sums: ArrayLike,
    from_sums: FromSums,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    method: IntervalMethod = "percentile",
    rng: np.random.Generator | int | None = None,
) -> BootstrapResult:
    """Cluster-bootstrap interval of a statistic of summed sufficient statistics.

    Parameters
    ----------
    sums : array-like or scipy sparse array of shape (n_clusters, k)
        Per-cluster sums, as from :func:`cluster_sums`.
    from_sums : callable
        Maps totals of shape ``(..., k)`` to the statistic, shape ``(...)`` or
        ``(..., m)`` for ``m`` outputs.
    n_boot : int, default=1000
        Number of resamples.
    level : float, default=0.95
        Interval coverage.
    method : {"percentile", "bca"}, default="percentile"
        BCa is decided per output: an output whose BCa is undefined (the
        statistic undefined in some resample or jackknife sample, all
        replicates on one side of the estimate, a constant jackknife) gets the
        percentile interval, and ``result.methods`` says which and why; the
        other outputs keep BCa.
    rng : numpy Generator, int or None
        Source of randomness; an int is a seed (0 is a valid seed).

    Returns
    -------
    BootstrapResult
        Interval ends are NaN with fewer than two clusters, or for an output
        that is undefined in more than half of the resamples.

    References
    ----------
    .. [1] Efron, B. (1987). Better bootstrap confidence intervals. JASA,
       82(397), 171-185. doi:10.1080/01621459.1987.10478410
    .. [2] Davison, A. C., & Hinkley, D. V. (1997). Bootstrap Methods and their
       Application, section 3.8 (clustered data). Cambridge University Press.
       doi:10.1017/CBO9780511802843
    """
    _validate(n_boot, level, method)
    totals = sparse.csr_array(sums, dtype=float) if sparse.issparse(sums) else np.asarray(sums, dtype=float)
    if totals.ndim != 2:
        raise ValueError(f"The 'sums' parameter must be 2-d (n_clusters, k). Got shape {totals.shape} instead.")
    estimate = np.asarray(from_sums(totals.sum(axis=0)), dtype=float)
    nan = np.full(estimate.shape, np.nan)
    n_outputs = max(estimate.size, 1)
    if totals.shape[0] < 2:
        return BootstrapResult(estimate, nan, nan.copy(), ("none (fewer than 2 clusters)",) * n_outputs,
                               np.empty((0, *estimate.shape)))
    generator = np.random.default_rng(rng)
    replicates = bootstrap_replicates(totals, from_sums, n_boot=n_boot, rng=generator)
    low, high = _percentile_interval(replicates, level)
    methods = np.full(estimate.shape, "percentile", dtype=object)
    if method == "bca":
        bca_low, bca_high, reasons = _bca_interval(totals, from_sums, estimate, replicates, level)
        # A non-smooth statistic near a boundary (binned ECE near 0) can get a bias correction so large that the
        # BCa interval leaves its own estimate out: the percentile interval is used instead.
        with np.errstate(invalid="ignore"):
            outside = (reasons == "") & ((bca_low > estimate) | (bca_high < estimate))
        reasons = np.where(outside, "its interval excluded the estimate", reasons)
        defined = reasons == ""
        low, high = np.where(defined, bca_low, low), np.where(defined, bca_high, high)
        methods = np.where(defined, "bca", np.char.add("percentile (BCa undefined: ", reasons.astype(str)) + ")")
    with np.errstate(invalid="ignore"):
        stretched = (low > estimate) | (high < estimate)
    methods = np.where(stretched, methods.astype(str) + STRETCHED, methods.astype(str))
    return BootstrapResult(estimate, np.where(stretched, np.fmin(low, estimate), low),
                           np.where(stretched, np.fmax(high, estimate), high),
                           tuple(str(m) for m in np.ravel(methods)) or ("percentile",), replicates)


def _percentile_interval(replicates: NDArray, level: float) -> tuple[NDArray, NDArray]:
    finite = np.isfinite(replicates)
    enough = finite.sum(axis=0) >= replicates.shape[0] / 2
    tail = (1 - level) / 2 * 100
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN outputs are masked below
        low, high = np.nanpercentile(np.where(finite, replicates, np.nan), [tail, 100 - tail], axis=0) if finite.any() else (
            np.full(replicates.shape[1:], np.nan),
            np.full(replicates.shape[1:], np.nan),
        )
    return np.where(enough, low, np.nan), np.where(enough, high, np.nan)


def leave_one_out(totals: NDArray | sparse.sparray, from_sums: FromSums) -> NDArray[np.float64]:
    """The statistic with each cluster left out in turn, ``(n_clusters, ...)``, in memory-bounded chunks."""
    n_clusters, n_columns = totals.shape
    total = np.asarray(totals.sum(axis=0), dtype=float).ravel()
    chunk = max(1, _CHUNK_ELEMENTS // max(n_columns, 1))
    parts = []
    for start in range(0, n_clusters, chunk):
        rows = totals[start : start + chunk]
        parts.append(np.asarray(from_sums(total - (rows.toarray() if sparse.issparse(rows) else rows)), dtype=float))
    return np.concatenate(parts, axis=0)


def _bca_interval(totals: NDArray, from_sums: FromSums, estimate: NDArray, replicates: NDArray, level: float):
    """BCa ends per output, and per output the reason BCa is undefined ("" where it is defined)."""
    shape = estimate.shape
    flat = replicates.reshape(replicates.shape[0], -1)
    theta = estimate.reshape(-1)
    jackknife = leave_one_out(totals, from_sums).reshape(totals.shape[0], -1)
    reasons = np.full(theta.shape, "", dtype=object)
    undefined_replicates = (~np.isfinite(flat)).sum(axis=0)
    below = (flat < theta).mean(axis=0) + 0.5 * (flat == theta).mean(axis=0)
    deviation = np.where(np.isfinite(jackknife), jackknife.mean(axis=0) - jackknife, np.nan)
    spread = (deviation**2).sum(axis=0)
    for k in range(theta.size):  # the first failing condition is the reason given
        if not np.isfinite(theta[k]):
            reasons[k] = "estimate undefined"
        elif undefined_replicates[k]:
            reasons[k] = f"statistic undefined in {undefined_replicates[k]} of {flat.shape[0]} resamples"
        elif np.all(flat[:, k] == theta[k]):
            reasons[k] = "constant statistic across resamples"
        elif below[k] <= 0 or below[k] >= 1:
            reasons[k] = "all resamples on one side of the estimate"
        elif not np.all(np.isfinite(jackknife[:, k])):
            reasons[k] = f"statistic undefined when leaving out {int((~np.isfinite(jackknife[:, k])).sum())} cluster(s)"
        elif spread[k] == 0:
            reasons[k] = "constant jackknife (acceleration undefined)"
    ok = reasons == ""
    with np.errstate(all="ignore"):
        z0 = ndtri(np.where(ok, below, 0.5))
        acceleration = np.where(ok, (deviation**3).sum(axis=0) / (6.0 * np.where(ok, spread, 1.0) ** 1.5), 0.0)
    ends = []
    for alpha in ((1 - level) / 2, 1 - (1 - level) / 2):
        z = z0 + ndtri(alpha)
        adjusted = ndtr(z0 + z / (1 - acceleration * z))
        ends.append(np.array([np.quantile(flat[:, k], adjusted[k]) if ok[k] else np.nan for k in range(theta.size)]).reshape(shape))
    return ends[0], ends[1], reasons.reshape(shape)


def wilson_interval(successes: ArrayLike, trials: ArrayLike, *, level: float = 0.95) -> tuple[NDArray, NDArray]:
    """Wilson score interval for a binomial proportion (NaN where ``trials`` is 0).

    References
    ----------
    .. [1] Wilson, E. B. (1927). Probable inference, the law of succession, and
       statistical inference. JASA, 22(158), 209-212. doi:10.1080/01621459.1927.10502953

    Examples
    --------
    >>> low, high = wilson_interval(81, 263)
    >>> round(float(low), 4), round(float(high), 4)
    (0.2553, 0.3662)
    """
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = ndtri(1 - (1 - level) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.where(n > 0, centre - half, np.nan), np.where(n > 0, centre + half, np.nan)
