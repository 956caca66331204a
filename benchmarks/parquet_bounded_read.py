"""Cost of the bounded parquet read (issue #35) against pyarrow's plain read, side by side, on a 1M-row table
with four text columns (two repeated, two unique), as judgments tables have.

    PYTHONPATH=$PWD python benchmarks/parquet_bounded_read.py [--rows 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from judgekit.store.io import read_parquet_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    table = pa.table({"item_id": [f"item-{k}" for k in range(n)],
                      "judge_id": np.array(["keyword-gcg-13", "llama-guard"])[rng.integers(0, 2, n)],
                      "label": np.array(["safe", "unsafe"])[rng.integers(0, 2, n)],
                      "raw_output": [f"output {k} text" for k in range(n)]})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "judgments.parquet"
        pq.write_table(table, path)
        readers = {"pyarrow read_table (before)": lambda: pq.read_table(path),
                   "read_parquet_table (bounded)": lambda: read_parquet_table(path)}
        times: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(args.repeats):  # interleaved, so that a busy moment of the machine hits both
            for name, read in readers.items():
                start = time.perf_counter()
                read()
                times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(f"{name:<30} median {np.median(values):.3f} s  (runs: {', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
