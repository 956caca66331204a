"""Ten judges committed one after another: write time per commit, judgments folder vs one judgments file.

    python benchmarks/judgments_commits.py [--items 200000] [--judges 10] [--dir /tmp/judgekit-commits]

Each judge's rows (one per item) are committed as ``judgekit judge`` commits them, under the study lock:

* **folder** (this version, :func:`judgekit.engine.judge_runner.commit_under_study_lock`): the judge's own rows are
  read, merged and written to its file in ``judgments/``; no other judge's rows are touched.
* **one file** (before issue #31, re-typed here from that version's ``commit_under_study_lock``): the whole
  ``judgments.parquet`` is re-read, the judge's rows merged in, and the whole table validated and rewritten.

Both sides run in this one process, interleaved judge by judge, on two copies of one study. The script prints
the CPU time of each commit (``time.process_time``: on a shared machine wall time measures the other jobs), the
running total and total / J: constant for the folder (linear total), growing with J for the one file (quadratic
total); the wall-clock totals follow the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.engine.judge_runner import JudgeRows, commit_under_study_lock, merge_judgments
from judgekit.store.io import conform_frame, read_table, write_table
from judgekit.store.locking import study_lock
from judgekit.store.schema import JUDGMENTS, RESPONSES
from judgekit.store.study import load_study


def make_study(directory: Path, items: int) -> Path:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    ids = np.char.add("item-", np.arange(items).astype(str))
    write_table(pd.DataFrame({"item_id": ids, "prompt": "p", "response": "r"}), directory / "responses.parquet",
                RESPONSES)
    return directory


def judge_rows(items: int, judge: int, rng: np.random.Generator) -> pd.DataFrame:
    p_unsafe = rng.random(items)
    return pd.DataFrame({
        "item_id": np.char.add("item-", np.arange(items).astype(str)).astype(object),
        "judge_id": f"judge-{judge}", "label": np.where(p_unsafe > 0.5, "unsafe", "safe").astype(object),
        "p_unsafe": p_unsafe, "coverage": rng.random(items), "parse_status": "ok",
        "raw_output": np.where(p_unsafe > 0.5, "unsafe", "safe").astype(object), "judge_spec_hash": f"spec-{judge}",
        "latency_s": rng.random(items) / 100, "n_input_tokens": rng.integers(50, 500, items), "n_output_tokens": 1,
        "detail": "",
    })


def commit_one_file(study_dir: Path, judged: JudgeRows) -> None:
    """The commit of the version before the judgments folder: re-read, merge and rewrite the whole table."""
    with study_lock(study_dir, step="judge"):
        path = study_dir / "judgments.parquet"
        current = read_table(path, JUDGMENTS) if path.exists() else None
        merged = merge_judgments(current, judged.rows, judge_id=judged.judge_id, spec_hash=judged.spec_hash,
                                 replace=False)
        write_table(conform_frame(merged, JUDGMENTS, path), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--judges", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/judgekit-commits"))
    options = parser.parse_args()
    folder_study = load_study(make_study(options.dir / "folder", options.items))
    file_study = make_study(options.dir / "one-file", options.items)
    rng = np.random.default_rng(0)
    print(f"{options.items:,} items, {options.judges} judges; {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, pandas {pd.__version__}")
    print("CPU seconds:\n\n| J | folder: commit | folder: total | folder: total / J | one file: commit | one file: total "
          "| one file: total / J |\n|---|---|---|---|---|---|---|")
    totals = {"folder": 0.0, "one file": 0.0}
    walls = {"folder": 0.0, "one file": 0.0}
    for judge in range(1, options.judges + 1):
        judged = JudgeRows(f"judge-{judge}", f"spec-{judge}", judge_rows(options.items, judge, rng))
        seconds = {}
        for side in ("folder", "one file"):
            started, wall_started = time.process_time(), time.perf_counter()
            if side == "folder":
                commit_under_study_lock(folder_study, [judged], replace=False)
            else:
                commit_one_file(file_study, judged)
            seconds[side] = time.process_time() - started
            totals[side] += seconds[side]
            walls[side] += time.perf_counter() - wall_started
        print(f"| {judge} | {seconds['folder']:.2f} | {totals['folder']:.2f} | {totals['folder'] / judge:.2f} | "
              f"{seconds['one file']:.2f} | {totals['one file']:.2f} | {totals['one file'] / judge:.2f} |", flush=True)
    print(f"\nwall-clock totals: folder {walls['folder']:.1f} s, one file {walls['one file']:.1f} s")
    same = (pd.read_parquet(options.dir / "folder" / "judgments").sort_values(["judge_id", "item_id"])
            .reset_index(drop=True)[["item_id", "judge_id", "label", "p_unsafe"]])
    other = (pd.read_parquet(options.dir / "one-file" / "judgments.parquet").sort_values(["judge_id", "item_id"])
             .reset_index(drop=True)[["item_id", "judge_id", "label", "p_unsafe"]])
    print(f"\nboth layouts hold the same {len(same):,} rows: {bool((same == other).all().all())}")


if __name__ == "__main__":
    main()
