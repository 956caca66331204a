"""Variance components' cluster bootstrap: refitting each resample's rows (the loop) vs the vectorised refit.

    python benchmarks/variance_bootstrap.py [--items 100000] [--loop-resamples 3] [--replicates 300]

1. Speed, on the variance block's frame of the synthetic study of ``benchmarks/stats.py`` (``--items``
   responses, 5 judges: one row per item x judge; clusters = behaviours, 10 items each): the loop kept as
   the reference in ``tests/test_variance_bootstrap.py`` timed on ``--loop-resamples`` resamples, its time
   per resample multiplied out to 200 (the default ``variance_resamples``), beside the vectorised
   ``bootstrap_variance_components`` on all 200. The two must agree to 1e-12 on the resamples both ran.
2. Coverage with known truth: the crossed Gaussian design of ``analyses/labels_coverage.py`` (5 judges x 60
   prompts, 2 verdicts per cell; components prompt 1.0, judge x prompt 0.25, residual 1.0), ``--replicates``
   studies, 150 resamples each, 95% percentile intervals; Monte Carlo standard error sqrt(p(1-p)/R). The loop
   is run on the first 20 studies too: equal intervals there mean equal coverage, not just similar.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.stats.variance import bootstrap_variance_components

ROOT = Path(__file__).resolve().parent.parent


def module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def variance_frame_of_study(n_items: int) -> pd.DataFrame:
    """The long frame the variance block fits (as judgekit.analysis.blocks.variance builds it)."""
    from judgekit.analysis.inputs import study_arrays

    stats_bench = module(ROOT / "benchmarks" / "stats.py", "stats_bench")
    data = study_arrays(stats_bench.synthetic(n_items, n_judges=5, annotated_share=0.1), "include")
    responses = data.responses.assign(finetune_goal=data.responses["finetune_goal"].fillna("base"))
    frame = data.judges.reset_index(drop=True).assign(
        cluster=data.clusters, **{c: responses[c] for c in ("benchmark", "finetune_goal", "model", "prompt")})
    return frame.melt(id_vars=["cluster", "benchmark", "finetune_goal", "model", "prompt"], var_name="judge_id",
                      value_name="unsafe")


def speed(reference, n_items: int, loop_resamples: int, n_resamples: int = 200) -> None:
    frame = variance_frame_of_study(n_items)
    started, cpu = time.perf_counter(), cpu_seconds()
    fit = bootstrap_variance_components(frame, cluster="cluster", n_resamples=n_resamples, rng=0)
    fast_wall, fast_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    started, cpu = time.perf_counter(), cpu_seconds()
    loop = reference.reference_replicates(frame, cluster="cluster", n_resamples=loop_resamples, seed=0)
    loop_wall, loop_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    difference = np.nanmax(np.abs(loop - fit.replicates[:loop_resamples]))
    assert difference < 1e-12 and np.array_equal(np.isnan(loop), np.isnan(fit.replicates[:loop_resamples]))
    scale = n_resamples / loop_resamples
    print(f"variance components, {len(frame):,} verdicts ({n_items:,} items x 5 judges), {fit.n_clusters:,} clusters, "
          f"{n_resamples} resamples; components {', '.join(fit.names)}; replicates agree to {difference:.1e} "
          f"on the {loop_resamples} resamples the loop ran")
    print(f"  loop (refit each resample)   {loop_cpu / loop_resamples:7.2f} s CPU per resample -> {loop_cpu * scale:7.1f} s CPU "
          f"({loop_wall * scale:.1f} s wall), multiplied out from {loop_resamples}")
    print(f"  vectorised (all {n_resamples})        {fast_cpu:7.2f} s CPU ({fast_wall:.1f} s wall, setup included)")
    print(f"  speed-up                     {loop_cpu * scale / fast_cpu:7.0f}x (CPU)")


def coverage(reference, labels_coverage, replicates: int, compared: int = 20) -> None:
    truth = labels_coverage.VC_TRUTH
    hits = {name: [] for name in truth}
    equal = 0
    started = time.perf_counter()
    for r in range(replicates):
        frame = labels_coverage.variance_frame(np.random.default_rng([0, 4, r]))
        fit = bootstrap_variance_components(frame, cluster="cluster", n_resamples=150, rng=[0, 5, r])
        for name, value in truth.items():
            k = fit.names.index(name)
            hits[name].append(fit.low[k] <= value <= fit.high[k])
        if r < compared:
            loop = reference.reference_replicates(frame, cluster="cluster", n_resamples=150, seed=[0, 5, r])
            equal += bool(np.allclose(loop, fit.replicates, rtol=0, atol=1e-12, equal_nan=True))
    print(f"coverage of 95% intervals, {replicates} simulated studies x 150 resamples ({time.perf_counter() - started:.0f} s); "
          f"loop and vectorised replicates equal to 1e-12 in {equal} of {min(compared, replicates)} studies")
    for name, values in hits.items():
        p = float(np.mean(values))
        print(f"  {name:16s} {p:.3f} +- {np.sqrt(p * (1 - p) / len(values)):.3f} (Monte Carlo s.e.)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--loop-resamples", type=int, default=3)
    parser.add_argument("--replicates", type=int, default=300, help="coverage studies (0: skip)")
    args = parser.parse_args()
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, BLAS threads {threads}, python "
          f"{platform.python_version()}, numpy {np.__version__}")
    reference = module(ROOT / "tests" / "test_variance_bootstrap.py", "variance_reference")
    if args.items:
        speed(reference, args.items, args.loop_resamples)
    if args.replicates:
        coverage(reference, module(ROOT / "analyses" / "labels_coverage.py", "labels_coverage"), args.replicates)


if __name__ == "__main__":
    main()
