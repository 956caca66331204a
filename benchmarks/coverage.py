"""Coverage of the stats table's 95% intervals on simulated studies with known truth.

    python benchmarks/coverage.py [--replicates 600] [--n-boot 1000] [--out analyses/results/coverage.md]

Each simulated study has ``n`` items in ``clusters`` behaviours (item k in
cluster k mod clusters). A behaviour's unsafe prevalence is drawn from a Beta
with mean ``prevalence`` and intra-cluster correlation 0.1; the human label is
Bernoulli of it, and the judge calls an unsafe item unsafe with probability
0.85 and a safe item safe with probability 0.90. So the population accuracy,
FPR, FNR, Cohen's kappa and Krippendorff's alpha (= Scott's pi for two
raters) of the judge against the humans are known in closed form.

For every cell (method x n x clusters x prevalence) the script reports the
share of studies whose interval covers the truth, with its Monte Carlo
standard error sqrt(c (1 - c) / R), over all studies and over the studies
whose row carries no ``warning``, and the share of studies that warned.
"new" is what ``judgekit stats`` does now (``judgekit.analysis.rows.block_intervals``:
clustered Wilson for rates, cluster-bootstrap BCa otherwise, with warnings);
"old" is the cluster-bootstrap BCa for every statistic, as before.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from judgekit.analysis.blocks.common import BINARY, CONFUSION, KAPPA, pair_sums
from judgekit.analysis.rows import Statistic, block_intervals
from judgekit.analysis.settings import StatsSettings
from judgekit.stats import agreement as ag
from judgekit.stats.classification import confusion_item_sums
from judgekit.stats.resampling import cluster_sums

SENSITIVITY, SPECIFICITY, ICC = 0.85, 0.90, 0.1
SIZES = ((50, 20), (100, 20), (100, 80), (400, 20), (400, 80))
PREVALENCES = (0.07, 0.30)
STATISTICS = ("accuracy", "fpr", "fnr", "cohen_kappa", "krippendorff_alpha")
ALPHA = Statistic(lambda s: ag.krippendorff_alpha_from_sums(s[..., :4], values=BINARY, level="nominal"),
                  classes=lambda t: KAPPA.classes(t[4:]))


def truth(prevalence: float) -> dict[str, float]:
    """Population values of the judge against the human label."""
    accuracy = prevalence * SENSITIVITY + (1 - prevalence) * SPECIFICITY
    judged_unsafe = prevalence * SENSITIVITY + (1 - prevalence) * (1 - SPECIFICITY)
    chance = prevalence * judged_unsafe + (1 - prevalence) * (1 - judged_unsafe)
    mean_marginal = (prevalence + judged_unsafe) / 2
    scott_chance = mean_marginal**2 + (1 - mean_marginal) ** 2
    return {"accuracy": accuracy, "fpr": 1 - SPECIFICITY, "fnr": 1 - SENSITIVITY,
            "cohen_kappa": (accuracy - chance) / (1 - chance), "krippendorff_alpha": (accuracy - scott_chance) / (1 - scott_chance)}


def simulate(rng: np.random.Generator, n: int, clusters: int, prevalence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(human label, judge verdict, cluster) of one study."""
    scale = 1 / ICC - 1
    cluster_prevalence = rng.beta(prevalence * scale, (1 - prevalence) * scale, size=clusters)
    cluster = np.arange(n) % clusters
    human = (rng.random(n) < cluster_prevalence[cluster]).astype(float)
    correct = rng.random(n) < np.where(human == 1, SENSITIVITY, SPECIFICITY)
    return human, np.where(correct, human, 1 - human), cluster


def study_intervals(human: np.ndarray, judge: np.ndarray, cluster: np.ndarray, settings: StatsSettings,
                    rng: np.random.Generator, *, rates_as_bootstrap: bool) -> dict:
    """The intervals judgekit gives this study: accuracy/FPR/FNR, kappa and alpha of the judge against the humans."""
    confusion = {k: CONFUSION[k] for k in ("accuracy", "fpr", "fnr")}
    if rates_as_bootstrap:
        confusion = {k: replace(v, rate=None) for k, v in confusion.items()}
    out = block_intervals(confusion, cluster_sums(confusion_item_sums(human, judge), cluster), settings, rng)
    pair = pair_sums(judge, human)
    out |= block_intervals({"cohen_kappa": KAPPA}, cluster_sums(pair, cluster), settings, rng)
    kripp = ag.krippendorff_item_sums(ag.category_counts(np.column_stack([judge, human]), BINARY))
    out |= block_intervals({"krippendorff_alpha": ALPHA}, cluster_sums(np.hstack([kripp, pair]), cluster), settings, rng)
    return out


@dataclass
class Cell:
    method: str
    statistic: str
    n: int
    clusters: int
    prevalence: float
    covered: int = 0
    studies: int = 0
    unwarned: int = 0
    covered_unwarned: int = 0

    def row(self) -> str:
        def share(k: int, m: int) -> str:
            if m == 0:
                return "—"
            c = k / m
            return f"{c:.3f} ± {np.sqrt(c * (1 - c) / m):.3f}"

        warned = 1 - self.unwarned / self.studies
        return (f"| {self.method} | {self.statistic} | {self.n} | {self.clusters} | {self.prevalence:.0%} | "
                f"{share(self.covered, self.studies)} | {share(self.covered_unwarned, self.unwarned)} | {warned:.2f} |")


def run(replicates: int, n_boot: int, seed: int = 0, sizes=SIZES, prevalences=PREVALENCES, methods=("new", "old")) -> list[Cell]:
    settings = StatsSettings(n_boot=n_boot)
    cells = []
    for (n, clusters), prevalence in itertools.product(sizes, prevalences):
        target = truth(prevalence)
        by_method = {m: {s: Cell(m, s, n, clusters, prevalence) for s in STATISTICS} for m in methods}
        rng = np.random.default_rng([seed, n, clusters, int(prevalence * 100)])
        for _ in range(replicates):
            human, judge, cluster = simulate(rng, n, clusters, prevalence)
            for method in methods:
                intervals = study_intervals(human, judge, cluster, settings, rng, rates_as_bootstrap=method == "old")
                for name, cell in by_method[method].items():
                    interval = intervals[name]
                    hit = bool(interval.low <= target[name] <= interval.high)
                    cell.studies += 1
                    cell.covered += hit
                    if not interval.warning:
                        cell.unwarned += 1
                        cell.covered_unwarned += hit
        cells += [c for m in methods for c in by_method[m].values()]
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=600)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this Markdown file")
    args = parser.parse_args()
    started = time.perf_counter()
    cells = run(args.replicates, args.n_boot)
    lines = [
        f"Coverage of nominal 95% intervals, R = {args.replicates} simulated studies per cell, n_boot = {args.n_boot} "
        f"(± Monte Carlo standard error). Thresholds: warn below {StatsSettings().min_clusters} clusters or "
        f"{StatsSettings().min_class_items} items of the rarer reference class.",
        "",
        "| method | statistic | n | clusters | prevalence | coverage (all) | coverage (no warning) | share warned |",
        "|---|---|---|---|---|---|---|---|",
        *(c.row() for c in sorted(cells, key=lambda c: (c.method, c.statistic, c.n, c.clusters, c.prevalence))),
        "",
        f"{time.perf_counter() - started:.0f} s on {platform.processor() or platform.machine()}, Python {platform.python_version()}",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
