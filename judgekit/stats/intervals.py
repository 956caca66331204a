"""Closed-form intervals for clustered data: rates and smooth statistics of summed sufficient statistics.

* :func:`clustered_wilson_interval` — a ratio of two cluster totals (a rate:
  accuracy, FPR, FNR, harmful rate) with the Korn–Graubard effective sample
  size: Wilson's interval on ``n / deff``, shrunk further by the t/z ratio for
  ``n_clusters - 1`` degrees of freedom. It holds its level at few clusters and
  skewed prevalence where the percentile bootstrap under-covers.
* :func:`linearized_interval` — any smooth statistic of summed sufficient
  statistics (kappa, alpha, AC1...) by Taylor linearization with the
  cluster-robust (sandwich) variance and a t quantile; the large-sample
  alternative to the bootstrap, at the cost of one gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.special import ndtri
from scipy.stats import t as student_t

from judgekit.stats.resampling import wilson_interval

_GRADIENT_CHUNK = 256  # shifted totals evaluated at once by numeric_gradient


def _tail(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    return (1 - level) / 2


def clustered_wilson_interval(
    numerators: ArrayLike, denominators: ArrayLike, *, level: float = 0.95
) -> tuple[float, float, float, float]:
    """Wilson interval of a rate whose items fall in clusters, on the effective sample size.

    Parameters
    ----------
    numerators, denominators : array-like of shape (n_clusters,)
        Per-cluster counts of events and of trials (e.g. false negatives and
        reference positives for the FNR); clusters with no trials are dropped.
    level : float, default=0.95

    Returns
    -------
    (estimate, low, high, design_effect)
        ``design_effect`` is the ratio-estimator variance over the binomial
        one (1 when the rate is 0 or 1, where it is undefined). NaN interval
        with no trials or fewer than two clusters with trials.

    Notes
    -----
    With cluster totals :math:`y_c, n_c`, :math:`\\hat p = \\sum y_c / \\sum n_c`,
    the ratio-estimator variance is
    :math:`v = \\frac{C}{C-1} \\sum_c (y_c - \\hat p n_c)^2 / n^2`, the design
    effect :math:`d = v / (\\hat p (1-\\hat p)/n)`, and Wilson's interval is
    computed on :math:`n^* = \\min(n, n/d)\\,(z/t_{C-1})^2` trials.

    References
    ----------
    .. [1] Korn, E. L., & Graubard, B. I. (1998). Confidence intervals for
       proportions with small expected number of positive counts estimated
       from survey data. Survey Methodology, 24(2), 193-201.
    .. [2] Dean, N., & Pagano, M. (2015). Evaluating confidence interval methods
       for binomial proportions in clustered surveys. Journal of Survey
       Statistics and Methodology, 3(4), 484-503. doi:10.1093/jssam/smv024

    Examples
    --------
    >>> estimate, low, high, deff = clustered_wilson_interval([1, 0, 2, 1], [5, 5, 5, 5])
    >>> round(estimate, 2), round(deff, 2)
    (0.2, 0.83)
    """
    y = np.asarray(numerators, dtype=float)
    n_c = np.asarray(denominators, dtype=float)
    if y.shape != n_c.shape or y.ndim != 1:
        raise ValueError(f"numerators and denominators must be 1-d of equal length. Got {y.shape} and {n_c.shape} instead.")
    if np.any(y < 0) or np.any(y > n_c):
        raise ValueError("numerators must lie in [0, denominators].")
    alpha = _tail(level)
    keep = n_c > 0
    y, n_c = y[keep], n_c[keep]
    n, clusters = float(n_c.sum()), len(n_c)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), float("nan")
    p = y.sum() / n
    if clusters < 2:
        return float(p), float("nan"), float("nan"), float("nan")
    binomial = p * (1 - p) / n
    clustered = clusters / (clusters - 1) * ((y - p * n_c) ** 2).sum() / n**2
    deff = clustered / binomial if binomial > 0 else 1.0
    effective = min(n, n / deff) if deff > 0 else n
    effective *= (ndtri(1 - alpha) / student_t.ppf(1 - alpha, clusters - 1)) ** 2
    low, high = wilson_interval(p * effective, effective, level=level)
    return float(p), float(low), float(high), float(deff)


def numeric_gradient(from_sums: Callable[[NDArray], NDArray], total: NDArray, *, step: float = 1e-6) -> NDArray:
    """Central-difference gradient of ``from_sums`` at the totals ``(k,)``: shape ``(k, ...)``.

    The step is ``step`` relative to each total (at least ``step``); the
    shifted totals are evaluated a few hundred at a time, so memory stays
    bounded for many columns.
    """
    total = np.asarray(total, dtype=float)
    h = step * np.maximum(np.abs(total), 1.0)
    parts = []
    for start in range(0, len(total), _GRADIENT_CHUNK):
        index = np.arange(start, min(start + _GRADIENT_CHUNK, len(total)))
        shifts = np.zeros((len(index), len(total)))
        shifts[np.arange(len(index)), index] = h[index]
        with np.errstate(all="ignore"):
            difference = np.asarray(from_sums(total + shifts), dtype=float) - np.asarray(from_sums(total - shifts), dtype=float)
        parts.append(difference / (2 * h[index].reshape((-1,) + (1,) * (difference.ndim - 1))))
    return np.concatenate(parts, axis=0)


def linearized_interval(
    sums: ArrayLike | sparse.sparray,
    from_sums: Callable[[NDArray], NDArray],
    *,
    gradient: Callable[[NDArray], NDArray] | None = None,
    level: float = 0.95,
    step: float = 1e-6,
) -> tuple[NDArray, NDArray, NDArray]:
    """Taylor-linearization interval of a smooth statistic of cluster-summed sufficient statistics.

    Parameters
    ----------
    sums : array-like or scipy sparse array of shape (n_clusters, k)
        Per-cluster sums, as from :func:`judgekit.stats.resampling.cluster_sums`.
    from_sums : callable
        Maps totals ``(..., k)`` to the statistic ``(...)`` or ``(..., m)``.
    gradient : callable, optional
        Maps the totals ``(k,)`` to the gradient of ``from_sums`` there,
        ``(k,)`` or ``(k, m)``. Default: :func:`numeric_gradient`, which costs
        ``2k`` evaluations of ``from_sums``; statistics of many columns
        (AUROC over score levels) pass their analytic gradient.
    level : float, default=0.95
    step : float, default=1e-6
        Relative central-difference step of the numeric gradient.

    Returns
    -------
    (estimate, low, high)
        ``estimate ± t_{C-1} * se`` with the sandwich variance
        :math:`\\frac{C}{C-1}\\sum_c (g^\\top (s_c - \\bar s))^2`; NaN ends with
        fewer than two clusters or an undefined gradient.

    References
    ----------
    .. [1] Binder, D. A. (1983). On the variances of asymptotically normal
       estimators from complex surveys. International Statistical Review,
       51(3), 279-292. doi:10.2307/1402588
    .. [2] Wolter, K. M. (2007). Introduction to Variance Estimation, 2nd ed.,
       ch. 6 (Taylor series methods). Springer. doi:10.1007/978-0-387-35099-8

    Examples
    --------
    >>> rate = lambda s: s[..., 1] / s[..., 0]
    >>> estimate, low, high = linearized_interval([[10, 2], [10, 5], [10, 3], [10, 6]], rate)
    >>> round(float(estimate), 3), bool(low < estimate < high)
    (0.4, True)
    """
    totals = sparse.csr_array(sums, dtype=float) if sparse.issparse(sums) else np.asarray(sums, dtype=float)
    if totals.ndim != 2:
        raise ValueError(f"The 'sums' parameter must be 2-d (n_clusters, k). Got shape {totals.shape} instead.")
    alpha = _tail(level)
    total = np.asarray(totals.sum(axis=0), dtype=float).ravel()
    with np.errstate(all="ignore"):
        estimate = np.asarray(from_sums(total), dtype=float)
        if totals.shape[0] < 2:
            nan = np.full(estimate.shape, np.nan)
            return estimate, nan, nan.copy()
        slope = numeric_gradient(from_sums, total, step=step) if gradient is None else np.asarray(gradient(total), dtype=float)
        # g'(s_c - mean s) = g's_c - mean(g's_c): the cluster rows are never centred, so sparse sums stay sparse.
        projected = np.asarray(totals @ slope.reshape(len(total), -1), dtype=float)  # (C, m)
        influence = (projected - projected.mean(axis=0)).reshape((totals.shape[0], *estimate.shape))
        clusters = totals.shape[0]
        se = np.sqrt(clusters / (clusters - 1) * (influence**2).sum(axis=0))
        half = student_t.ppf(1 - alpha, clusters - 1) * se
    return estimate, estimate - half, estimate + half
