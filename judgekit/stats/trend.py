"""Does safety drift during training: a trend in a 0/1 outcome across checkpoints' steps, prompts as clusters."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Trend:
    """Slope of the log-odds of the outcome per unit of step, with its interval and two-sided p-value.

    NaN numbers and a ``reason`` when the slope is not estimable (one step, a constant outcome, separation).
    """

    slope: float
    ci_low: float
    ci_high: float
    p_value: float
    n_items: int
    n_clusters: int
    n_steps: int
    method: str
    reason: str = ""


def clustered_logistic_trend(outcome: ArrayLike, step: ArrayLike, clusters: ArrayLike, *, level: float = 0.95,
                             min_clusters: int = 2) -> Trend:
    """Logistic regression of a 0/1 outcome on the training step, with a cluster-robust (sandwich) interval.

    Parameters
    ----------
    outcome : array-like of shape (n,)
        0/1 verdicts (NaN = no verdict, left out).
    step : array-like of shape (n,)
        The training step of the checkpoint that gave each response (the base model's is 0).
    clusters : array-like of shape (n,)
        The prompt (or behaviour) of each response: every checkpoint answers the same prompts, so responses to
        one prompt are correlated and the prompt is the resampling unit.
    level : float, default=0.95
    min_clusters : int, default=2

    Returns
    -------
    Trend
        ``slope`` = change in log-odds per unit of ``step``; the interval is the Wald interval with the
        cluster-robust variance (CR1 small-sample factor) and a t quantile on G - 1 degrees of freedom.

    Notes
    -----
    The model is the population-averaged logit :math:`\\operatorname{logit} P(Y=1) = a + b\\,\\text{step}`
    fitted by maximum likelihood (a GEE with independence working correlation); the sandwich variance makes
    the interval valid whatever the correlation within a prompt. Its null rejection rate and coverage of a
    known slope are in ``analyses/results/checkpoint_trend/``.

    References
    ----------
    .. [1] Liang, K.-Y., & Zeger, S. L. (1986). Longitudinal data analysis using generalized linear models.
       Biometrika, 73(1), 13-22. doi:10.1093/biomet/73.1.13
    .. [2] Cameron, A. C., & Miller, D. L. (2015). A practitioner's guide to cluster-robust inference.
       Journal of Human Resources, 50(2), 317-372. doi:10.3368/jhr.50.2.317

    Examples
    --------
    >>> y = [0, 0, 1, 0, 1, 1] * 10
    >>> t = clustered_logistic_trend(y, [0, 1, 2] * 20, [k // 3 for k in range(60)])
    >>> t.slope > 0
    True
    """
    y, x = np.asarray(outcome, dtype=float), np.asarray(step, dtype=float)
    groups = np.asarray(clusters)
    if not (y.ndim == 1 and y.shape == x.shape == groups.shape):
        raise ValueError(f"outcome, step and clusters must be 1-d of one length. Got {y.shape}, {x.shape}, "
                         f"{groups.shape} instead.")
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    if not np.isfinite(x).all():
        raise ValueError("step must be finite.")
    observed = ~np.isnan(y)
    if not np.isin(y[observed], (0.0, 1.0)).all():
        raise ValueError("outcome must be 0/1 (or NaN).")
    y, x, groups = y[observed], x[observed], groups[observed]
    codes = np.unique(groups.astype(str), return_inverse=True)[1]
    n_clusters, n_steps = int(codes.max() + 1) if len(codes) else 0, len(np.unique(x))
    method = (f"logistic regression of the outcome on step, cluster-robust (CR1) Wald interval, t({n_clusters - 1}) "
              f"over {n_clusters} prompt clusters; slope in log-odds per step")

    def undefined(reason: str) -> Trend:
        return Trend(np.nan, np.nan, np.nan, np.nan, len(y), n_clusters, n_steps, method, reason)

    if n_steps < 2:
        return undefined("fewer than 2 steps with verdicts: no trend")
    if n_clusters < min_clusters:
        return undefined(f"fewer than {min_clusters} prompt clusters: no cluster-robust interval")
    if y.min() == y.max():
        return undefined("the outcome is constant across every step: no trend to estimate (separation)")
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    scale = float(np.abs(x).max())  # fit on step / max|step| (well conditioned), then rescale the slope
    design = np.column_stack([np.ones(len(x)), x / scale])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = sm.GLM(y, design, family=sm.families.Binomial()).fit(
                cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
    except (PerfectSeparationWarning, np.linalg.LinAlgError) as err:
        return undefined(f"not estimable: {type(err).__name__}")
    low, high = fit.conf_int(alpha=1 - level)[1]
    slope = float(fit.params[1])
    if not np.isfinite([slope, low, high]).all() or abs(slope) > 30:
        return undefined("not estimable: the slope diverges (quasi-complete separation)")
    return Trend(slope / scale, float(low) / scale, float(high) / scale, float(fit.pvalues[1]), len(y), n_clusters,
                 n_steps, method)
