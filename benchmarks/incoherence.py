"""Throughput of the heuristic incoherence detectors on ~300-token responses, one core.

    OPENBLAS_NUM_THREADS=1 taskset -c 0 python benchmarks/incoherence.py [--n 10000] [--repeats 5]

Compared side by side in one run, each timed ``--repeats`` times in interleaved order (the
median and the best are printed; shared machines are noisy):

- ``detect()`` end to end on the table (all six heuristic detectors, language ID off, as
  ``judgekit flag --no-language`` runs them), including building the flags table;
- the detectors alone at batch sizes 2048 (the default), 256, 16 and 1 — batch size 1 is
  what one response at a time costs, the shape of the earlier per-response implementation.

Mix: 50% coherent prose, 20% the same as markdown lists (one sentence per line), 10% loops,
10% sub-word salad, 10% shuffles. The default set includes ``word_sequence`` (bigram model).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from judgekit.flags.incoherence import DEFAULT_THRESHOLDS, detect, heuristic_columns

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
        if kind in (5, 6):
            words = "\n".join(f"{i + 1}. {SENTENCES[int(j)]}" for i, j in enumerate(rng.integers(0, len(SENTENCES), 22))).split(" ")[:300]
        elif kind == 7:
            words = words[:150] + (words[10:18] * 30)[:150]
        elif kind == 8:
            words = [w[: int(rng.integers(2, 6))] if rng.random() < 0.5 else w for w in words]
        elif kind == 9:
            words = rng.permutation(words).tolist()
        texts.append(" ".join(words))
    return pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "prompt": ["How do I store cleaning products?"] * n, "response": texts})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    frame = responses(args.n, np.random.default_rng(0))
    texts = frame["response"].tolist()
    finish = [None] * len(texts)
    tokens = frame["response"].str.split().str.len().mean()
    detect(frame.head(50), language=False)  # warm the word list and the token vocabulary
    methods: dict[str, Callable[[], object]] = {"detect() on the table": lambda: detect(frame, language=False)}
    for size in (2048, 256, 16, 1):
        methods[f"detectors, batches of {size}"] = lambda size=size: heuristic_columns(texts, finish, DEFAULT_THRESHOLDS, batch_size=size)
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, run in methods.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, numpy {np.__version__}")
    print(f"{args.n} responses, {tokens:.0f} whitespace tokens on average, {args.repeats} interleaved repeats")
    print(f"  {'':32s} {'median /s':>10s} {'best /s':>10s}")
    for name, times in seconds.items():
        print(f"  {name:32s} {args.n / statistics.median(times):10.0f} {args.n / min(times):10.0f}")


if __name__ == "__main__":
    main()
