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

import warnings
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
            level_codes, levels = pd.factorize(_labels(data[factor]), sort=True)
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
    cluster_codes, cluster_names = (pd.factorize(_labels(data[cluster]), sort=True) if cluster is not None
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


def _labels(column: pd.Series) -> pd.Series:
    """Level labels to factorize: integer codes as they are (the bootstrap's relabelled copies), else as text."""
    return column if pd.api.types.is_integer_dtype(column) else column.astype(str)


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


@dataclass(frozen=True)
class ComponentIntervals:
    """Variance components (negative estimates set to 0) with cluster-bootstrap intervals where they are valid.

    ``names`` lists the factors then ``residual``; ``resampled[k]`` says
    whether component k's levels lie within the resampled clusters (so the
    bootstrap sees their sampling variation). A component whose levels cross
    the clusters (a judge rating every prompt) has few levels of its own that
    resampling prompts never varies: it is reported as a fixed spread with a
    NaN interval. ``shares`` are the components over their sum.
    """

    names: tuple[str, ...]
    estimate: NDArray[np.float64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    share: NDArray[np.float64]
    share_low: NDArray[np.float64]
    share_high: NDArray[np.float64]
    resampled: NDArray[np.bool_]
    dropped: tuple[str, ...]
    n_clusters: int
    n_resamples: int


def _nested_in(frame: pd.DataFrame, factor: str, cluster: str) -> bool:
    """Whether every level of ``factor`` lies within one cluster (the cluster bootstrap resamples its levels)."""
    return bool((frame.groupby(factor, sort=False, observed=True)[cluster].nunique() <= 1).all())


def bootstrap_variance_components(
    frame: pd.DataFrame,
    *,
    cluster: str,
    n_resamples: int,
    level: float = 0.95,
    factors: tuple[str, ...] = FACTORS,
    interactions: tuple[tuple[str, str], ...] = INTERACTIONS,
    rng: np.random.Generator | int | None = None,
) -> ComponentIntervals:
    """Variance components with a cluster bootstrap in which a cluster drawn k times brings k new levels.

    Parameters
    ----------
    frame : DataFrame
        As for :func:`variance_design`, with a ``cluster`` column.
    cluster : str
        Resampling unit (the behaviour, else the prompt).
    n_resamples : int
        Bootstrap resamples.
    level : float, default=0.95
    factors, interactions
        As for :func:`variance_design`.
    rng : numpy Generator, int or None

    Returns
    -------
    ComponentIntervals

    Notes
    -----
    Each resample draws clusters with replacement and refits the model on
    the drawn rows. The levels of factors nested in the clusters (prompts
    within a behaviour, judge x prompt cells) are relabelled per copy: a
    prompt drawn twice is two prompts. Counting it as one level with doubled
    rows (weighting the clusters) inflates the prompt-level components and
    deflates the residual, so the intervals miss their own estimates.
    Factors crossed with the clusters (judges, models, benchmarks holding
    many clusters) keep their levels; their few levels are not resampled,
    so no bootstrap interval is given for them (fixed spread).

    References
    ----------
    .. [1] Field, C. A., & Welsh, A. H. (2007). Bootstrapping clustered data.
       JRSS B, 69(3), 369-390. doi:10.1111/j.1467-9868.2007.00593.x
    .. [2] Davison, A. C., & Hinkley, D. V. (1997). Bootstrap Methods and their
       Application, section 3.8. Cambridge University Press.
    """
    if not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise ValueError(f"The 'n_resamples' parameter must be a positive integer. Got {n_resamples!r} instead.")
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    if cluster not in frame:
        raise ValueError(f"The frame has no cluster column {cluster!r}.")
    data = frame[frame["unsafe"].notna()].reset_index(drop=True)
    design = variance_design(data, factors=factors, interactions=interactions, cluster=cluster)
    estimate = np.clip(variance_components(design), 0, None)
    names = (*design.factors, RESIDUAL)
    present = [f for f in factors if f in data]
    nested = {f for f in present if _nested_in(data, f, cluster)}
    resampled = np.array([any(part in nested for part in name.split(":")) for name in design.factors] + [True])
    cluster_codes, cluster_names = pd.factorize(data[cluster].astype(str), sort=True)
    order = np.argsort(cluster_codes, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(cluster_codes, minlength=len(cluster_names)))[:-1])
    codes = {f: pd.factorize(data[f].astype(str), sort=True)[0].astype(np.int64) for f in present}
    generator = np.random.default_rng(rng)
    replicates = np.full((n_resamples, len(names)), np.nan)
    for b in range(n_resamples):
        drawn = generator.integers(0, len(members), size=len(members))
        rows = np.concatenate([members[c] for c in drawn])
        copy = np.repeat(np.arange(len(drawn)), [len(members[c]) for c in drawn])
        resample = pd.DataFrame({"unsafe": data["unsafe"].to_numpy()[rows], cluster: copy})
        for f in present:  # a nested level drawn in two copies of its cluster becomes two levels
            resample[f] = codes[f][rows] * len(drawn) + copy if f in nested else codes[f][rows]
        refit = variance_design(resample, factors=factors, interactions=interactions, cluster=cluster)
        if refit.factors == design.factors:
            replicates[b] = np.clip(variance_components(refit), 0, None)
    tail = (1 - level) / 2 * 100
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        shares = replicates / replicates.sum(axis=1, keepdims=True)
        low, high = np.nanpercentile(replicates, [tail, 100 - tail], axis=0)
        share_low, share_high = np.nanpercentile(shares, [tail, 100 - tail], axis=0)
    hidden = ~resampled
    low[hidden] = high[hidden] = share_low[hidden] = share_high[hidden] = np.nan
    total = estimate.sum()
    share = estimate / total if total > 0 else np.full(len(names), np.nan)
    return ComponentIntervals(names, estimate, low, high, share, share_low, share_high, resampled,
                              design.dropped, len(members), n_resamples)
