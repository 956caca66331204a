"""Agreement between raters and rates of unsafe verdicts.

Ratings are arrays of shape ``(n_items, n_raters)``; ``NaN`` marks a missing
rating. Each statistic also has a ``*_from_sums`` form that takes summed
per-item sufficient statistics, so a bootstrap can resample clusters of items
without recomputing from raw ratings (the sacrebleu pattern).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _ratings(ratings: ArrayLike, *, n_raters: int | None = None, name: str = "ratings") -> NDArray[np.float64]:
    array = np.asarray(ratings, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"The {name!r} parameter must have shape (n_items, n_raters). Got shape {array.shape} instead.")
    if n_raters is not None and array.shape[1] != n_raters:
        raise ValueError(f"The {name!r} parameter must have {n_raters} columns (raters). Got {array.shape[1]} instead.")
    return array


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
    With two raters this is the plain observed agreement :math:`p_o` of Cohen
    (1960). With more raters each item contributes the share of agreeing pairs
    among its pairable ratings (Fleiss 1971, :math:`P_i`).

    References
    ----------
    .. [1] Cohen, J. (1960). A coefficient of agreement for nominal scales.
       Educational and Psychological Measurement, 20(1), 37-46.
       doi:10.1177/001316446002000104
    .. [2] Fleiss, J. L. (1971). Measuring nominal scale agreement among many
       raters. Psychological Bulletin, 76(5), 378-382. doi:10.1037/h0031619

    Examples
    --------
    >>> percent_agreement([[1, 1], [0, 1], [0, 0], [1, float("nan")]])
    0.6666666666666666
    """
    array = _ratings(ratings)
    observed = ~np.isnan(array)
    n_rated = observed.sum(axis=1)
    usable = n_rated >= 2
    if not usable.any():
        return float("nan")
    categories = np.unique(array[observed])
    counts = np.stack([(array == c).sum(axis=1) for c in categories], axis=1)[usable]
    pairs = n_rated[usable] * (n_rated[usable] - 1)
    return float(np.mean((counts * (counts - 1)).sum(axis=1) / pairs))


def cohen_kappa(ratings: ArrayLike, *, labels: ArrayLike | None = None) -> float:
    """Cohen's kappa between two raters, on items both rated.

    Parameters
    ----------
    ratings : array-like of shape (n_items, 2)
        Category codes of the two raters; ``NaN`` for a missing rating.
        Items with a missing rating are left out.
    labels : array-like, optional
        The categories; by default those observed.

    Returns
    -------
    float
        :math:`\\kappa = (p_o - p_e) / (1 - p_e)`; ``nan`` when no item is
        rated by both or when :math:`p_e = 1` (both raters constant and equal).

    Notes
    -----
    Matches ``sklearn.metrics.cohen_kappa_score`` on complete data (checked in
    the tests). With skewed prevalence a high :math:`p_o` can come with a low
    kappa (the kappa paradox); report percent agreement beside it.

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
    array = _ratings(ratings, n_raters=2)
    array = array[~np.isnan(array).any(axis=1)]
    if len(array) == 0:
        return float("nan")
    categories = np.unique(array) if labels is None else np.asarray(labels, dtype=float)
    first = (array[:, [0]] == categories).mean(axis=0)
    second = (array[:, [1]] == categories).mean(axis=0)
    p_o = float(np.mean(array[:, 0] == array[:, 1]))
    p_e = float(first @ second)
    if np.isclose(p_e, 1.0):
        return float("nan")
    return (p_o - p_e) / (1.0 - p_e)


def binary_agreement_sums(judge: ArrayLike, reference: ArrayLike) -> NDArray[np.float64]:
    """Per-item sufficient statistics for binary agreement.

    Returns an array of shape (n_items, 4): ``[1, agree, judge_unsafe,
    reference_unsafe]`` for items where both are observed, zeros elsewhere.
    """
    j = np.asarray(judge, dtype=float)
    r = np.asarray(reference, dtype=float)
    if j.shape != r.shape or j.ndim != 1:
        raise ValueError(f"judge and reference must be 1-d of equal length. Got {j.shape} and {r.shape} instead.")
    both = ~(np.isnan(j) | np.isnan(r))
    j0, r0 = np.where(both, j, 0.0), np.where(both, r, 0.0)
    return np.stack([both, both & (j0 == r0), j0, r0], axis=1).astype(float)


def percent_agreement_from_sums(sums: NDArray[np.float64]) -> NDArray[np.float64]:
    """``sums[..., :4]`` as from :func:`binary_agreement_sums`, summed over items."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[..., 1] / sums[..., 0]


def cohen_kappa_from_sums(sums: NDArray[np.float64]) -> NDArray[np.float64]:
    """Binary Cohen's kappa from summed :func:`binary_agreement_sums`; nan where p_e = 1."""
    with np.errstate(invalid="ignore", divide="ignore"):
        n = sums[..., 0]
        p_o = sums[..., 1] / n
        p_judge, p_ref = sums[..., 2] / n, sums[..., 3] / n
        p_e = p_judge * p_ref + (1 - p_judge) * (1 - p_ref)
        kappa = (p_o - p_e) / (1 - p_e)
    return np.where(np.isclose(p_e, 1.0), np.nan, kappa)


def harmful_rate(labels: ArrayLike) -> float:
    """Share of observed verdicts that are unsafe (coded 1); ``nan`` if none observed.

    Examples
    --------
    >>> harmful_rate([1, 0, 0, float("nan")])
    0.3333333333333333
    """
    array = np.asarray(labels, dtype=float)
    observed = array[~np.isnan(array)]
    return float(observed.mean()) if len(observed) else float("nan")


def rate_sums(labels: ArrayLike) -> NDArray[np.float64]:
    """Per-item sufficient statistics for a rate: ``[observed, unsafe]``."""
    array = np.asarray(labels, dtype=float)
    observed = ~np.isnan(array)
    return np.stack([observed, observed & (np.where(observed, array, 0) == 1)], axis=1).astype(float)


def harmful_rate_from_sums(sums: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[..., 1] / sums[..., 0]
