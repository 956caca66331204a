"""Where does the variance of the verdict come from? Variance components of a crossed random-effects model.

The verdict ``y`` (1 unsafe, 0 safe) of judge j on a response is modelled as
``y = mu + u_judge + u_benchmark + u_goal + u_model + u_prompt + u_judge:prompt + e``
with independent zero-mean random effects, crossed (a judge sees every
prompt) and nested where the design nests them (a prompt within its
benchmark, a model within its goal). The components are estimated by the
method of moments (Henderson's Method I), which needs only level counts and
totals, so the cluster bootstrap can refit it hundreds of times. On balanced
data its estimates equal ANOVA's and, when positive, REML's (tested against
``statsmodels`` MixedLM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

FACTORS = ("judge_id", "benchmark", "finetune_goal", "model", "prompt")
INTERACTIONS = (("judge_id", "prompt"),)
RESIDUAL = "residual"


@dataclass(frozen=True)
class _Tally:
    """Rows of one partition (a factor, or two factors crossed), aggregated to distinct (cell, cluster) pairs."""

    cell: NDArray[np.int64]
    cluster: NDArray[np.int64]
    rows: NDArray[np.float64]
    y: NDArray[np.float64]
    n_cells: int

    @classmethod
    def of(cls, cell_codes: NDArray, cluster_codes: NDArray, n_clusters: int, y: NDArray) -> _Tally:
        pairs, inverse = np.unique(cell_codes.astype(np.int64) * n_clusters + cluster_codes, return_inverse=True)
        _, cells = np.unique(pairs // n_clusters, return_inverse=True)
        return cls(cells, pairs % n_clusters, np.bincount(inverse).astype(float), np.bincount(inverse, weights=y),
                   int(cells.max()) + 1)

    def counts(self, cluster_weights: NDArray) -> NDArray:
        return np.bincount(self.cell, cluster_weights[self.cluster] * self.rows, minlength=self.n_cells)

    def totals(self, cluster_weights: NDArray) -> NDArray:
        return np.bincount(self.cell, cluster_weights[self.cluster] * self.y, minlength=self.n_cells)


@dataclass(frozen=True)
class VarianceDesign:
    """A crossed random-effects design, tallied once for refitting under any cluster weights.

    Build it with :func:`variance_design`; :func:`variance_components` fits it.
    ``factors`` are the random effects kept (two-factor interactions named
    ``a:b``), ``dropped`` says which were left out and why.
    """

    factors: tuple[str, ...]
    dropped: tuple[str, ...]
    n_clusters: int
    level_tallies: tuple[_Tally, ...]
    pair_tallies: dict[tuple[int, int], tuple[_Tally, NDArray, NDArray]]
    cluster_rows: NDArray[np.float64]
    cluster_y: NDArray[np.float64]
    cluster_y2: NDArray[np.float64]


def variance_design(frame: pd.DataFrame, *, factors: tuple[str, ...] = FACTORS,
                    interactions: tuple[tuple[str, str], ...] = INTERACTIONS, cluster: str | None = None) -> VarianceDesign:
    """Tally a long verdict table (one row per item × judge) for :func:`variance_components`.

    Parameters
    ----------
    frame : DataFrame
        A numeric ``unsafe`` column (NaN rows are dropped), the factor columns
        and, optionally, a ``cluster`` column for the cluster bootstrap.
    factors : tuple of str
        Random effects; a factor absent from ``frame`` or with fewer than two
        levels is left out.
    interactions : tuple of (str, str)
        Two-factor random interactions, kept when both factors are.
    cluster : str, optional
        Resampling clusters (e.g. the behaviour); each row is its own cluster
        when None.

    Returns
    -------
    VarianceDesign
        A factor whose levels partition the rows exactly as an earlier
        factor's do (say, one model per goal), or as the rows themselves do
        (an interaction with one verdict per cell), cannot be told apart from
        it and is dropped, named in ``dropped``.
    """
    data = frame[frame["unsafe"].notna()]
    y = data["unsafe"].to_numpy(dtype=float)
    codes: dict[str, NDArray] = {}
    dropped = []
    for factor in factors:
        if factor in data:
            level_codes, levels = pd.factorize(data[factor].astype(str), sort=True)
            if len(levels) >= 2:
                codes[factor] = level_codes
    for first, second in interactions:
        if first in codes and second in codes:
            codes[f"{first}:{second}"] = pd.factorize(codes[first].astype(np.int64) * (codes[second].max() + 1) + codes[second])[0]
    kept: dict[str, NDArray] = {}
    for name, level_codes in codes.items():
        same = next((other for other, other_codes in kept.items() if _same_partition(level_codes, other_codes)), None)
        if same is not None:
            dropped.append(f"{name} (same partition of the verdicts as {same})")
        elif level_codes.max() + 1 == len(level_codes):
            dropped.append(f"{name} (one verdict per level: not separable from the residual)")
        else:
            kept[name] = level_codes
    cluster_codes, cluster_names = (pd.factorize(data[cluster].astype(str), sort=True) if cluster is not None
                                    else (np.arange(len(data)), np.arange(len(data))))
    n_clusters = len(cluster_names)
    names = list(kept)
    level_tallies = tuple(_Tally.of(kept[name], cluster_codes, n_clusters, y) for name in names)
    pair_tallies = {}
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            cells = kept[names[a]].astype(np.int64) * (kept[names[b]].max() + 1) + kept[names[b]]
            _, first_rows = np.unique(cells, return_index=True)  # one row per cell, in the tally's cell order
            pair_tallies[(a, b)] = (_Tally.of(cells, cluster_codes, n_clusters, y), kept[names[a]][first_rows],
                                    kept[names[b]][first_rows])
    return VarianceDesign(
        tuple(names), tuple(dropped), n_clusters, level_tallies, pair_tallies,
        np.bincount(cluster_codes, minlength=n_clusters).astype(float),
        np.bincount(cluster_codes, weights=y, minlength=n_clusters), np.bincount(cluster_codes, weights=y**2, minlength=n_clusters),
    )


def _same_partition(a: NDArray, b: NDArray) -> bool:
    return a.max() == b.max() and len(np.unique(a.astype(np.int64) * (b.max() + 1) + b)) == a.max() + 1


def variance_components(design: VarianceDesign, cluster_weights: NDArray | None = None) -> NDArray[np.float64]:
    """Method-of-moments (Henderson I) variance components: one per factor of ``design``, then the residual.

    Parameters
    ----------
    design : VarianceDesign
        From :func:`variance_design`.
    cluster_weights : ndarray of shape (n_clusters,), optional
        How often each cluster is counted (bootstrap multiplicities); 1 each
        when None. Integer weights equal refitting on the repeated rows.

    Returns
    -------
    ndarray of shape (n_factors + 1,)
        Unbiased moment estimates; they can be negative when a component is
        near zero (the caller decides how to report that).

    Notes
    -----
    With level totals :math:`Y_l`, counts :math:`n_l`, the quadratic forms
    :math:`T_k = \\sum_l Y_l^2 / n_l`, :math:`T_\\mu = Y^2/N` and
    :math:`T_0 = \\sum y^2` have expectations linear in the components,
    :math:`E[T_k] = N\\mu^2 + \\sum_m \\sigma_m^2 \\sum_{l,j} n_{lj}^2/n_l + L_k \\sigma_e^2`
    (:math:`n_{lj}` rows in level l of factor k and level j of factor m,
    :math:`L_k` non-empty levels); equating :math:`T_k - T_\\mu` and
    :math:`T_0 - T_\\mu` to their expectations gives the estimates.

    References
    ----------
    .. [1] Henderson, C. R. (1953). Estimation of variance and covariance
       components. Biometrics, 9(2), 226-252. doi:10.2307/3001853
    .. [2] Searle, S. R., Casella, G., & McCulloch, C. E. (1992). Variance
       Components, ch. 5. Wiley. doi:10.1002/9780470316856
    """
    w = np.ones(design.n_clusters) if cluster_weights is None else np.asarray(cluster_weights, dtype=float)
    k = len(design.factors)
    n = float(w @ design.cluster_rows)
    t_mu = float(w @ design.cluster_y) ** 2 / n
    level_counts = [tally.counts(w) for tally in design.level_tallies]
    squares = np.array([float((c**2).sum()) for c in level_counts])  # sum_j n_j^2 per factor
    coefficients = np.zeros((k + 1, k + 1))
    values = np.zeros(k + 1)
    for a, tally in enumerate(design.level_tallies):
        totals = tally.totals(w)
        counts = level_counts[a]
        present = counts > 0
        values[a] = float((totals[present] ** 2 / counts[present]).sum()) - t_mu
        coefficients[a, a] = n
        coefficients[a, k] = float(present.sum())
    for (a, b), (tally, level_a, level_b) in design.pair_tallies.items():
        cell_counts = tally.counts(w) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            coefficients[a, b] = np.nansum(cell_counts / level_counts[a][level_a])
            coefficients[b, a] = np.nansum(cell_counts / level_counts[b][level_b])
    coefficients[:k, :k] -= squares[None, :] / n
    coefficients[:k, k] -= 1.0
    values[k] = float(w @ design.cluster_y2) - t_mu
    coefficients[k, :k] = n - squares / n
    coefficients[k, k] = n - 1.0
    # Least squares: a confounding the partition check did not catch (say, a prompt in one benchmark
    # for every benchmark level) leaves the system singular; the minimum-norm solution splits it evenly.
    return np.linalg.lstsq(coefficients, values, rcond=None)[0]
