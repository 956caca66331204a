"""Writing stats rows: the interval each statistic gets, its warning, its own generator and its signature.

Every row's randomness comes from a generator seeded by (settings.seed, the
row group's key: block, judge, reference, subset), so an interval reproduces
from its own row whatever else the run computed; the signature records the
resamples that row really used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.stats import t as student_t

from judgekit.analysis.inputs import StudyArrays
from judgekit.analysis.settings import StatsSettings
from judgekit.analysis.subsets import Subset
from judgekit.schema import HUMAN_MAJORITY
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
    taken numerically (2k evaluations).
    """

    from_sums: FromSums
    rate: Callable[[NDArray], tuple[NDArray, NDArray]] | None = None
    classes: Callable[[NDArray], tuple[float, float]] | None = None
    gradient: Callable[[NDArray], NDArray] | None = None
    notes: Callable[[NDArray, StatsSettings], list[str]] | None = None


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


def block_intervals(statistics: dict[str, Statistic], sums: NDArray | sparse.sparray, settings: StatsSettings,
                    rng: np.random.Generator) -> dict[str, Interval]:
    """Intervals for statistics of the same cluster sums ``(n_clusters, k)``, dense or sparse; one shared bootstrap for all."""
    n_clusters = sums.shape[0]
    totals = np.asarray(sums.sum(axis=0), dtype=float).ravel()
    common = [f"few clusters (n={n_clusters})"] if n_clusters < settings.min_clusters else []  # bootstrap rows only
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
                note = method[method.index("(") + 1 : -1] if "BCa undefined" in method else ""
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
        # The clustered Wilson interval holds its level at 20 clusters (benchmarks/coverage.py); the bootstrap does not.
        notes = list(common) if statistic.rate is None else []
        if statistic.classes is not None:
            notes += class_warnings(*statistic.classes(totals), settings.min_class_items)
        if statistic.notes is not None:
            notes += statistic.notes(sums, settings)
        if interval.warning:
            notes.append(interval.warning)
        if n_clusters < 2:
            notes = ["no interval: fewer than 2 clusters"]
        out[name] = replace(interval, warning="; ".join(notes))
    return out


@dataclass
class RowWriter:
    """Collects the rows of one run."""

    data: StudyArrays
    settings: StatsSettings
    version: str
    rows: list[dict] = field(default_factory=list)

    def add(self, statistic: str, judge_id: str, reference: str, subset: Subset, estimate: float, low: float, high: float,
            *, n_items: int, n_in_subset: int, method: str, excluded_reason: str = "", warning: str = "",
            resamples: int = 0, interval: str = "none", dimension: str | None = None) -> None:
        """One row. ``dimension`` names the graded scale of a native-scale row; a row on binary verdicts instead says,
        in its method, the threshold that cut each of its judges' verdicts from a graded score."""
        if dimension is None:
            raters = (str(judge_id), str(reference))
            named = self.data.verdict_methods if JUDGE_SET in raters else raters  # all judges together: every cut
            cuts = [f"{j}: {self.data.verdict_methods[j]}" for j in dict.fromkeys(named) if j in self.data.verdict_methods]
            method = "; ".join([method, *(f"verdict {cut}" for cut in cuts)])
        self.rows.append({
            "statistic": statistic, "judge_id": str(judge_id), "reference": str(reference), **subset.fields(),
            "dimension": dimension,
            "estimate": float(estimate), "ci_low": float(low), "ci_high": float(high),
            "n_items": int(n_items), "n_excluded": int(n_in_subset - n_items), "excluded_reason": excluded_reason,
            "method": method, "warning": warning,
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
        rng = row_generator(self.settings.seed, key or ",".join(statistics), str(judge_id), str(reference), subset.label,
                            *([dimension] if dimension else []))
        intervals = block_intervals(statistics, sums, self.settings, rng)
        for name, interval in intervals.items():
            kind = "bootstrap" if interval.replicates is not None else ("wilson-clustered" if "Wilson" in interval.method
                                                                         else "linearized")
            self.add(name, judge_id, reference, subset, interval.estimate, interval.low, interval.high, n_items=n_items,
                     n_in_subset=n_in_subset, method=interval.method, excluded_reason=reason, warning=interval.warning,
                     resamples=interval.resamples, interval=f"{kind}-{self.settings.ci_method}" if kind == "bootstrap" else kind,
                     dimension=dimension)
        return intervals
