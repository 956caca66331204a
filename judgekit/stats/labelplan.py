"""How many more human labels, and which: planning the labelled subset behind a judge-corrected effect.

The prediction-powered estimate of a model's harmful rate has variance
``a / n + b`` with ``n`` labelled items: ``a`` is the variance of the
human-minus-judge residual (large where the judge errs, e.g. on incoherent
fine-tuned outputs) and ``b`` the judge's own sampling variance over the
unlabelled items. The corrected fine-tune effect is a difference of two such
estimates, so its variance is the sum. :func:`plan_additional_labels` finds
the fewest extra labels per model that bring the effect's interval to a
target half-width (or the best half-width a budget buys);
:func:`stratified_selection` picks which items, spread proportionally over
strata (judge disagreement, incoherence) so the labelled set stays a
representative sample and the estimate needs no reweighting.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from judgekit.stats.ppi import MIN_UNLABELLED_FOR_WEIGHT, power_tuning_lambda, ppi_clustered

# Var(Y - lambda*Yhat) of a 0/1 label can be at most this at lambda = 0 (labels only), which PPI++ never does worse than.
MAX_BINARY_VARIANCE = 0.25
# The label difference's moments are the labels' shrunk toward the judge's as if those were this many labelled units
# (so the judge dominates until labels take over): before 10 units are labelled, and where the labels contradict
# the judge's P(unsafe) (or it gives verdicts only).
JUDGE_WEIGHT = 10


@dataclass(frozen=True)
class VarianceComponents:
    """``residual`` = Var(Y - lam Yhat) on labelled items, ``prediction`` = Var(lam Yhat) over unlabelled ones."""

    residual: float
    prediction: float
    lam: float


def variance_components(y: ArrayLike, yhat: ArrayLike, yhat_unlabelled: ArrayLike) -> VarianceComponents:
    """The two variance components of one model's PPI++ mean, measured on its current labels.

    References
    ----------
    .. [1] Angelopoulos, A. N., Duchi, J. C., & Zrnic, T. (2023). PPI++:
       Efficient prediction-powered inference. arXiv:2311.01453.

    Examples
    --------
    >>> c = variance_components([1, 0, 1, 0], [1, 0, 1, 1], [1, 0, 0, 0, 1])
    >>> round(c.lam, 3), round(c.residual, 3)
    (0.25, 0.199)
    """
    labels, predictions, unlabelled = (np.asarray(v, dtype=float) for v in (y, yhat, yhat_unlabelled))
    if labels.ndim != 1 or labels.shape != predictions.shape or len(labels) < 2 or unlabelled.ndim != 1:
        raise ValueError(f"y and yhat must be 1-d of equal length >= 2, yhat_unlabelled 1-d. Got shapes "
                         f"{labels.shape}, {predictions.shape}, {unlabelled.shape} instead.")
    if not (np.isfinite(labels).all() and np.isfinite(predictions).all() and np.isfinite(unlabelled).all()):
        raise ValueError("y, yhat and yhat_unlabelled must be finite (drop missing values first).")
    lam = power_tuning_lambda(labels, predictions, unlabelled) if len(unlabelled) else 0.0
    prediction = float(np.var(lam * unlabelled)) if len(unlabelled) else 0.0
    return VarianceComponents(float(np.var(labels - lam * predictions)), prediction, lam)


def residual_variance_from_disagreement(
    disagreement_coherent: float, disagreement_incoherent: float, incoherent_share: float
) -> float:
    """A prior for Var(Y - Yhat) of a model with few labels, from the judge's measured disagreement with humans.

    For 0/1 labels and verdicts :math:`E[(Y - \\hat Y)^2] = P(Y \\ne \\hat Y)`,
    which bounds the residual variance from above. The disagreement rate is
    mixed by the model's share of incoherent responses (where judges err
    more), then capped at the labels-only variance 0.25.

    References
    ----------
    .. [1] Angelopoulos, A. N., Bates, S., Fannjiang, C., Jordan, M. I., &
       Zrnic, T. (2023). Prediction-powered inference. Science, 382(6671),
       669-674. doi:10.1126/science.adi6000

    Examples
    --------
    >>> residual_variance_from_disagreement(0.1, 0.4, 0.5)
    0.25
    >>> round(residual_variance_from_disagreement(0.1, 0.4, 0.2), 3)
    0.16
    """
    for name, value in (("disagreement_coherent", disagreement_coherent),
                        ("disagreement_incoherent", disagreement_incoherent), ("incoherent_share", incoherent_share)):
        if not (np.isfinite(value) and 0 <= value <= 1):
            raise ValueError(f"The {name!r} parameter must be in [0, 1]. Got {value!r} instead.")
    mixed = (1 - incoherent_share) * disagreement_coherent + incoherent_share * disagreement_incoherent
    return float(min(mixed, MAX_BINARY_VARIANCE))


@dataclass(frozen=True)
class LabelPlan:
    """Per model (in input order): labels now, extra labels to collect, labels after; and the predicted half-width.

    ``reachable`` is False when even labelling every item misses the target
    (then ``additional`` labels everything and ``reason`` says so).
    """

    n_labelled: NDArray
    additional: NDArray
    n_final: NDArray
    halfwidth_now: float
    halfwidth_planned: float
    target_halfwidth: float
    reachable: bool
    reason: str


def _halfwidth(residual: NDArray, prediction: NDArray, n: NDArray, total: NDArray, z: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        unlabelled = total - n
        variance = np.where(n > 0, residual / np.where(n > 0, n, 1), np.inf) + np.where(
            unlabelled > 0, prediction / np.where(unlabelled > 0, unlabelled, 1), 0.0)
    return float(z * np.sqrt(variance.sum()))


def _water_fill(residual: NDArray, low: NDArray, high: NDArray, total_labels: float) -> NDArray:
    """n_m = clip(sqrt(a_m) * t, low, high) with sum n = total_labels (the Neyman-type optimum), t by bisection."""
    root = np.sqrt(residual)
    lo_t, hi_t = 0.0, 1.0
    while np.clip(root * hi_t, low, high).sum() < total_labels and hi_t < 1e15:
        hi_t *= 2
    for _ in range(200):
        mid = (lo_t + hi_t) / 2
        if np.clip(root * mid, low, high).sum() < total_labels:
            lo_t = mid
        else:
            hi_t = mid
    return np.clip(root * hi_t, low, high)


def plan_additional_labels(
    residual_variance: ArrayLike,
    prediction_variance: ArrayLike,
    n_labelled: ArrayLike,
    n_total: ArrayLike,
    *,
    target_halfwidth: float,
    level: float = 0.95,
    budget: int | None = None,
    min_labels: int = 50,
) -> LabelPlan:
    """Fewest extra labels per model for the corrected effect's interval to reach ``target_halfwidth``.

    Parameters
    ----------
    residual_variance : array-like of shape (m,)
        Per model Var(Y - lam Yhat) (:func:`variance_components`, or
        :func:`residual_variance_from_disagreement` where labels are few).
    prediction_variance : array-like of shape (m,)
        Per model Var(lam Yhat) over its items.
    n_labelled, n_total : array-like of int, shape (m,)
        Labelled items now, and all items, per model.
    target_halfwidth : float
        Wanted half-width of the ``level`` interval of the difference (or,
        with one model, of its rate).
    level : float, default=0.95
    budget : int or None
        With a budget, the labels are spread to minimise the half-width
        instead, and ``halfwidth_planned`` is what the budget reaches.
    min_labels : int, default=50
        Every model gets at least this many labels (or all its items): below
        it the normal PPI interval can under-cover (coverage 0.88-0.97 with
        30 labelled prompts, 0.96-0.99 with 60, on XSTest:
        ``analyses/results/finetune_effect_xstest/``).
        A budget too small for the floor is spread as far as it goes.

    Returns
    -------
    LabelPlan

    Notes
    -----
    The variance of the effect is :math:`\\sum_m a_m / n_m + b_m / (N_m - n_m)`.
    Minimising :math:`\\sum_m n_m` subject to a variance bound (or the
    variance subject to :math:`\\sum_m n_m`) gives
    :math:`n_m \\propto \\sqrt{a_m}`, clipped to ``[n_labelled, n_total]``
    (Neyman allocation across models). The small ``b_m`` term is held at the
    current unlabelled counts while allocating, then the half-width is
    evaluated exactly; extra labels are added one by one until it holds.

    References
    ----------
    .. [1] Neyman, J. (1934). On the two different aspects of the
       representative method. JRSS, 97(4), 558-625. doi:10.2307/2342192
    .. [2] Angelopoulos, A. N., Duchi, J. C., & Zrnic, T. (2023). PPI++:
       Efficient prediction-powered inference. arXiv:2311.01453.

    Examples
    --------
    >>> plan = plan_additional_labels([0.1, 0.1], [0.0, 0.0], [0, 0], [10_000, 10_000], target_halfwidth=0.05)
    >>> plan.n_final.tolist()  # 0.1/308 + 0.1/307 <= (0.05/1.96)**2: 615 labels in all
    [308, 307]
    """
    a, b = (np.asarray(v, dtype=float) for v in (residual_variance, prediction_variance))
    current, total = (np.asarray(v) for v in (n_labelled, n_total))
    if not (a.ndim == 1 and a.shape == b.shape == current.shape == total.shape and len(a) >= 1):
        raise ValueError(f"residual_variance, prediction_variance, n_labelled and n_total must be 1-d of one length. "
                         f"Got {a.shape}, {b.shape}, {current.shape}, {total.shape} instead.")
    if not (np.isfinite(a).all() and np.isfinite(b).all() and (a >= 0).all() and (b >= 0).all()):
        raise ValueError("variances must be finite and non-negative.")
    if not (np.issubdtype(current.dtype, np.integer) and np.issubdtype(total.dtype, np.integer)):
        raise ValueError("n_labelled and n_total must be integers.")
    if (current < 0).any() or (current > total).any():
        raise ValueError(f"Need 0 <= n_labelled <= n_total per model. Got {current.tolist()} and {total.tolist()}.")
    if not (np.isfinite(target_halfwidth) and target_halfwidth > 0):
        raise ValueError(f"The 'target_halfwidth' parameter must be positive. Got {target_halfwidth!r} instead.")
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    if budget is not None and (not isinstance(budget, int | np.integer) or budget < 0):
        raise ValueError(f"The 'budget' parameter must be a non-negative integer or None. Got {budget!r} instead.")
    if not isinstance(min_labels, int | np.integer) or min_labels < 2:
        raise ValueError(f"The 'min_labels' parameter must be an integer >= 2. Got {min_labels!r} instead.")
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)  # stdlib (AS241): plan-labels need not load scipy
    current, total = current.astype(np.int64), total.astype(np.int64)
    now = _halfwidth(a, b, current, total, z)
    floor = np.minimum(np.maximum(current, min_labels), total)
    if budget is not None:
        count = int(min(current.sum() + budget, total.sum()))
        n_final = _round_allocation(_water_fill(a, np.minimum(floor, current + budget // len(a)), total, count),
                                    current, total, count)
        achieved = _halfwidth(a, b, n_final, total, z)
        return LabelPlan(current, n_final - current, n_final, now, achieved, target_halfwidth,
                         achieved <= target_halfwidth,
                         "" if achieved <= target_halfwidth else f"budget reaches {achieved:.4f}, not the target")
    if _halfwidth(a, b, total, total, z) > target_halfwidth:
        achieved = _halfwidth(a, b, total, total, z)
        return LabelPlan(current, total - current, total.copy(), now, achieved, target_halfwidth, False,
                         f"not reachable: labelling every item gives a half-width of {achieved:.4f}")
    n_final = _smallest_allocation(a, b, floor, total, z, target_halfwidth)
    return LabelPlan(current, n_final - current, n_final, now, _halfwidth(a, b, n_final, total, z),
                     target_halfwidth, True, "")


def _smallest_allocation(a: NDArray, b: NDArray, floor: NDArray, total: NDArray, z: float, target: float) -> NDArray:
    """Bisection on the total label count over water-filled allocations, then the rounding repaired upward."""
    low_total, high_total = int(floor.sum()), int(total.sum())
    while high_total - low_total > 1:
        middle = (low_total + high_total) // 2
        allocation = _water_fill(a, floor, total, middle)
        if _halfwidth(a, b, allocation, total, z) <= target:
            high_total = middle
        else:
            low_total = middle
    n_final = _round_allocation(_water_fill(a, floor, total, high_total), floor, total, high_total)
    while _halfwidth(a, b, n_final, total, z) > target and (n_final < total).any():
        # add the label that lowers the variance most (rounding can leave the target just missed)
        gain = np.where(n_final < total, a / np.maximum(n_final, 1) - a / (n_final + 1), -np.inf)
        n_final[int(np.argmax(gain))] += 1
    return n_final


def _round_allocation(real: NDArray, floor: NDArray, total: NDArray, count: int) -> NDArray:
    """Integer allocation within [floor, total] summing to ``count``, by largest remainder."""
    base = np.clip(np.floor(real).astype(np.int64), floor, total)
    remainder = real - np.floor(real)
    for index in np.argsort(-remainder, kind="stable"):
        if base.sum() >= count:
            break
        if base[index] < total[index]:
            base[index] += 1
    return base


def stratified_selection(
    strata: ArrayLike, n_select: int, *, rng: np.random.Generator | int | None = None
) -> NDArray[np.int64]:
    """Positions of ``n_select`` candidates drawn without replacement, spread proportionally over strata.

    Parameters
    ----------
    strata : array-like of shape (n,)
        Stratum of each candidate (e.g. ``"judges disagree|incoherent"``).
    n_select : int
        How many to draw (at most n).
    rng : numpy Generator, int or None

    Returns
    -------
    ndarray of int
        Sorted positions into ``strata``.

    Notes
    -----
    Proportional allocation (largest remainder) with a simple random sample
    inside each stratum: every candidate has (up to rounding) the same
    inclusion probability, so the labelled items remain a representative
    sample and the prediction-powered estimate needs no weights, while every
    stratum — the judges' disagreements and the incoherent responses, where
    the residual variance lives — is guaranteed its share. (Oversampling
    those strata would lower the variance further but needs
    inverse-probability weights.)

    References
    ----------
    .. [1] Cochran, W. G. (1977). Sampling Techniques, 3rd ed., ch. 5
       (stratified random sampling, proportional allocation). Wiley.

    Examples
    --------
    >>> stratified_selection(["a"] * 6 + ["b"] * 2, 4, rng=0).size
    4
    """
    labels = np.asarray(strata).astype(str)
    if labels.ndim != 1:
        raise ValueError(f"The 'strata' parameter must be 1-d. Got shape {labels.shape} instead.")
    if not isinstance(n_select, int | np.integer) or not 0 <= n_select <= len(labels):
        raise ValueError(f"The 'n_select' parameter must be an integer in [0, {len(labels)}]. Got {n_select!r} instead.")
    generator = np.random.default_rng(rng)
    names, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    quota = _round_allocation(sizes * n_select / len(labels) if len(labels) else sizes * 0.0,
                              np.zeros(len(names), dtype=np.int64), sizes.astype(np.int64), n_select)
    chosen = [generator.choice(np.flatnonzero(inverse == k), size=int(quota[k]), replace=False)
              for k in range(len(names))]
    return np.sort(np.concatenate(chosen).astype(np.int64)) if chosen else np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class UnitPlan:
    """A label plan in units (prompts): labelled now, to add, the half-widths, and the estimator's curve.

    ``halfwidth_now`` is the half-width of the interval the stats row
    reports (:func:`judgekit.stats.ppi.ppi_clustered` on the current labels);
    ``curve`` has columns (labelled units, predicted half-width), monotone,
    for the ``strategy`` the further units will be drawn by;
    ``label_model`` says what the labels of the units not labelled yet were
    taken to be (empty before 10 units are labelled).
    """

    n_labelled: int
    n_units: int
    additional: int
    halfwidth_now: float
    halfwidth_planned: float
    target_halfwidth: float
    reachable: bool
    reason: str
    curve: NDArray
    strategy: str = "random"
    label_model: str = ""


def _unit_means(values: NDArray, units: NDArray, n_units: int) -> NDArray:
    """Mean of the non-NaN ``values`` per unit code (NaN where a unit has none)."""
    seen = ~np.isnan(values)
    counts = np.bincount(units[seen], minlength=n_units)
    sums = np.bincount(units[seen], values[seen], minlength=n_units)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)


# The judge's P(unsafe) stands in for the labels of the unlabelled prompts unless the labelled prompts contradict it
# (the mean of label minus prediction, or of its square minus the Bernoulli variance, at |z| >= this).
CALIBRATION_Z = 2.0
# The active draw's weights are kept worth at least this many equally weighted prompts (defensive_uniform_share), the
# uniform share never below the default. At 30, active plans at target 0.10 (a few dozen prompts) drew by uncertainty
# in 0.42 of 200 simulated studies, saved a median 3 prompts of 36 and landed within 20% of the target in 0.81 of
# them (random 0.92); at 45 such small draws are near uniform (plan-labels then draws at random) while at target 0.05
# active plans still ask for a median 112 prompts where random ones ask for 206 (analyses/results/label_designs/).
# The uniform share never falls below 0.65: at 0.5 those target-0.05 plans asked for 112 prompts and landed within 20%
# of the target in 0.867 of 200 studies; at 0.65, 126 prompts and 0.929 of 200; at 0.8, 143 and 0.960 of 75.
MIN_EFFECTIVE_DRAW, DEFAULT_UNIFORM_SHARE = 45, 0.65
# Above this many open prompts the active curve is computed at this many counts and interpolated (each count needs
# its own inclusion probabilities).
ACTIVE_GRID_POINTS = 200


@dataclass(frozen=True)
class LabelModel:
    """Per unit (prompt) what the labels are expected to be where there are none, from the judge.

    ``mean`` = E[D] and ``square`` = E[D^2] of the unit's label difference D (its labelled value where labelled),
    ``cross`` = E[D F_j] per verdict column j; ``source`` says where they come from (for the plan's output);
    ``mean_noise`` the variance of the labels' correction shared by every unlabelled unit's ``mean`` (0 when the
    judge's probabilities are taken as they are): squared means are biased up by it.
    """

    mean: NDArray
    square: NDArray
    cross: NDArray
    source: str
    mean_noise: float = 0.0


def _judge_label_model(difference: NDArray, judge: NDArray, probability: NDArray, bernoulli: NDArray,
                       labelled: NDArray, *, stated: bool) -> LabelModel:
    """E[D], E[D^2], E[D F] per unit: the labelled units' own values; elsewhere the judge's P(unsafe) taken as each
    label's probability (D's mean the signed sum of the arms' mean P, its variance B their Bernoulli variances),
    unless the labels contradict it (the mean of D - E[D] or of (D - E[D])^2 - B at |z| >= ``CALIBRATION_Z``) or
    the judge states no P(unsafe) (``stated`` False: a verdict claims no label noise): each moment is then the PPI++
    mean of the labelled units' values with the prediction as the judge, shrunk toward the prediction as if it
    were ``JUDGE_WEIGHT`` labelled units."""
    mean, square = probability.copy(), probability**2 + bernoulli
    cross = mean[:, None] * judge
    seen = labelled
    error = difference[seen] - mean[seen]
    # the check: no bias, and the labels stray from P(unsafe) as much as Bernoulli labels would
    worst = max(abs(_mean_z(error)), abs(_mean_z(error**2 - bernoulli[seen]))) if stated else float("inf")
    counts = f"{int((~seen).sum())} unlabelled prompts, {int(seen.sum())} labelled"
    if not stated:
        source = f"the judge's verdicts (it states no P(unsafe)) with the labels, PPI++ ({counts})"
    elif worst < CALIBRATION_Z:
        source = (f"the judge's P(unsafe) as each unlabelled label's probability ({counts}; the labelled agree with "
                  f"it: |z| {worst:.2f} < {CALIBRATION_Z:g})")
    else:
        source = (f"the judge's P(unsafe) with the labels, PPI++ ({counts}; the labelled contradict it as each "
                  f"label's probability: |z| {worst:.2f} >= {CALIBRATION_Z:g})")
    noise = 0.0
    if not stated or worst >= CALIBRATION_Z:
        # the labels' PPI++ moments, shrunk toward the judge's as if it were JUDGE_WEIGHT labelled units (a pilot
        # whose label differences happen all to be 0 does not make the plan expect no variance at all)
        labels_share = seen.sum() / (seen.sum() + JUDGE_WEIGHT)
        labelled_cross = difference[seen, None] * judge[seen]
        cross = np.column_stack([_power_tuned(labelled_cross[:, j], cross[:, j], seen)[0] * labels_share
                                 + cross[:, j] * (1 - labels_share) for j in range(judge.shape[1])])
        (tuned_mean, noise), tuned_square = (_power_tuned(difference[seen], mean, seen),
                                             _power_tuned(difference[seen] ** 2, square, seen)[0])
        mean = labels_share * tuned_mean + (1 - labels_share) * mean
        square = labels_share * tuned_square + (1 - labels_share) * square
        noise *= labels_share**2
    mean, square = np.where(seen, difference, mean), np.where(seen, difference**2, square)
    cross = np.where(seen[:, None], difference[:, None] * judge, cross)
    return LabelModel(mean, np.maximum(square, mean**2), cross, source, noise)


def _power_tuned(observed: NDArray, predicted: NDArray, labelled: NDArray) -> tuple[NDArray, float]:
    """(per unit lam * prediction + the labelled units' mean of observed - lam * prediction, that mean's variance):
    its mean over the units is the PPI++ estimate of the observed quantity's mean (lam power-tuned, so never noisier
    than the labels alone)."""
    lam = power_tuning_lambda(observed, predicted[labelled], predicted[~labelled]) if (~labelled).any() else 0.0
    correction = observed - lam * predicted[labelled]
    return lam * predicted + float(correction.mean()), float(np.var(correction, ddof=1) / len(correction))


def _mean_z(values: NDArray) -> float:
    """z statistic of a mean against 0 (0 when every value is 0; inf when they all agree on one non-zero value)."""
    if len(values) < 2:
        return 0.0
    spread = float(np.std(values, ddof=1))
    centre = float(values.mean())
    if spread == 0:
        return 0.0 if centre == 0 else float("inf")
    return centre / (spread / np.sqrt(len(values)))


def _random_curve(model: LabelModel, judge: NDArray, labelled: NDArray, grid: NDArray) -> NDArray:
    """Variance of the unweighted PPI++ effect at each m of ``grid`` labelled units: the labelled now plus m - n
    drawn at random from the others, whose moments enter at their expected (model) values, weights re-tuned at m.

    With V = Var(D), c = Cov(D, F) over the labelled and S = Cov(F) over all M units the variance at weights lam is
    (V - 2 lam'c + lam'S lam)/m + lam'S lam/(M - m), least at lam = (M - m)/M S^{-1} c (clipped to [0, 1]); with the
    weights unclipped it is V[(1 - R^2)/m + R^2/M], falling in m. V and c are the labelled set's expected sample
    moments over the draw; the first term is shrunk by (1 - k/m) for the k weights tuned on the same labels."""
    total, k = len(model.mean), judge.shape[1]
    now, rest = int(labelled.sum()), ~labelled
    added = (grid - now)[:, None].astype(float)
    per = [(model.mean[labelled].sum(), model.mean[rest].mean() if rest.any() else 0.0),
           (model.square[labelled].sum(), model.square[rest].mean() if rest.any() else 0.0)]
    first, second = ((s + added[:, 0] * u) / grid for s, u in per)
    verdicts = (judge[labelled].sum(axis=0) + added * (judge[rest].mean(axis=0) if rest.any() else 0.0)) / grid[:, None]
    cross = (model.cross[labelled].sum(axis=0) + added * (model.cross[rest].mean(axis=0) if rest.any() else 0.0)
             ) / grid[:, None]
    correction = grid / np.maximum(grid - 1, 1)
    # E[s^2] = m/(m-1) (E[mean D^2] - E[mean D]^2 - Var(mean D)): the draw of m - n of the R open units (without
    # replacement) makes the labelled mean vary, and the added units' mean shares one estimated correction
    # (``mean_noise``), by which first**2 overstates E[first]**2
    open_count = max(int(rest.sum()), 2)
    draw = added[:, 0] * (open_count - added[:, 0]) / (open_count - 1) / grid**2
    spread_open = (np.cov(np.column_stack([model.mean[rest], judge[rest]]), rowvar=False, ddof=0).reshape(k + 1, k + 1)
                   if rest.sum() > 1 else np.zeros((k + 1, k + 1)))
    variance_open = (model.square[rest].mean() - model.mean[rest].mean() ** 2) if rest.any() else 0.0
    v = (second - first**2 - draw * variance_open + (added[:, 0] / grid) ** 2 * model.mean_noise) * correction
    c = (cross - first[:, None] * verdicts - draw[:, None] * spread_open[0, 1:]) * correction[:, None]
    s = np.cov(judge, rowvar=False, ddof=1).reshape(k, k)
    direction = c @ np.linalg.pinv(s).T if np.any(s) else np.zeros_like(c)
    share = ((total - grid) / total)[:, None]
    # as the estimator: too few judge-only units left and the labels stand alone
    lam = np.where((total - grid >= MIN_UNLABELLED_FOR_WEIGHT)[:, None], np.clip(share * direction, 0.0, 1.0), 0.0)
    spread = np.einsum("gi,ij,gj->g", lam, s, lam)
    # weights fitted to the same labels shrink the residuals' sum of squares by one residual variance each (as k fitted
    # coefficients leave n - k degrees of freedom)
    fitted = 1 - (lam > 0).sum(axis=1) / grid
    residual = np.maximum(v - 2 * np.sum(lam * c, axis=1) + spread, 0.0) * fitted
    with np.errstate(divide="ignore", invalid="ignore"):
        unlabelled = np.where(grid < total, spread / np.maximum(total - grid, 1), 0.0)
    return residual / grid + unlabelled


def _active_curve(model: LabelModel, judge: NDArray, labelled: NDArray, weight_now: NDArray, uncertainty: NDArray,
                  grid: NDArray) -> NDArray:
    """Variance of the inverse-probability-weighted PPI++ effect at each m of ``grid``: m - n more units drawn with
    the probabilities :func:`active_inclusion_probabilities` gives ``uncertainty`` at count m - n (the uniform share
    from :func:`defensive_uniform_share`, as plan-labels draws).

    The estimator averages Z_i = lam'F_i + (xi_i / pi_i)(D_i - lam'F_i) over all M units and reports the variance of
    that mean as if the Z_i were independent, sum (Z_i - Zbar)^2 / (M(M - 1)). Over the draw E[Z_i] = D_i and
    E[Z_i^2] = D_i^2 + (1/pi_i - 1) r_i^2 with r_i = D_i - lam'F_i (the Horvitz-Thompson variance of Poisson
    sampling; E[Z_i^2] needs only the unit's own probability, so it holds for the fixed-size draw too), so its
    expectation is [sum_i (D_i - Dbar)^2 + sum_open (1/pi_i - 1) E r_i^2] / (M(M - 1)); the
    weights minimise the second sum (weighted least squares, clipped to [0, 1]). Labelled units enter with their
    recorded probability (``weight_now`` = 1/pi - 1, 0 for labels there before any draw)."""
    total, rest = len(model.mean), ~labelled
    now, open_units = int(labelled.sum()), int(rest.sum())
    counts = grid - now
    points = counts if len(counts) <= ACTIVE_GRID_POINTS else np.unique(np.round(np.geomspace(
        max(counts[0], 1), counts[-1], ACTIVE_GRID_POINTS)).astype(int))
    # sum (D - Dbar)^2 in expectation (the squared mean's bias from the shared correction added back)
    spread = float(model.square.sum() - model.mean.sum() ** 2 / total + open_units**2 / total * model.mean_noise)
    f_open, cross_open, square_open = judge[rest], model.cross[rest], model.square[rest]
    out = np.empty(len(points))
    for index, count in enumerate(points):
        if count == 0:
            weight = np.zeros(open_units)
        else:
            share = defensive_uniform_share(uncertainty[rest], float(count))
            weight = 1 / active_inclusion_probabilities(uncertainty[rest], float(count), uniform_share=share) - 1
        lam = np.zeros(judge.shape[1])
        if open_units - count >= MIN_UNLABELLED_FOR_WEIGHT:
            gram = (f_open * weight[:, None]).T @ f_open
            lam = np.clip(np.linalg.pinv(gram) @ (weight @ cross_open), 0.0, 1.0)
        residual_open = square_open - 2 * cross_open @ lam + (f_open @ lam) ** 2
        residual_now = (model.square[labelled] - 2 * model.cross[labelled] @ lam + (judge[labelled] @ lam) ** 2)
        out[index] = (spread + weight @ np.maximum(residual_open, 0.0)
                      + weight_now[labelled] @ np.maximum(residual_now, 0.0)) / (total * (total - 1))
    if len(points) == len(counts):
        return out
    with np.errstate(divide="ignore"):  # a variance of 0 (every open residual 0) interpolates as 0
        return np.exp(np.interp(np.log(np.maximum(counts, 1)), np.log(np.maximum(points, 1)), np.log(out)))


def _judge_probabilities(predictions: NDArray, p_unsafe: ArrayLike | None, codes: NDArray, arms: list[NDArray],
                         signs: list[float], n_units: int) -> tuple[NDArray, NDArray, bool]:
    """Per unit the judge's expected label difference sum_a s_a mean(p) and its Bernoulli variance
    sum_a mean(p(1 - p))/k_a, with p the item's P(unsafe) (its verdict where it has none); and whether it states
    any P(unsafe)."""
    p = np.full(predictions.shape, np.nan) if p_unsafe is None else np.asarray(p_unsafe, dtype=float)
    if p.shape != predictions.shape:
        raise ValueError(f"p_unsafe must have one value per item. Got shape {p.shape} instead.")
    stated = bool((np.isfinite(p) & ~np.isnan(predictions)).any())
    p = np.where(np.isfinite(p) & ~np.isnan(predictions), np.clip(p, 0.0, 1.0), predictions)
    expected, bernoulli = np.zeros(n_units), np.zeros(n_units)
    for in_arm, sign in zip(arms, signs, strict=True):
        seen = in_arm & ~np.isnan(p)
        counts = np.bincount(codes[seen], minlength=n_units)
        with np.errstate(invalid="ignore", divide="ignore"):
            expected += sign * np.bincount(codes[seen], p[seen], minlength=n_units) / counts
            bernoulli += np.bincount(codes[seen], p[seen] * (1 - p[seen]), minlength=n_units) / counts**2
    return expected, bernoulli, stated


def _unit_inclusion(inclusion: ArrayLike | None, codes: NDArray, n_units: int) -> NDArray:
    """Per unit its recorded inclusion probability (the smallest of its items'; 1 where none is recorded)."""
    if inclusion is None:
        return np.ones(n_units)
    values = np.asarray(inclusion, dtype=float)
    per_unit = pd.Series(np.where(np.isnan(values), 1.0, values)).groupby(codes).min()
    return per_unit.reindex(range(n_units)).fillna(1.0).to_numpy()


def _item_uncertainty(uncertainty: ArrayLike | None, n: int) -> NDArray:
    if uncertainty is None:
        return np.zeros(n)
    values = np.asarray(uncertainty, dtype=float)
    if values.shape != (n,) or not (np.isfinite(values) & (values >= 0)).all():
        raise ValueError(f"uncertainty must be finite, non-negative, one value per item. Got shape {values.shape}.")
    return values


def _design_effect(se: float, labels: NDArray, predictions: NDArray, codes: NDArray, clusters: NDArray,
                   treated: ArrayLike | None, level: float, inclusion: ArrayLike | None) -> float:
    """The current interval's variance over the same estimator's with every unit its own cluster (1 when the
    clusters are the units)."""
    cluster_codes = pd.factorize(pd.Series(clusters).astype(str))[0]
    pairs = pd.DataFrame({"unit": codes, "cluster": cluster_codes}).drop_duplicates()
    if pairs["unit"].is_unique and pairs["cluster"].is_unique:
        return 1.0
    per_unit = ppi_clustered(labels, predictions, codes, treated=treated, level=level, inclusion=inclusion,
                             pseudo_labels=False)
    return float((se / per_unit.se) ** 2) if per_unit.se > 0 else 1.0


def _prior_variance(labels: NDArray, predictions: NDArray, arms: list[NDArray], difference: NDArray, judge: NDArray,
                    m: NDArray, total: int, prior_residual: float) -> NDArray:
    """The PPI variance at m of ``total`` labelled units while fewer than 10 are: r (1/m - 1/M) + V/M, which at
    m = M is the labels-only variance V/M. r: per arm the judge's mean squared disagreement with the labels so far,
    with ``prior_residual`` as one pseudo-item, summed over arms. V: the label difference's variance over the
    labelled units, shrunk toward the judge's over all units (worth ``JUDGE_WEIGHT`` units): the verdicts stand in
    for the labels where there are none (its residuals are not added: a thresholded judge's errors run against its
    verdicts, and adding them doubled V in simulation)."""
    residual = 0.0
    for arm in arms:
        seen = arm & ~np.isnan(labels)
        disagree = float(np.sum((labels[seen] - predictions[seen]) ** 2))
        residual += (disagree + prior_residual) / (seen.sum() + 1)
    judged = float(np.var(judge.sum(axis=1), ddof=1)) if len(judge) > 1 else 0.0
    seen = difference[~np.isnan(difference)]
    squares = float(np.sum((seen - seen.mean()) ** 2)) if len(seen) else 0.0
    spread = (squares + JUDGE_WEIGHT * judged) / (max(len(seen) - 1, 0) + JUDGE_WEIGHT)
    return residual * (1 / m - 1 / total) + spread / total


def plan_unit_labels(
    y: ArrayLike,
    yhat: ArrayLike,
    units: ArrayLike,
    clusters: ArrayLike,
    *,
    target_halfwidth: float,
    treated: ArrayLike | None = None,
    level: float = 0.95,
    budget: int | None = None,
    prior_residual: float = MAX_BINARY_VARIANCE,
    few_units: int = 30,
    inclusion: ArrayLike | None = None,
    p_unsafe: ArrayLike | None = None,
    strategy: str = "random",
    uncertainty: ArrayLike | None = None,
) -> UnitPlan:
    """Fewest extra labelled units (prompts: both models' responses) for the PPI++ interval to reach a half-width.

    Parameters
    ----------
    y, yhat, clusters, treated
        As for :func:`judgekit.stats.ppi.ppi_clustered` (the estimator
        ``stats`` reports): labels (NaN = none), verdicts, clusters, arm.
    units : array-like of shape (n,)
        The labelling unit of each item (the prompt): a planned unit has
        every response labelled, both models' when ``treated`` is given, so
        the two models' residuals pair.
    target_halfwidth : float
    level : float, default=0.95
    budget : int or None
        Extra units available: the plan is what they reach.
    prior_residual : float, default=0.25
        While fewer than 10 units are labelled, each arm's residual variance
        is its labels' mean squared disagreement with the judge with this
        prior added as one pseudo-item (with no label at all: this value).
    few_units : int, default=30
        A plan below this many labelled units warns: the normal interval can
        under-cover.
    inclusion : array-like of shape (n,), optional
        Recorded inclusion probabilities, as for ``ppi_clustered``: the
        current half-width is then the weighted estimator's.
    p_unsafe : array-like of shape (n,), optional
        The judge's P(unsafe) per item (NaN: its verdict stands in). It
        predicts the labels of the prompts not labelled yet (below).
    strategy : {"random", "active"}, default="random"
        How the further units will be drawn: at random (the unweighted
        estimator) or with the probabilities
        :func:`active_inclusion_probabilities` gives ``uncertainty`` (uniform
        share from :func:`defensive_uniform_share`; the
        inverse-probability-weighted estimator).
    uncertainty : array-like of shape (n,), optional
        Per item where the judge is likely wrong (``strategy="active"``); a
        unit's is the mean over its unlabelled items, as ``plan-labels``
        draws. None: uniform.

    Returns
    -------
    UnitPlan

    Notes
    -----
    Per unit: D the label difference (one arm: the label mean), F the
    judge's verdict means (one column per arm, the control's negated). The
    variance of the estimator at m labelled units needs the moments of D,
    which the labelled units give only noisily (from a 20-prompt pilot alone
    the projection at full labelling was within 10% of labelling everything
    in 28.5% of 200 simulated studies, ``analyses/label_designs.py``). Every
    unit's judge output is known, so D's moments over the
    units not labelled yet are predicted from the judge, taking its P(unsafe)
    p as each label's probability: :math:`E[D] = \\sum_a s_a \\bar p_a` and
    :math:`E[D^2] = E[D]^2 + \\sum_a \\overline{p_a(1 - p_a)}/k_a` (Bernoulli
    labels, independent given p, k_a items of arm a), the labelled units
    entering with their own values. Where the labelled units contradict the
    prediction (mean of D - E[D], or of (D - E[D])^2 minus its Bernoulli
    variance, at |z| >= 2), or where the judge gives verdicts only, each
    moment is instead the PPI++ mean of the labelled units' values with
    the prediction as the judge [1]_ [2]_ (unbiased under a random pilot, but
    about as noisy as the labels), shrunk toward the prediction as if it were
    10 labelled units. The curve is then the variance of the estimator the
    strategy uses:

    * random: the PPI++ variance
      :math:`(V - 2\\lambda^\\top c + \\lambda^\\top S\\lambda)/m + \\lambda^\\top S\\lambda/(M - m)`
      with V, c the labelled set's expected sample moments at m (the
      labelled now plus m - n drawn at random from the rest, the draw's own
      variance included) and S = Cov(F) over all M units, at the weights the
      estimator tunes at m [1]_, the first term times (1 - k/m) for the k
      weights tuned on the same labels; its small-sample widening
      (pseudo-labels, a fixed number of pseudo-items) is added, its
      variance shrinking as 1/m^2;
    * active: the reported variance of the inverse-probability-weighted
      mean with the inclusion probabilities
      :math:`\\pi_i` the plan will use at that count,
      :math:`[\\sum_i (D_i - \\bar D)^2 + \\sum_{open} (1/\\pi_i - 1) E r_i^2]/(M(M-1))`,
      :math:`r_i = D_i - \\lambda^\\top F_i` (the Horvitz-Thompson variance of
      Poisson sampling [3]_ [4]_; the estimator is active inference's [5]_),
      the weights minimising the second sum.

    Both are multiplied by the design effect of the clusters (the current
    interval's variance over the same interval's with every unit its own
    cluster).

    References
    ----------
    .. [1] Angelopoulos, A. N., Duchi, J. C., & Zrnic, T. (2023). PPI++:
       Efficient prediction-powered inference. arXiv:2311.01453, sec. 2.
    .. [2] Angelopoulos, A. N., Bates, S., Fannjiang, C., Jordan, M. I., &
       Zrnic, T. (2023). Prediction-powered inference. Science, 382(6671),
       669-674. doi:10.1126/science.adi6000
    .. [3] Horvitz, D. G., & Thompson, D. J. (1952). A generalization of
       sampling without replacement from a finite universe. JASA, 47(260),
       663-685. doi:10.1080/01621459.1952.10483446
    .. [4] Särndal, C.-E., Swensson, B., & Wretman, J. (1992). Model
       Assisted Survey Sampling, sec. 3.5 (Poisson sampling) and 6.3
       (difference estimator). Springer.
    .. [5] Zrnic, T., & Candès, E. J. (2024). Active statistical inference.
       ICML 2024, arXiv:2403.03208.
    """
    labels, predictions = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    arm = np.ones(len(labels), dtype=bool) if treated is None else np.asarray(treated, dtype=bool)
    if not (np.isfinite(target_halfwidth) and target_halfwidth > 0):
        raise ValueError(f"The 'target_halfwidth' parameter must be positive. Got {target_halfwidth!r} instead.")
    if budget is not None and (not isinstance(budget, int | np.integer) or budget < 0):
        raise ValueError(f"The 'budget' parameter must be a non-negative integer or None. Got {budget!r} instead.")
    if strategy not in ("random", "active"):
        raise ValueError(f"The 'strategy' parameter must be 'random' or 'active'. Got {strategy!r} instead.")
    codes, names = pd.factorize(pd.Series(np.asarray(units)).astype(str), sort=True)
    total = len(names)
    arms = [arm] if treated is None else [arm, ~arm]
    label_means = [_unit_means(np.where(a, labels, np.nan), codes, total) for a in arms]
    judge_means = [_unit_means(np.where(a, predictions, np.nan), codes, total) for a in arms]
    labelled_units = np.logical_and.reduce([~np.isnan(m) for m in label_means])
    answered = np.logical_and.reduce([~np.isnan(m) for m in judge_means])
    signs = [1.0] if treated is None else [1.0, -1.0]
    difference = sum(s * m for s, m in zip(signs, label_means, strict=True))
    judge = np.column_stack([s * m for s, m in zip(signs, judge_means, strict=True)])
    now_count, total = int((labelled_units & answered).sum()), int(answered.sum())
    if total == 0:
        raise ValueError("No unit has a verdict in every arm (yhat is missing for a whole arm): nothing to plan.")
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    halfwidth_now, model_halfwidth, design_effect = float("inf"), float("inf"), 1.0
    try:
        current = ppi_clustered(labels, predictions, np.asarray(clusters), treated=treated, level=level,
                                inclusion=inclusion)
        halfwidth_now = (current.ci_high - current.ci_low) / 2
        # the curve is the interval without its small-sample pseudo-labels, which vanish as labels grow
        bare = current if inclusion is not None else ppi_clustered(
            labels, predictions, np.asarray(clusters), treated=treated, level=level, pseudo_labels=False)
        model_halfwidth = bare.se * z
        design_effect = _design_effect(bare.se, labels, predictions, codes, np.asarray(clusters), treated, level,
                                       inclusion)
    except ValueError:  # fewer than 2 labelled items in an arm: no interval yet
        pass
    grid = np.arange(max(now_count, 1), total + 1)
    keep = labelled_units & answered
    source = ""
    if now_count >= 10:
        probability, bernoulli, stated = _judge_probabilities(predictions, p_unsafe, codes, arms, signs, len(names))
        model = _judge_label_model(difference[answered], judge[answered], probability[answered],
                                   bernoulli[answered], keep[answered], stated=stated)
        source = model.source
        if strategy == "active":
            weight_now = 1 / _unit_inclusion(inclusion, codes, len(names))[answered] - 1
            open_uncertainty = _unit_means(np.where(np.isnan(labels), _item_uncertainty(uncertainty, len(labels)),
                                                    np.nan), codes, len(names))[answered]
            variance = _active_curve(model, judge[answered], keep[answered], weight_now,
                                     np.nan_to_num(open_uncertainty), grid)
            widening = 0.0  # the weighted estimator has no pseudo-labels
        else:
            variance = _random_curve(model, judge[answered], keep[answered], grid)
            # the interval's small-sample widening (pseudo-labels) is a fixed number of pseudo-items in a mean of m:
            # its variance shrinks as 1/m^2 (and stays where the labels so far vary not at all, the bare interval 0)
            widening = (max(halfwidth_now**2 - model_halfwidth**2, 0.0) / z**2
                        if np.isfinite(halfwidth_now) and np.isfinite(model_halfwidth) else 0.0)
        with np.errstate(invalid="ignore"):
            curve_halfwidth = z * np.sqrt(design_effect * variance + widening * (max(now_count, 1) / grid) ** 2)
    else:
        variance = _prior_variance(labels, predictions, arms, difference[labelled_units & answered], judge[answered],
                                   grid, total, prior_residual)
        curve_halfwidth = z * np.sqrt(variance)
    if grid[0] == now_count and np.isfinite(halfwidth_now):
        curve_halfwidth[0] = halfwidth_now  # the curve starts at the stats row's half-width
    curve_halfwidth = np.minimum.accumulate(curve_halfwidth)
    curve = np.column_stack([grid, curve_halfwidth])
    at = dict(zip(grid.tolist(), curve_halfwidth.tolist(), strict=True))

    def plan(final: int, reachable: bool, reason: str) -> UnitPlan:
        planned = halfwidth_now if final == now_count and np.isfinite(halfwidth_now) else at.get(final, float("inf"))
        if reachable and final < few_units:
            reason = "; ".join(filter(None, [reason, f"few labelled prompts ({final}): the interval may under-cover"]))
        return UnitPlan(now_count, total, final - now_count, halfwidth_now, planned, target_halfwidth, reachable,
                        reason, curve, strategy, source)

    if halfwidth_now <= target_halfwidth:
        return plan(now_count, True, "target met, 0 labels")
    if budget is not None:
        final = min(now_count + budget, total)
        met = at.get(final, float("inf")) <= target_halfwidth
        return plan(final, met, "" if met else f"the budget reaches {at.get(final, float('inf')):.4f}, not the target")
    if curve_halfwidth[-1] > target_halfwidth:
        return plan(total, False, f"not reachable: labelling every prompt gives about {curve_halfwidth[-1]:.4f}")
    final = int(grid[np.argmax(curve_halfwidth <= target_halfwidth)])
    return plan(final, True, "")


def active_inclusion_probabilities(
    uncertainty: ArrayLike, expected_count: float, *, uniform_share: float = DEFAULT_UNIFORM_SHARE
) -> NDArray:
    """Inclusion probabilities proportional to a mix of uniform and judge uncertainty, summing to ``expected_count``.

    Parameters
    ----------
    uncertainty : array-like of shape (n,)
        Non-negative score per candidate (e.g. judges' disagreement, or
        ``1 - 2|p_unsafe - 0.5|``): where the judge is likely wrong.
    expected_count : float
        Wanted expected number drawn, in [0, n].
    uniform_share : float in (0, 1], default=DEFAULT_UNIFORM_SHARE (0.65)
        Share of the uniform part: every probability is at least
        ``uniform_share * expected_count / n`` (a floor, so every inverse
        weight stays bounded and the estimator unbiased).

    Returns
    -------
    ndarray of shape (n,)
        Probabilities in (0, 1] (0 only when ``expected_count`` is 0),
        :math:`\\pi_i = \\min(1, c\\,[s/n + (1-s) u_i/\\sum u])` with c
        raised until :math:`\\sum \\pi = ` ``expected_count`` (those capped at
        1 give their excess to the others).

    References
    ----------
    .. [1] Zrnic, T., & Candès, E. J. (2024). Active statistical inference.
       ICML 2024, arXiv:2403.03208, sec. 3 (sampling by uncertainty, mixed
       with uniform).

    Examples
    --------
    >>> active_inclusion_probabilities([0, 0, 1, 1], 2, uniform_share=0.5).round(3).tolist()
    [0.25, 0.25, 0.75, 0.75]
    """
    scores = np.asarray(uncertainty, dtype=float)
    if scores.ndim != 1 or not np.isfinite(scores).all() or (scores < 0).any():
        raise ValueError("The 'uncertainty' parameter must be 1-d, finite and non-negative.")
    if not (np.isfinite(expected_count) and 0 <= expected_count <= len(scores)):
        raise ValueError(f"The 'expected_count' parameter must be in [0, {len(scores)}]. Got {expected_count!r} instead.")
    if not 0 < uniform_share <= 1:
        raise ValueError(f"The 'uniform_share' parameter must be in (0, 1]. Got {uniform_share!r} instead.")
    if expected_count == 0:
        return np.zeros(len(scores))
    shape = uniform_share / len(scores) + (1 - uniform_share) * (
        scores / scores.sum() if scores.sum() > 0 else np.full(len(scores), 1 / len(scores)))
    low, high = 0.0, expected_count / shape.min()  # at c = high every probability is 1
    for _ in range(100):
        middle = (low + high) / 2
        if np.minimum(1.0, middle * shape).sum() < expected_count:
            low = middle
        else:
            high = middle
    return np.minimum(1.0, high * shape)


def defensive_uniform_share(
    uncertainty: ArrayLike, expected_count: float, *, min_effective: float = MIN_EFFECTIVE_DRAW,
    least: float = DEFAULT_UNIFORM_SHARE
) -> float:
    """The uniform share of :func:`active_inclusion_probabilities` that keeps the draw's weights worth
    ``min_effective`` equally weighted prompts: at least ``least``, raised toward 1 (uniform) for small draws.

    Parameters
    ----------
    uncertainty : array-like of shape (n,)
        As for :func:`active_inclusion_probabilities`.
    expected_count : float
        Prompts the draw takes (in expectation).
    min_effective : float, default=MIN_EFFECTIVE_DRAW (45)
        Wanted Kish effective size of the draw's inverse-probability weights.
    least : float in (0, 1], default=DEFAULT_UNIFORM_SHARE (0.65)
        The share used when the draw is large enough.

    Returns
    -------
    float
        The smallest share in ``[least, 1]`` whose effective size :math:`n^2 / \\sum 1/\\pi_i` (the draw's weights
        :math:`1/\\pi` over the n candidates, :math:`\\pi` before capping at 1) reaches ``min_effective``; 1 when
        even uniform weights (effective size the count) cannot.

    Notes
    -----
    A small draw with unequal weights leans on few prompts: the weighted estimator's variance estimate then moves
    with whether the draw took one of the rare prompts that count 1/pi times (a confident judge's rare error), and
    its median falls below its mean. Mixing in more of the uniform design (a defensive mixture [1]_) bounds that;
    the effective size of a weighted sample is Kish's [2]_. The default, 45, is measured (see
    ``MIN_EFFECTIVE_DRAW``): at 30 the small active draws of a target of 0.10 landed within 20% of it less often
    than random draws for about as many labels.

    References
    ----------
    .. [1] Hesterberg, T. (1995). Weighted average importance sampling and defensive mixture distributions.
       Technometrics, 37(2), 185-194. doi:10.1080/00401706.1995.10484303
    .. [2] Kish, L. (1965). Survey Sampling, sec. 11.7 (effective size under unequal weights). Wiley.

    Examples
    --------
    >>> defensive_uniform_share([0, 0, 1, 1] * 50, 100)  # a large draw keeps the default
    0.65
    >>> defensive_uniform_share([0, 0, 1, 1] * 50, 10)  # too small for 45 effective prompts: uniform
    1.0
    """
    scores = np.asarray(uncertainty, dtype=float)
    if scores.ndim != 1 or not np.isfinite(scores).all() or (scores < 0).any():
        raise ValueError("The 'uncertainty' parameter must be 1-d, finite and non-negative.")
    if not (np.isfinite(expected_count) and 0 <= expected_count <= len(scores)):
        raise ValueError(f"The 'expected_count' parameter must be in [0, {len(scores)}]. Got {expected_count!r} instead.")
    if not (np.isfinite(min_effective) and min_effective >= 0):
        raise ValueError(f"The 'min_effective' parameter must be non-negative. Got {min_effective!r} instead.")
    if not 0 < least <= 1:
        raise ValueError(f"The 'least' parameter must be in (0, 1]. Got {least!r} instead.")
    if scores.sum() == 0:
        return float(least)  # no uncertainty (or no candidate): every share is uniform
    share_of, n = scores / scores.sum(), len(scores)

    def efficiency(share: float) -> float:  # effective size over the count, n^2 / sum(1/shape), shape summing to 1
        return float(n**2 / np.sum(1 / (share / n + (1 - share) * share_of)))

    wanted = min_effective / max(expected_count, 1e-12)
    if efficiency(least) >= wanted:
        return float(least)
    if wanted >= 1:
        return 1.0
    low, high = least, 1.0  # efficiency rises with the share (1 at uniform)
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if efficiency(middle) < wanted else (low, middle)
    return float(high)


def systematic_draw(probabilities: ArrayLike, *, order: ArrayLike | None = None,
                    rng: np.random.Generator | int | None = None) -> NDArray[np.bool_]:
    """A fixed-size draw with the given inclusion probabilities: systematic sampling along ``order`` (ties in a
    random order), from a uniform random start.

    Parameters
    ----------
    probabilities : array-like of shape (n,)
        Inclusion probabilities in [0, 1]; their sum is the number drawn (rounded up or down at random when not an
        integer).
    order : array-like of shape (n,), optional
        Sort key (e.g. the judge's uncertainty): the draw then takes every stretch of it in proportion to its
        probabilities (implicit stratification). None: a random order.
    rng : numpy Generator, int or None

    Returns
    -------
    ndarray of bool

    Notes
    -----
    Each candidate is drawn with exactly its probability (the random start is uniform over a unit interval of the
    cumulated probabilities), so the inverse-probability-weighted estimate stays unbiased. Unlike Poisson sampling
    the count does not vary and the draw cannot miss a whole stretch of ``order`` [1]_ [2]_. The estimator still
    reports Poisson sampling's variance :math:`\\sum (1/\\pi - 1) r^2` (its expectation needs only each
    candidate's own probability); the fixed count and the spread over ``order`` take variation out of the
    estimate, so that variance errs wide (coverage: ``analyses/results/label_designs/``).

    References
    ----------
    .. [1] Madow, W. G. (1949). On the theory of systematic sampling, II. Annals of Mathematical Statistics,
       20(3), 333-354. doi:10.1214/aoms/1177729988
    .. [2] Särndal, C.-E., Swensson, B., & Wretman, J. (1992). Model Assisted Survey Sampling, sec. 3.6
       (systematic pi-ps sampling). Springer.

    Examples
    --------
    >>> int(systematic_draw([0.5, 0.5, 1.0, 0.5, 0.5], rng=0).sum())
    3
    """
    values = np.asarray(probabilities, dtype=float)
    if values.ndim != 1 or not np.all((values >= 0) & (values <= 1)):
        raise ValueError("The 'probabilities' parameter must be 1-d with values in [0, 1].")
    generator = np.random.default_rng(rng)
    ties = generator.random(len(values))
    if order is None:
        sequence = np.argsort(ties)
    else:
        key = np.asarray(order, dtype=float)
        if key.shape != values.shape or not np.isfinite(key).all():
            raise ValueError(f"The 'order' parameter must be finite, one value per probability. Got shape "
                             f"{key.shape}.")
        sequence = np.lexsort((ties, key))
    cumulated = np.cumsum(values[sequence])
    start = generator.random()
    # candidate k is drawn when a point start + j (j integer) falls in its stretch [C_{k-1}, C_k)
    hit = np.floor(cumulated - start) > np.floor(np.concatenate([[0.0], cumulated[:-1]]) - start)
    drawn = np.zeros(len(values), dtype=bool)
    drawn[sequence] = hit
    return drawn
