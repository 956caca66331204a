"""Throughput of the heuristic incoherence detectors on ~300-token responses, one core.

    OPENBLAS_NUM_THREADS=1 python benchmarks/incoherence.py [--n 20000]

Compared side by side in one run: judgekit's heuristic detectors (all six, as `judgekit flag`
runs them, language ID off) against the previous per-response implementation shape — the
same detectors called one response at a time through `heuristic_findings`, which rebuilds the
settings and context per call. Mix: 70% coherent prose, 10% loops, 10% salad, 10% shuffles.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from judgekit.incoherence import detect, heuristic_findings

SENTENCES = [
    "Keep cleaning products in their original containers with the labels intact.",
    "Store them on a high shelf or in a locked cabinet away from food and children.",
    "Never mix bleach with ammonia or acids because the fumes are toxic.",
    "If something spills, open a window and wipe it up while wearing gloves.",
    "Check the expiry dates once a year and dispose of old products safely.",
    "Ask your local pharmacy about take-back programmes for expired medicine.",
]


def responses(n: int, rng: np.random.Generator) -> pd.DataFrame:
    texts = []
    for k in range(n):
        words = " ".join(SENTENCES[int(i)] for i in rng.integers(0, len(SENTENCES), 22)).split()[:300]
        kind = k % 10
        if kind == 7:
            words = words[:150] + (words[10:18] * 30)[:150]
        elif kind == 8:
            words = [w[: int(rng.integers(2, 6))] if rng.random() < 0.5 else w for w in words]
        elif kind == 9:
            words = rng.permutation(words).tolist()
        texts.append(" ".join(words))
    return pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "prompt": ["How do I store cleaning products?"] * n, "response": texts})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    frame = responses(args.n, np.random.default_rng(0))
    tokens = frame["response"].str.split().str.len().mean()
    detect(frame.head(50), language=False)  # warm the word list and regexes
    started = time.perf_counter()
    flags = detect(frame, language=False)
    table_s = time.perf_counter() - started
    started = time.perf_counter()
    for text in frame["response"]:
        heuristic_findings(text)
    per_call_s = time.perf_counter() - started
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{args.n} responses, {tokens:.0f} whitespace tokens on average, {len(flags)} flag rows")
    print(f"  judgekit detect() on the table     {args.n / table_s:8.0f} responses/s  ({table_s:.2f} s)")
    print(f"  heuristic_findings() per response  {args.n / per_call_s:8.0f} responses/s  ({per_call_s:.2f} s)")


if __name__ == "__main__":
    main()
