"""Does a judge err the same way on both models? Sensitivity and specificity per model, and their shift.

A judge-only fine-tune effect is unbiased only when the judge's errors
transport from the base model's responses to the fine-tune's. Measured on
each model's human-labelled items, a shift in sensitivity (unsafe answers
caught) or specificity (safe answers passed) between the two models says
they do not, and the corrected (PPI) effect should be read instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from judgekit.stats.intervals import clustered_wilson_interval, linearized_interval
from judgekit.stats.resampling import cluster_sums

MEASURES = ("sensitivity", "specificity")


@dataclass(frozen=True)
class ErrorShift:
    """One measure: each model's value with its clustered Wilson interval, and base minus fine-tune with a
    linearized cluster-robust t interval (NaN where a model has no labelled item of the class)."""

    measure: str
    treated: tuple[float, float, float]
    control: tuple[float, float, float]
    shift: tuple[float, float, float]
    n_treated: int
    n_control: int
    n_clusters: int

    @property
    def differs(self) -> bool:
        """Whether the shift's interval excludes 0."""
        low, high = self.shift[1:]
        return bool(np.isfinite(low) and (low > 0 or high < 0))


def judge_error_shift(reference: ArrayLike, verdict: ArrayLike, treated: ArrayLike, clusters: ArrayLike, *,
                      level: float = 0.95) -> list[ErrorShift]:
    """Sensitivity and specificity of a judge on each model's labelled items, and control minus treated.

    Parameters
    ----------
    reference : array-like of shape (n,)
        Human label (1 unsafe, 0 safe), NaN where not labelled.
    verdict : array-like of shape (n,)
        The judge's 0/1 verdict, NaN where it failed.
    treated : array-like of bool, shape (n,)
        The fine-tune's items (the others are the base's).
    clusters : array-like of shape (n,)
        Independent units (behaviour, else prompt): both models' responses
        to a prompt share one, so the shift's variance keeps their pairing.
    level : float, default=0.95

    Returns
    -------
    list of ErrorShift
        Sensitivity, then specificity.

    References
    ----------
    .. [1] Binder, D. A. (1983). On the variances of asymptotically normal
       estimators from complex surveys. International Statistical Review,
       51(3), 279-292. doi:10.2307/1402588
    .. [2] Korn, E. L., & Graubard, B. I. (1998). Confidence intervals for
       proportions with small expected number of positive counts estimated
       from survey data. Survey Methodology, 24(2), 193-201.

    Examples
    --------
    >>> shifts = judge_error_shift([1, 1, 0, 0] * 10, [1, 0, 0, 0] * 10, [True, False] * 20, list(range(40)))
    >>> shifts[0].measure, round(shifts[0].treated[0], 2), round(shifts[0].control[0], 2)
    ('sensitivity', 1.0, 0.0)
    """
    y, f = np.asarray(reference, dtype=float), np.asarray(verdict, dtype=float)
    arm, keys = np.asarray(treated), np.asarray(clusters)
    if not (y.shape == f.shape == arm.shape == keys.shape and y.ndim == 1):
        raise ValueError(f"reference, verdict, treated and clusters must be 1-d of one length. Got {y.shape}, "
                         f"{f.shape}, {arm.shape}, {keys.shape} instead.")
    if arm.dtype != bool:
        raise ValueError(f"The 'treated' parameter must be boolean. Got dtype {arm.dtype} instead.")
    usable = ~np.isnan(y) & ~np.isnan(f)
    out = []
    for measure, label in (("sensitivity", 1.0), ("specificity", 0.0)):
        in_class = usable & (y == label)
        correct = in_class & (f == label)
        columns = np.column_stack([in_class & arm, correct & arm, in_class & ~arm, correct & ~arm]).astype(float)
        sums = cluster_sums(columns[usable], keys[usable].astype(str))
        values = {}
        for name, (events, trials) in (("treated", (1, 0)), ("control", (3, 2))):
            estimate, low, high, _ = clustered_wilson_interval(sums[:, events], sums[:, trials], level=level)
            values[name] = (estimate, low, high)

        def shift(s: NDArray) -> NDArray:
            with np.errstate(invalid="ignore", divide="ignore"):
                return s[..., 3] / s[..., 2] - s[..., 1] / s[..., 0]

        estimate, low, high = linearized_interval(sums, shift, level=level)
        out.append(ErrorShift(measure, values["treated"], values["control"],
                              (float(estimate), float(low), float(high)), int(columns[:, 0].sum()),
                              int(columns[:, 2].sum()), int(sums.shape[0])))
    return out
