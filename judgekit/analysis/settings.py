"""What ``judgekit stats`` computes and how: the settings, and the signature each row records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Policy = Literal["include", "exclude", "only"]
IntervalMethod = Literal["bca", "percentile"]


@dataclass(frozen=True)
class StatsSettings:
    """Settings of one ``judgekit stats`` run.

    Intervals: rates (accuracy, FPR, FNR, harmful rate...) get the clustered
    Wilson interval; other statistics the cluster bootstrap (``ci_method``,
    ``n_boot`` resamples) up to ``max_bootstrap_clusters`` clusters and Taylor
    linearization with a t quantile above it, where the bootstrap is slow and
    no longer needed. A row warns when it has fewer than ``min_class_items``
    items of a reference class the statistic depends on, and a bootstrap row
    also when it has fewer than ``min_clusters`` clusters (thresholds from the
    coverage simulation in ``benchmarks/coverage.py``).
    """

    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    ci_method: IntervalMethod = "bca"
    n_bins: int = 10
    incoherent: Policy = "include"
    max_bootstrap_clusters: int = 2000
    variance_resamples: int = 200
    min_clusters: int = 30
    min_class_items: int = 15
    progress: bool = False

    def __post_init__(self) -> None:
        if self.n_boot < 1:
            raise ValueError(f"n_boot must be >= 1, got {self.n_boot}")
        if self.incoherent not in ("include", "exclude", "only"):
            raise ValueError(f"incoherent policy must be include, exclude or only, got {self.incoherent!r}")
        if self.ci_method not in ("bca", "percentile"):
            raise ValueError(f"ci_method must be bca or percentile, got {self.ci_method!r}")
        if not 0 < self.level < 1:
            raise ValueError(f"level must be in (0, 1), got {self.level!r}")

    def signature(self, *, interval: str, resamples: int, cluster: str, version: str) -> str:
        """What a row's number depends on, with the resamples that row really used."""
        return (
            f"ci:{interval}-{self.level:.0%}|boot:{resamples}|seed:{self.seed}|cluster:{cluster}"
            f"|bins:{self.n_bins}|incoherent:{self.incoherent}|exclude:no-verdict+no-reference|version:{version}"
        )
