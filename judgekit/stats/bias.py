"""Evaluator-bias audit: where is a judge wrong, and are two judges different?

* :func:`error_regression` — logistic regression of judge error on response
  features (incoherence flag, length, category, source model...) with
  cluster-robust standard errors (statsmodels GLM, ``cov_type="cluster"``).
* :func:`mcnemar_test` — paired comparison of two judges' correctness.
* :func:`cochrans_q_test` — more than two judges at once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float
    n_items: int
    method: str


def mcnemar_test(correct_a: ArrayLike, correct_b: ArrayLike) -> tuple[TestResult, dict[str, float]]:
    """McNemar's test on the items where both judges have a verdict and a reference exists.

    Returns the test (exact binomial when the discordant count is below 25, the
    chi-square with continuity correction otherwise, as statsmodels advises)
    and the discordant counts ``b`` (only A right), ``c`` (only B right).

    References
    ----------
    .. [1] McNemar, Q. (1947). Note on the sampling error of the difference
       between correlated proportions or percentages. Psychometrika, 12(2),
       153-157. doi:10.1007/BF02295996
    """
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(correct_a, dtype=float)
    b = np.asarray(correct_b, dtype=float)
    both = ~(np.isnan(a) | np.isnan(b))
    a, b = a[both].astype(bool), b[both].astype(bool)
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    discordant = table[0, 1] + table[1, 0]
    exact = discordant < 25
    result = mcnemar(table, exact=exact, correction=True)
    method = "McNemar exact binomial" if exact else "McNemar chi-square, continuity-corrected"
    p_value = float(result.pvalue) if discordant > 0 else 1.0
    return TestResult(float(result.statistic), p_value, int(both.sum()), method), {"b": float(table[0, 1]), "c": float(table[1, 0])}


def cochrans_q_test(correct: ArrayLike) -> TestResult:
    """Cochran's Q over judges (columns) on items where every judge has a verdict.

    References
    ----------
    .. [1] Cochran, W. G. (1950). The comparison of percentages in matched
       samples. Biometrika, 37(3/4), 256-266. doi:10.2307/2332378
    """
    from statsmodels.stats.contingency_tables import cochrans_q

    array = np.asarray(correct, dtype=float)
    complete = array[~np.isnan(array).any(axis=1)]
    if complete.shape[0] == 0 or complete.shape[1] < 3:
        return TestResult(float("nan"), float("nan"), int(complete.shape[0]), "Cochran's Q (needs >= 3 judges)")
    varying = complete[(complete.min(axis=1) != complete.max(axis=1))]
    if len(varying) == 0:
        return TestResult(0.0, 1.0, int(complete.shape[0]), "Cochran's Q (no item where judges differ)")
    result = cochrans_q(complete.astype(int))
    return TestResult(float(result.statistic), float(result.pvalue), int(complete.shape[0]), f"Cochran's Q, df={int(result.df)}")


def error_regression(frame: pd.DataFrame, *, formula: str, cluster: str) -> pd.DataFrame:
    """Logistic regression of judge error with cluster-robust standard errors.

    Parameters
    ----------
    frame : DataFrame
        One row per item: an ``error`` column (0/1), the formula's predictors
        and the ``cluster`` column.
    formula : str
        Patsy formula, e.g. ``"error ~ incoherent + log_length + C(category)"``.
    cluster : str
        Column of cluster ids for the sandwich covariance.

    Returns
    -------
    DataFrame
        One row per term: ``term``, ``odds_ratio``, ``ci_low``, ``ci_high``,
        ``p_value``, ``n_items``, ``note`` (why a fit could not be made, e.g.
        perfect separation, in which case the numbers are NaN).

    References
    ----------
    .. [1] Cameron, A. C., & Miller, D. L. (2015). A practitioner's guide to
       cluster-robust inference. Journal of Human Resources, 50(2), 317-372.
       doi:10.3368/jhr.50.2.317
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    groups = pd.factorize(frame[cluster])[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            model = smf.glm(formula, data=frame, family=sm.families.Binomial())
            fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
    except (PerfectSeparationWarning, np.linalg.LinAlgError, ValueError) as err:
        return pd.DataFrame([{"term": "all", "odds_ratio": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                              "p_value": np.nan, "n_items": len(frame), "note": f"not estimable: {type(err).__name__}: {err}"}])
    interval = fit.conf_int()
    return pd.DataFrame(
        {
            "term": fit.params.index,
            "odds_ratio": np.exp(fit.params.to_numpy()),
            "ci_low": np.exp(interval[0].to_numpy()),
            "ci_high": np.exp(interval[1].to_numpy()),
            "p_value": fit.pvalues.to_numpy(),
            "n_items": int(fit.nobs),
            "note": "",
        }
    )
