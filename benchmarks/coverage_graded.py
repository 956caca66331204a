"""Coverage of the graded-agreement intervals (alpha interval/ordinal, weighted kappa, Spearman) with known truth.

    python benchmarks/coverage_graded.py [--replicates 300] [--n-boot 500] [--out analyses/results/coverage_graded.md]

A simulated study has ``clusters`` prompts answered by 3 models (3 items per cluster). Each item has a latent
severity (a prompt effect shared by its cluster, intra-cluster correlation about 0.3, plus an item effect); four
judges score it 0-3 by rounding the latent plus their own bias and noise, clipped; a judge misses a score with
probability 0.02. The truth of each statistic is its value on a population of 400,000 clusters drawn the same way.
Intervals are what ``judgekit stats`` computes (``judgekit.analysis.rows.block_intervals``: cluster bootstrap, BCa);
coverage is the share of studies whose interval holds the truth, with Monte Carlo standard error sqrt(c (1 - c) / R).
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np

from judgekit.analysis.rows import Statistic, block_intervals
from judgekit.analysis.settings import StatsSettings
from judgekit.stats import agreement as ag
from judgekit.stats.resampling import cluster_sums

DOMAIN = np.arange(4.0)
BIASES = np.array([0.0, 0.3, -0.2, 0.5])
NOISES = np.array([0.5, 0.6, 0.8, 0.7])
MODELS = 3
STATISTICS = {
    "krippendorff_alpha_interval": (Statistic(ag.krippendorff_alpha_interval_from_sums), "all"),
    "krippendorff_alpha_ordinal": (Statistic(partial(ag.krippendorff_alpha_from_sums, values=DOMAIN, level="ordinal")), "all"),
    "weighted_kappa_linear": (Statistic(partial(ag.weighted_kappa_from_sums, values=DOMAIN, power=1)), "pair"),
    "weighted_kappa_quadratic": (Statistic(partial(ag.weighted_kappa_from_sums, values=DOMAIN, power=2)), "pair"),
    "spearman_rho": (Statistic(partial(ag.spearman_rho_from_sums, n_first=4, n_second=4)), "pair"),
}


def simulate(rng: np.random.Generator, clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores (items, 4 judges) with NaN for missing, cluster of each item)."""
    prompt = rng.normal(1.2, 0.8, size=clusters)
    latent = np.repeat(prompt, MODELS) + rng.normal(0, 1.2, size=clusters * MODELS)
    raw = latent[:, None] + BIASES[None, :] + rng.normal(0, 1, size=(len(latent), 4)) * NOISES[None, :]
    scores = np.clip(np.round(raw), 0, 3)
    scores[rng.random(scores.shape) < 0.02] = np.nan
    return scores, np.repeat(np.arange(clusters), MODELS)


def item_sums(scores: np.ndarray) -> dict[str, np.ndarray]:
    return {"all-interval": ag.interval_alpha_item_sums(scores),
            "all-ordinal": ag.krippendorff_item_sums(ag.category_counts(scores, DOMAIN)),
            "pair": ag.pair_table_item_sums(scores[:, 0], scores[:, 2], DOMAIN, DOMAIN)}


def _sums_key(name: str) -> str:
    kind = STATISTICS[name][1]
    return "pair" if kind == "pair" else ("all-ordinal" if name.endswith("ordinal") else "all-interval")


def truth(rng: np.random.Generator) -> dict[str, float]:
    scores, _ = simulate(rng, 400_000)
    sums = {k: v.sum(axis=0) for k, v in item_sums(scores).items()}
    return {name: float(statistic.from_sums(sums[_sums_key(name)])) for name, (statistic, _) in STATISTICS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=300)
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("--clusters", type=int, nargs="+", default=[30, 150])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("analyses/results/coverage_graded.md"))
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    true = truth(rng)
    settings = StatsSettings(n_boot=args.n_boot)
    lines = [f"# Coverage of graded-agreement intervals (cluster bootstrap, BCa, {args.n_boot} resamples)", "",
             f"`python benchmarks/coverage_graded.py --replicates {args.replicates} --n-boot {args.n_boot}` "
             f"(seed {args.seed}); {__doc__.split(chr(10) + chr(10))[1].strip()}", "",
             "| statistic | truth | clusters (items) | coverage ± MC s.e. | mean width |", "|---|---|---|---|---|"]
    start = time.time()
    for clusters in args.clusters:
        hits = {name: [] for name in STATISTICS}
        widths = {name: [] for name in STATISTICS}
        for _ in range(args.replicates):
            scores, cluster = simulate(rng, clusters)
            per_item = item_sums(scores)
            for name, (statistic, _) in STATISTICS.items():
                interval = block_intervals({name: statistic}, cluster_sums(per_item[_sums_key(name)], cluster), settings,
                                           rng)[name]
                hits[name].append(interval.low <= true[name] <= interval.high)
                widths[name].append(interval.high - interval.low)
        for name in STATISTICS:
            c = float(np.mean(hits[name]))
            lines.append(f"| {name} | {true[name]:.3f} | {clusters} ({clusters * MODELS}) | "
                         f"{c:.3f} ± {np.sqrt(c * (1 - c) / args.replicates):.3f} | {np.nanmean(widths[name]):.3f} |")
    lines += ["", f"{time.time() - start:.0f} s."]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
