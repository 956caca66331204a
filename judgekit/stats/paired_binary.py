"""A difference of two paired proportions with an interval valid at small n: Newcombe's square-and-add method 10.

Two models answer the same n prompts once each; each answer is unsafe (1) or safe (0). The paired 2x2 table
counts ``both`` unsafe, ``treated_only``, ``control_only`` and ``neither``; the difference of the harmful rates
is ``(treated_only - control_only) / n``. A percentile bootstrap of that difference is unreliable at small n and
collapses to a zero-width interval when no pair is discordant; Newcombe's interval combines the two margins'
Wilson score intervals with their correlation and keeps near-nominal coverage down to n = 5
(``analyses/results/paired_small_n/``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from judgekit.stats.resampling import wilson_interval


def _wilson_bounds(successes: float, trials: int, *, level: float) -> tuple[float, float]:
    """The project's Wilson interval (:func:`judgekit.stats.resampling.wilson_interval`) as floats in [0, 1]."""
    low, high = wilson_interval(successes, trials, level=level)
    return max(0.0, float(low)), min(1.0, float(high))


def newcombe_paired_difference(*, both: int, treated_only: int, control_only: int, neither: int,
                               level: float = 0.95) -> tuple[float, float, float]:
    """Difference of two paired proportions (treated minus control) with Newcombe's method-10 interval.

    Parameters
    ----------
    both, treated_only, control_only, neither : int
        The paired 2x2 table: units positive in both arms, in the treated arm only, in the control arm only,
        in neither (n = their sum >= 1).
    level : float, default=0.95

    Returns
    -------
    tuple of float
        ``(estimate, ci_low, ci_high)`` with ``estimate = (treated_only - control_only) / n``.

    Notes
    -----
    With :math:`p_1, p_2` the two margins and :math:`(l_i, u_i)` their Wilson intervals,

    .. math:: \\hat\\theta - \\sqrt{(p_1-l_1)^2 - 2\\hat\\phi(p_1-l_1)(u_2-p_2) + (u_2-p_2)^2},\\quad
              \\hat\\theta + \\sqrt{(u_1-p_1)^2 - 2\\hat\\phi(u_1-p_1)(p_2-l_2) + (p_2-l_2)^2}

    where :math:`\\hat\\phi` is the correlation of the table, its numerator :math:`AD - BC` reduced by
    :math:`n/2` towards 0 when positive (and 0 when the table has an empty margin), as Newcombe defines it.
    The interval is never of zero width at finite n, also with no discordant pair.

    References
    ----------
    .. [1] Newcombe, R. G. (1998). Improved confidence intervals for the difference between binomial
       proportions based on paired data. Statistics in Medicine, 17(22), 2635-2650 (method 10).
       doi:10.1002/(SICI)1097-0258(19981130)17:22<2635::AID-SIM954>3.0.CO;2-C
    .. [2] Altman, D. G., Machin, D., Bryant, T. N., & Gardner, M. J. (2000). Statistics with Confidence,
       2nd ed., ch. 6 (paired proportions). BMJ Books.
    .. [3] Fagerland, M. W., Lydersen, S., & Laake, P. (2014). Recommended tests and confidence intervals for
       paired binomial proportions. Statistics in Medicine, 33(16), 2850-2875. doi:10.1002/sim.6148

    Examples
    --------
    >>> tuple(round(v, 3) for v in newcombe_paired_difference(both=0, treated_only=3, control_only=1, neither=4))
    (0.25, -0.224, 0.613)
    """
    counts = (both, treated_only, control_only, neither)
    if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) < 1:
        raise ValueError(f"The table counts must be non-negative integers with a positive sum. Got {counts!r}.")
    n = sum(counts)
    treated, control = both + treated_only, both + control_only
    p1, p2 = treated / n, control / n
    l1, u1 = _wilson_bounds(treated, n, level=level)
    l2, u2 = _wilson_bounds(control, n, level=level)
    margins = treated * (n - treated) * control * (n - control)
    cross = both * neither - treated_only * control_only
    corrected = max(cross - n / 2, 0.0) if cross > 0 else float(cross)
    phi = corrected / math.sqrt(margins) if margins > 0 else 0.0
    return _square_and_add((p1, l1, u1), (p2, l2, u2), phi)


def _square_and_add(first: tuple[float, float, float], second: tuple[float, float, float],
                    phi: float) -> tuple[float, float, float]:
    """(p1 - p2, low, high) from each proportion's (estimate, low, high) and their correlation (Newcombe 1998)."""
    (p1, l1, u1), (p2, l2, u2) = first, second
    theta = p1 - p2
    lower = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    upper = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return theta, max(-1.0, theta - lower), min(1.0, theta + upper)


def paired_rates_difference(treated: Sequence[float], control: Sequence[float], *,
                            level: float = 0.95) -> tuple[float, float, float]:
    """Mean difference of paired per-unit rates in [0, 1] (several 0/1 answers per unit and arm) with a score
    interval that stays valid when few or no units differ.

    Parameters
    ----------
    treated, control : sequence of float in [0, 1], one per matched unit
        Each unit's rate in each arm (its samples' mean).
    level : float, default=0.95

    Returns
    -------
    tuple of float
        ``(estimate, ci_low, ci_high)``, the estimate the mean of ``treated - control``.

    Notes
    -----
    Each arm's mean rate over the :math:`n` units gets the Wilson interval at
    :math:`n` trials: a mean of independent variables in [0, 1] with mean
    :math:`p` has variance at most :math:`p(1-p)/n`, the binomial one, so the
    score interval is conservative for it. The two are combined by
    Newcombe's square-and-add (MOVER) with correlation 0: paired arms
    correlate positively, which only narrows the true interval. The
    bootstrap of the unit differences, which this replaces when few units
    differ, collapses to zero width when none does.

    References
    ----------
    .. [1] Newcombe, R. G. (1998). Interval estimation for the difference between independent proportions:
       comparison of eleven methods. Statistics in Medicine, 17(8), 873-890 (method 10).
    .. [2] Zou, G. Y., & Donner, A. (2008). Construction of confidence limits about effect measures: a general
       approach. Statistics in Medicine, 27(10), 1693-1702. doi:10.1002/sim.3095

    Examples
    --------
    >>> tuple(round(v, 3) for v in paired_rates_difference([0.0] * 12, [0.0] * 12))
    (0.0, -0.242, 0.242)
    """
    first, second = [float(v) for v in treated], [float(v) for v in control]
    n = len(first)
    if n < 1 or len(second) != n or not all(0.0 <= v <= 1.0 for v in first + second):
        raise ValueError(f"treated and control must be rates in [0, 1], one per unit, of one length >= 1. Got "
                         f"{len(first)} and {len(second)} values.")
    margins = []
    for rates in (first, second):
        total = math.fsum(rates)
        low, high = _wilson_bounds(total, n, level=level)
        margins.append((total / n, low, high))
    return _square_and_add(margins[0], margins[1], 0.0)
