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
from scipy import sparse

FACTORS = ("judge_id", "benchmark", "finetune_goal", "model", "prompt")
INTERACTIONS = (("judge_id", "prompt"),)
RESIDUAL = "residual"


# Weighted sums go through a dense (clusters x cells) matrix while it has at most this many slots per (cell, cluster)
# pair it holds (few levels crossing many clusters: one BLAS product), else through a sparse one.
_DENSE_CELLS = 4
_CHUNK_ELEMENTS = 10_000_000  # bound the (resamples x clusters) and (resamples x cells) blocks held at once
KEPT, ABSENT, ONE_PER_LEVEL = -1, -2, -3  # how a fit treats a candidate factor (else: the earlier one it repeats)


@dataclass(frozen=True)
class _Tally:
    """Rows of one partition (a factor, or factors crossed), aggregated to distinct (cell, cluster) pairs.

    ``cell`` codes are the partition's row codes (0 .. n_cells-1, all present in
    the data); the pairs are sorted by (cell, cluster).
    """

    cell: NDArray[np.int64]
    cluster: NDArray[np.int64]
    rows: NDArray[np.float64]
    y: NDArray[np.float64]
    n_cells: int
    n_clusters: int

    @classmethod
    def of(cls, cell_codes: NDArray, n_cells: int, cluster_codes: NDArray, n_clusters: int, y: NDArray) -> _Tally:
        pairs, inverse = np.unique(cell_codes.astype(np.int64) * n_clusters + cluster_codes, return_inverse=True)
        return cls(pairs // n_clusters, pairs % n_clusters, np.bincount(inverse).astype(float),
                   np.bincount(inverse, weights=y), n_cells, n_clusters)

    def per_cluster(self, values: NDArray) -> NDArray[np.float64]:
        """Per-pair ``values`` added up within each cluster."""
        return np.bincount(self.cluster, weights=values, minlength=self.n_clusters)

    def weighted(self, weights: NDArray, values: NDArray, columns: NDArray | None = None,
                 n_columns: int | None = None) -> NDArray[np.float64]:
        """(resamples, columns): per-pair ``values`` added up into their cell (or ``columns``), each cluster counted
        as often as ``weights`` (resamples, clusters) says: one matrix product."""
        columns, n_columns = (self.cell, self.n_cells) if columns is None else (columns, n_columns)
        if n_columns * self.n_clusters <= _DENSE_CELLS * len(columns) + 100_000:
            matrix = np.bincount(self.cluster * n_columns + columns, weights=values,
                                 minlength=self.n_clusters * n_columns).reshape(self.n_clusters, n_columns)
            return weights @ matrix
        matrix = sparse.csr_array((values, (self.cluster, columns)), shape=(self.n_clusters, n_columns))
        return np.asarray((matrix.T @ weights.T).T)

    def n_levels(self, weights: NDArray, copied: bool) -> NDArray[np.float64]:
        """Levels present in each resample; a ``copied`` partition's pairs are distinct levels in each copy."""
        if copied:
            return weights @ self.per_cluster(np.ones(len(self.cell)))
        return (self.weighted(weights, self.rows) > 0).sum(axis=1).astype(float)


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


@dataclass
class _Rows:
    """A verdict table as codes: the candidate factors (the factors with two levels or more, then the interactions
    of two of them), each candidate's partition of the rows tallied on demand (cached by the factors it crosses)."""

    y: NDArray[np.float64]
    codes: dict[str, NDArray[np.int64]]
    candidates: dict[str, tuple[str, ...]]
    cluster: NDArray[np.int64]
    n_clusters: int
    _partitions: dict[tuple[str, ...], tuple[NDArray[np.int64], _Tally]]

    @classmethod
    def of(cls, data: pd.DataFrame, factors: tuple[str, ...], interactions: tuple[tuple[str, str], ...],
           cluster: NDArray[np.int64], n_clusters: int) -> _Rows:
        codes = {}
        for factor in factors:
            if factor in data:
                level_codes = pd.factorize(_labels(data[factor]), sort=True, use_na_sentinel=False)[0]
                codes[factor] = level_codes.astype(np.int64)
        candidates = {factor: (factor,) for factor, level_codes in codes.items() if level_codes.max() >= 1}
        candidates |= {f"{first}:{second}": (first, second) for first, second in interactions
                       if first in candidates and second in candidates}
        return cls(data["unsafe"].to_numpy(dtype=float), codes, candidates, cluster, n_clusters, {})

    def parts(self, *names: str) -> tuple[str, ...]:
        """The factors crossed by the candidates ``names`` together, in a canonical order."""
        crossed = {part for name in names for part in self.candidates[name]}
        return tuple(factor for factor in self.codes if factor in crossed)

    def partition(self, parts: tuple[str, ...]) -> tuple[NDArray[np.int64], _Tally]:
        """Row codes (0 .. cells-1) of the cells of ``parts`` crossed, and their tally."""
        if parts not in self._partitions:
            codes = self.codes[parts[0]]
            for part in parts[1:]:
                codes = pd.factorize(codes * (self.codes[part].max() + 1) + self.codes[part])[0].astype(np.int64)
            n_cells = int(codes.max()) + 1
            self._partitions[parts] = codes, _Tally.of(codes, n_cells, self.cluster, self.n_clusters, self.y)
        return self._partitions[parts]

    def tally(self, *names: str) -> _Tally:
        return self.partition(self.parts(*names))[1]

    def design(self) -> VarianceDesign:
        """The fit on the rows as they are: the candidates kept, the dropped ones with the reason, the tallies."""
        status = _selection(self.candidates, lambda name: np.array([float(self.tally(name).n_cells)]),
                            lambda first, second: np.array([float(self.tally(first, second).n_cells)]),
                            np.array([float(len(self.y))]))
        names = [name for name in self.candidates if status[name][0] == KEPT]
        dropped = []
        for name in self.candidates:
            state = int(status[name][0])
            if state == ONE_PER_LEVEL:
                dropped.append(f"{name} (one verdict per level: not separable from the residual)")
            elif state >= 0:
                dropped.append(f"{name} (same partition of the verdicts as {list(self.candidates)[state]})")
        pair_tallies = {}
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                cells, tally = self.partition(self.parts(names[a], names[b]))
                pair_tallies[(a, b)] = (tally, self.parent_levels(cells, names[a]), self.parent_levels(cells, names[b]))
        return VarianceDesign(
            tuple(names), tuple(dropped), self.n_clusters, tuple(self.tally(name) for name in names), pair_tallies,
            np.bincount(self.cluster, minlength=self.n_clusters).astype(float),
            np.bincount(self.cluster, weights=self.y, minlength=self.n_clusters),
            np.bincount(self.cluster, weights=self.y**2, minlength=self.n_clusters),
        )

    def parent_levels(self, cells: NDArray[np.int64], name: str) -> NDArray[np.int64]:
        """For each cell of a crossed partition (row codes ``cells``), its level of the candidate ``name``."""
        levels = np.zeros(int(cells.max()) + 1, dtype=np.int64)
        levels[cells] = self.partition(self.parts(name))[0]
        return levels


def _selection(candidates: dict[str, tuple[str, ...]], n_levels, n_cells, n_rows: NDArray) -> dict[str, NDArray]:
    """How a fit treats each candidate factor, for each of several resamples at once.

    ``n_levels(name)`` and ``n_cells(first, second)`` give, per resample, the
    levels of a candidate and the cells of two crossed. The status is
    ``KEPT``; ``ABSENT`` (a factor it involves has fewer than two levels);
    ``ONE_PER_LEVEL`` (one verdict per level: not separable from the
    residual); or the index of the earlier kept candidate that partitions the
    verdicts the same way (same levels, and as many cells crossed as levels).
    """
    names = list(candidates)
    levels = {name: n_levels(name) for name in names}
    status: dict[str, NDArray] = {}
    for i, name in enumerate(names):
        state = np.where(np.all([levels[part] >= 2 for part in candidates[name]], axis=0), KEPT, ABSENT)
        for j, other in enumerate(names[:i]):
            open_ = (state == KEPT) & (status[other] == KEPT) & (levels[other] == levels[name])
            if open_.any():
                state = np.where(open_ & (n_cells(other, name) == levels[name]), j, state)
        status[name] = np.where((state == KEPT) & (levels[name] == n_rows), ONE_PER_LEVEL, state)
    return status


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
    if cluster is None:
        cluster_codes, n_clusters = np.arange(len(data), dtype=np.int64), len(data)
    else:
        cluster_codes, cluster_names = pd.factorize(_labels(data[cluster]), sort=True, use_na_sentinel=False)
        cluster_codes, n_clusters = cluster_codes.astype(np.int64), len(cluster_names)
    return _Rows.of(data, factors, interactions, cluster_codes, n_clusters).design()


def _labels(column: pd.Series) -> pd.Series:
    """Level labels to factorize: integers as they are, else as text (a missing value is a level of its own)."""
    return column if pd.api.types.is_integer_dtype(column) else column.astype(str)


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
    coefficients, values = _moment_equations(design, w[None, :], (False,) * len(design.factors))
    return _solve(coefficients[0], values[0])


def _solve(coefficients: NDArray, values: NDArray) -> NDArray[np.float64]:
    # Least squares: a confounding the partition check did not catch (say, a prompt in one benchmark
    # for every benchmark level) leaves the system singular; the minimum-norm solution splits it evenly.
    return np.linalg.lstsq(coefficients, values, rcond=None)[0]


def _moment_equations(design: VarianceDesign, weights: NDArray, copied: tuple[bool, ...]) -> tuple[NDArray, NDArray]:
    """Henderson I's equations (coefficients (resamples, k+1, k+1), values (resamples, k+1)) for cluster ``weights``
    (resamples, clusters) at once.

    A ``copied`` factor's levels lie within the clusters and a cluster drawn
    w times brings w copies of them, each a level of its own: its sums over
    levels are then per-cluster sums weighted by w (a product with the
    weights). A factor not copied keeps its levels, whose counts and totals
    are products of the weights with per-(level, cluster) tallies.
    """
    k = len(design.factors)
    n_resamples = weights.shape[0]
    n = weights @ design.cluster_rows
    t_mu = (weights @ design.cluster_y) ** 2 / n
    coefficients = np.zeros((n_resamples, k + 1, k + 1))
    values = np.zeros((n_resamples, k + 1))
    squares = np.zeros((n_resamples, k))  # sum over levels of n_l^2, per factor
    level_counts: dict[int, NDArray] = {}
    for a, tally in enumerate(design.level_tallies):
        if copied[a]:
            values[:, a] = weights @ tally.per_cluster(tally.y**2 / tally.rows)
            squares[:, a] = weights @ tally.per_cluster(tally.rows**2)
            coefficients[:, a, k] = tally.n_levels(weights, copied=True)
        else:
            counts = tally.weighted(weights, tally.rows)
            totals = tally.weighted(weights, tally.y)
            present = counts > 0
            values[:, a] = np.where(present, totals**2 / np.where(present, counts, 1), 0).sum(axis=1)
            squares[:, a] = (counts**2).sum(axis=1)
            coefficients[:, a, k] = present.sum(axis=1)
            level_counts[a] = counts
        values[:, a] -= t_mu
        coefficients[:, a, a] = n
    for (a, b), (tally, level_a, level_b) in design.pair_tallies.items():
        for first, second, levels in ((a, b, level_a), (b, a, level_b)):
            coefficients[:, first, second] = _cell_ratio_sums(tally, levels, design.level_tallies[first], weights,
                                                              copied[first], copied[a] or copied[b],
                                                              level_counts.get(first))
    coefficients[:, :k, :k] -= squares[:, None, :] / n[:, None, None]
    coefficients[:, :k, k] -= 1.0
    values[:, k] = weights @ design.cluster_y2 - t_mu
    coefficients[:, k, :k] = n[:, None] - squares / n[:, None]
    coefficients[:, k, k] = n - 1.0
    return coefficients, values


def _cell_ratio_sums(cells: _Tally, parent_of_cell: NDArray, parent: _Tally, weights: NDArray, parent_copied: bool,
                     cells_copied: bool, parent_counts: NDArray | None) -> NDArray[np.float64]:
    """Per resample, the sum over the cells of two factors crossed of n_cell^2 / n_(the cell's level of ``parent``)."""
    squares = cells.rows**2
    if parent_copied:  # each (cell, cluster) pair lies in its parent's (level, cluster) pair: both copied together
        keys = parent.cell * parent.n_clusters + parent.cluster
        parent_rows = parent.rows[np.searchsorted(keys, parent_of_cell[cells.cell] * parent.n_clusters + cells.cluster)]
        return weights @ cells.per_cluster(squares / parent_rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        if cells_copied:  # copies of a cell share their parent level: add the squares up by parent level first
            return np.nansum(cells.weighted(weights, squares, parent_of_cell[cells.cell], parent.n_cells)
                             / parent_counts, axis=1)
        return np.nansum(cells.weighted(weights, cells.rows) ** 2 / parent_counts[:, parent_of_cell], axis=1)


@dataclass(frozen=True)
class ComponentIntervals:
    """Variance components (negative estimates set to 0) with cluster-bootstrap intervals where they are valid.

    ``names`` lists the factors then ``residual``; ``resampled[k]`` says
    whether component k's levels lie within the resampled clusters (so the
    bootstrap sees their sampling variation). A component whose levels cross
    the clusters (a judge rating every prompt) has few levels of its own that
    resampling prompts never varies: it is reported as a fixed spread with a
    NaN interval. ``shares`` are the components over their sum.
    ``replicates`` (n_resamples, components) are the bootstrap refits, NaN
    where a resample's refit keeps other factors than the fit (say, one
    benchmark left).
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
    replicates: NDArray[np.float64]


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

    No resample's rows are built: each partition of the verdicts is tallied
    once per (level, cluster), and a resample's cluster multiplicities give
    every sum of the refit as a product, for a chunk of resamples at once
    (the refit of the copied rows to 1e-12; ``tests/test_variance_bootstrap.py``).
    A resample whose refit would keep other factors (a benchmark lost, an
    interaction that gains a second verdict per cell) is NaN, as that refit
    would not be comparable.

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
    cluster_codes, cluster_names = pd.factorize(data[cluster].astype(str), sort=True, use_na_sentinel=False)
    rows = _Rows.of(data, factors, interactions, cluster_codes.astype(np.int64), len(cluster_names))
    design = rows.design()
    estimate = np.clip(variance_components(design), 0, None)
    names = (*design.factors, RESIDUAL)
    nested = {f for f in rows.codes if _nested_in(data, f, cluster)}
    copied = {name: any(part in nested for part in parts) for name, parts in rows.candidates.items()}
    resampled = np.array([copied[name] for name in design.factors] + [True])
    replicates = _replicates(rows, design, copied, n_resamples, np.random.default_rng(rng))
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
                              design.dropped, rows.n_clusters, n_resamples, replicates)


def _replicates(rows: _Rows, design: VarianceDesign, copied: dict[str, bool], n_resamples: int,
                generator: np.random.Generator) -> NDArray[np.float64]:
    """(n_resamples, components): the refit of each cluster resample, NaN where the refit keeps other factors.

    A resample's multiplicities (clusters drawn with replacement, one resample
    after another as a loop drawing cluster indices would) give every sum the
    refit needs as a product (see :func:`_moment_equations`), chunked so that
    at most about ``_CHUNK_ELEMENTS`` weights and level sums are held at once.
    """
    n_clusters = rows.n_clusters
    factor_copied = tuple(copied[name] for name in design.factors)
    crossed = [tally.n_cells for tally, is_copied in zip(design.level_tallies, factor_copied, strict=True) if not is_copied]
    widest = max([n_clusters, *crossed] + [tally.n_cells for tally, *_ in design.pair_tallies.values()])
    chunk = max(1, _CHUNK_ELEMENTS // widest)
    replicates = np.full((n_resamples, len(design.factors) + 1), np.nan)
    for start in range(0, n_resamples, chunk):
        weights = np.array([np.bincount(generator.integers(0, n_clusters, size=n_clusters), minlength=n_clusters)
                            for _ in range(min(chunk, n_resamples - start))], dtype=float)
        status = _selection(rows.candidates, lambda name: rows.tally(name).n_levels(weights, copied[name]),
                            lambda a, b: rows.tally(a, b).n_levels(weights, copied[a] or copied[b]),
                            weights @ design.cluster_rows)
        same_factors = np.all([(status[name] == KEPT) == (name in design.factors) for name in rows.candidates], axis=0)
        valid = np.flatnonzero(same_factors)
        coefficients, values = _moment_equations(design, weights[valid], factor_copied)
        for i, b in enumerate(valid):
            replicates[start + b] = np.clip(_solve(coefficients[i], values[i]), 0, None)
    return replicates
