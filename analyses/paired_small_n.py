"""Coverage of the paired interval of 0/1 outcomes (Newcombe 1998, method 10) at n = 5 to 20 prompts, and beside the
percentile bootstrap it replaced at n = 30 to 150.

Two models answer the same n prompts once; a prompt's pair of verdicts is drawn from a paired 2x2 table of cell
probabilities (both unsafe, treated only, control only, neither). The true effect is
P(treated only) - P(control only).

* **Exact coverage**: every possible table of n pairs is enumerated with its multinomial probability (no Monte
  Carlo error), for the interval as ``stats`` computes it (``paired_mean_difference`` on the expanded data).
* **Monte Carlo coverage** of the same, 2000 simulated studies per cell (Monte Carlo standard error printed), as a
  check of the enumeration.
* **Larger n** (30, 50, 80, 150): Monte Carlo coverage, the same simulated tables for both, of the interval ``stats``
  reports (Newcombe at every n for independent prompts) and of the percentile bootstrap of the prompt differences
  (1000 resamples) that ``stats`` reported there before.

Run: ``python analyses/paired_small_n.py`` -> ``analyses/results/paired_small_n/coverage.md``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import multinomial

from judgekit.stats.paired import paired_mean_difference

SIZES = (5, 8, 10, 15, 20)
LARGER_SIZES = (30, 50, 80, 150)
N_BOOT = 1000
# (both, treated only, control only, neither): null and non-null effects, rare and common events, correlated pairs
SCENARIOS = {
    "null, rare (0.05 vs 0.05, independent)": (0.0025, 0.0475, 0.0475, 0.9025),
    "null, common (0.5 vs 0.5, correlated)": (0.40, 0.10, 0.10, 0.40),
    "null, no discordance likely (0.3 vs 0.3, phi 0.9)": (0.27, 0.03, 0.03, 0.67),
    "+0.2 (0.3 vs 0.1, independent)": (0.03, 0.27, 0.07, 0.63),
    "+0.25 (0.5 vs 0.25, correlated)": (0.25, 0.25, 0.0, 0.5),
    "-0.3 (0.2 vs 0.5)": (0.15, 0.05, 0.35, 0.45),
    "+0.6 (0.7 vs 0.1)": (0.08, 0.62, 0.02, 0.28),
    # judgekit.testing.active_study's prompts (label_designs.py), its cells by numerical integration
    "+0.057, the label-design study (0.555 vs 0.499)": (0.4524, 0.1027, 0.0461, 0.3988),
}
REPLICATES = 2000
LEVEL = 0.95


def _interval(table: tuple[int, int, int, int]) -> tuple[float, float, float]:
    """The interval ``stats`` reports for a study whose prompts fall into ``table``."""
    both, treated_only, control_only, neither = table
    treated = [1.0] * both + [1.0] * treated_only + [0.0] * control_only + [0.0] * neither
    control = [1.0] * both + [0.0] * treated_only + [1.0] * control_only + [0.0] * neither
    n = len(treated)
    values = np.array(treated + control)
    arm = np.array([True] * n + [False] * n)
    result = paired_mean_difference(values, arm, np.tile(np.arange(n), 2), level=LEVEL, rng=0)
    return result.estimate, result.ci_low, result.ci_high


def exact_coverage(n: int, cells: tuple[float, ...], cache: dict) -> tuple[float, float]:
    """(coverage, mean width) over every table of n pairs, weighted by its probability."""
    truth = cells[1] - cells[2]
    coverage = width = 0.0
    for both in range(n + 1):
        for treated_only in range(n + 1 - both):
            for control_only in range(n + 1 - both - treated_only):
                table = (both, treated_only, control_only, n - both - treated_only - control_only)
                if table not in cache:
                    cache[table] = _interval(table)
                _, low, high = cache[table]
                weight = multinomial.pmf(table, n, cells)
                coverage += weight * (low <= truth <= high)
                width += weight * (high - low)
    return coverage, width


def monte_carlo_coverage(n: int, cells: tuple[float, ...], cache: dict, rng: np.random.Generator) -> float:
    truth = cells[1] - cells[2]
    tables = rng.multinomial(n, cells, size=REPLICATES)
    hits = 0
    for table in map(tuple, tables.tolist()):
        if table not in cache:
            cache[table] = _interval(table)
        _, low, high = cache[table]
        hits += low <= truth <= high
    return hits / REPLICATES


def _bootstrap_interval(table: tuple[int, int, int, int], rng: np.random.Generator) -> tuple[float, float]:
    """The percentile bootstrap of the mean prompt difference (``N_BOOT`` resamples of the prompts)."""
    both, treated_only, control_only, neither = table
    differences = np.array([0.0] * both + [1.0] * treated_only + [-1.0] * control_only + [0.0] * neither)
    means = differences[rng.integers(0, len(differences), size=(N_BOOT, len(differences)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    return float(low), float(high)


def larger_n_rows(cache: dict, rng: np.random.Generator) -> list[str]:
    """Monte Carlo coverage at ``LARGER_SIZES`` of the interval ``stats`` reports and of the bootstrap, same tables."""
    rows, gaps = [], []
    for name, cells in SCENARIOS.items():
        truth = cells[1] - cells[2]
        for n in LARGER_SIZES:
            tables = [tuple(t) for t in rng.multinomial(n, cells, size=REPLICATES).tolist()]
            now = np.mean([_cached(cache, t)[1] <= truth <= _cached(cache, t)[2] for t in tables])
            boot = np.mean([low <= truth <= high for low, high in (_bootstrap_interval(t, rng) for t in tables)])
            gaps.append(now - boot)
            se = [np.sqrt(p * (1 - p) / REPLICATES) for p in (now, boot)]
            rows.append(f"| {name} {cells} | {n} | {now:.4f} [{se[0]:.4f}] | {boot:.4f} [{se[1]:.4f}] |")
    return rows + ["", f"Newcombe minus bootstrap coverage over the {len(gaps)} cells: mean {np.mean(gaps):+.4f}, "
                   f"range {np.min(gaps):+.4f} to {np.max(gaps):+.4f}."]


def _cached(cache: dict, table: tuple[int, int, int, int]) -> tuple[float, float, float]:
    if table not in cache:
        cache[table] = _interval(table)
    return cache[table]


def main(out: Path) -> None:
    started = time.time()
    rng = np.random.default_rng(20260)
    cache: dict = {}
    lines = ["# Coverage of the small-n paired interval (Newcombe 1998, method 10)", "",
             f"Nominal level {LEVEL}; `paired_mean_difference` on n prompts answered once by each of two models. "
             "Exact: every table of n pairs weighted by its multinomial probability. Monte Carlo: "
             f"{REPLICATES} simulated studies per cell (standard error in brackets).", "",
             "| scenario (cells both / treated only / control only / neither) | n | exact coverage | mean width | "
             "Monte Carlo coverage [MC s.e.] |", "|---|---|---|---|---|"]
    exact_all = []
    for name, cells in SCENARIOS.items():
        for n in SIZES:
            coverage, width = exact_coverage(n, cells, cache)
            simulated = monte_carlo_coverage(n, cells, cache, rng)
            se = np.sqrt(simulated * (1 - simulated) / REPLICATES)
            exact_all.append(coverage)
            lines.append(f"| {name} {cells} | {n} | {coverage:.4f} | {width:.3f} | {simulated:.4f} [{se:.4f}] |")
    lines += ["", f"Exact coverage over all {len(exact_all)} cells: mean {np.mean(exact_all):.4f}, minimum "
              f"{np.min(exact_all):.4f}, maximum {np.max(exact_all):.4f}.", "",
              "## Larger n: the interval `stats` reports against the percentile bootstrap it replaced", "",
              f"{REPLICATES} simulated studies per cell, both intervals on the same tables (bootstrap: {N_BOOT} "
              "resamples of the prompts); Monte Carlo standard error in brackets.", "",
              "| scenario | n | Newcombe (now) | percentile bootstrap (before) |", "|---|---|---|---|",
              *larger_n_rows(cache, rng), "",
              f"Ran in {time.time() - started:.0f} s on {sys.platform} (2 shared CPU cores), numpy {np.__version__}."]
    out.mkdir(parents=True, exist_ok=True)
    (out / "coverage.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).parent / "results" / "paired_small_n")
