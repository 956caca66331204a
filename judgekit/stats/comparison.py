"""Comparisons between groups of responses, and how stable their conclusions are.

The question judgekit exists for: "did fine-tuning make the model less safe?"
For a fine-tuned model and its base answering the same prompts, the effect is
the difference in harmful rate. Both models' responses to one behaviour form
one cluster, so the bootstrap resamples behaviours and keeps the pairing.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def paired_rate_item_sums(labels: ArrayLike, in_treatment: ArrayLike) -> NDArray[np.float64]:
    """Per-item ``[n_treatment, unsafe_treatment, n_control, unsafe_control]`` (NaN verdicts count nowhere)."""
    y = np.asarray(labels, dtype=float)
    treated = np.asarray(in_treatment, dtype=bool)
    observed = ~np.isnan(y)
    unsafe = observed & (np.where(observed, y, 0) == 1)
    return np.column_stack([observed & treated, unsafe & treated, observed & ~treated, unsafe & ~treated]).astype(float)


def rate_difference_from_sums(sums: NDArray) -> NDArray:
    """Harmful rate of the treatment group minus that of the control group."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[..., 1] / sums[..., 0] - sums[..., 3] / sums[..., 2]


def opposite_sign_share(estimate: float, replicates: NDArray) -> float:
    """Share of bootstrap replicates whose sign differs from the point estimate's (a bootstrap tail share).

    It is about half the two-sided bootstrap p-value, **not** the probability
    that the conclusion flips under another judge or benchmark. A zero
    estimate has no sign: NaN. Replicates equal to zero count as opposite,
    since they do not support the estimate's direction.
    """
    finite = replicates[np.isfinite(replicates)]
    if not np.isfinite(estimate) or estimate == 0 or len(finite) == 0:
        return float("nan")
    return float(np.mean(np.sign(finite) != np.sign(estimate)))


def bootstrap_p_value(replicates: NDArray) -> float:
    """Two-sided bootstrap p-value for "the effect is zero": 2 min(P*(θ ≤ 0), P*(θ ≥ 0)), capped at 1."""
    finite = replicates[np.isfinite(replicates)]
    if len(finite) == 0:
        return float("nan")
    return float(min(1.0, 2 * min(np.mean(finite <= 0), np.mean(finite >= 0))))


def kendall_tau_b(x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
    """Kendall's tau-b between rows of ``x`` and ``y`` (shape (..., n)), vectorised over leading axes.

    Matches ``scipy.stats.kendalltau`` (variant "b") on 1-d input; NaN when
    either side is constant.

    References
    ----------
    .. [1] Kendall, M. G. (1945). The treatment of ties in ranking problems.
       Biometrika, 33(3), 239-251. doi:10.1093/biomet/33.3.239

    Examples
    --------
    >>> float(kendall_tau_b([0.1, 0.3, 0.2], [0.2, 0.5, 0.4]))
    1.0
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    i, j = np.triu_indices(a.shape[-1], k=1)
    da = np.sign(a[..., i] - a[..., j])
    db = np.sign(b[..., i] - b[..., j])
    concordance = (da * db).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return concordance / np.sqrt((da != 0).sum(axis=-1) * (db != 0).sum(axis=-1))
