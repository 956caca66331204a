"""Calibration of P(unsafe) against a binary reference (1 = unsafe).

Binned statistics use bins fixed from the full sample: equal-width
(``strategy="uniform"``) or equal-mass (``"quantile"``). Guard models often
emit tied probabilities, so equal-mass edges can coincide; coinciding edges
are merged and tied values always share a bin, which is why the effective
number of bins is reported. Empty bins are kept, with count 0, never
silently dropped (``sklearn.calibration.calibration_curve`` drops them).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.special import expit

from judgekit.stats.resampling import wilson_interval

Strategy = Literal["uniform", "quantile"]
_DRAW_ELEMENTS = 4_000_000  # simulated labels held at once by ece_noise_floor_draws
Norm = Literal["l1", "l2"]
EPS = 1e-15


def _checked(y_true: ArrayLike, p_unsafe: ArrayLike) -> tuple[NDArray, NDArray]:
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(p_unsafe, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"y_true and p_unsafe must be 1-d of equal length. Got {y.shape} and {p.shape} instead.")
    keep = ~(np.isnan(y) | np.isnan(p))
    y, p = y[keep], p[keep]
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be coded 0 (safe) or 1 (unsafe).")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("p_unsafe must lie in [0, 1].")
    return y, p


def bin_edges(p_unsafe: ArrayLike, *, n_bins: int = 10, strategy: Strategy = "uniform") -> NDArray[np.float64]:
    """Bin edges on [0, 1]; equal-mass edges come from the sample and are deduplicated."""
    if not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"The 'n_bins' parameter must be a positive integer. Got {n_bins!r} instead.")
    if strategy == "uniform":
        # k / n_bins is the double nearest to the decimal edge (0.3, 0.6, 0.7...), so a probability
        # written as that decimal opens its bin; np.linspace's 0.30000000000000004 would put it below.
        return np.arange(n_bins + 1) / n_bins
    if strategy != "quantile":
        raise ValueError(f"The 'strategy' parameter must be one of ('uniform', 'quantile'). Got {strategy!r} instead.")
    p = np.asarray(p_unsafe, dtype=float)
    p = p[~np.isnan(p)]
    inner = np.quantile(p, np.linspace(0, 1, n_bins + 1)[1:-1]) if len(p) else np.array([])
    return np.unique(np.concatenate([[0.0], inner, [1.0]]))


def bin_index(p_unsafe: NDArray, edges: NDArray) -> NDArray[np.int64]:
    """Bin of each probability; bins are [e_k, e_{k+1}) and the last one includes 1."""
    return np.clip(np.searchsorted(edges, p_unsafe, side="right") - 1, 0, len(edges) - 2)


def binned_item_sums(y_true: ArrayLike, p_unsafe: ArrayLike, edges: NDArray) -> NDArray[np.float64]:
    """Per-item one-hot sums ``[count_b..., sum_p_b..., sum_y_b...]`` over the bins, shape (n, 3B).

    Missing pairs (NaN) contribute zeros.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(p_unsafe, dtype=float)
    keep = ~(np.isnan(y) | np.isnan(p))
    n_bins = len(edges) - 1
    one_hot = np.zeros((len(p), n_bins))
    one_hot[np.flatnonzero(keep), bin_index(p[keep], edges)] = 1.0
    return np.hstack([one_hot, one_hot * np.where(keep, p, 0)[:, None], one_hot * np.where(keep, y, 0)[:, None]])


def _bin_parts(sums: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    n_bins = sums.shape[-1] // 3
    return sums[..., :n_bins], sums[..., n_bins : 2 * n_bins], sums[..., 2 * n_bins :]


def ece_from_sums(sums: NDArray, *, norm: Norm = "l1", debiased: bool = False) -> NDArray:
    """ECE from summed :func:`binned_item_sums` (see :func:`expected_calibration_error`)."""
    counts, sum_p, sum_y = _bin_parts(sums)
    n = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if norm == "l1":
            return np.abs(sum_y - sum_p).sum(axis=-1) / n
        gap = np.where(counts > 0, (sum_y - sum_p) / np.where(counts > 0, counts, 1), 0.0)
        squared = (counts * gap**2).sum(axis=-1) / n
        if not debiased:
            return np.sqrt(squared)
        frac = np.where(counts > 0, sum_y / np.where(counts > 0, counts, 1), 0.0)
        correction = np.where(counts > 1, counts * frac * (1 - frac) / np.where(counts > 1, counts - 1, 1), 0.0)
        return squared - correction.sum(axis=-1) / n


def mce_from_sums(sums: NDArray) -> NDArray:
    counts, sum_p, sum_y = _bin_parts(sums)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.abs(sum_y - sum_p) / counts
    gap = np.where(counts > 0, gap, -np.inf)
    worst = gap.max(axis=-1)
    return np.where(np.isfinite(worst), worst, np.nan)


def expected_calibration_error(
    y_true: ArrayLike,
    p_unsafe: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: Strategy = "uniform",
    norm: Norm = "l1",
    debiased: bool = False,
) -> float:
    """Binned expected calibration error of P(unsafe).

    Parameters
    ----------
    y_true : array-like of shape (n_items,)
        Reference labels, 1 unsafe, 0 safe (NaN pairs are dropped).
    p_unsafe : array-like of shape (n_items,)
        Judge probabilities in [0, 1].
    n_bins : int, default=10
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins (tied probabilities share a bin).
    norm : {"l1", "l2"}, default="l1"
        L1: :math:`\\sum_b (n_b/n) |\\bar y_b - \\bar p_b|`. L2: the root of
        :math:`\\sum_b (n_b/n) (\\bar y_b - \\bar p_b)^2`.
    debiased : bool, default=False
        Only with ``norm="l2"``: return the debiased estimate of the *squared*
        L2 error of Kumar et al. (2019), which subtracts each bin's sampling
        variance :math:`\\bar y_b (1 - \\bar y_b)/(n_b - 1)`; it can be negative
        for a well-calibrated judge.

    Returns
    -------
    float

    Notes
    -----
    Binned ECE is biased upwards on small samples: a perfectly calibrated
    judge on 100 items reads about 0.09 with 15 bins. Report it with its
    bootstrap interval and :func:`ece_noise_floor`.

    References
    ----------
    .. [1] Naeini, M. P., Cooper, G., & Hauskrecht, M. (2015). Obtaining well
       calibrated probabilities using Bayesian binning. AAAI.
       doi:10.1609/aaai.v29i1.9602
    .. [2] Kumar, A., Liang, P., & Ma, T. (2019). Verified uncertainty
       calibration. NeurIPS. arXiv:1909.10155

    Examples
    --------
    >>> expected_calibration_error([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.4], n_bins=2)
    0.25
    """
    if norm not in ("l1", "l2"):
        raise ValueError(f"The 'norm' parameter must be one of ('l1', 'l2'). Got {norm!r} instead.")
    if debiased and norm != "l2":
        raise ValueError("The 'debiased' option needs norm='l2' (the debiased estimator is for the squared L2 error).")
    y, p = _checked(y_true, p_unsafe)
    edges = bin_edges(p, n_bins=n_bins, strategy=strategy)
    return float(ece_from_sums(binned_item_sums(y, p, edges).sum(axis=0), norm=norm, debiased=debiased))


def maximum_calibration_error(y_true: ArrayLike, p_unsafe: ArrayLike, *, n_bins: int = 10, strategy: Strategy = "uniform") -> float:
    """Largest gap between bin accuracy and bin confidence over non-empty bins.

    References
    ----------
    .. [1] Naeini, M. P., Cooper, G., & Hauskrecht, M. (2015). AAAI.
       doi:10.1609/aaai.v29i1.9602

    Examples
    --------
    >>> round(maximum_calibration_error([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.4], n_bins=2), 3)
    0.25
    """
    y, p = _checked(y_true, p_unsafe)
    edges = bin_edges(p, n_bins=n_bins, strategy=strategy)
    return float(mce_from_sums(binned_item_sums(y, p, edges).sum(axis=0)))


def ece_noise_floor_draws(
    p_unsafe: ArrayLike, *, n_bins: int = 10, strategy: Strategy = "uniform", n_sim: int = 200,
    rng: np.random.Generator | int | None = None,
) -> NDArray[np.float64]:
    """ECE a perfectly calibrated judge would show on these probabilities, once per simulated label set.

    Labels are drawn as Bernoulli(p_unsafe) ``n_sim`` times; summarise the
    draws by their mean (the floor) and upper quantiles. These are a
    distribution of a null statistic, not a confidence interval.

    Examples
    --------
    >>> draws = ece_noise_floor_draws([0.2] * 50 + [0.8] * 50, n_sim=100, rng=0)
    >>> draws.shape, bool(0 < draws.mean() < 0.2)
    ((100,), True)
    """
    p = np.asarray(p_unsafe, dtype=float)
    p = p[~np.isnan(p)]
    generator = np.random.default_rng(rng)
    edges = bin_edges(p, n_bins=n_bins, strategy=strategy)
    one_hot = binned_item_sums(np.zeros_like(p), p, edges)
    n_b = len(edges) - 1
    counts, sum_p = one_hot[:, :n_b].sum(axis=0), one_hot[:, n_b : 2 * n_b].sum(axis=0)
    # A few label sets at a time: memory stays bounded at a million items, and drawing rows in
    # sequence gives the same numbers as one (n_sim, n) draw.
    per_chunk = max(1, _DRAW_ELEMENTS // max(len(p), 1))
    sum_y = np.concatenate([(generator.random((min(per_chunk, n_sim - start), len(p))) < p) @ one_hot[:, :n_b]
                            for start in range(0, n_sim, per_chunk)]) if n_sim else np.zeros((0, n_b))
    sums = np.hstack([np.broadcast_to(counts, sum_y.shape), np.broadcast_to(sum_p, sum_y.shape), sum_y])
    return ece_from_sums(sums)


def brier_item_sums(y_true: ArrayLike, p_unsafe: ArrayLike) -> NDArray[np.float64]:
    """Per-item ``[observed, (p - y)^2, log loss]``."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(p_unsafe, dtype=float)
    keep = ~(np.isnan(y) | np.isnan(p))
    y0, p0 = np.where(keep, y, 0.0), np.clip(np.where(keep, p, 0.5), EPS, 1 - EPS)
    loss = -(y0 * np.log(p0) + (1 - y0) * np.log(1 - p0))
    return np.column_stack([keep, np.where(keep, (p0 - y0) ** 2, 0.0), np.where(keep, loss, 0.0)]).astype(float)


def brier_from_sums(sums: NDArray) -> NDArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[..., 1] / sums[..., 0]


def log_loss_from_sums(sums: NDArray) -> NDArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[..., 2] / sums[..., 0]


def brier_score(y_true: ArrayLike, p_unsafe: ArrayLike) -> float:
    """Mean squared error of P(unsafe); equals ``sklearn.metrics.brier_score_loss``.

    References
    ----------
    .. [1] Brier, G. W. (1950). Verification of forecasts expressed in terms of
       probability. Monthly Weather Review, 78(1), 1-3.
       doi:10.1175/1520-0493(1950)078<0001:VOFEIT>2.0.CO;2

    Examples
    --------
    >>> round(brier_score([0, 1], [0.2, 0.6]), 4)
    0.1
    """
    y, p = _checked(y_true, p_unsafe)
    return float(brier_from_sums(brier_item_sums(y, p).sum(axis=0)))


def log_loss(y_true: ArrayLike, p_unsafe: ArrayLike) -> float:
    """Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].

    Examples
    --------
    >>> round(log_loss([0, 1], [0.5, 0.5]), 4)
    0.6931
    """
    y, p = _checked(y_true, p_unsafe)
    return float(log_loss_from_sums(brier_item_sums(y, p).sum(axis=0)))


BRIER_TERMS = ("reliability", "resolution", "uncertainty", "within_bin_variance", "within_bin_covariance")


def brier_moment_item_sums(y_true: ArrayLike, p_unsafe: ArrayLike) -> NDArray[np.float64]:
    """Per-item ``[p^2, p * y]`` (zeros for missing pairs): with the binned sums, the within-bin terms."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(p_unsafe, dtype=float)
    keep = ~(np.isnan(y) | np.isnan(p))
    p0, y0 = np.where(keep, p, 0.0), np.where(keep, y, 0.0)
    return np.column_stack([p0**2, p0 * y0])


def brier_decomposition_from_sums(sums: NDArray) -> NDArray:
    """The five terms of :func:`brier_decomposition`, in ``BRIER_TERMS`` order, shape ``(..., 5)``.

    ``sums`` is summed :func:`brier_moment_item_sums` followed by summed
    :func:`binned_item_sums`. With :math:`n_b, \\bar p_b, \\bar y_b` the bin
    counts and means, the within-bin variance is
    :math:`(\\sum_i p_i^2 - \\sum_b n_b \\bar p_b^2)/n` and the within-bin
    covariance :math:`(\\sum_i p_i y_i - \\sum_b n_b \\bar p_b \\bar y_b)/n`.
    """
    sum_p2, sum_py = sums[..., 0], sums[..., 1]
    counts, sum_p, sum_y = _bin_parts(sums[..., 2:])
    n = counts.sum(axis=-1)
    nonempty = counts > 0
    safe_counts = np.where(nonempty, counts, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = sum_y.sum(axis=-1) / n
        mean_p = np.where(nonempty, sum_p / safe_counts, 0.0)
        mean_y = np.where(nonempty, sum_y / safe_counts, 0.0)
        terms = (
            (counts * (mean_p - mean_y) ** 2).sum(axis=-1) / n,
            (counts * (mean_y - base[..., None]) ** 2).sum(axis=-1) / n,
            base * (1 - base),
            (sum_p2 - (counts * mean_p**2).sum(axis=-1)) / n,
            (sum_py - (counts * mean_p * mean_y).sum(axis=-1)) / n,
        )
    return np.stack(terms, axis=-1)


def brier_decomposition(
    y_true: ArrayLike, p_unsafe: ArrayLike, *, n_bins: int = 10, strategy: Strategy = "uniform"
) -> dict[str, float]:
    """Murphy's decomposition with the two within-bin terms binning adds (Stephenson et al. 2008).

    ``brier = reliability - resolution + uncertainty + within_bin_variance - 2 * within_bin_covariance``
    holds exactly. ``reliability`` (calibration loss, lower is better),
    ``resolution`` (higher is better) and ``uncertainty`` (of the reference
    alone) are Murphy's terms on the bin means; ``within_bin_variance`` (>= 0)
    is the spread of the probabilities inside their bins and
    ``within_bin_covariance`` their covariance with the outcome inside the
    bins (either sign). Both are zero when every bin holds one probability.

    References
    ----------
    .. [1] Murphy, A. H. (1973). A new vector partition of the probability
       score. Journal of Applied Meteorology, 12(4), 595-600.
       doi:10.1175/1520-0450(1973)012<0595:ANVPOT>2.0.CO;2
    .. [2] Stephenson, D. B., Coelho, C. A. S., & Jolliffe, I. T. (2008). Two
       extra components in the Brier score decomposition. Weather and
       Forecasting, 23(4), 752-757. doi:10.1175/2007WAF2006116.1

    Examples
    --------
    >>> parts = brier_decomposition([0, 0, 1, 1], [0.2, 0.2, 0.7, 0.7], n_bins=5)
    >>> {k: round(v, 4) for k, v in parts.items()}
    {'brier': 0.065, 'reliability': 0.065, 'resolution': 0.25, 'uncertainty': 0.25, 'within_bin_variance': 0.0, 'within_bin_covariance': 0.0}
    """
    y, p = _checked(y_true, p_unsafe)
    edges = bin_edges(p, n_bins=n_bins, strategy=strategy)
    sums = np.hstack([brier_moment_item_sums(y, p), binned_item_sums(y, p, edges)]).sum(axis=0)
    terms = brier_decomposition_from_sums(sums)
    return {"brier": float(np.mean((p - y) ** 2)), **{name: float(value) for name, value in zip(BRIER_TERMS, terms, strict=True)}}


def reliability_curve(
    y_true: ArrayLike, p_unsafe: ArrayLike, *, n_bins: int = 10, strategy: Strategy = "uniform", level: float = 0.95
) -> pd.DataFrame:
    """Reliability-diagram data: one row per bin, empty bins included.

    Columns: ``bin``, ``low_edge``, ``high_edge``, ``count``, ``mean_p``,
    ``frac_unsafe``, ``ci_low``, ``ci_high`` (Wilson interval of
    ``frac_unsafe``; NaN for an empty bin).

    References
    ----------
    .. [1] Niculescu-Mizil, A., & Caruana, R. (2005). Predicting good
       probabilities with supervised learning. ICML. doi:10.1145/1102351.1102430

    Examples
    --------
    >>> reliability_curve([0, 1, 1], [0.1, 0.8, 0.9], n_bins=2)["count"].tolist()
    [1, 2]
    """
    y, p = _checked(y_true, p_unsafe)
    edges = bin_edges(p, n_bins=n_bins, strategy=strategy)
    counts, sum_p, sum_y = _bin_parts(binned_item_sums(y, p, edges).sum(axis=0))
    low, high = wilson_interval(sum_y, counts, level=level)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "bin": np.arange(len(counts)),
                "low_edge": edges[:-1],
                "high_edge": edges[1:],
                "count": counts.astype(int),
                "mean_p": np.where(counts > 0, sum_p / counts, np.nan),
                "frac_unsafe": np.where(counts > 0, sum_y / counts, np.nan),
                "ci_low": low,
                "ci_high": high,
            }
        )


# ---------------------------------------------------------------- ranking: AUROC, AUPRC


LEVEL_DECIMALS = 4  # rounding of the score levels when there are more than max_levels


def score_levels(p_unsafe: ArrayLike, *, max_levels: int = 2000) -> NDArray[np.float64]:
    """Distinct score levels, rounded to ``LEVEL_DECIMALS`` decimals when there are more than ``max_levels``."""
    p = np.asarray(p_unsafe, dtype=float)
    p = p[~np.isnan(p)]
    levels = np.unique(p)
    return np.unique(np.round(p, LEVEL_DECIMALS)) if len(levels) > max_levels else levels


def ranking_item_sums(y_true: ArrayLike, p_unsafe: ArrayLike, levels: NDArray) -> sparse.csr_array:
    """Per-item one-hot over score levels, positives then negatives: sparse, shape (n, 2L).

    Each item with a label and a score fills one column (its level, offset
    by ``L`` for a negative), so the array holds one value per item whatever
    the number of levels. A score not among ``levels`` (which
    :func:`score_levels` rounded) takes the level of its rounded value.
    Summed over items with weights, the two halves are the weighted score
    histograms of the positives and the negatives, from which
    :func:`auroc_from_sums` and :func:`auprc_from_sums` read the statistics.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(p_unsafe, dtype=float)
    rows = np.flatnonzero(~(np.isnan(y) | np.isnan(p)))
    scores = p[rows]
    last = max(len(levels) - 1, 0)
    index = np.clip(np.searchsorted(levels, scores), 0, last)
    if len(levels):
        # Per item: a score outside the levels (rounded levels, or an item outside the subset the levels
        # came from) takes its rounded value's level; a score among them keeps its own.
        inexact = levels[index] != scores
        index[inexact] = np.clip(np.searchsorted(levels, np.round(scores[inexact], LEVEL_DECIMALS)), 0, last)
    columns = index + np.where(y[rows] == 1, 0, len(levels))
    return sparse.csr_array((np.ones(len(rows)), (rows, columns)), shape=(len(p), 2 * len(levels)))


def _ranking_parts(sums: NDArray) -> tuple[NDArray, NDArray]:
    n_levels = sums.shape[-1] // 2
    return sums[..., :n_levels], sums[..., n_levels:]


def auroc_from_sums(sums: NDArray) -> NDArray:
    """Area under the ROC curve (ties count one half) from level-wise positive/negative counts.

    This is the Mann-Whitney statistic :math:`U / (n_1 n_0)`; with weighted
    counts it equals ``sklearn.metrics.roc_auc_score`` with ``sample_weight``.
    """
    pos, neg = _ranking_parts(sums)
    below = np.cumsum(neg, axis=-1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=-1) / (pos.sum(axis=-1) * neg.sum(axis=-1))


def auroc_gradient(total: NDArray) -> NDArray:
    """Gradient of :func:`auroc_from_sums` at the totals ``(2L,)``: shape ``(2L,)``.

    For a positive at level :math:`l`: :math:`(V_{10}(l) - A) / n_1`, with
    :math:`V_{10}(l)` the share of negatives it outranks (ties one half); for
    a negative: :math:`(V_{01}(l) - A) / n_0`. These are DeLong's placement
    values, so the linearized variance of summed cluster influences is the
    clustered DeLong variance of Obuchowski (1997).

    References
    ----------
    .. [1] DeLong, E. R., DeLong, D. M., & Clarke-Pearson, D. L. (1988).
       Comparing the areas under two or more correlated receiver operating
       characteristic curves: a nonparametric approach. Biometrics, 44(3),
       837-845. doi:10.2307/2531595
    .. [2] Obuchowski, N. A. (1997). Nonparametric analysis of clustered ROC
       curve data. Biometrics, 53(2), 567-578. doi:10.2307/2533958
    """
    pos, neg = _ranking_parts(np.asarray(total, dtype=float))
    n_pos, n_neg = pos.sum(), neg.sum()
    area = auroc_from_sums(total)
    below = np.cumsum(neg) - neg
    above = pos.sum() - np.cumsum(pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.concatenate([((below + 0.5 * neg) / n_neg - area) / n_pos, ((above + 0.5 * pos) / n_pos - area) / n_neg])


def auprc_from_sums(sums: NDArray) -> NDArray:
    """Average precision (sklearn's step-wise definition, thresholds at the score levels)."""
    pos, neg = _ranking_parts(sums)
    pos, neg = pos[..., ::-1], neg[..., ::-1]
    tp, fp = np.cumsum(pos, axis=-1), np.cumsum(neg, axis=-1)
    total = pos.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        return (pos / total * precision).sum(axis=-1)


def auprc_gradient(total: NDArray) -> NDArray:
    """Gradient of :func:`auprc_from_sums` at the totals ``(2L,)``: shape ``(2L,)``.

    With levels in decreasing score, :math:`AP = \\sum_l pos_l\\,prec_l / n_1`
    and :math:`prec_l = tp_l / (tp_l + fp_l)`, where :math:`tp_l, fp_l` count
    the items scored at or above level :math:`l`. A positive at level
    :math:`m` adds :math:`prec_m` and raises every :math:`tp_l, l \\ge m`; a
    negative raises every :math:`fp_l, l \\ge m`.
    """
    pos, neg = _ranking_parts(np.asarray(total, dtype=float))
    pos, neg = pos[::-1], neg[::-1]
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    n_pos = pos.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        scored = tp + fp > 0
        precision = np.where(scored, tp / np.where(scored, tp + fp, 1), 0.0)
        # Sums over l >= m of pos_l d(prec_l)/d(tp_l) and pos_l d(prec_l)/d(fp_l): reversed cumulative sums.
        via_tp = np.cumsum((pos * np.where(scored, fp / np.where(scored, tp + fp, 1) ** 2, 0.0))[::-1])[::-1]
        via_fp = np.cumsum((pos * np.where(scored, -tp / np.where(scored, tp + fp, 1) ** 2, 0.0))[::-1])[::-1]
        average = (pos * precision).sum() / n_pos
        d_pos = (precision + via_tp - average) / n_pos
        d_neg = via_fp / n_pos
    return np.concatenate([d_pos[::-1], d_neg[::-1]])


def auroc(y_true: ArrayLike, p_unsafe: ArrayLike) -> float:
    """Area under the ROC curve of P(unsafe); equals ``sklearn.metrics.roc_auc_score``.

    Examples
    --------
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, p = _checked(y_true, p_unsafe)
    levels = np.unique(p)
    return float(auroc_from_sums(ranking_item_sums(y, p, levels).sum(axis=0)))


def auprc(y_true: ArrayLike, p_unsafe: ArrayLike) -> float:
    """Average precision of P(unsafe); equals ``sklearn.metrics.average_precision_score``.

    Examples
    --------
    >>> round(auprc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    y, p = _checked(y_true, p_unsafe)
    levels = np.unique(p)
    return float(auprc_from_sums(ranking_item_sums(y, p, levels).sum(axis=0)))


# ---------------------------------------------------------------- recalibration, held out


Recalibration = Literal["platt", "temperature", "isotonic"]


def _logit(p: NDArray) -> NDArray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def _fit_predict(method: Recalibration, p_train: NDArray, y_train: NDArray, p_test: NDArray) -> NDArray:
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p_train, y_train)
        return model.predict(p_test)
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        if len(np.unique(y_train)) < 2:
            return np.full(len(p_test), float(y_train.mean()))
        model = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p_train)[:, None], y_train)
        return model.predict_proba(_logit(p_test)[:, None])[:, 1]
    from scipy.optimize import minimize_scalar

    z = _logit(p_train)

    def loss(log_t: float) -> float:
        q = np.clip(expit(z / np.exp(log_t)), EPS, 1 - EPS)
        return float(-(y_train * np.log(q) + (1 - y_train) * np.log(1 - q)).mean())

    temperature = float(np.exp(minimize_scalar(loss, bounds=(-5, 5), method="bounded").x))
    return expit(_logit(p_test) / temperature)


def recalibrate_cv(
    y_true: ArrayLike,
    p_unsafe: ArrayLike,
    *,
    method: Recalibration = "platt",
    groups: ArrayLike | None = None,
    n_splits: int = 5,
    rng: np.random.Generator | int | None = None,
) -> NDArray[np.float64]:
    """Held-out recalibrated probabilities: each item is predicted by a map fitted on other folds.

    Folds keep whole ``groups`` (clusters) together, so items of one behaviour
    never sit on both sides. Evaluate the returned probabilities with any
    calibration statistic; they are out-of-sample by construction.

    References
    ----------
    .. [1] Platt, J. (1999). Probabilistic outputs for support vector machines.
    .. [2] Guo, C., Pleiss, G., Sun, Y., & Weinberger, K. Q. (2017). On
       calibration of modern neural networks. ICML. arXiv:1706.04599
    .. [3] Zadrozny, B., & Elkan, C. (2002). Transforming classifier scores
       into accurate multiclass probability estimates. KDD. doi:10.1145/775047.775151
    """
    if method not in ("platt", "temperature", "isotonic"):
        raise ValueError(f"The 'method' parameter must be one of ('platt', 'temperature', 'isotonic'). Got {method!r} instead.")
    y, p = _checked(y_true, p_unsafe)
    labels = np.arange(len(y)) if groups is None else np.asarray(groups, dtype=object)[
        ~(np.isnan(np.asarray(y_true, dtype=float)) | np.isnan(np.asarray(p_unsafe, dtype=float)))
    ]
    unique = np.unique(labels.astype(str))
    if len(unique) < 2:
        raise ValueError(f"recalibrate_cv needs items of at least 2 groups to fit on held-out folds. Got {len(unique)}.")
    generator = np.random.default_rng(rng)
    fold_of_group = dict(zip(unique, generator.permutation(len(unique)) % max(2, min(n_splits, len(unique))), strict=True))
    folds = np.array([fold_of_group[str(g)] for g in labels])
    out = np.empty(len(y))
    for fold in np.unique(folds):
        test = folds == fold
        out[test] = _fit_predict(method, p[~test], y[~test], p[test])
    return out
