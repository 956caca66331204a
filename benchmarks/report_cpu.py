"""CPU time of `judgekit report` on a study with flags, for two checkouts side by side (issue 33).

Usage:
    python benchmarks/report_cpu.py STUDY --checkout OLD=/path/to/old --checkout NEW=/path/to/new [--n-boot 50]

Each checkout's CLI runs in a child process (PYTHONPATH = the checkout) writing to a fresh folder; the child's
user + system CPU seconds (resource.getrusage of children) and wall seconds are printed, with the files written.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(checkout: Path, study: Path, n_boot: int) -> tuple[float, float, int]:
    out = Path(tempfile.mkdtemp(prefix="report-cpu-")) / "out"
    env = {**os.environ, "PYTHONPATH": str(checkout), "MPLBACKEND": "Agg"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "judgekit.cli", "report", str(study), "--out", str(out), "--n-boot", str(n_boot)],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    files = sum(1 for _ in out.rglob("*") if _.is_file())
    shutil.rmtree(out.parent)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall, files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("study", type=Path)
    parser.add_argument("--checkout", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--n-boot", type=int, default=50)
    args = parser.parse_args()
    for entry in args.checkout:
        name, path = entry.split("=", 1)
        cpu, wall, files = measure(Path(path), args.study, args.n_boot)
        print(f"{name}: cpu {cpu:.1f} s, wall {wall:.1f} s, {files} files written", flush=True)


if __name__ == "__main__":
    main()
