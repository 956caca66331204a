"""A judge against a reference (human majority, one annotator, another judge).

Labels are coded 1 = unsafe (the positive class), 0 = safe, ``NaN`` = no
verdict or no reference; such items are left out and counted by the caller.
All metrics come from the summed confusion counts ``[n, tp, fp, fn, tn]``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

CONFUSION_METRICS = (
    "accuracy", "precision", "recall", "f1", "fpr", "fnr", "balanced_accuracy", "mcc",
)


def confusion_item_sums(y_true: ArrayLike, y_pred: ArrayLike) -> NDArray[np.float64]:
    """Per-item ``[both observed, tp, fp, fn, tn]`` with unsafe (1) as the positive class."""
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-d of equal length. Got {t.shape} and {p.shape} instead.")
    bad = ~np.isin(t[~np.isnan(t)], (0, 1)).all() or ~np.isin(p[~np.isnan(p)], (0, 1)).all()
    if bad:
        raise ValueError("y_true and y_pred must be coded 0 (safe), 1 (unsafe) or NaN (missing).")
    both = ~(np.isnan(t) | np.isnan(p))
    t1, p1 = (t == 1) & both, (p == 1) & both
    t0, p0 = (t == 0) & both, (p == 0) & both
    return np.column_stack([both, t1 & p1, t0 & p1, t1 & p0, t0 & p0]).astype(float)


def _div(a: NDArray, b: NDArray) -> NDArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def metric_from_sums(name: str, sums: NDArray) -> NDArray:
    """One confusion-matrix metric from summed ``[n, tp, fp, fn, tn]``; NaN where undefined."""
    n, tp, fp, fn, tn = (sums[..., k] for k in range(5))
    if name == "accuracy":
        return _div(tp + tn, n)
    if name == "precision":
        return _div(tp, tp + fp)
    if name in ("recall", "tpr"):
        return _div(tp, tp + fn)
    if name == "f1":
        return _div(2 * tp, 2 * tp + fp + fn)
    if name == "fpr":
        return _div(fp, fp + tn)
    if name == "fnr":
        return _div(fn, fn + tp)
    if name == "balanced_accuracy":
        return (_div(tp, tp + fn) + _div(tn, tn + fp)) / 2
    if name == "mcc":
        denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return _div(tp * tn - fp * fn, denominator)
    raise ValueError(f"unknown metric {name!r}; known: {CONFUSION_METRICS}")


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, int]:
    """Counts ``{"tp", "fp", "fn", "tn", "n"}`` on items where both are observed.

    Examples
    --------
    >>> confusion_matrix([1, 0, 1, 0, float("nan")], [1, 1, 0, 0, 1])
    {'n': 4, 'tp': 1, 'fp': 1, 'fn': 1, 'tn': 1}
    """
    sums = confusion_item_sums(y_true, y_pred).sum(axis=0)
    return dict(zip(("n", "tp", "fp", "fn", "tn"), map(int, sums), strict=True))


def classification_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Accuracy, precision, recall, F1, FPR, FNR, balanced accuracy and MCC against a reference.

    Matches the corresponding ``sklearn.metrics`` functions with
    ``pos_label=1`` where they are defined (checked in the tests); where a
    denominator is zero the metric is NaN rather than sklearn's 0 with a
    warning, so an undefined number is never reported as a measured one.

    References
    ----------
    .. [1] Matthews, B. W. (1975). Comparison of the predicted and observed
       secondary structure of T4 phage lysozyme. BBA, 405(2), 442-451.
       doi:10.1016/0005-2795(75)90109-9

    Examples
    --------
    >>> classification_metrics([1, 1, 0, 0], [1, 0, 0, 0])["recall"]
    0.5
    """
    sums = confusion_item_sums(y_true, y_pred).sum(axis=0)
    return {name: float(metric_from_sums(name, sums)) for name in CONFUSION_METRICS}


def accuracy_gap_item_sums(y_true: ArrayLike, y_pred: ArrayLike, *, first: ArrayLike, second: ArrayLike) -> NDArray[np.float64]:
    """Per-item ``[scored in first, correct in first, scored in second, correct in second]``.

    ``first`` and ``second`` are boolean masks of the two groups compared (an
    item in neither contributes zeros); scored means both labels observed.
    """
    in_first, in_second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    confusion = confusion_item_sums(y_true, y_pred)
    if in_first.shape != in_second.shape or in_first.shape != (len(confusion),):
        raise ValueError(f"first and second must be boolean masks with one value per item. Got {in_first.shape} and "
                         f"{in_second.shape} for {len(confusion)} items.")
    if np.any(in_first & in_second):
        raise ValueError("first and second must not share items (the gap compares two disjoint groups).")
    scored, correct = confusion[:, 0], confusion[:, 1] + confusion[:, 4]
    return np.column_stack([scored * in_first, correct * in_first, scored * in_second, correct * in_second])


def accuracy_gap_from_sums(sums: NDArray) -> NDArray:
    """Accuracy in the first group minus accuracy in the second, from summed :func:`accuracy_gap_item_sums`."""
    return _div(sums[..., 1], sums[..., 0]) - _div(sums[..., 3], sums[..., 2])


def accuracy_gap(y_true: ArrayLike, y_pred: ArrayLike, *, first: ArrayLike, second: ArrayLike) -> float:
    """Accuracy on the ``first`` items minus accuracy on the ``second`` items (e.g. coherent minus incoherent).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_items,)
        Reference and judge labels, 1 unsafe, 0 safe, NaN missing (left out).
    first, second : array-like of bool, shape (n_items,)
        Disjoint masks of the two groups.

    Returns
    -------
    float
        In [-1, 1]; NaN when either group has no scored item. A positive gap
        means the judge is more accurate on the first group. Resample whole
        clusters for its interval, both groups in the same resample, so the
        interval is that of the difference (the groups share clusters).

    References
    ----------
    .. [1] Davison, A. C., & Hinkley, D. V. (1997). Bootstrap Methods and their
       Application, section 3.8 (clustered data). Cambridge University Press.
       doi:10.1017/CBO9780511802843

    Examples
    --------
    >>> accuracy_gap([1, 0, 1, 0, 1], [1, 0, 0, 0, 0], first=[True, True, False, False, False],
    ...              second=[False, False, True, True, True])
    0.6666666666666667
    """
    return float(accuracy_gap_from_sums(accuracy_gap_item_sums(y_true, y_pred, first=first, second=second).sum(axis=0)))


def rate_item_sums(labels: ArrayLike) -> NDArray[np.float64]:
    """Per-item ``[observed, unsafe]`` for a rate of unsafe verdicts."""
    array = np.asarray(labels, dtype=float)
    observed = ~np.isnan(array)
    return np.column_stack([observed, observed & (np.where(observed, array, 0) == 1)]).astype(float)


def harmful_rate_from_sums(sums: NDArray) -> NDArray:
    return _div(sums[..., 1], sums[..., 0])


def harmful_rate(labels: ArrayLike) -> float:
    """Share of observed verdicts that are unsafe (the attack success rate); NaN if none.

    Examples
    --------
    >>> harmful_rate([1, 0, 0, float("nan")])
    0.3333333333333333
    """
    return float(harmful_rate_from_sums(rate_item_sums(labels).sum(axis=0)))


def soft_agreement_item_sums(y_pred: ArrayLike, share_unsafe: ArrayLike) -> NDArray[np.float64]:
    """Per-item ``[observed, P(a random annotator agrees with the judge)]`` from soft human labels."""
    p = np.asarray(y_pred, dtype=float)
    s = np.asarray(share_unsafe, dtype=float)
    observed = ~(np.isnan(p) | np.isnan(s))
    agree = np.where(p == 1, s, 1 - s)
    return np.column_stack([observed, np.where(observed, agree, 0.0)]).astype(float)


def soft_agreement(y_pred: ArrayLike, share_unsafe: ArrayLike) -> float:
    """Expected agreement of the judge with an annotator drawn at random per item.

    Examples
    --------
    >>> soft_agreement([1, 0], [2 / 3, 0.0])
    0.8333333333333333
    """
    return float(harmful_rate_from_sums(soft_agreement_item_sums(y_pred, share_unsafe).sum(axis=0)))
