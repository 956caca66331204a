"""Does a judge err the same way on both models? Sensitivity and specificity per model, and their shift.

A judge-only fine-tune effect is unbiased only when the judge's errors
transport from the base model's responses to the fine-tune's. Measured on
each model's human-labelled items, a shift in sensitivity (unsafe answers
caught) or specificity (safe answers passed) between the two models says
they do not, and the corrected (PPI) effect should be read instead. "No
significant shift" is not evidence of none: :func:`errors_transport` asks
for the shift to be shown small (two one-sided tests against a stated
margin) before a judge-only effect stands on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from judgekit.stats.intervals import clustered_wilson_interval
from judgekit.stats.resampling import cluster_sums

MEASURES = ("sensitivity", "specificity")


@dataclass(frozen=True)
class ErrorShift:
    """One measure: each model's value with its clustered Wilson interval, and base minus fine-tune with the
    MOVER interval combining them (NaN where a model has no labelled item of the class; ``reason`` says which);
    ``equivalence`` is the shift's interval at the equivalence check's level (90%: two one-sided 5% tests)."""

    measure: str
    treated: tuple[float, float, float]
    control: tuple[float, float, float]
    shift: tuple[float, float, float]
    n_treated: int
    n_control: int
    n_clusters: int
    equivalence: tuple[float, float] = (float("nan"), float("nan"))
    reason: str = ""

    def within(self, margin: float) -> bool:
        """Whether the shift is shown smaller than ``margin`` (its equivalence interval inside (-margin, margin))."""
        low, high = self.equivalence
        return bool(np.isfinite(low) and np.isfinite(high) and -margin < low and high < margin)

    @property
    def differs(self) -> bool:
        """Whether the shift's interval excludes 0."""
        low, high = self.shift[1:]
        return bool(np.isfinite(low) and (low > 0 or high < 0))


EQUIVALENCE_LEVEL = 0.90  # two one-sided tests at 5% each (Schuirmann 1987)
# How small a shift in sensitivity or specificity must be shown to be before a judge-only effect stands alone.
EQUIVALENCE_MARGIN = 0.05


def _mover(control: tuple[float, float, float], treated: tuple[float, float, float]) -> tuple[float, float, float]:
    """control minus treated with the MOVER interval from the two proportions' own intervals (Newcombe's method 10
    with any interval per proportion)."""
    (pc, lc, uc), (pt, lt, ut) = control, treated
    shift = pc - pt
    return shift, shift - float(np.hypot(pc - lc, ut - pt)), shift + float(np.hypot(uc - pc, pt - lt))


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
        Independent units (behaviour, else prompt); each model's rate is
        clustered on them.
    level : float, default=0.95

    Returns
    -------
    list of ErrorShift
        Sensitivity, then specificity.

    Notes
    -----
    Each model's rate has the clustered Wilson interval (Korn-Graubard
    effective sample size); the shift's interval combines the two by MOVER
    (Zou & Donner 2008), which treats the two rates as independent. Both
    models' responses to one prompt can err together, a positive covariance
    that only widens MOVER. The linearized t interval used before covered
    0.915 (sensitivity) and 0.886 (specificity) at a nominal 0.95 in the
    issue-34 audit; ``analyses/label_designs.py`` measures this one.

    References
    ----------
    .. [1] Newcombe, R. G. (1998). Interval estimation for the difference
       between independent proportions: comparison of eleven methods.
       Statistics in Medicine, 17(8), 873-890.
    .. [2] Zou, G. Y., & Donner, A. (2008). Construction of confidence
       limits about effect measures: a general approach. Statistics in
       Medicine, 27(10), 1693-1702. doi:10.1002/sim.3095
    .. [3] Korn, E. L., & Graubard, B. I. (1998). Confidence intervals for
       proportions with small expected number of positive counts estimated
       from survey data. Survey Methodology, 24(2), 193-201.
    .. [4] Schuirmann, D. J. (1987). A comparison of the two one-sided tests
       procedure and the power approach for assessing the equivalence of
       average bioavailability. J. Pharmacokinetics and Biopharmaceutics,
       15(6), 657-680.

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
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    usable = ~np.isnan(y) & ~np.isnan(f)
    out = []
    for measure, label in (("sensitivity", 1.0), ("specificity", 0.0)):
        in_class = usable & (y == label)
        correct = in_class & (f == label)
        columns = np.column_stack([in_class & arm, correct & arm, in_class & ~arm, correct & ~arm]).astype(float)
        sums = cluster_sums(columns[usable], keys[usable].astype(str))
        values, equivalence = {}, {}
        for name, (events, trials) in (("treated", (1, 0)), ("control", (3, 2))):
            values[name] = clustered_wilson_interval(sums[:, events], sums[:, trials], level=level)[:3]
            equivalence[name] = clustered_wilson_interval(sums[:, events], sums[:, trials], level=EQUIVALENCE_LEVEL)[:3]
        shift = _mover(values["control"], values["treated"])
        narrow = _mover(equivalence["control"], equivalence["treated"])
        kind = "unsafe" if label == 1 else "safe"
        missing = [who for who, n in (("fine-tune", columns[:, 0].sum()), ("base", columns[:, 2].sum())) if n == 0]
        reason = (f"no labelled {kind} item of the {' or the '.join(missing)}: its {measure} is undefined"
                  if missing else "")
        out.append(ErrorShift(measure, tuple(map(float, values["treated"])), tuple(map(float, values["control"])),
                              tuple(map(float, shift)), int(columns[:, 0].sum()), int(columns[:, 2].sum()),
                              int(sums.shape[0]), (float(narrow[1]), float(narrow[2])), reason))
    return out
