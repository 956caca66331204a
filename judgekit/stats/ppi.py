"""Prediction-powered inference: a judge's verdicts on every item, corrected by its errors on the labelled ones.

A judge's harmful rate is biased by its errors, and its errors differ between
a base model's fluent refusals and a fine-tune's incoherent answers, so a
judge-only fine-tune effect is biased too. Prediction-powered inference (PPI)
takes the judge's mean on the unlabelled items and adds the mean human-minus-
judge residual measured on a random labelled subset ("the rectifier"); its
interval contains both the sampling error and the judge's error. PPI++ scales
the judge's verdicts by a tuned ``lambda`` so the estimate is never less
precise than the labels alone (``lambda = 0``) and gains the most where the
judge is good.

Conventions follow the reference implementation ``ppi_py`` (Angelopoulos et
al.): ``y`` are human labels, ``yhat`` the judge's prediction on the same
items, ``yhat_unlabelled`` its predictions on the items without labels;
variances use ``ddof=0`` and the interval is a normal (z) interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri
from scipy.stats import t as student_t


@dataclass(frozen=True)
class PPIEstimate:
    """A prediction-powered estimate and its interval.

    ``lam`` is the power-tuning weight used (1 = plain PPI, 0 = labels
    only); ``se`` the standard error; ``method`` names the variant.
    """

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    lam: float
    n_labelled: int
    n_unlabelled: int
    method: str


def _vector(name: str, values: ArrayLike, *, min_length: int) -> NDArray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"The {name!r} parameter must be 1-d. Got shape {array.shape} instead.")
    if not np.isfinite(array).all():
        raise ValueError(f"The {name!r} parameter must be finite (drop missing labels or verdicts first).")
    if len(array) < min_length:
        raise ValueError(f"The {name!r} parameter needs at least {min_length} values. Got {len(array)} instead.")
    return array


def _validate(y: ArrayLike, yhat: ArrayLike, yhat_unlabelled: ArrayLike, level: float,
              lam: float | None) -> tuple[NDArray, NDArray, NDArray]:
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    if lam is not None and not (np.isfinite(lam) and 0 <= lam <= 1):
        raise ValueError(f"The 'lam' parameter must be None (tuned) or in [0, 1]. Got {lam!r} instead.")
    labels = _vector("y", y, min_length=2)
    predictions = _vector("yhat", yhat, min_length=2)
    unlabelled = _vector("yhat_unlabelled", yhat_unlabelled, min_length=0)
    if labels.shape != predictions.shape:
        raise ValueError(f"y and yhat must have equal length. Got {labels.shape} and {predictions.shape} instead.")
    return labels, predictions, unlabelled


def power_tuning_lambda(y: NDArray, yhat: NDArray, yhat_unlabelled: NDArray) -> float:
    """PPI++ weight minimising the variance of the mean estimate, clipped to [0, 1].

    :math:`\\hat\\lambda = \\widehat{\\mathrm{Cov}}(Y, \\hat Y) / ((1 + n/N)\\,\\widehat{\\mathrm{Var}}(\\hat Y))`,
    with the covariance on the labelled items (``ddof=0``) and the variance
    of the predictions on all items (``ddof=1``), as in ``ppi_py``
    ``_calc_lam_glm``. A constant judge has no variance to exploit: 0.

    References
    ----------
    .. [1] Angelopoulos, A. N., Duchi, J. C., & Zrnic, T. (2023). PPI++:
       Efficient prediction-powered inference. arXiv:2311.01453, eq. (6).
    """
    n, big_n = len(y), len(yhat_unlabelled)
    covariance = np.mean((y - y.mean()) * (yhat - yhat.mean()))
    variance = np.var(np.concatenate([yhat, yhat_unlabelled]), ddof=1)
    if variance <= 0:
        return 0.0
    return float(np.clip(covariance / ((1 + n / big_n) * variance), 0.0, 1.0))


def _mean_components(y: NDArray, yhat: NDArray, yhat_unlabelled: NDArray, lam: float) -> tuple[float, float]:
    """(point estimate, variance) of the PPI mean with weight ``lam`` (0 when every item is labelled)."""
    if len(yhat_unlabelled) == 0:
        return float(y.mean()), float(np.var(y) / len(y))
    estimate = lam * yhat_unlabelled.mean() + (y - lam * yhat).mean()
    variance = np.var(lam * yhat_unlabelled) / len(yhat_unlabelled) + np.var(y - lam * yhat) / len(y)
    return float(estimate), float(variance)


def _interval(estimate: float, variance: float, level: float) -> tuple[float, float, float]:
    se = float(np.sqrt(max(variance, 0.0)))
    half = NormalDist().inv_cdf(1 - (1 - level) / 2) * se  # stdlib (AS241), as scipy's ndtri to 1e-15
    return estimate - half, estimate + half, se


def ppi_mean(
    y: ArrayLike,
    yhat: ArrayLike,
    yhat_unlabelled: ArrayLike,
    *,
    level: float = 0.95,
    lam: float | None = None,
) -> PPIEstimate:
    """Prediction-powered mean (a harmful rate) with PPI++ power tuning.

    Parameters
    ----------
    y : array-like of shape (n,)
        Human labels (1 unsafe, 0 safe) of the labelled items, a uniform
        random sample of the population the mean is about.
    yhat : array-like of shape (n,)
        The judge's prediction (a 0/1 verdict or P(unsafe)) on the same items.
    yhat_unlabelled : array-like of shape (N,)
        The judge's predictions on the items without labels (may be empty:
        every item labelled gives the classical mean).
    level : float, default=0.95
    lam : float in [0, 1] or None, default=None
        Power-tuning weight; None tunes it (PPI++), 1 is the original PPI,
        0 ignores the judge (the classical mean of the labels).

    Returns
    -------
    PPIEstimate

    Notes
    -----
    :math:`\\hat\\theta = \\lambda \\bar{\\hat Y}_{N} + \\overline{(Y - \\lambda \\hat Y)}_n`,
    :math:`\\widehat{\\mathrm{Var}} = \\lambda^2 s^2_{\\hat Y, N}/N + s^2_{Y - \\lambda\\hat Y, n}/n`,
    interval :math:`\\hat\\theta \\pm z_{1-\\alpha/2}\\sqrt{\\widehat{\\mathrm{Var}}}`.
    Matches ``ppi_py.ppi_mean_ci`` / ``ppi_mean_pointestimate`` (version
    0.2.3) to machine precision (tests/test_finetune_effect.py).

    References
    ----------
    .. [1] Angelopoulos, A. N., Bates, S., Fannjiang, C., Jordan, M. I., &
       Zrnic, T. (2023). Prediction-powered inference. Science, 382(6671),
       669-674. doi:10.1126/science.adi6000
    .. [2] Angelopoulos, A. N., Duchi, J. C., & Zrnic, T. (2023). PPI++:
       Efficient prediction-powered inference. arXiv:2311.01453.

    Examples
    --------
    >>> r = ppi_mean([1, 0, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0], lam=1.0)
    >>> round(r.estimate, 4), round(r.se, 4)
    (0.75, 0.3307)
    """
    labels, predictions, unlabelled = _validate(y, yhat, yhat_unlabelled, level, lam)
    if len(unlabelled) == 0:
        estimate, variance = _mean_components(labels, predictions, unlabelled, 0.0)
        low, high, se = _interval(estimate, variance, level)
        return PPIEstimate(estimate, low, high, se, 0.0, len(labels), 0, "classical mean (every item labelled)")
    tuned = lam is None
    weight = power_tuning_lambda(labels, predictions, unlabelled) if tuned else float(lam)
    estimate, variance = _mean_components(labels, predictions, unlabelled, weight)
    low, high, se = _interval(estimate, variance, level)
    method = "PPI++ (power-tuned)" if tuned else f"PPI (lambda={weight:g})"
    return PPIEstimate(estimate, low, high, se, weight, len(labels), len(unlabelled), method)


def ppi_mean_difference(
    treatment: tuple[ArrayLike, ArrayLike, ArrayLike],
    control: tuple[ArrayLike, ArrayLike, ArrayLike],
    *,
    paired: bool = False,
    level: float = 0.95,
    lam: float | None = None,
) -> PPIEstimate:
    """Prediction-powered difference of two means (fine-tuned minus base harmful rate).

    Parameters
    ----------
    treatment, control : tuple ``(y, yhat, yhat_unlabelled)``
        As in :func:`ppi_mean`, one per model. Each model's judge errors are
        corrected by that model's own labelled items, so a judge that errs
        more on fine-tuned outputs is corrected more there.
    paired : bool, default=False
        False: the two models' labelled and unlabelled sets are independent
        samples; each mean gets its own PPI++ weight and the variances add.
        True: the arrays are aligned by prompt (row i of each is the same
        prompt, e.g. each model's within-prompt mean), labelled for both
        models on the same prompts; PPI++ is applied to the per-prompt
        differences, so what the prompts share cancels.
    level : float, default=0.95
    lam : float in [0, 1] or None
        Power-tuning weight(s); None tunes.

    Returns
    -------
    PPIEstimate
        ``lam`` is the difference's weight when paired, and NaN (one weight
        per model, not one number) when independent. ``n_labelled`` and
        ``n_unlabelled`` are summed over the two models (independent) or
        are the prompt counts (paired).

    References
    ----------
    .. [1] Angelopoulos, A. N., Bates, S., Fannjiang, C., Jordan, M. I., &
       Zrnic, T. (2023). Prediction-powered inference. Science, 382(6671),
       669-674. doi:10.1126/science.adi6000
    .. [2] Angelopoulos, A. N., Duchi, J. C., & Zrnic, T. (2023). PPI++:
       Efficient prediction-powered inference. arXiv:2311.01453.
    """
    if paired:
        arrays = [_validate(*arm, level, lam) for arm in (treatment, control)]
        (y1, f1, u1), (y0, f0, u0) = arrays
        if y1.shape != y0.shape or u1.shape != u0.shape:
            raise ValueError("paired=True needs the two models' arrays aligned by prompt (equal lengths). Got "
                             f"{y1.shape}/{y0.shape} labelled and {u1.shape}/{u0.shape} unlabelled instead.")
        result = ppi_mean(y1 - y0, f1 - f0, u1 - u0, level=level, lam=lam)
        return PPIEstimate(result.estimate, result.ci_low, result.ci_high, result.se, result.lam,
                           result.n_labelled, result.n_unlabelled, f"{result.method}, paired by prompt")
    first = ppi_mean(*treatment, level=level, lam=lam)
    second = ppi_mean(*control, level=level, lam=lam)
    estimate = first.estimate - second.estimate
    low, high, se = _interval(estimate, first.se**2 + second.se**2, level)
    return PPIEstimate(estimate, low, high, se, float("nan"), first.n_labelled + second.n_labelled,
                       first.n_unlabelled + second.n_unlabelled,
                       f"{first.method.split(' (')[0]} difference of independent means "
                       f"(lambda {first.lam:.3g} treatment, {second.lam:.3g} control)")


def naive_judge_mean(yhat: ArrayLike, *, level: float = 0.95) -> tuple[float, float, float]:
    """The judge-only mean with its normal interval: what a study without correction reports.

    Kept to show, next to :func:`ppi_mean`, what ignoring the judge's error
    does; its interval covers only the sampling error.

    References
    ----------
    .. [1] Angelopoulos, A. N., Bates, S., Fannjiang, C., Jordan, M. I., &
       Zrnic, T. (2023). Prediction-powered inference. Science, 382(6671),
       669-674 (the "imputation" baseline). doi:10.1126/science.adi6000
    """
    predictions = _vector("yhat", yhat, min_length=2)
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    low, high, _ = _interval(float(predictions.mean()), float(np.var(predictions) / len(predictions)), level)
    return float(predictions.mean()), low, high


# An arm with fewer judge-only items gets weight 0 (its labels alone): tuning the weight on a handful of
# verdicts made the estimate jump between the labels' mean and the judge's (XSTest: a half-width of 0.36 after
# labelling all but 4 prompts of each model, against 0.05 for the labels alone).
MIN_UNLABELLED_FOR_WEIGHT = 10


@dataclass(frozen=True)
class ClusteredPPIEstimate:
    """A clustered prediction-powered rate or effect.

    ``estimate`` is the PPI++ point estimate; the interval is the
    cluster-robust normal (t) interval around the add-pseudo-label centre
    (:func:`ppi_clustered`), widened to contain the estimate and clipped to
    the possible range. ``lam`` holds one power-tuning weight per arm
    (treated, control). ``n_labelled``/``n_unlabelled`` count items,
    ``n_clusters`` the clusters the variance is summed over.
    """

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    lam: tuple[float, ...]
    n_labelled: int
    n_unlabelled: int
    n_clusters: int
    method: str


def _arm_terms(y: NDArray, f: NDArray, labelled: NDArray, in_arm: NDArray, sign: float, weight: NDArray
               ) -> tuple[float, float, NDArray, NDArray]:
    """(label part, lambda coefficient of the estimate, influence a_i, lambda-influence g_i) of one arm.

    The arm's estimate is ``label_part + lam * coefficient``; its linearised
    error is ``sum_i a_i + lam * g_i`` (items outside the arm contribute 0).
    """
    lab, unl = labelled & in_arm, ~labelled & in_arm
    n, big_n = weight[lab].sum(), unl.sum()
    a, g = np.zeros(len(y)), np.zeros(len(y))
    y_bar = float(np.sum(weight[lab] * y[lab]) / n)
    f_lab = float(np.sum(weight[lab] * f[lab]) / n)
    a[lab] = sign * weight[lab] * (y[lab] - y_bar) / n
    if big_n == 0:  # every item labelled: the classical mean, the judge gets no weight
        return sign * y_bar, 0.0, a, g
    f_unl = float(f[unl].mean())
    g[unl] = sign * (f[unl] - f_unl) / big_n
    g[lab] = -sign * weight[lab] * (f[lab] - f_lab) / n
    return sign * y_bar, sign * (f_unl - f_lab), a, g


def _ipw_arm_terms(y: NDArray, f: NDArray, labelled: NDArray, in_arm: NDArray, sign: float, inclusion: NDArray
                   ) -> tuple[float, float, NDArray, NDArray]:
    """As :func:`_arm_terms` for labels drawn with known inclusion probabilities (active inference):
    the arm's estimate is mean(xi y / pi) + lam mean(f (1 - xi / pi)) over all its items."""
    weight = np.where(labelled & in_arm, 1.0 / inclusion, 0.0)
    labels = np.where(weight > 0, weight * np.nan_to_num(y), 0.0)
    slope = np.where(in_arm, f * (1.0 - weight), 0.0)
    big_n = in_arm.sum()
    label_part, coefficient = labels[in_arm].mean(), slope[in_arm].mean()
    a = np.where(in_arm, sign * (labels - label_part) / big_n, 0.0)
    g = np.where(in_arm, sign * (slope - coefficient) / big_n, 0.0)
    return sign * float(label_part), sign * float(coefficient), a, g


def _tuned_lambdas(influence: NDArray, slopes: NDArray, free: NDArray) -> NDArray:
    """Weights in [0, 1] minimising the clustered variance sum_c (A_c + sum_m lam_m G_mc)^2 (arms without
    unlabelled items, ``free`` False, stay at 0)."""
    lam = np.zeros(slopes.shape[1])
    active = free.copy()
    for _ in range(slopes.shape[1] + 1):
        if not active.any():
            break
        solution = np.linalg.lstsq(slopes[:, active], -influence - slopes[:, ~active] @ lam[~active], rcond=None)[0]
        lam[active] = solution
        clipped = active & ((lam < 0) | (lam > 1))
        lam = np.clip(lam, 0.0, 1.0)
        if not clipped.any():
            break
        active &= ~clipped  # hold a clipped weight at its bound and re-solve the others
    return lam


def ppi_clustered(
    y: ArrayLike,
    yhat: ArrayLike,
    clusters: ArrayLike,
    *,
    treated: ArrayLike | None = None,
    level: float = 0.95,
    lam: float | None = None,
    pseudo_labels: bool = True,
    max_jackknife_clusters: int = 200,
    inclusion: ArrayLike | None = None,
) -> ClusteredPPIEstimate:
    """PPI++ rate of one model, or effect of two, with a cluster-robust variance (samples, prompts, behaviours).

    Parameters
    ----------
    y : array-like of shape (n,)
        Human label of each item (1 unsafe, 0 safe), NaN where not labelled.
        Within each arm the labelled items must be a uniform random sample of
        the arm's items (label whole prompts for both models to pair them).
    yhat : array-like of shape (n,)
        The judge's verdict (0/1) or P(unsafe) on every item (finite).
    clusters : array-like of shape (n,)
        Independent units: ``behavior_id`` when given, else the prompt. An
        item's samples, its prompt's other model's responses and its
        behaviour's other prompts share a cluster.
    treated : array-like of bool, optional
        None: the rate of all items. Given: the effect, treated-arm rate minus
        control-arm rate. Pairing enters through the clusters: the two
        models' residuals and verdicts on one prompt are summed in one
        cluster, so what they share cancels in the variance.
    level : float, default=0.95
    lam : float in [0, 1] or None
        One fixed weight for every arm; None tunes one per arm (PPI++),
        minimising the clustered variance. An arm with fewer than
        ``MIN_UNLABELLED_FOR_WEIGHT`` judge-only items gets 0.
    pseudo_labels : bool, default=True
        Centre the interval as if each arm had :math:`z^2/4` more labelled (in clusters:
        each weighing a labelled cluster's mean size) unsafe and as many safe (one arm: :math:`z^2/2` each, the
        Agresti-Coull recipe), each its own cluster with the judge at its
        labelled mean: an interval never has zero width at finite n (all
        labels and verdicts agreeing at 0 or 1).
    max_jackknife_clusters : int, default=200
        Up to this many clusters the variance is the larger of the sandwich
        and the leave-one-cluster-out jackknife that re-tunes the weights
        (the sandwich alone ignores the tuning and under-covers at 40
        clusters: 0.92 ± 0.01 in 500 studies of section 2 of ``analyses/labels_coverage.py``).
    inclusion : array-like of shape (n,), optional
        The probability with which each item would have been labelled
        (recorded by an active draw, ``plan-labels --strategy active``). The
        labels are then weighted by their inverse (Zrnic & Candès):
        :math:`\\hat\\theta_m = N_m^{-1}\\sum_i [\\lambda_m f_i + (\\xi_i/\\pi_i)(y_i - \\lambda_m f_i)]`,
        unbiased whatever the probabilities, if every item's is positive
        and is the probability it was drawn with (Poisson or fixed-size
        draws alike); the variance is Poisson sampling's (wide for
        plan-labels' fixed-size draw); no pseudo-labels.

    Returns
    -------
    ClusteredPPIEstimate

    Notes
    -----
    Per arm m with labelled items L_m (n_m) and the others U_m (N_m),
    :math:`\\hat\\theta_m = \\lambda_m \\bar f_{U_m} + \\overline{(y - \\lambda_m f)}_{L_m}` and
    :math:`\\hat\\theta = \\sum_m s_m \\hat\\theta_m` (s = +1 treated, -1
    control). Its linearisation
    :math:`\\sum_i \\phi_i`, :math:`\\phi_i = s_m (y_i - \\bar y_{L})/n_m - \\lambda_m s_m (f_i - \\bar f_L)/n_m`
    on labelled and :math:`\\lambda_m s_m (f_i - \\bar f_U)/N_m` on
    unlabelled items, is summed within clusters; the variance is
    :math:`\\frac{C}{C-1}\\sum_c \\Phi_c^2` and the interval uses
    :math:`t_{C-1}`. The weights minimise that variance (least squares,
    clipped to [0, 1]). With every item its own cluster, one arm and a
    fixed weight, the estimate is ``ppi_py``'s and the variance its
    variance times C/(C-1).

    References
    ----------
    .. [1] Angelopoulos, A. N., Duchi, J. C., & Zrnic, T. (2023). PPI++:
       Efficient prediction-powered inference. arXiv:2311.01453.
    .. [2] Binder, D. A. (1983). On the variances of asymptotically normal
       estimators from complex surveys. International Statistical Review,
       51(3), 279-292. doi:10.2307/1402588
    .. [3] Zrnic, T., & Candès, E. J. (2024). Active statistical inference.
       ICML 2024, arXiv:2403.03208.
    .. [4] Agresti, A., & Caffo, B. (2000). Simple and effective confidence
       intervals for proportions and differences of proportions result from
       adding two successes and two failures. The American Statistician,
       54(4), 280-288. doi:10.1080/00031305.2000.10474560

    Examples
    --------
    >>> r = ppi_clustered([1, 0, np.nan, np.nan], [1, 0, 1, 0], [0, 0, 1, 1], lam=1.0, pseudo_labels=False)
    >>> round(r.estimate, 3), r.n_clusters
    (0.5, 2)
    """
    labels = np.asarray(y, dtype=float)
    predictions = _vector("yhat", yhat, min_length=2)
    keys = np.asarray(clusters)
    arm = np.ones(len(labels), dtype=bool) if treated is None else np.asarray(treated)
    if labels.shape != predictions.shape or keys.shape != predictions.shape or arm.shape != predictions.shape:
        raise ValueError(f"y, yhat, clusters and treated must have one value per item. Got shapes {labels.shape}, "
                         f"{predictions.shape}, {keys.shape}, {arm.shape} instead.")
    if arm.dtype != bool:
        raise ValueError(f"The 'treated' parameter must be boolean. Got dtype {arm.dtype} instead.")
    if np.isinf(labels).any():
        raise ValueError("y must be finite or NaN (not labelled).")
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    if lam is not None and not (np.isfinite(lam) and 0 <= lam <= 1):
        raise ValueError(f"The 'lam' parameter must be None (tuned) or in [0, 1]. Got {lam!r} instead.")
    labelled = ~np.isnan(labels)
    arms = [(arm, 1.0)] if treated is None else [(arm, 1.0), (~arm, -1.0)]
    for in_arm, _ in arms:
        if (labelled & in_arm).sum() < 2:
            raise ValueError(f"Each arm needs at least 2 labelled items. Got {(labelled & in_arm).sum()} instead.")
    codes, cluster_names = pd.factorize(pd.Series(keys).astype(str), sort=True)
    n_clusters = len(cluster_names)
    probabilities = None
    if inclusion is not None:
        probabilities = np.asarray(inclusion, dtype=float)
        if probabilities.shape != labels.shape or not np.all((probabilities > 0) & (probabilities <= 1)):
            raise ValueError("The 'inclusion' parameter must give every item a probability in (0, 1].")
    estimate, weights, variance = _fit(labels, predictions, labelled, arms, codes, n_clusters, lam, probabilities)
    how = "cluster-robust (sandwich)"
    if 2 < n_clusters <= max_jackknife_clusters:
        jackknife = _jackknife_variance(labels, predictions, labelled, arms, codes, n_clusters, lam, probabilities)
        variance, how = max(variance, jackknife), (
            "cluster-robust (the larger of sandwich and leave-one-cluster-out jackknife, weights re-tuned)")
    centre = estimate
    if probabilities is not None:
        how += ", labels inverse-probability weighted (active inference)"
    elif pseudo_labels:
        centre, adjusted = _pseudo_labelled(labels, predictions, labelled, arms, codes, n_clusters, weights, level)
        variance = max(variance, adjusted)
    quantile = float(student_t.ppf(1 - (1 - level) / 2, max(n_clusters - 1, 1)))
    se = float(np.sqrt(max(variance, 0.0)))
    bound = 1.0 if treated is None else 2.0
    floor = 0.0 if treated is None else -1.0
    # The rectifier can carry the estimate past the possible range (a rate below 0): projected back onto it.
    estimate = float(np.clip(estimate, floor, floor + bound))
    low = float(np.clip(min(centre - quantile * se, estimate), floor, floor + bound))
    high = float(np.clip(max(centre + quantile * se, estimate), floor, floor + bound))
    shown = ", ".join(f"{w:.3g}" for w in weights)
    tuned = f"PPI++ power-tuned per arm (lambda {shown})" if lam is None else f"PPI (lambda {shown})"
    return ClusteredPPIEstimate(
        estimate, low, high, se, tuple(float(w) for w in weights), int(labelled.sum()), int((~labelled).sum()),
        n_clusters, f"{tuned}; {how} over {n_clusters} clusters, t({max(n_clusters - 1, 1)})"
        + (", interval centred with pseudo-labels (Agresti-Caffo)" if pseudo_labels and probabilities is None else ""))


def _fit(labels, predictions, labelled, arms, codes, n_clusters, lam, inclusion=None) -> tuple[float, NDArray, float]:
    """(estimate, weights, sandwich variance) of the clustered PPI++ estimator (inverse-probability weighted when
    ``inclusion`` is given)."""
    weight = np.ones(len(labels))
    terms = [_arm_terms(labels, predictions, labelled, in_arm, sign, weight) if inclusion is None
             else _ipw_arm_terms(labels, predictions, labelled, in_arm, sign, inclusion) for in_arm, sign in arms]
    influence = np.bincount(codes, sum(t[2] for t in terms), minlength=n_clusters)
    slopes = np.column_stack([np.bincount(codes, t[3], minlength=n_clusters) for t in terms])
    free = np.array([((~labelled) & in_arm).sum() >= MIN_UNLABELLED_FOR_WEIGHT for in_arm, _ in arms])
    weights = _tuned_lambdas(influence, slopes, free) if lam is None else np.where(free, float(lam), 0.0)
    estimate = float(sum(t[0] + w * t[1] for t, w in zip(terms, weights, strict=True)))
    return estimate, weights, _clustered_variance(influence + slopes @ weights, n_clusters)


def _jackknife_variance(labels, predictions, labelled, arms, codes, n_clusters, lam, inclusion=None) -> float:
    """Leave-one-cluster-out jackknife of the whole estimator, weights re-tuned each time (NaN-free clusters only)."""
    leave_out = []
    for cluster in range(n_clusters):
        keep = codes != cluster
        kept_arms = [(in_arm[keep], sign) for in_arm, sign in arms]
        if any((labelled[keep] & in_arm).sum() < 2 for in_arm, _ in kept_arms):
            continue
        _, remaining = np.unique(codes[keep], return_inverse=True)
        leave_out.append(_fit(labels[keep], predictions[keep], labelled[keep], kept_arms, remaining,
                              n_clusters - 1, lam, None if inclusion is None else inclusion[keep])[0])
    values = np.array(leave_out)
    if len(values) < 2:
        return float("nan")
    return float((len(values) - 1) / len(values) * np.sum((values - values.mean()) ** 2))


def _clustered_variance(cluster_influence: NDArray, n_clusters: int) -> float:
    if n_clusters < 2:
        return float("nan")
    return float(n_clusters / (n_clusters - 1) * np.sum(cluster_influence**2))


def _pseudo_labelled(labels, predictions, labelled, arms, codes, n_clusters, weights, level) -> tuple[float, float]:
    """Centre and variance with z^2/4 (two arms) or z^2/2 (one arm) pseudo-labelled clusters of each class per arm,
    each its own cluster, the judge at the arm's labelled mean; the weights are kept."""
    z = float(ndtri(1 - (1 - level) / 2))
    k = z**2 / (2 * len(arms))
    extra_y, extra_f, extra_arm, extra_weight = [], [], [], []
    for index, (in_arm, _) in enumerate(arms):
        f_bar = float(predictions[labelled & in_arm].mean())
        extra_y += [1.0, 0.0]
        extra_f += [f_bar, f_bar]
        extra_arm += [index, index]
        # in cluster units: a pseudo-label weighs as much as a labelled cluster's items on average
        per_cluster = (labelled & in_arm).sum() / len(np.unique(codes[labelled & in_arm]))
        extra_weight += [k * per_cluster] * 2
    n_extra = len(extra_y)
    y = np.concatenate([labels, extra_y])
    f = np.concatenate([predictions, extra_f])
    lab = np.concatenate([labelled, np.ones(n_extra, dtype=bool)])
    weight = np.concatenate([np.ones(len(labels)), extra_weight])
    members = [np.concatenate([in_arm, np.array(extra_arm) == index]) for index, (in_arm, _) in enumerate(arms)]
    terms = [_arm_terms(y, f, lab, member, sign, weight) for member, (_, sign) in zip(members, arms, strict=True)]
    all_codes = np.concatenate([codes, n_clusters + np.arange(n_extra)])
    phi = sum(t[2] + w * t[3] for t, w in zip(terms, weights, strict=True))
    centre = float(sum(t[0] + w * t[1] for t, w in zip(terms, weights, strict=True)))
    return centre, _clustered_variance(np.bincount(all_codes, phi, minlength=n_clusters + n_extra), n_clusters)


def nonrandom_labelling_warning(scores: ArrayLike, labelled: ArrayLike, *, alpha: float = 0.01) -> str:
    """A warning when the labelled items' judge scores differ from the unlabelled ones' (else "").

    PPI is unbiased only when the labelled items are a random sample (or
    their inclusion probabilities are known and weighted by). Labels placed
    where the judge is least sure biased a PPI++ effect by 29% with no
    warning; such a placement shows as a different score distribution.
    Two-sample Kolmogorov-Smirnov test of the scores (P(unsafe), else the
    verdicts), labelled against unlabelled, at level ``alpha``.

    References
    ----------
    .. [1] Zrnic, T., & Candès, E. J. (2024). Active statistical inference.
       ICML 2024, arXiv:2403.03208.

    Examples
    --------
    >>> nonrandom_labelling_warning([0.5] * 50 + [0.01] * 200, [True] * 50 + [False] * 200)[:27]
    'labels not drawn at random?'
    """
    from scipy.stats import ks_2samp

    values, chosen = np.asarray(scores, dtype=float), np.asarray(labelled, dtype=bool)
    if values.shape != chosen.shape:
        raise ValueError(f"scores and labelled must have equal shapes. Got {values.shape} and {chosen.shape} instead.")
    usable = ~np.isnan(values)
    inside, outside = values[usable & chosen], values[usable & ~chosen]
    if len(inside) < 5 or len(outside) < 5:
        return ""
    test = ks_2samp(inside, outside)
    if test.pvalue >= alpha:
        return ""
    return (f"labels not drawn at random? the labelled items' judge scores differ from the unlabelled ones' "
            f"(mean {inside.mean():.3f} vs {outside.mean():.3f}, KS p={test.pvalue:.2g}) and no inclusion "
            "probabilities are recorded: PPI assumes a random labelled sample")
