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
from numpy.typing import ArrayLike, NDArray


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
