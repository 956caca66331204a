"""How far labels chosen by convenience could move an estimate: bounds under the marginal sensitivity model.

A labelled subset picked by a person ("the ones that look bad") is not a
random sample, and nothing recorded says how it was picked. Its estimate is
then only as good as an assumption about the selection. The marginal
sensitivity model (Tan 2006) states that assumption as a number: within a
stratum of what is observed on every item (the judge's verdict), an item's
odds of being labelled differ from the stratum's labelled share by at most a
factor ``gamma``. Under it every labelled item's inverse-probability weight
lies in a known box, and the extremes of the weighted (Hajek) mean over the
box are found by sorting (Zhao, Small & Bhattacharya 2019). ``gamma = 1`` is
"labels chosen at random within the judge's verdicts"; ``gamma = 2`` allows a
labeller twice as likely to pick an unsafe response as a safe one with the
same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

# The strength of selection the rows state their range for: odds of labelling up to 2x for some items over others
# the judge rates alike.
DEFAULT_GAMMA = 2.0


@dataclass(frozen=True)
class SelectionBounds:
    """The lowest and highest value of the weighted mean that selection of odds up to ``gamma`` allows."""

    low: float
    high: float
    gamma: float


def _extreme_hajek_mean(values: NDArray, low_weight: float, high_weight: float, *, largest: bool) -> float:
    """max (or min) of sum(w v) / sum(w) over w_i in [low_weight, high_weight]: the extreme puts the high weight on
    the k largest (smallest) values for some k (Zhao, Small & Bhattacharya 2019, Proposition 4)."""
    ordered = np.sort(values)[::-1] if largest else np.sort(values)
    k = np.arange(len(ordered) + 1)
    head = np.concatenate([[0.0], np.cumsum(ordered)])
    total = head[-1]
    means = (high_weight * head + low_weight * (total - head)) / (high_weight * k + low_weight * (len(ordered) - k))
    return float(means.max() if largest else means.min())


def _weight_box(n_items: int, n_labelled: int, gamma: float) -> tuple[float, float]:
    """The inverse-probability weights the marginal sensitivity model allows an item of a stratum with ``n_labelled``
    of ``n_items`` labelled: 1/pi in [1 + (1/e - 1)/gamma, 1 + gamma (1/e - 1)] at the labelled share e."""
    odds_inverse = n_items / n_labelled - 1  # 1/e - 1
    return 1 + odds_inverse / gamma, 1 + gamma * odds_inverse


def _check_gamma(gamma: float) -> None:
    if not (np.isfinite(gamma) and gamma >= 1):
        raise ValueError(f"The 'gamma' parameter must be a number >= 1. Got {gamma!r} instead.")


def selection_bounds(values: ArrayLike, labelled: ArrayLike, strata: ArrayLike | None = None, *,
                     gamma: float = DEFAULT_GAMMA) -> SelectionBounds:
    """Range of the post-stratified mean of ``values`` over all items when labels were chosen with odds up to ``gamma``.

    Parameters
    ----------
    values : array-like of shape (n,)
        The quantity whose all-item mean is wanted, known on the labelled
        items (e.g. the human label, or the PPI residual ``y - lam * f``);
        ignored (may be NaN) elsewhere.
    labelled : array-like of bool, shape (n,)
    strata : array-like of shape (n,), optional
        What is observed on every item and may drive the labelling (the
        judge's verdict): within a stratum the baseline probability of
        labelling is its labelled share. None: one stratum.
    gamma : float >= 1, default=2
        Largest odds ratio of labelling between two items of one stratum.

    Returns
    -------
    SelectionBounds
        NaN bounds when a stratum with items has no labelled one (nothing
        to extrapolate from).

    Notes
    -----
    With baseline probability :math:`e` in a stratum, the marginal
    sensitivity model lets the true probability :math:`\\pi` satisfy
    :math:`1/\\Gamma \\le [\\pi/(1-\\pi)]/[e/(1-e)] \\le \\Gamma`, i.e. the
    weight :math:`1/\\pi \\in [1 + (1/e - 1)/\\Gamma,\\ 1 + \\Gamma (1/e - 1)]`.
    Each stratum's Hajek mean is maximised (minimised) over that box by
    sorting, and the strata are combined by their item shares. The bounds
    are of the estimand's point value; add sampling error around them for a
    sensitivity interval (Zhao et al. sec. 4).

    References
    ----------
    .. [1] Tan, Z. (2006). A distributional approach for causal inference
       using propensity scores. JASA, 101(476), 1619-1637.
       doi:10.1198/016214505000001366
    .. [2] Zhao, Q., Small, D. S., & Bhattacharya, B. B. (2019). Sensitivity
       analysis for inverse probability weighting estimators via the
       percentile bootstrap. JRSS-B, 81(4), 735-761. doi:10.1111/rssb.12327

    Examples
    --------
    >>> b = selection_bounds([1, 0, np.nan, np.nan], [True, True, False, False], gamma=1.0)
    >>> b.low, b.high
    (0.5, 0.5)
    >>> b = selection_bounds([1, 0, np.nan, np.nan], [True, True, False, False], gamma=3.0)
    >>> round(b.low, 3), round(b.high, 3)
    (0.25, 0.75)
    """
    v = np.asarray(values, dtype=float)
    chosen = np.asarray(labelled, dtype=bool)
    groups = np.zeros(len(v), dtype=int) if strata is None else np.asarray(strata)
    if not (v.ndim == 1 and v.shape == chosen.shape == groups.shape):
        raise ValueError(f"values, labelled and strata must be 1-d of one length. Got {v.shape}, {chosen.shape}, "
                         f"{groups.shape} instead.")
    _check_gamma(gamma)
    if not np.isfinite(v[chosen]).all():
        raise ValueError("values must be finite on the labelled items.")
    if not chosen.any():
        raise ValueError("No labelled item: there is nothing to bound.")
    low = high = 0.0
    for stratum in np.unique(groups):
        members = groups == stratum
        picked = v[members & chosen]
        if len(picked) == 0:
            return SelectionBounds(float("nan"), float("nan"), float(gamma))
        light, heavy = _weight_box(int(members.sum()), len(picked), gamma)
        share = members.mean()
        low += share * _extreme_hajek_mean(picked, light, heavy, largest=False)
        high += share * _extreme_hajek_mean(picked, light, heavy, largest=True)
    return SelectionBounds(float(low), float(high), float(gamma))


def paired_selection_bounds(treated: ArrayLike, control: ArrayLike, *, gamma: float = DEFAULT_GAMMA) -> SelectionBounds:
    """Range of the mean paired difference over all units when each side of a unit was labelled with odds up to ``gamma``.

    The humans' paired effect averages ``treated - control`` over the units
    (prompts) labelled on both sides. Selection acts on each side (each
    response) separately, so a unit enters with the product of two
    selection probabilities, and its weight ranges over the product of the
    two sides' boxes.

    Parameters
    ----------
    treated, control : array-like of shape (n_units,)
        Per unit, the labelled mean of each side (the fine-tune's and the
        base's responses to one prompt); NaN where that side has no label.
        Every unit is one the estimand averages over (a prompt both models
        answered).
    gamma : float >= 1, default=2
        The marginal sensitivity model's bound on each side's odds of being
        labelled, relative to its side's labelled share.

    Returns
    -------
    SelectionBounds
        Lowest and highest weighted (Hajek) mean of the differences over
        the units labelled on both sides; NaN when there is none.

    Notes
    -----
    Side :math:`a` of unit :math:`u` is labelled with probability
    :math:`\\pi_{ua}`, independently of the other side given the labels,
    with :math:`1/\\Gamma \\le \\mathrm{odds}(\\pi_{ua})/\\mathrm{odds}(e_a)
    \\le \\Gamma` at the side's labelled share :math:`e_a` (Tan 2006).
    Then :math:`1/\\pi_{ua} \\in [l_a, h_a] = [1 + (1/e_a - 1)/\\Gamma,\\ 1 +
    \\Gamma(1/e_a - 1)]`, and the unit's inverse probability of entering the
    paired mean, :math:`1/(\\pi_{u1}\\pi_{u0})`, takes any value in
    :math:`[l_1 l_0, h_1 h_0]` (the two sides vary freely). The inverse-
    probability-weighted mean of the differences over doubly labelled
    units is unbiased for the all-unit mean at the true weights; its
    extremes over that box are found by sorting (Zhao, Small &
    Bhattacharya 2019), as in :func:`selection_bounds`. Treating the pair
    as one selected unit with odds up to :math:`\\Gamma` (the box
    :math:`[l, h]` of the pair's share) understates the range: two sides each
    selected with odds :math:`\\Gamma` make a pair selected with odds up to
    about :math:`\\Gamma^2`.

    References
    ----------
    .. [1] Tan, Z. (2006). A distributional approach for causal inference
       using propensity scores. JASA, 101(476), 1619-1637.
       doi:10.1198/016214505000001366
    .. [2] Zhao, Q., Small, D. S., & Bhattacharya, B. B. (2019). Sensitivity
       analysis for inverse probability weighting estimators via the
       percentile bootstrap. JRSS-B, 81(4), 735-761. doi:10.1111/rssb.12327

    Examples
    --------
    >>> b = paired_selection_bounds([1, 0, 1, np.nan], [0, 0, np.nan, 1], gamma=1.0)
    >>> b.low, b.high
    (0.5, 0.5)
    >>> b = paired_selection_bounds([1, 0, 1, np.nan], [0, 0, np.nan, 1], gamma=2.0)
    >>> round(b.low, 3), round(b.high, 3)
    (0.329, 0.671)
    """
    first, second = np.asarray(treated, dtype=float), np.asarray(control, dtype=float)
    if not (first.ndim == 1 and first.shape == second.shape):
        raise ValueError(f"treated and control must be 1-d of one length. Got {first.shape}, {second.shape} instead.")
    _check_gamma(gamma)
    both = ~np.isnan(first) & ~np.isnan(second)
    if not both.any():
        return SelectionBounds(float("nan"), float("nan"), float(gamma))
    n = len(first)
    light_t, heavy_t = _weight_box(n, int((~np.isnan(first)).sum()), gamma)
    light_c, heavy_c = _weight_box(n, int((~np.isnan(second)).sum()), gamma)
    differences = first[both] - second[both]
    return SelectionBounds(_extreme_hajek_mean(differences, light_t * light_c, heavy_t * heavy_c, largest=False),
                           _extreme_hajek_mean(differences, light_t * light_c, heavy_t * heavy_c, largest=True),
                           float(gamma))
