"""Wall and CPU time of everyday CLI commands, with the machine's load while they ran.

    python benchmarks/cli.py [--repeats 3] [--skip-heavy] [--json FILE]

Each command runs as a user runs it (a fresh ``python -m judgekit.cli`` process):

- a usage error (``plan-labels`` without its required arguments);
- an input error found from the study (``plan-labels`` without ``--judge`` on the five-judge demo study);
- ``report`` on the demo study (statistics with 1,000 bootstrap resamples, figures, HTML);
- ``demo`` (copy the demo study, judge, flag, stats, figures, report).

CPU time is the child process's user + system time (``resource.getrusage``); wall time is what the user
waits. On a shared machine the two differ by the load: the 1-minute load average before each command is
printed with it (load below the number of cores: idle; above: loaded, wall times are then not the tool's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "data" / "demo"


def run(args: list[str], expect: int) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "judgekit.cli", *args], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != expect:
        raise SystemExit(f"{args}: exit {result.returncode}, expected {expect}\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "load_1min": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each light command (heavy ones: 1)")
    parser.add_argument("--skip-heavy", action="store_true", help="only the two error paths")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("usage error: plan-labels without arguments", ["plan-labels"], 2, args.repeats),
            ("input error: plan-labels without --judge, 5-judge study",
             ["plan-labels", str(DEMO), "--target-halfwidth", "0.05", "--out", f"{tmp}/requests.csv"], 2, args.repeats),
        ]
        if not args.skip_heavy:
            cases += [("report on the demo study", ["report", str(DEMO), "--out", f"{tmp}/report"], 0, 1),
                      ("demo (judge, flag, stats, figures, report)", ["demo", "--out", f"{tmp}/demo", "--no-progress"], 0, 1)]
        rows = []
        print(f"{os.cpu_count()} cores, python {sys.version.split()[0]}")
        print(f"{'command':<58}{'wall s':>8}{'CPU s':>8}{'load':>7}")
        for name, argv, expect, repeats in cases:
            runs = [run(argv, expect) for _ in range(repeats)]
            row = {"command": name, "argv": argv[:1], "runs": runs,
                   "wall_s": statistics.median(r["wall_s"] for r in runs),
                   "cpu_s": statistics.median(r["cpu_s"] for r in runs),
                   "load_1min": statistics.median(r["load_1min"] for r in runs)}
            rows.append(row)
            print(f"{name:<58}{row['wall_s']:>8.2f}{row['cpu_s']:>8.2f}{row['load_1min']:>7.1f}")
    if args.json:
        args.json.write_text(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
