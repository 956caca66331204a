"""Does "fine-tuning hurt safety" survive another judge, benchmark or incoherence policy?

A specification curve: one cell per choice (judge × benchmark × incoherence
policy × ...), each with the effect and its interval. Each cell's conclusion
is its sign × significance (+1 the interval lies above 0, -1 below, 0 it
covers 0). Where humans labelled the same items, their conclusion for the
same benchmark and policy is the reference: ``conclusion_agreement`` is the
share of cells that reach the humans' conclusion, ``conclusion_reversal`` the
share that are significant in the direction opposite to the humans'
estimate. :func:`disagreement_drivers` says which factor levels concentrate
the disagreement.

These shares describe the finite set of choices the study made, not a sample
from a population of choices, so they carry no interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

_REQUIRED = ("estimate", "ci_low", "ci_high")
_REFERENCE = ("reference_estimate", "reference_ci_low", "reference_ci_high")


def sign_significance(estimate: ArrayLike, ci_low: ArrayLike, ci_high: ArrayLike) -> NDArray[np.float64]:
    """+1 where the interval lies above 0, -1 where below, 0 where it covers 0, NaN where undefined.

    Examples
    --------
    >>> sign_significance([0.1, -0.2, 0.05, float("nan")], [0.02, -0.3, -0.01, 0], [0.2, -0.1, 0.1, 1]).tolist()
    [1.0, -1.0, 0.0, nan]
    """
    e, low, high = (np.asarray(v, dtype=float) for v in (estimate, ci_low, ci_high))
    if not e.shape == low.shape == high.shape:
        raise ValueError(f"estimate, ci_low and ci_high must have one shape. Got {e.shape}, {low.shape}, {high.shape}.")
    undefined = np.isnan(e) | np.isnan(low) | np.isnan(high)
    return np.where(undefined, np.nan, np.where(low > 0, 1.0, np.where(high < 0, -1.0, 0.0)))


@dataclass(frozen=True)
class ConclusionRobustness:
    """Per-cell conclusions and the summary shares.

    ``cells`` is the input with ``conclusion``, ``reference_conclusion``,
    ``agrees`` and ``reverses`` added (NaN where a cell has no reference).
    ``n_compared`` cells had both a defined conclusion and a reference.
    """

    cells: pd.DataFrame
    conclusion_agreement: float
    conclusion_reversal: float
    n_cells: int
    n_compared: int
    reason: str


def conclusion_robustness(cells: pd.DataFrame) -> ConclusionRobustness:
    """Sign × significance per cell, and how often the cells reach the humans' conclusion.

    Parameters
    ----------
    cells : DataFrame
        One row per specification: ``estimate``, ``ci_low``, ``ci_high`` of
        the effect under that choice, optionally ``reference_estimate``,
        ``reference_ci_low``, ``reference_ci_high`` (the human-label effect on
        the same items; NaN where there is none), and any factor columns
        (``judge_id``, ``benchmark``, ``incoherence_policy``...).

    Returns
    -------
    ConclusionRobustness
        ``conclusion_agreement``: share of compared cells whose conclusion
        equals the reference's; ``conclusion_reversal``: share of compared
        cells significant with the sign opposite to the reference estimate.
        Both NaN (with ``reason``) when no cell has a reference.

    References
    ----------
    .. [1] Simonsohn, U., Simmons, J. P., & Nelson, L. D. (2020).
       Specification curve analysis. Nature Human Behaviour, 4, 1208-1214.
       doi:10.1038/s41562-020-0912-z
    .. [2] Steegen, S., Tuerlinckx, F., Gelman, A., & Vanpaemel, W. (2016).
       Increasing transparency through a multiverse analysis. Perspectives on
       Psychological Science, 11(5), 702-712. doi:10.1177/1745691616658637

    Examples
    --------
    >>> cells = pd.DataFrame({"judge_id": ["a", "b"], "estimate": [0.1, -0.1], "ci_low": [0.05, -0.2],
    ...                       "ci_high": [0.15, -0.02], "reference_estimate": [0.08, 0.08],
    ...                       "reference_ci_low": [0.01, 0.01], "reference_ci_high": [0.15, 0.15]})
    >>> r = conclusion_robustness(cells)
    >>> r.conclusion_agreement, r.conclusion_reversal
    (0.5, 0.5)
    """
    if not isinstance(cells, pd.DataFrame):
        raise ValueError(f"The 'cells' parameter must be a DataFrame. Got {type(cells).__name__} instead.")
    missing = [c for c in _REQUIRED if c not in cells]
    if missing:
        raise ValueError(f"cells needs columns {list(_REQUIRED)}; missing {missing}.")
    out = cells.copy()
    out["conclusion"] = sign_significance(out["estimate"], out["ci_low"], out["ci_high"])
    has_reference = all(c in out for c in _REFERENCE)
    if has_reference:
        out["reference_conclusion"] = sign_significance(*(out[c] for c in _REFERENCE))
        reference_sign = np.sign(out["reference_estimate"].to_numpy(dtype=float))
    else:
        out["reference_conclusion"] = np.nan
        reference_sign = np.full(len(out), np.nan)
    compared = (out["conclusion"].notna() & out["reference_conclusion"].notna()).to_numpy()
    conclusion = out["conclusion"].to_numpy(dtype=float)
    out["agrees"] = np.where(compared, conclusion == out["reference_conclusion"].to_numpy(dtype=float), np.nan)
    out["reverses"] = np.where(compared, (conclusion != 0) & (conclusion == -reference_sign), np.nan)
    n_compared = int(compared.sum())
    if n_compared == 0:
        return ConclusionRobustness(out, float("nan"), float("nan"), len(out), 0,
                                    "no cell has a human-label reference with a defined interval")
    return ConclusionRobustness(out, float(out.loc[compared, "agrees"].mean()),
                                float(out.loc[compared, "reverses"].mean()), len(out), n_compared, "")


def disagreement_drivers(robustness: ConclusionRobustness, factors: Sequence[str]) -> pd.DataFrame:
    """Per factor level: cells, disagreement and reversal shares, and the disagreement a level adds.

    Parameters
    ----------
    robustness : ConclusionRobustness
        From :func:`conclusion_robustness`.
    factors : sequence of str
        Factor columns of the cells (``judge_id``, ``benchmark``...).

    Returns
    -------
    DataFrame
        Columns ``factor``, ``level``, ``n_cells``, ``disagreement``,
        ``reversal``, ``excess_disagreement`` (the level's disagreement minus
        that of the other levels of the same factor: positive = choosing this
        level moves conclusions away from the humans'), sorted by
        ``excess_disagreement`` descending. Only compared cells count.

    References
    ----------
    .. [1] Simonsohn, U., Simmons, J. P., & Nelson, L. D. (2020).
       Specification curve analysis. Nature Human Behaviour, 4, 1208-1214.
       doi:10.1038/s41562-020-0912-z
    """
    cells = robustness.cells
    absent = [f for f in factors if f not in cells]
    if absent:
        raise ValueError(f"factors {absent} are not columns of the cells ({list(cells.columns)}).")
    compared = cells[cells["agrees"].notna()]
    rows = []
    for factor in factors:
        for level, group in compared.groupby(factor, dropna=False, sort=True):
            rest = compared[compared[factor] != level] if pd.notna(level) else compared[compared[factor].notna()]
            disagreement = float(1 - group["agrees"].mean())
            rest_disagreement = float(1 - rest["agrees"].mean()) if len(rest) else float("nan")
            rows.append({"factor": factor, "level": level, "n_cells": len(group), "disagreement": disagreement,
                         "reversal": float(group["reverses"].mean()),
                         "excess_disagreement": disagreement - rest_disagreement})
    table = pd.DataFrame(rows, columns=["factor", "level", "n_cells", "disagreement", "reversal",
                                        "excess_disagreement"])
    return table.sort_values("excess_disagreement", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
