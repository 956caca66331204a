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

from judgekit.stats.resampling import wilson_interval


def _wilson_bounds(successes: int, trials: int, *, level: float) -> tuple[float, float]:
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
    theta = p1 - p2
    lower = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    upper = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return theta, max(-1.0, theta - lower), min(1.0, theta + upper)
