"""Agreement among raters (judges and/or humans), binary or multi-class, with missing ratings.

Ratings are arrays of shape ``(n_items, n_raters)`` of category codes, ``NaN``
for a missing rating. Every coefficient is computed from per-item sufficient
statistics summed over items (``*_item_sums`` then ``*_from_sums``), so the
same code gives the point estimate and, through
:func:`judgekit.stats.resampling.bootstrap_ci`, its cluster-bootstrap interval.

Conventions for missing ratings follow Gwet (2014) as implemented in irrCAC:
an item enters observed agreement when it has at least two ratings, and
category prevalences are averaged over items with at least one rating.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Level = Literal["nominal", "ordinal", "interval"]
LEVELS = ("nominal", "ordinal", "interval")


# ---------------------------------------------------------------- input handling


def as_ratings(ratings: ArrayLike, *, n_raters: int | None = None, name: str = "ratings") -> NDArray[np.float64]:
    """Validate a ratings array of shape (n_items, n_raters)."""
    try:
        array = np.asarray(ratings, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"The {name!r} parameter must hold numeric category codes (NaN for missing).") from None
    if array.ndim != 2:
        raise ValueError(f"The {name!r} parameter must have shape (n_items, n_raters). Got shape {array.shape} instead.")
    if n_raters is not None and array.shape[1] != n_raters:
        raise ValueError(f"The {name!r} parameter must have {n_raters} columns (raters). Got {array.shape[1]} instead.")
    if np.isinf(array).any():
        raise ValueError(f"The {name!r} parameter must not contain infinite values.")
    return array


def categories_of(ratings: NDArray[np.float64], labels: ArrayLike | None = None) -> NDArray[np.float64]:
    """The category codes: ``labels`` when given (checked to cover the data), else those observed."""
    observed = np.unique(ratings[~np.isnan(ratings)])
    if labels is None:
        return observed
    declared = np.unique(np.asarray(labels, dtype=float))
    unknown = np.setdiff1d(observed, declared)
    if len(unknown):
        raise ValueError(f"The ratings contain codes {unknown.tolist()} that are not in 'labels' {declared.tolist()}.")
    return declared


def category_counts(ratings: NDArray[np.float64], categories: NDArray[np.float64]) -> NDArray[np.float64]:
    """Counts n_ik of raters putting item i in category k, shape (n_items, n_categories)."""
    return (ratings[:, :, None] == categories[None, None, :]).sum(axis=1).astype(float)


# ---------------------------------------------------------------- multi-rater: percent agreement, Fleiss, Gwet


def multirater_item_sums(counts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-item ``[usable, P_i * usable, rated, (n_ik / r_i) * rated for each k]``.

    ``usable`` marks items with >= 2 ratings, ``P_i`` is the share of agreeing
    rater pairs on item i, ``rated`` marks items with >= 1 rating.
    """
    r = counts.sum(axis=1)
    usable = r >= 2
    rated = r >= 1
    with np.errstate(invalid="ignore", divide="ignore"):
        pairs = np.where(usable, (counts * (counts - 1)).sum(axis=1) / (r * (r - 1)), 0.0)
        shares = np.where(rated[:, None], counts / r[:, None], 0.0)
    return np.column_stack([usable, pairs, rated, shares]).astype(float)


def _pa_and_prevalence(sums: NDArray) -> tuple[NDArray, NDArray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[..., 1] / sums[..., 0], sums[..., 3:] / sums[..., 2:3]


def percent_agreement_from_sums(sums: NDArray) -> NDArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[..., 1] / sums[..., 0]


def fleiss_kappa_from_sums(sums: NDArray) -> NDArray:
    p_a, prevalence = _pa_and_prevalence(sums)
    p_e = (prevalence**2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isclose(p_e, 1.0), np.nan, (p_a - p_e) / (1 - p_e))


def gwet_ac1_from_sums(sums: NDArray) -> NDArray:
    p_a, prevalence = _pa_and_prevalence(sums)
    n_categories = prevalence.shape[-1]
    if n_categories < 2:
        return np.full(p_a.shape, np.nan)
    p_e = (prevalence * (1 - prevalence)).sum(axis=-1) / (n_categories - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isclose(p_e, 1.0), np.nan, (p_a - p_e) / (1 - p_e))


def percent_agreement(ratings: ArrayLike) -> float:
    """Share of agreeing rater pairs, averaged over items with at least two ratings.

    Parameters
    ----------
    ratings : array-like of shape (n_items, n_raters)
        Category codes; ``NaN`` for a missing rating.

    Returns
    -------
    float
        In [0, 1]; ``nan`` when no item has two ratings.

    Notes
    -----
    With two raters this is the observed agreement :math:`p_o` of Cohen
    (1960); with more, each item contributes its share of agreeing pairs
    :math:`P_i` (Fleiss 1971).

    References
    ----------
    .. [1] Fleiss, J. L. (1971). Measuring nominal scale agreement among many
       raters. Psychological Bulletin, 76(5), 378-382. doi:10.1037/h0031619

    Examples
    --------
    >>> percent_agreement([[1, 1], [0, 1], [0, 0], [1, float("nan")]])
    0.6666666666666666
    """
    array = as_ratings(ratings)
    sums = multirater_item_sums(category_counts(array, categories_of(array))).sum(axis=0)
    return float(percent_agreement_from_sums(sums))


def fleiss_kappa(ratings: ArrayLike, *, labels: ArrayLike | None = None) -> float:
    """Fleiss' kappa for any number of raters, generalised to missing ratings.

    Parameters
    ----------
    ratings : array-like of shape (n_items, n_raters)
        Category codes; ``NaN`` for a missing rating.
    labels : array-like, optional
        All categories of the scale; by default those observed (Fleiss' kappa
        does not depend on unused categories).

    Returns
    -------
    float
        :math:`(p_a - p_e) / (1 - p_e)` with :math:`p_e = \\sum_k \\pi_k^2`;
        ``nan`` when :math:`p_e = 1` (everyone used one category).

    Notes
    -----
    Equals ``statsmodels.stats.inter_rater.fleiss_kappa`` on complete data and
    Gwet's generalised Fleiss kappa with missing ratings (both checked in the
    tests). With two raters it equals Scott's pi.

    References
    ----------
    .. [1] Fleiss, J. L. (1971). Measuring nominal scale agreement among many
       raters. Psychological Bulletin, 76(5), 378-382. doi:10.1037/h0031619
    .. [2] Gwet, K. L. (2014). Handbook of Inter-Rater Reliability, 4th ed.,
       chapter 5. Advanced Analytics.

    Examples
    --------
    >>> round(fleiss_kappa([[0, 0, 0], [1, 1, 0], [1, 1, 1], [0, 1, 0]]), 4)
    0.3333
    """
    array = as_ratings(ratings)
    sums = multirater_item_sums(category_counts(array, categories_of(array, labels))).sum(axis=0)
    return float(fleiss_kappa_from_sums(sums))


def gwet_ac1(ratings: ArrayLike, *, labels: ArrayLike | None = None) -> float:
    """Gwet's first-order agreement coefficient AC1, any number of raters, missing allowed.

    Parameters
    ----------
    ratings : array-like of shape (n_items, n_raters)
        Category codes; ``NaN`` for a missing rating.
    labels : array-like, optional
        All categories of the scale. Unlike kappa, AC1 depends on the number
        of categories q: pass the full label set (e.g. ``[0, 1]`` for
        safe/unsafe) when some category may be unused.

    Returns
    -------
    float
        :math:`(p_a - p_e)/(1 - p_e)` with
        :math:`p_e = \\sum_k \\pi_k (1 - \\pi_k) / (q - 1)`.

    Notes
    -----
    AC1 stays close to percent agreement when one category dominates, where
    kappa collapses (the kappa paradox), which is the usual situation for
    safety verdicts on aligned models.

    References
    ----------
    .. [1] Gwet, K. L. (2008). Computing inter-rater reliability and its
       variance in the presence of high agreement. British Journal of
       Mathematical and Statistical Psychology, 61(1), 29-48.
       doi:10.1348/000711006X126600

    Examples
    --------
    >>> round(gwet_ac1([[0, 0], [0, 0], [0, 0], [0, 1]]), 4)
    0.68
    """
    array = as_ratings(ratings)
    sums = multirater_item_sums(category_counts(array, categories_of(array, labels))).sum(axis=0)
    return float(gwet_ac1_from_sums(sums))


def item_agreement(ratings: ArrayLike) -> NDArray[np.float64]:
    """Per-item share of agreeing rater pairs (``nan`` for items with fewer than two ratings).

    Examples
    --------
    >>> item_agreement([[1, 1, 1], [1, 0, 0], [1, float("nan"), float("nan")]]).round(3).tolist()
    [1.0, 0.333, nan]
    """
    array = as_ratings(ratings)
    sums = multirater_item_sums(category_counts(array, categories_of(array)))
    return np.where(sums[:, 0] > 0, sums[:, 1], np.nan)


# ---------------------------------------------------------------- Krippendorff's alpha


def krippendorff_item_sums(counts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each item's contribution to the coincidence matrix, flattened: shape (n_items, K*K).

    Only pairable items (>= 2 ratings) contribute:
    :math:`o_{ck} = \\sum_u (n_{uc} n_{uk} - [c = k] n_{uc}) / (m_u - 1)`.
    """
    m = counts.sum(axis=1)
    pairable = m >= 2
    outer = counts[:, :, None] * counts[:, None, :]
    outer -= np.eye(counts.shape[1])[None] * counts[:, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        contribution = np.where(pairable[:, None, None], outer / (m - 1)[:, None, None], 0.0)
    return contribution.reshape(len(counts), -1)


def _squared_distances(level: Level, values: NDArray, marginals: NDArray) -> NDArray:
    n_categories = len(values)
    if level == "nominal":
        return np.broadcast_to(1.0 - np.eye(n_categories), (*marginals.shape[:-1], n_categories, n_categories))
    if level == "interval":
        delta = (values[:, None] - values[None, :]) ** 2
        return np.broadcast_to(delta, (*marginals.shape[:-1], n_categories, n_categories))
    cumulative = np.cumsum(marginals, axis=-1)
    low = np.minimum.outer(np.arange(n_categories), np.arange(n_categories))
    high = np.maximum.outer(np.arange(n_categories), np.arange(n_categories))
    between = cumulative[..., high] - cumulative[..., low] + marginals[..., low]
    return (between - (marginals[..., :, None] + marginals[..., None, :]) / 2) ** 2


def krippendorff_alpha_from_sums(sums: NDArray, *, values: NDArray, level: Level) -> NDArray:
    """Alpha from a summed, flattened coincidence matrix ``(..., K*K)``."""
    n_categories = len(values)
    coincidence = sums.reshape(*sums.shape[:-1], n_categories, n_categories)
    marginals = coincidence.sum(axis=-1)
    total = marginals.sum(axis=-1)
    delta = _squared_distances(level, np.asarray(values, dtype=float), marginals)
    observed = (coincidence * delta).sum(axis=(-2, -1))
    expected = (marginals[..., :, None] * marginals[..., None, :] * delta).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (total - 1.0) * observed / expected
    return np.where(expected > 0, alpha, np.nan)


def krippendorff_alpha(ratings: ArrayLike, *, level: Level = "nominal") -> float:
    """Krippendorff's alpha for any number of raters with missing ratings.

    Parameters
    ----------
    ratings : array-like of shape (n_items, n_raters)
        Values (category codes for nominal/ordinal, numbers for interval);
        ``NaN`` for missing. Note the orientation: items in rows, the transpose
        of the ``krippendorff`` package's ``reliability_data``.
    level : {"nominal", "ordinal", "interval"}, default="nominal"
        Level of measurement. The default is nominal, the right choice for
        safe/unsafe labels (the ``krippendorff`` package defaults to interval).

    Returns
    -------
    float
        :math:`1 - D_o / D_e`; ``nan`` when no item has two ratings or only
        one value occurs (no expected disagreement).

    Notes
    -----
    Matches ``krippendorff.alpha`` at every level, with missing data (checked
    on random tables in the tests). Alpha can be zero or negative with very
    few disagreements when one value dominates; that is correct (Krippendorff
    2011), not a bug.

    References
    ----------
    .. [1] Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability.
       Annenberg School for Communication, University of Pennsylvania.
       https://repository.upenn.edu/asc_papers/43
    .. [2] Hayes, A. F., & Krippendorff, K. (2007). Answering the call for a
       standard reliability measure for coding data. Communication Methods and
       Measures, 1(1), 77-89. doi:10.1080/19312450709336664

    Examples
    --------
    >>> round(krippendorff_alpha([[0, 0], [1, 1], [0, 1], [1, 1]]), 4)
    0.5333
    """
    if level not in LEVELS:
        raise ValueError(f"The 'level' parameter of krippendorff_alpha must be one of {LEVELS}. Got {level!r} instead.")
    if level == "interval":
        return krippendorff_alpha_interval(ratings)
    if level == "ordinal":
        return krippendorff_alpha_ordinal(ratings)
    array = as_ratings(ratings)
    values = categories_of(array)
    sums = krippendorff_item_sums(category_counts(array, values)).sum(axis=0)
    return float(krippendorff_alpha_from_sums(sums, values=values, level=level))


# ---------------------------------------------------------------- two raters: Cohen, Scott, PABAK, indices


def two_rater_item_sums(first: ArrayLike, second: ArrayLike, categories: NDArray) -> NDArray[np.float64]:
    """Per-item ``[both, agree, first==k..., second==k...]`` for all categories but the last.

    Zeros where either rating is missing. The last category's counts follow
    from ``both`` minus the others, so K categories need 2K columns, not 2K+2:
    the bootstrap's matrix product is that much smaller.
    """
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"The two raters must be 1-d of equal length. Got {a.shape} and {b.shape} instead.")
    both = ~(np.isnan(a) | np.isnan(b))
    leading = np.asarray(categories, dtype=float)[:-1]
    first_k = (a[:, None] == leading[None, :]) & both[:, None]
    second_k = (b[:, None] == leading[None, :]) & both[:, None]
    return np.column_stack([both, both & (a == b), first_k, second_k]).astype(float)


def _two_rater_parts(sums: NDArray) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    n_leading = (sums.shape[-1] - 2) // 2
    n = sums[..., 0]
    first = sums[..., 2 : 2 + n_leading]
    second = sums[..., 2 + n_leading :]
    first = np.concatenate([first, (n - first.sum(axis=-1))[..., None]], axis=-1)
    second = np.concatenate([second, (n - second.sum(axis=-1))[..., None]], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return n, sums[..., 1] / n, first / n[..., None], second / n[..., None]


def cohen_kappa_from_sums(sums: NDArray) -> NDArray:
    _, p_o, first, second = _two_rater_parts(sums)
    p_e = (first * second).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isclose(p_e, 1.0), np.nan, (p_o - p_e) / (1 - p_e))


def scott_pi_from_sums(sums: NDArray) -> NDArray:
    _, p_o, first, second = _two_rater_parts(sums)
    p_e = (((first + second) / 2) ** 2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isclose(p_e, 1.0), np.nan, (p_o - p_e) / (1 - p_e))


def two_rater_agreement_from_sums(sums: NDArray) -> NDArray:
    return _two_rater_parts(sums)[1]


def pabak_from_sums(sums: NDArray) -> NDArray:
    _, p_o, first, _ = _two_rater_parts(sums)
    n_categories = first.shape[-1]
    return (n_categories * p_o - 1) / (n_categories - 1) if n_categories >= 2 else np.full(p_o.shape, np.nan)


def prevalence_index_from_sums(sums: NDArray) -> NDArray:
    """Binary only: (a - d) / n with a = both rate 1, d = both rate 0 (Byrt et al. 1993)."""
    _, _, first, second = _two_rater_parts(sums)
    both_one = (first[..., 1] + second[..., 1]) / 2
    both_zero = (first[..., 0] + second[..., 0]) / 2
    # With agreement cells a, d and disagreement b, c: first_1 + second_1 = 2a + b + c, so
    # (first_1 + second_1 - first_0 - second_0) / 2 = a - d.
    return both_one - both_zero


def bias_index_from_sums(sums: NDArray) -> NDArray:
    """Binary only: (b - c) / n, b = first rates 1 and second 0 (Byrt et al. 1993)."""
    _, _, first, second = _two_rater_parts(sums)
    return first[..., 1] - second[..., 1]


def _two_rater_sums(ratings: ArrayLike, labels: ArrayLike | None) -> NDArray:
    array = as_ratings(ratings, n_raters=2)
    categories = categories_of(array, labels)
    return two_rater_item_sums(array[:, 0], array[:, 1], categories).sum(axis=0)


def cohen_kappa(ratings: ArrayLike, *, labels: ArrayLike | None = None) -> float:
    """Cohen's kappa between two raters, on items both rated.

    Parameters
    ----------
    ratings : array-like of shape (n_items, 2)
        Category codes of the two raters; ``NaN`` for missing. Items with a
        missing rating are left out.
    labels : array-like, optional
        The categories; by default those observed.

    Returns
    -------
    float
        :math:`(p_o - p_e) / (1 - p_e)`, :math:`p_e = \\sum_k p_{1k} p_{2k}`;
        ``nan`` when no item is rated by both or :math:`p_e = 1`.

    Notes
    -----
    Matches ``sklearn.metrics.cohen_kappa_score`` and
    ``statsmodels.stats.inter_rater.cohens_kappa`` (checked in the tests).
    With skewed prevalence a high :math:`p_o` can come with a low kappa (the
    kappa paradox): report percent agreement, PABAK and the prevalence and
    bias indices beside it.

    References
    ----------
    .. [1] Cohen, J. (1960). A coefficient of agreement for nominal scales.
       Educational and Psychological Measurement, 20(1), 37-46.
       doi:10.1177/001316446002000104

    Examples
    --------
    >>> round(cohen_kappa([[1, 1], [0, 1], [0, 0], [1, 1]]), 4)
    0.5
    """
    return float(cohen_kappa_from_sums(_two_rater_sums(ratings, labels)))


def scott_pi(ratings: ArrayLike, *, labels: ArrayLike | None = None) -> float:
    """Scott's pi between two raters (chance from the pooled category shares).

    References
    ----------
    .. [1] Scott, W. A. (1955). Reliability of content analysis: The case of
       nominal scale coding. Public Opinion Quarterly, 19(3), 321-325.
       doi:10.1086/266577

    Examples
    --------
    >>> round(scott_pi([[1, 1], [0, 1], [0, 0], [1, 1]]), 4)
    0.4667
    """
    return float(scott_pi_from_sums(_two_rater_sums(ratings, labels)))


def pabak(ratings: ArrayLike, *, labels: ArrayLike | None = None) -> float:
    """Prevalence- and bias-adjusted kappa, :math:`(q p_o - 1)/(q - 1)` (``2 p_o - 1`` for binary).

    References
    ----------
    .. [1] Byrt, T., Bishop, J., & Carlin, J. B. (1993). Bias, prevalence and
       kappa. Journal of Clinical Epidemiology, 46(5), 423-429.
       doi:10.1016/0895-4356(93)90018-V

    Examples
    --------
    >>> pabak([[1, 1], [0, 1], [0, 0], [1, 1]])
    0.5
    >>> pabak([[1, 1]] * 3)
    1.0

    Without ``labels``, codes within {0, 1} are binary (q = 2) even when only
    one of them occurs; other codes use the categories observed, and one
    observed category then leaves q, and PABAK, undefined (NaN).
    """
    if labels is None and np.isin(as_ratings(ratings, n_raters=2), (0.0, 1.0, np.nan)).all():
        labels = [0.0, 1.0]
    return float(pabak_from_sums(_two_rater_sums(ratings, labels)))


def prevalence_index(ratings: ArrayLike) -> float:
    """Byrt's prevalence index (a - d)/n for binary ratings coded 0/1.

    Examples
    --------
    >>> prevalence_index([[1, 1], [1, 1], [0, 0], [1, 0]])
    0.25
    """
    return float(prevalence_index_from_sums(_two_rater_sums(ratings, [0, 1])))


def bias_index(ratings: ArrayLike) -> float:
    """Byrt's bias index (b - c)/n for binary ratings coded 0/1 (b: first says 1, second 0).

    Examples
    --------
    >>> bias_index([[1, 1], [1, 1], [0, 0], [1, 0]])
    0.25
    """
    return float(bias_index_from_sums(_two_rater_sums(ratings, [0, 1])))


def pairwise_cohen_kappa(ratings: ArrayLike, *, labels: ArrayLike | None = None) -> NDArray[np.float64]:
    """Matrix of Cohen's kappa for every pair of raters (diagonal 1 where defined).

    Examples
    --------
    >>> pairwise_cohen_kappa([[1, 1, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0]]).round(2).tolist()
    [[1.0, 0.5, 0.5], [0.5, 1.0, 0.2], [0.5, 0.2, 1.0]]
    """
    array = as_ratings(ratings)
    categories = categories_of(array, labels)
    n_raters = array.shape[1]
    out = np.eye(n_raters)
    for i in range(n_raters):
        for j in range(i + 1, n_raters):
            sums = two_rater_item_sums(array[:, i], array[:, j], categories).sum(axis=0)
            out[i, j] = out[j, i] = cohen_kappa_from_sums(sums)
    return out


# ---------------------------------------------------------------- graded scores: alpha (interval, ordinal), weighted
# kappa, Spearman's rho. Each is a function of summed per-item sufficient statistics (``*_item_sums`` then
# ``*_from_sums``), so the cluster bootstrap of :mod:`judgekit.stats.resampling` gives its interval.


def interval_alpha_item_sums(ratings: ArrayLike) -> NDArray[np.float64]:
    """Per-item ``[m_u, sum x, sum x^2, within]`` of pairable items (>= 2 values), zeros elsewhere.

    ``within`` is the item's interval disagreement :math:`\\sum_{i \\ne j} (x_i - x_j)^2 / (m_u - 1)
    = 2 (m_u \\sum x^2 - (\\sum x)^2) / (m_u - 1)`; four numbers per item whatever the number of distinct values.
    """
    array = as_ratings(ratings)
    present = ~np.isnan(array)
    m = present.sum(axis=1).astype(float)
    pairable = m >= 2
    values = np.where(present, array, 0.0)
    first, second = values.sum(axis=1), (values**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(pairable, 2.0 * (m * second - first**2) / (m - 1), 0.0)
    return np.column_stack([m, first, second, within]) * pairable[:, None]


def krippendorff_alpha_interval_from_sums(sums: NDArray) -> NDArray:
    """Interval alpha from summed ``[n, sum x, sum x^2, within]``: ``1 - (n - 1) D_o / (2 n sum x^2 - 2 (sum x)^2)``."""
    n, first, second, within = sums[..., 0], sums[..., 1], sums[..., 2], sums[..., 3]
    expected = 2.0 * (n * second - first**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (n - 1.0) * within / expected
    # Relative tolerance: a constant column leaves only rounding error in `expected`.
    return np.where(expected > 1e-12 * np.maximum(n * second, 1e-300), alpha, np.nan)


def krippendorff_alpha_interval(ratings: ArrayLike) -> float:
    """Krippendorff's alpha at the interval level, any number of raters, missing allowed, any values.

    Parameters
    ----------
    ratings : array-like of shape (n_items, n_raters)
        Numeric scores (e.g. 0-3 or 0-100 judge scores); ``NaN`` for a missing score.

    Returns
    -------
    float
        :math:`1 - D_o / D_e` with squared differences as the distance; ``nan`` when no item has two
        scores or all pairable scores are equal.

    Notes
    -----
    Computed from four sums per item (the coincidence matrix is never built), so scales with many
    distinct values (0-100) cost no more than binary ones. Matches ``krippendorff.alpha(...,
    level_of_measurement="interval")`` (checked on random tables in the tests).

    References
    ----------
    .. [1] Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability.
       Annenberg School for Communication, University of Pennsylvania.
       https://repository.upenn.edu/asc_papers/43

    Examples
    --------
    >>> round(krippendorff_alpha_interval([[0, 0], [3, 2], [1, 1], [2, 3]]), 4)
    0.825
    """
    return float(krippendorff_alpha_interval_from_sums(interval_alpha_item_sums(ratings).sum(axis=0)))


def krippendorff_alpha_ordinal(ratings: ArrayLike, *, values: ArrayLike | None = None) -> float:
    """Krippendorff's alpha at the ordinal level, any number of raters, missing allowed.

    Parameters
    ----------
    ratings : array-like of shape (n_items, n_raters)
        Ordered scores (e.g. 0-3); ``NaN`` for a missing score.
    values : array-like, optional
        The scale's value domain (a judge's declared scale, e.g. ``[0, 1, 2, 3]``); scores outside it
        are an error. By default the values observed.

    Returns
    -------
    float
        :math:`1 - D_o / D_e` with Krippendorff's ordinal distance (the number of pairable values
        ranked between two values); ``nan`` when no item has two scores or one value occurs.

    Notes
    -----
    Matches ``krippendorff.alpha(..., level_of_measurement="ordinal", value_domain=values)``
    (checked on random tables in the tests).

    References
    ----------
    .. [1] Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability.
       Annenberg School for Communication, University of Pennsylvania.
       https://repository.upenn.edu/asc_papers/43

    Examples
    --------
    >>> round(krippendorff_alpha_ordinal([[0, 0], [3, 1], [1, 1], [2, 3]], values=[0, 1, 2, 3]), 4)
    0.6747
    """
    array = as_ratings(ratings)
    domain = categories_of(array, values)
    sums = krippendorff_item_sums(category_counts(array, domain)).sum(axis=0)
    return float(krippendorff_alpha_from_sums(sums, values=domain, level="ordinal"))


def pair_table_item_sums(first: ArrayLike, second: ArrayLike, first_values: NDArray,
                         second_values: NDArray) -> NDArray[np.float64]:
    """One-hot cell of each item's (first, second) score pair in the ``K x L`` table, flattened; zeros where either is missing.

    Raises ``ValueError`` for a score outside its value list.
    """
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"The two raters must be 1-d of equal length. Got {a.shape} and {b.shape} instead.")
    both = ~(np.isnan(a) | np.isnan(b))
    out = np.zeros((len(a), len(first_values) * len(second_values)))
    if not both.any():
        return out
    row = np.searchsorted(first_values, a)
    column = np.searchsorted(second_values, b)
    for codes, scores, domain in ((row, a, first_values), (column, b, second_values)):
        inside = np.clip(codes, 0, len(domain) - 1)
        if np.any(both & (domain[inside] != scores)):
            unknown = sorted(set(scores[both & (domain[inside] != scores)].tolist()))
            raise ValueError(f"The ratings contain scores {unknown} that are not in the value domain {domain.tolist()}.")
    index = np.flatnonzero(both)
    out[index, row[index] * len(second_values) + column[index]] = 1.0
    return out


def weighted_kappa_from_sums(sums: NDArray, *, values: NDArray, power: int) -> NDArray:
    """Weighted kappa from a summed, flattened ``K x K`` table of score pairs; weights ``|x - y| ** power``."""
    domain = np.asarray(values, dtype=float)
    table = sums.reshape(*sums.shape[:-1], len(domain), len(domain))
    weights = np.abs(domain[:, None] - domain[None, :]) ** power
    n = table.sum(axis=(-2, -1))
    observed = (table * weights).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = (table.sum(axis=-1)[..., :, None] * table.sum(axis=-2)[..., None, :] * weights).sum(axis=(-2, -1)) / n
        kappa = 1.0 - observed / expected
    return np.where((n > 0) & (expected > 0), kappa, np.nan)


def _pair_domain(ratings: ArrayLike, values: ArrayLike | None) -> tuple[NDArray, NDArray]:
    array = as_ratings(ratings, n_raters=2)
    return array, categories_of(array, values)


def weighted_kappa_linear(ratings: ArrayLike, *, values: ArrayLike | None = None) -> float:
    """Cohen's weighted kappa with linear weights :math:`|x - y|`, two raters, items both scored.

    Parameters
    ----------
    ratings : array-like of shape (n_items, 2)
        Scores of the two raters; ``NaN`` for missing (the item is left out).
    values : array-like, optional
        The scale's value domain; by default the values observed. Weights are distances between the
        values themselves, so on consecutive integers (0-3, 1-10) this equals
        ``sklearn.metrics.cohen_kappa_score(a, b, labels=values, weights="linear")`` (checked in the tests).

    Returns
    -------
    float
        :math:`1 - \\sum w_{kl} o_{kl} / \\sum w_{kl} e_{kl}`; ``nan`` when no item is scored by both
        or the expected disagreement is zero.

    References
    ----------
    .. [1] Cohen, J. (1968). Weighted kappa: Nominal scale agreement with provision for scaled
       disagreement or partial credit. Psychological Bulletin, 70(4), 213-220. doi:10.1037/h0026256

    Examples
    --------
    >>> round(weighted_kappa_linear([[0, 0], [3, 2], [1, 1], [2, 3]]), 4)
    0.6
    """
    array, domain = _pair_domain(ratings, values)
    sums = pair_table_item_sums(array[:, 0], array[:, 1], domain, domain).sum(axis=0)
    return float(weighted_kappa_from_sums(sums, values=domain, power=1))


def weighted_kappa_quadratic(ratings: ArrayLike, *, values: ArrayLike | None = None) -> float:
    """Cohen's weighted kappa with quadratic weights :math:`(x - y)^2`, two raters, items both scored.

    Parameters
    ----------
    ratings : array-like of shape (n_items, 2)
        Scores of the two raters; ``NaN`` for missing (the item is left out).
    values : array-like, optional
        The scale's value domain; by default the values observed. On consecutive integers this equals
        ``sklearn.metrics.cohen_kappa_score(a, b, labels=values, weights="quadratic")``.

    Returns
    -------
    float
        Quadratic-weighted kappa; ``nan`` when undefined (see :func:`weighted_kappa_linear`).

    Notes
    -----
    With quadratic weights kappa approaches the intraclass correlation of the scores (Fleiss & Cohen 1973).

    References
    ----------
    .. [1] Cohen, J. (1968). Weighted kappa. Psychological Bulletin, 70(4), 213-220. doi:10.1037/h0026256
    .. [2] Fleiss, J. L., & Cohen, J. (1973). The equivalence of weighted kappa and the intraclass
       correlation coefficient as measures of reliability. Educational and Psychological Measurement,
       33(3), 613-619. doi:10.1177/001316447303300309

    Examples
    --------
    >>> round(weighted_kappa_quadratic([[0, 0], [3, 2], [1, 1], [2, 3]]), 4)
    0.8
    """
    array, domain = _pair_domain(ratings, values)
    sums = pair_table_item_sums(array[:, 0], array[:, 1], domain, domain).sum(axis=0)
    return float(weighted_kappa_from_sums(sums, values=domain, power=2))


def spearman_rho_from_sums(sums: NDArray, *, n_first: int, n_second: int) -> NDArray:
    """Spearman's rho from a summed, flattened ``K x L`` table of (first, second) score pairs.

    Mid-ranks of each level follow from the table's margins, so a resample's rho is computed with its
    own ranks (ties averaged, as ``scipy.stats.spearmanr``).
    """
    table = sums.reshape(*sums.shape[:-1], n_first, n_second)
    rows, columns = table.sum(axis=-1), table.sum(axis=-2)
    n = rows.sum(axis=-1)

    def centred_ranks(margin: NDArray) -> NDArray:
        return np.cumsum(margin, axis=-1) - margin + (margin + 1.0) / 2.0 - ((n + 1.0) / 2.0)[..., None]

    first, second = centred_ranks(rows), centred_ranks(columns)
    covariance = (table * first[..., :, None] * second[..., None, :]).sum(axis=(-2, -1))
    spread = (rows * first**2).sum(axis=-1) * (columns * second**2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = covariance / np.sqrt(spread)
    return np.where(spread > 0, rho, np.nan)


def spearman_rho(ratings: ArrayLike) -> float:
    """Spearman's rank correlation of two raters' scores, on items both scored.

    Parameters
    ----------
    ratings : array-like of shape (n_items, 2)
        Scores; ``NaN`` for missing (the item is left out).

    Returns
    -------
    float
        Pearson's correlation of the mid-ranks; ``nan`` when either rater is constant on the items
        both scored.

    Notes
    -----
    Rank correlation says whether two judges order responses alike, not whether they give the same
    score: a judge scoring every response one point higher has rho 1 and kappa below 1. Equals
    ``scipy.stats.spearmanr`` (checked in the tests).

    References
    ----------
    .. [1] Spearman, C. (1904). The proof and measurement of association between two things.
       American Journal of Psychology, 15(1), 72-101. doi:10.2307/1412159

    Examples
    --------
    >>> round(spearman_rho([[0, 0], [3, 2], [1, 1], [2, 3]]), 4)
    0.8
    """
    array = as_ratings(ratings, n_raters=2)
    both = ~np.isnan(array).any(axis=1)
    first, second = np.unique(array[both, 0]), np.unique(array[both, 1])
    sums = pair_table_item_sums(array[:, 0], array[:, 1], first, second).sum(axis=0)
    return float(spearman_rho_from_sums(sums, n_first=len(first), n_second=len(second)))
