"""Evaluator-bias audit: where is a judge wrong, and are two judges different?

* :func:`error_regression` — logistic regression of judge error on response
  features (incoherence flag, length, category, source model...) with
  cluster-robust standard errors (statsmodels GLM, ``cov_type="cluster"``).
* :func:`mcnemar_test` — paired comparison of two judges' correctness
  (items independent).
* :func:`cochrans_q_test` — more than two judges at once (items independent).
* :func:`clustered_marginal_homogeneity_test` — the cluster-aware version of
  both: items of one behaviour share a cluster.
* :func:`holm_adjust` — Holm's step-down adjustment of a family of p-values.
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


RANDOMIZATION_BELOW = 50  # informative clusters under which the chi-square reference is not trusted


def clustered_marginal_homogeneity_test(
    correct: ArrayLike, clusters: ArrayLike, *, rng: np.random.Generator | int | None = None, n_permutations: int = 4999
) -> TestResult:
    r"""Do judges have the same accuracy, when items come in clusters? (clustered McNemar / Cochran's Q)

    Let :math:`S_{cj}` be judge j's correct verdicts in cluster c (items where
    every judge has a verdict) and :math:`D_c = A S_c` their contrasts against
    the last judge. The statistic is the cluster-robust Wald form
    :math:`W = (\sum_c D_c)^\top (\sum_c D_c D_c^\top)^{-1} (\sum_c D_c)`;
    for two judges it is Durkalski's clustered McNemar statistic
    :math:`(\sum_c (b_c - c_c))^2 / \sum_c (b_c - c_c)^2` (Obuchowski's
    statistic without its centring). Under the null the judges are
    exchangeable within each cluster; the p-value comes from permuting judges
    within clusters (sign flips for two judges) when fewer than
    ``RANDOMIZATION_BELOW`` clusters hold any disagreement, else from
    :math:`\chi^2_{J-1}`.

    Parameters
    ----------
    correct : array-like of shape (n_items, n_judges)
        1 judge right, 0 wrong, NaN no verdict or no reference.
    clusters : array-like of shape (n_items,)
    rng : numpy Generator, int or None
        Used only for the permutation p-value.
    n_permutations : int, default=4999

    Returns
    -------
    TestResult
        ``method`` names the statistic and the reference distribution.

    References
    ----------
    .. [1] Durkalski, V. L., Palesch, Y. Y., Lipsitz, S. R., & Rust, P. F.
       (2003). Analysis of clustered matched-pair data. Statistics in
       Medicine, 22(15), 2417-2428. doi:10.1002/sim.1438
    .. [2] Obuchowski, N. A. (1998). On the comparison of correlated
       proportions for clustered data. Statistics in Medicine, 17(13),
       1495-1507. doi:10.1002/(SICI)1097-0258(19980715)17:13<1495::AID-SIM863>3.0.CO;2-I
    """
    array = np.asarray(correct, dtype=float)
    labels = np.asarray(clusters)
    if array.ndim != 2 or array.shape[1] < 2 or labels.shape != (array.shape[0],):
        raise ValueError(f"correct must be (n_items, >= 2 judges) with one cluster per item; got {array.shape}, {labels.shape}")
    if not isinstance(n_permutations, int) or n_permutations < 1:
        raise ValueError(f"The 'n_permutations' parameter must be a positive integer. Got {n_permutations!r} instead.")
    complete = ~np.isnan(array).any(axis=1)
    n_judges = array.shape[1]
    name = "clustered McNemar (Durkalski)" if n_judges == 2 else "clustered Cochran's Q (cluster-robust Wald)"
    _, codes = np.unique(labels[complete].astype(str) if labels.dtype.kind not in "iu" else labels[complete], return_inverse=True)
    per_cluster = np.zeros((codes.max() + 1 if len(codes) else 0, n_judges))
    np.add.at(per_cluster, codes, array[complete])
    informative = per_cluster[per_cluster.min(axis=1) != per_cluster.max(axis=1)]
    n_items = int(complete.sum())
    if len(informative) == 0:
        return TestResult(0.0, 1.0, n_items, f"{name}: no cluster where judges differ")
    statistic = float(_wald(informative[None])[0])
    if len(informative) >= RANDOMIZATION_BELOW:
        from scipy.stats import chi2

        return TestResult(statistic, float(chi2.sf(statistic, n_judges - 1)), n_items,
                          f"{name}, chi-square df={n_judges - 1}, {len(informative)} informative clusters")
    generator = np.random.default_rng(rng)
    order = np.argsort(generator.random((n_permutations, len(informative), n_judges)), axis=-1)
    permuted = np.take_along_axis(np.broadcast_to(informative, order.shape), order, axis=-1)
    exceed = int((_wald(permuted) >= statistic - 1e-9 * max(statistic, 1.0)).sum())
    return TestResult(statistic, (1 + exceed) / (1 + n_permutations), n_items,
                      f"{name}, within-cluster permutation p ({n_permutations} permutations, "
                      f"{len(informative)} informative clusters)")


def _wald(per_cluster: np.ndarray) -> np.ndarray:
    """Cluster-robust Wald statistic of equal column totals, for a stack (n_sets, n_clusters, n_judges)."""
    contrasts = per_cluster[..., :-1] - per_cluster[..., -1:]
    total = contrasts.sum(axis=1)
    covariance = np.einsum("scj,sck->sjk", contrasts, contrasts)
    # pinv: with collinear contrasts (two judges always agreeing) the statistic lives in the smaller space.
    return np.einsum("sj,sjk,sk->s", total, np.linalg.pinv(covariance, hermitian=True), total)


def holm_adjust(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted in the family).

    References
    ----------
    .. [1] Holm, S. (1979). A simple sequentially rejective multiple test
       procedure. Scandinavian Journal of Statistics, 6(2), 65-70.

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else np.array([])
    out[order] = np.minimum(stepped, 1.0)
    return out


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

    Notes
    -----
    A term that is a linear combination of earlier terms (response length
    when every response is one of two texts, which the refusal marker
    already tells apart) has no identified coefficient. As R's ``glm`` does,
    it is dropped from the fit and reported with NaN numbers and the note
    ``aliased``; fitting it anyway gives an arbitrary minimum-norm
    coefficient and an IRLS that never converges.

    References
    ----------
    .. [1] Cameron, A. C., & Miller, D. L. (2015). A practitioner's guide to
       cluster-robust inference. Journal of Human Resources, 50(2), 317-372.
       doi:10.3368/jhr.50.2.317
    .. [2] Chambers, J. M., & Hastie, T. J. (1992). Statistical Models in S,
       section 4.2.2 (aliased coefficients). Wadsworth & Brooks/Cole.
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
            design = pd.DataFrame(model.exog, columns=model.exog_names)
            aliased = aliased_columns(model.exog)
            fit = sm.GLM(model.endog, design.loc[:, ~aliased], family=sm.families.Binomial()).fit(
                cov_type="cluster", cov_kwds={"groups": groups})
    except (PerfectSeparationWarning, np.linalg.LinAlgError, ValueError) as err:
        return pd.DataFrame([{"term": "all", "odds_ratio": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                              "p_value": np.nan, "n_items": len(frame), "note": f"not estimable: {type(err).__name__}: {err}"}])
    interval = fit.conf_int()
    with np.errstate(over="ignore"):  # a diverging coefficient: left out below
        estimated = pd.DataFrame(
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
    # quasi-complete separation escapes statsmodels' check: the coefficient runs off until exp() overflows
    diverged = ~np.isfinite(estimated[["odds_ratio", "ci_low", "ci_high"]].to_numpy()).all(axis=1)
    estimated.loc[diverged, ["odds_ratio", "ci_low", "ci_high", "p_value"]] = np.nan
    estimated.loc[diverged, "note"] = "not estimable: the coefficient diverges (quasi-complete separation)"
    dropped = pd.DataFrame({"term": design.columns[aliased], "odds_ratio": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                            "p_value": np.nan, "n_items": int(fit.nobs),
                            "note": "aliased: a linear combination of earlier terms, dropped from the fit"})
    return pd.concat([estimated, dropped], ignore_index=True) if aliased.any() else estimated


def aliased_columns(design: ArrayLike, *, tol: float = 1e-7) -> np.ndarray:
    """Columns of a design matrix that are linear combinations of the columns before them.

    Column ``j`` is aliased when the QR factor's ``|R_jj|`` is at most ``tol``
    times the column's norm: nothing of it is left after projecting out the
    earlier columns (the tolerance of R's ``lm``).

    Examples
    --------
    >>> aliased_columns([[1, 0, 2], [1, 1, 2], [1, 0, 2]]).tolist()
    [False, False, True]
    """
    matrix = np.asarray(design, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"The 'design' parameter must be 2-d. Got shape {matrix.shape} instead.")
    pivots = np.zeros(matrix.shape[1])  # columns beyond the number of rows are aliased
    diagonal = np.abs(np.diag(np.linalg.qr(matrix, mode="r")))
    pivots[: len(diagonal)] = diagonal
    norms = np.linalg.norm(matrix, axis=0)
    return pivots <= tol * np.where(norms > 0, norms, 1.0)
