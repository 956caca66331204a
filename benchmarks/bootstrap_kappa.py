"""Cluster-bootstrap CI of Cohen's kappa: judgekit's summed-statistics bootstrap vs
the common loop that resamples items and calls sklearn once per resample.

    python benchmarks/bootstrap_kappa.py [--items 20000] [--clusters 500] [--n-boot 1000]

Both sides draw the same cluster multiplicities, so their intervals must agree
to floating-point precision; the script checks that before printing timings.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from sklearn.metrics import cohen_kappa_score

from judgekit.stats.agreement import cohen_kappa_from_sums, two_rater_item_sums
from judgekit.stats.resampling import cluster_sums


def loop_sklearn(judge, human, clusters, weights):
    names = np.unique(clusters)  # the same cluster order cluster_sums uses
    members = [np.flatnonzero(clusters == name) for name in names]
    out = np.empty(len(weights))
    for b, counts in enumerate(weights):
        idx = np.concatenate([np.repeat(members[c], k) for c, k in enumerate(counts) if k])
        out[b] = cohen_kappa_score(judge[idx], human[idx])
    return out


def vectorised(judge, human, clusters, weights):
    sums = cluster_sums(two_rater_item_sums(judge, human, np.array([0.0, 1.0])), clusters)
    return cohen_kappa_from_sums(weights @ sums)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    clusters = np.array([f"behavior-{k:06d}" for k in rng.integers(0, args.clusters, args.items)])
    human = (rng.random(args.items) < 0.3).astype(float)
    judge = np.where(rng.random(args.items) < 0.85, human, 1 - human)
    weights = rng.multinomial(args.clusters, np.full(args.clusters, 1 / args.clusters), size=args.n_boot)

    timings, results = {}, {}
    for name, fn in (("sklearn loop", loop_sklearn), ("judgekit vectorised", vectorised)):
        started = time.perf_counter()
        results[name] = fn(judge, human, clusters, weights)
        timings[name] = time.perf_counter() - started
    assert np.allclose(results["sklearn loop"], results["judgekit vectorised"], atol=1e-12)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{args.items} items, {args.clusters} clusters, {args.n_boot} resamples; replicates agree to 1e-12")
    for name, seconds in timings.items():
        print(f"  {name:<22} {seconds:8.3f} s")
    print(f"  speed-up               {timings['sklearn loop'] / timings['judgekit vectorised']:8.0f}x")


if __name__ == "__main__":
    main()
