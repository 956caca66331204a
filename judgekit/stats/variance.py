"""Where does the variance of the verdict come from: judge, benchmark, goal, model or item?"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

FACTORS = ("judge_id", "benchmark", "finetune_goal", "model", "prompt")


def variance_decomposition(frame: pd.DataFrame, *, factors: tuple[str, ...] = FACTORS) -> pd.DataFrame:
    """Share of the verdict's sum of squares explained by each factor, in order.

    The model is the linear probability model
    ``unsafe ~ C(judge_id) + C(benchmark) + C(finetune_goal) + C(model) + C(prompt)``
    fitted by OLS (statsmodels), with sequential (type I) sums of squares in
    that order: each factor gets the variance it explains beyond the factors
    before it, so nested factors (a model within its goal, a prompt within its
    benchmark) are credited only with what they add. The residual is what no
    main effect explains: judges disagreeing about particular items, plus noise.

    Parameters
    ----------
    frame : DataFrame
        One row per (item, judge) verdict with a 0/1 ``unsafe`` column and the
        factor columns. Factors with fewer than two levels are skipped.

    Returns
    -------
    DataFrame
        ``factor``, ``df``, ``sum_sq``, ``share`` (of the total sum of
        squares), including a ``residual`` row; shares add to 1.

    References
    ----------
    .. [1] Searle, S. R., Casella, G., & McCulloch, C. E. (1992). Variance
       Components. Wiley. doi:10.1002/9780470316856
    """
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    data = frame.copy()
    used = []
    for factor in factors:
        if factor in data and data[factor].astype(str).nunique() >= 2:
            data[factor] = data[factor].astype(str).fillna("none")
            used.append(factor)
    if not used or data["unsafe"].nunique() < 2:
        return pd.DataFrame(columns=["factor", "df", "sum_sq", "share"])
    formula = "unsafe ~ " + " + ".join(f"C({f})" for f in used)
    with warnings.catch_warnings():
        # Nested factors make the design rank-deficient by construction; sequential sums of squares
        # still attribute each factor only what it adds.
        warnings.simplefilter("ignore")
        table = anova_lm(smf.ols(formula, data=data).fit(), typ=1)
    total = float(table["sum_sq"].sum())
    names = [f for f in used] + ["residual"]
    return pd.DataFrame(
        {
            "factor": names,
            "df": table["df"].to_numpy(),
            "sum_sq": table["sum_sq"].to_numpy(),
            "share": table["sum_sq"].to_numpy() / total if total > 0 else np.nan,
        }
    )


def used_factors(frame: pd.DataFrame, factors: tuple[str, ...] = FACTORS) -> list[str]:
    return [f for f in factors if f in frame and frame[f].astype(str).nunique() >= 2]


def design_blocks(frame: pd.DataFrame, factors: list[str]) -> list[np.ndarray]:
    """Intercept, then one treatment-coded dummy block per factor (first level dropped), as patsy builds them."""
    blocks = [np.ones((len(frame), 1))]
    for factor in factors:
        codes, levels = pd.factorize(frame[factor].astype(str), sort=True)
        dummies = np.zeros((len(frame), len(levels) - 1))
        rows = np.flatnonzero(codes > 0)
        dummies[rows, codes[rows] - 1] = 1.0
        blocks.append(dummies)
    return blocks


def sequential_shares(blocks: list[np.ndarray], y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Type-I sums-of-squares shares (one per factor, then the residual) of a weighted least-squares fit.

    Integer ``weights`` equal refitting on rows repeated that many times, which is
    how the cluster bootstrap reuses one design matrix for every resample.
    """
    x = np.hstack(blocks)
    w = np.ones(len(y)) if weights is None else weights
    gram = x.T @ (x * w[:, None])
    moment = x.T @ (w * y)
    yy = float((w * y) @ y)
    sizes = np.cumsum([b.shape[1] for b in blocks])
    rss = []
    for size in sizes:
        coefficients = np.linalg.pinv(gram[:size, :size], hermitian=True) @ moment[:size]
        rss.append(yy - moment[:size] @ coefficients)
    rss = np.array(rss)
    total = rss[0]
    explained = rss[:-1] - rss[1:]
    return np.append(explained, rss[-1]) / total if total > 0 else np.full(len(blocks), np.nan)
