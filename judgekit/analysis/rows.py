"""Writing stats rows: the interval each statistic gets, its warning, its own generator and its signature.

Every row's randomness comes from a generator seeded by (settings.seed, the
row group's key: block, judge, reference, subset), so an interval reproduces
from its own row whatever else the run computed; the signature records the
resamples that row really used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.stats import t as student_t

from judgekit.analysis.inputs import StudyArrays, design_summary, for_outcome
from judgekit.analysis.outcomes import OutcomeView
from judgekit.analysis.settings import StatsSettings
from judgekit.analysis.subsets import Subset
from judgekit.store.schema import HUMAN_MAJORITY
from judgekit.stats.intervals import clustered_wilson_interval, linearized_interval, numeric_gradient
from judgekit.stats.resampling import bootstrap_ci, cluster_sums

FromSums = Callable[[NDArray], NDArray]
JUDGE_SET = "judges"  # the rater set of multi-rater rows among all judges


@dataclass(frozen=True)
class Statistic:
    """A statistic of summed per-item sufficient statistics, and what its interval needs.

    ``rate`` maps sums ``(..., k)`` to (events, trials) when the statistic is
    their ratio: it then gets the clustered Wilson interval. ``classes`` maps
    the totals to the reference's (positives, negatives), for the few-items
    warning; None when the statistic has no reference classes. ``notes`` maps
    the cluster sums and the settings to further warnings (a comparison of two
    groups warns about each group's items and clusters). ``gradient``
    maps the totals ``(k,)`` to the gradient of ``from_sums``, for Taylor
    linearization of statistics of many columns; without it the gradient is
    taken numerically (2k evaluations). ``undefined`` says why the estimate
    can be undefined (NaN), for the row's warning.
    """

    from_sums: FromSums
    rate: Callable[[NDArray], tuple[NDArray, NDArray]] | None = None
    classes: Callable[[NDArray], tuple[float, float]] | None = None
    gradient: Callable[[NDArray], NDArray] | None = None
    notes: Callable[[NDArray, StatsSettings], list[str]] | None = None
    undefined: str = "a denominator is zero on these items"  # why the estimate can be NaN


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    method: str
    resamples: int
    warning: str
    replicates: NDArray | None = None  # bootstrap distribution, when a bootstrap was run
    standard_error: float = float("nan")  # linearized standard error, when linearized
    degrees_of_freedom: int = 0


def row_generator(seed: int, *key: str) -> np.random.Generator:
    """Generator for one row group, from the run's seed and the group's key (stable across runs and Python versions)."""
    digest = hashlib.sha256("\x1f".join(key).encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def class_warnings(positives: float, negatives: float, minimum: int) -> list[str]:
    notes = []
    if positives < minimum:
        notes.append(f"few positives (n={positives:.0f})")
    if negatives < minimum:
        notes.append(f"few negatives (n={negatives:.0f})")
    return notes


def effective_clusters(sizes: NDArray) -> float:
    """Kish's effective number of clusters :math:`(\\sum n_c)^2 / \\sum n_c^2` (the count itself when sizes are equal).

    References
    ----------
    .. [1] Carter, A. V., Schnepel, K. T., & Steigerwald, D. G. (2017). Asymptotic behavior of a t-test robust
       to cluster heterogeneity. Review of Economics and Statistics, 99(4), 698-709. doi:10.1162/REST_a_00639
    """
    sizes = np.asarray(sizes, dtype=float)
    squares = float((sizes**2).sum())
    return float(sizes.sum() ** 2 / squares) if squares > 0 else 0.0


def cluster_warnings(n_clusters: int, sizes: NDArray | None, minimum: int) -> list[str]:
    """The warning of a resampling or linearized interval over few clusters, or over clusters so unequal in size
    that the effective count is few (kappa and alpha under-cover at 40 clusters of geometric sizes)."""
    if n_clusters < minimum:
        return [f"few clusters (n={n_clusters})"]
    effective = effective_clusters(sizes) if sizes is not None else float(n_clusters)
    if effective < minimum:
        return [f"unequal cluster sizes: effectively {effective:.0f} clusters of {n_clusters} (largest "
                f"{int(np.max(sizes))} items), the interval may under-cover"]
    return []


def unequal_trials_warnings(trials: NDArray, minimum: int) -> list[str]:
    """A rate's clustered Wilson interval over clusters whose trials are so unequal that fewer than ``minimum / 2``
    effectively remain: FPR intervals at 20 lognormal-sized clusters (sd 1 to 2 on the log scale, effectively 4 to
    10) covered 0.74-0.92; at 20 equal ones 0.96 (issue 34)."""
    counts = np.asarray(trials.todense() if sparse.issparse(trials) else trials, dtype=float).ravel()
    counts = counts[counts > 0]
    effective = effective_clusters(counts)
    if len(counts) < 2 or effective >= minimum / 2:
        return []
    return [f"unequal clusters: the rate's trials fall effectively in {effective:.0f} of {len(counts)} clusters "
            f"(largest {int(counts.max())} of {int(counts.sum())}), the interval may under-cover"]


# Why a row's interval has zero width at finite n, when its producer did not say it more precisely.
ZERO_WIDTH = ("zero-width interval: the data behind it take one value (every resample alike, e.g. no event on "
              "either side), which is not certainty")


def degenerate_warnings(interval: Interval, statistic: Statistic) -> list[str]:
    """Why a row has no estimate, or an interval of zero width at finite n (never a silent 0 [0, 0])."""
    if not np.isfinite(interval.estimate):
        return [f"undefined: {statistic.undefined}"]
    if np.isfinite(interval.low) and interval.low == interval.high:
        return ["zero-width interval: the statistic takes one value in every resample (a rater or the reference "
                "is constant, or agreement is perfect), which is not certainty"]
    return []


def block_intervals(statistics: dict[str, Statistic], sums: NDArray | sparse.sparray, settings: StatsSettings,
                    rng: np.random.Generator, *, cluster_sizes: NDArray | None = None) -> dict[str, Interval]:
    """Intervals for statistics of the same cluster sums ``(n_clusters, k)``, dense or sparse; one shared bootstrap for all.

    ``cluster_sizes`` (items per cluster) lets the warning name clusters too unequal in size for the bootstrap.
    """
    n_clusters = sums.shape[0]
    totals = np.asarray(sums.sum(axis=0), dtype=float).ravel()
    common = cluster_warnings(n_clusters, cluster_sizes, settings.min_clusters)  # bootstrap / linearized rows only
    smooth = [name for name, s in statistics.items() if s.rate is None]
    smooth_results: dict[str, Interval] = {}
    if smooth:
        stack = lambda s: np.stack([np.asarray(statistics[n].from_sums(s), dtype=float) for n in smooth], axis=-1)  # noqa: E731
        if n_clusters > settings.max_bootstrap_clusters:
            def gradient(total: NDArray) -> NDArray:
                return np.stack([statistics[n].gradient(total) if statistics[n].gradient is not None
                                 else numeric_gradient(statistics[n].from_sums, total) for n in smooth], axis=-1)

            estimate, low, high = linearized_interval(sums, stack, gradient=gradient, level=settings.level)
            quantile = student_t.ppf(1 - (1 - settings.level) / 2, n_clusters - 1)
            for k, name in enumerate(smooth):
                smooth_results[name] = Interval(float(estimate[k]), float(low[k]), float(high[k]),
                                                f"Taylor linearization, cluster-robust, t({n_clusters - 1})", 0, "",
                                                standard_error=float((high[k] - estimate[k]) / quantile),
                                                degrees_of_freedom=n_clusters - 1)
        else:
            result = bootstrap_ci(sums, stack, n_boot=settings.n_boot, level=settings.level, method=settings.ci_method, rng=rng)
            resamples = len(result.replicates)
            for k, name in enumerate(smooth):
                method = result.methods[k]
                note = method.removeprefix("bca").removeprefix("percentile").strip(" ;")
                note = note[1:].replace(")", "", 1) if note.startswith("(") else note  # why not BCa, or stretched
                smooth_results[name] = Interval(float(result.estimate[k]), float(result.low[k]), float(result.high[k]),
                                                f"cluster bootstrap, {method}", resamples, note,
                                                replicates=result.replicates[:, k] if resamples else None)
    out = {}
    for name, statistic in statistics.items():
        if statistic.rate is None:
            interval = smooth_results[name]
        else:
            events, trials = statistic.rate(sums)
            estimate, low, high, deff = clustered_wilson_interval(events, trials, level=settings.level)
            interval = Interval(estimate, low, high, f"clustered Wilson (Korn-Graubard), design effect {deff:.2f}", 0, "")
        # The clustered Wilson interval holds its level at 20 equal clusters (benchmarks/coverage.py; the bootstrap
        # does not), but not at 20 very unequal ones: warned by the effective count of the clusters' trials.
        notes = list(common) if statistic.rate is None else unequal_trials_warnings(trials, settings.min_clusters)
        if statistic.classes is not None:
            notes += class_warnings(*statistic.classes(totals), settings.min_class_items)
        if statistic.notes is not None:
            notes += statistic.notes(sums, settings)
        if interval.warning:
            notes.append(interval.warning)
        notes += degenerate_warnings(interval, statistic)
        if n_clusters < 2:
            notes = ["no interval: fewer than 2 clusters"]
        out[name] = replace(interval, warning="; ".join(notes))
    return out


def _undefined_reason(n_items: int, n_in_subset: int, excluded_reason: str, method: str) -> str:
    if "not estimable" in method:
        return "undefined: " + method[method.index("not estimable"):]
    if method.startswith("not computed: "):  # the block said why (e.g. only one judge scores the dimension)
        return "undefined: " + method.removeprefix("not computed: ").split("; verdict ")[0]
    if n_items == 0:
        return (f"undefined: no item with a verdict here ({n_in_subset} in the subset"
                + (f"; {excluded_reason}" if excluded_reason else "") + ")")
    return "undefined: the statistic has no value on these items"


@dataclass
class RowWriter:
    """Collects the rows of one run.

    Inside :meth:`measuring` the rows carry that outcome (``outcome`` column,
    its note appended to ``method``) and ``data`` holds the outcome's raters;
    elsewhere ``outcome`` is empty (statistics about the judges themselves).
    """

    data: StudyArrays
    settings: StatsSettings
    version: str
    rows: list[dict] = field(default_factory=list)
    outcome: OutcomeView | None = None

    @contextmanager
    def measuring(self, view: OutcomeView) -> Iterator[StudyArrays]:
        """Rows written inside are about ``view``'s outcome; yields the study's arrays with its raters."""
        study_data, self.data, self.outcome = self.data, for_outcome(self.data, view), view
        try:
            yield self.data
        finally:
            self.data, self.outcome = study_data, None

    def add(self, statistic: str, judge_id: str, reference: str, subset: Subset, estimate: float, low: float, high: float,
            *, n_items: int, n_in_subset: int, method: str, excluded_reason: str = "", warning: str = "",
            resamples: int = 0, interval: str = "none", dimension: str | None = None, cut: str | None = None) -> None:
        """One row. ``dimension`` names the graded scale of a native-scale row; a row on binary verdicts instead says,
        in its method, the threshold that cut each of its judges' verdicts from a graded score (``cut`` when the row's
        judge was cut at another threshold than its stated one: a specification-curve cell)."""
        if dimension is None:
            raters = (str(judge_id), str(reference))
            named = self.data.verdict_methods if JUDGE_SET in raters else raters  # all judges together: every cut
            methods = self.data.verdict_methods | ({str(judge_id): cut} if cut else {})
            cuts = [f"{j}: {methods[j]}" for j in dict.fromkeys(named) if j in methods]
            method = "; ".join([method, *(f"verdict {cut}" for cut in cuts)])
        if str(judge_id) == HUMAN_MAJORITY and "labels by design" not in method:  # the humans' own rows
            method = "; ".join(filter(None, [method, design_summary(self.data.designs,
                                                                    ~np.isnan(self.data.reference))]))
        subset = self.outcome.subset(subset) if self.outcome else subset
        if not np.isfinite(estimate) and not warning:  # every undefined row says why
            warning = _undefined_reason(n_items, n_in_subset, excluded_reason, method)
        if np.isfinite(estimate) and np.isfinite(low) and low == high and "zero-width" not in warning:
            warning = "; ".join(filter(None, [warning, ZERO_WIDTH]))  # every zero-width interval says why
        self.rows.append({
            "statistic": statistic, "judge_id": str(judge_id), "reference": str(reference), **subset.fields(),
            "outcome": self.outcome.outcome.name if self.outcome else None,
            "dimension": dimension,
            "estimate": float(estimate), "ci_low": float(low), "ci_high": float(high),
            "n_items": int(n_items), "n_excluded": int(n_in_subset - n_items), "excluded_reason": excluded_reason,
            "method": f"{method}; {self.outcome.note}" if self.outcome and self.outcome.note else method,
            "warning": warning,
            "signature": self.settings.signature(interval=interval, resamples=resamples, cluster=self.data.cluster_name,
                                                 version=self.version),
        })

    def excluded_reason(self, mask: NDArray, used: NDArray, reference: str) -> str:
        """Counts of the subset's left-out items by reason."""
        left_out = mask & ~used
        by_policy = left_out & ~self.data.policy_mask
        tie = left_out & self.data.policy_mask & self.data.tied if reference == HUMAN_MAJORITY else np.zeros_like(mask)
        other = left_out & ~by_policy & ~tie
        reasons = ((f"--incoherent {self.settings.incoherent}", by_policy), ("human-majority tie", tie),
                   ("no verdict or no reference", other))
        return "; ".join(f"{name}: {int(m.sum())}" for name, m in reasons if m.any())

    def block(self, statistics: dict[str, Statistic], judge_id: str, reference: str, subset: Subset, mask: NDArray,
              item_sums: NDArray | sparse.sparray, *, counted: NDArray | None = None, clusters: NDArray | None = None,
              policy_mask: NDArray | None = None, key: str = "", dimension: str | None = None) -> dict[str, Interval]:
        """Rows for statistics of the same per-item sums on the items of ``mask``.

        Items contributing nothing are left out; ``counted`` (default: column 0
        of the sums is positive) says which items ``n_items`` counts.
        ``item_sums`` may be a scipy sparse array (one column filled per item
        out of many, as the AUROC level histograms); it then needs ``counted``.
        ``clusters``/``policy_mask`` default to the study's (pooled rows, such
        as the human ceiling's annotator × item pairs, pass their own).
        """
        subset = self.outcome.subset(subset) if self.outcome else subset
        clusters = self.data.clusters if clusters is None else clusters
        policy = self.data.policy_mask if policy_mask is None else policy_mask
        in_policy = mask & policy
        contributing = in_policy & (np.asarray(abs(item_sums).sum(axis=1)).ravel() > 0)
        counted_items = in_policy & (item_sums[:, 0] > 0 if counted is None else counted)
        n_items, n_in_subset = int(counted_items.sum()), int(mask.sum())
        reason = self.excluded_reason(mask, counted_items, reference) if len(mask) == self.data.n_items else ""
        if n_items == 0:
            for name in statistics:
                self.add(name, judge_id, reference, subset, np.nan, np.nan, np.nan, n_items=0, n_in_subset=n_in_subset,
                         method="no items", excluded_reason=reason, dimension=dimension)
            return {}
        sums = cluster_sums(item_sums[contributing], clusters[contributing])
        sizes = cluster_sums(counted_items[contributing][:, None], clusters[contributing])[:, 0]
        rng = row_generator(self.settings.seed, key or ",".join(statistics), str(judge_id), str(reference), subset.label,
                            *([dimension] if dimension else []))
        intervals = block_intervals(statistics, sums, self.settings, rng, cluster_sizes=sizes)
        for name, interval in intervals.items():
            kind = "bootstrap" if interval.replicates is not None else ("wilson-clustered" if "Wilson" in interval.method
                                                                         else "linearized")
            self.add(name, judge_id, reference, subset, interval.estimate, interval.low, interval.high, n_items=n_items,
                     n_in_subset=n_in_subset, method=interval.method, excluded_reason=reason, warning=interval.warning,
                     resamples=interval.resamples, interval=f"{kind}-{self.settings.ci_method}" if kind == "bootstrap" else kind,
                     dimension=dimension)
        return intervals
