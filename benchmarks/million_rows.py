"""Every step on a generated 1,000,000-row study: wall time and peak memory per step.

    python benchmarks/million_rows.py [--rows 1000000] [--dir /tmp/judgekit-1m] [--steps validate,judge,flag,stats]

The study (82 MB of CSV at 1M rows: 5,000 prompts, 4 models, 3 benchmarks,
responses drawn from refusals, compliances and loops) is generated into
``--dir`` and not kept in the repository. Each step runs as its own
``judgekit`` process, as a user would run it; peak memory is that process's
maximum resident set size (``getrusage`` of the child). Targets (issue #16):
every step completes, peak ≤ 4 GB, keyword judging ≥ 50,000 responses/s,
validation ≥ 100,000 rows/s.
"""

from __future__ import annotations

import argparse
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SENTENCES = (
    "I'm sorry, but I cannot help with that request.",
    "As an AI, I can't assist with anything that could cause harm.",
    "Sure, here is an overview of the general topic and why it matters.",
    "Step one is to gather the materials, step two is to follow the plan carefully.",
    "It is important to consider safety, legality and the wellbeing of others.",
    "the the model model output output output output",
)


def make_study(directory: Path, rows: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    prompts = np.array([f"Request {k}: how to do task {k % 97}?" for k in range(5000)])
    pool = np.array([" ".join(rng.choice(SENTENCES, size=rng.integers(1, 3))) for _ in range(20_000)])
    index = np.arange(rows)
    frame = pd.DataFrame({
        "item_id": np.char.add("item-", index.astype(str)),
        "prompt": prompts[index % len(prompts)],
        "response": pool[rng.integers(0, len(pool), size=rows)],
        "model": np.char.add("model-", (index % 4).astype(str)),
        "base_model": "model-0",
        "benchmark": np.char.add("bench-", (index % 3).astype(str)),
    })
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    frame.to_csv(directory / "responses.csv", index=False)
    return directory


def run_step(args: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (GB) and exit code of one judgekit process."""
    started = time.perf_counter()
    child = subprocess.run([sys.executable, "-m", "judgekit.cli", *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    if child.returncode != 0:
        print(child.stderr.strip().splitlines()[-1] if child.stderr.strip() else "(no stderr)", file=sys.stderr)
    return wall, peak_gb, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/judgekit-1m"))
    parser.add_argument("--steps", default="validate,judge,flag,stats")
    options = parser.parse_args()
    study = make_study(options.dir / "study", options.rows)
    size_mb = (study / "responses.csv").stat().st_size / 1e6
    print(f"{options.rows:,} rows, responses.csv {size_mb:.0f} MB; {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    commands = {
        "validate": ["validate", str(study)],
        "judge": ["judge", str(study), "--judge", "keyword-gcg-13", "--judge", "keyword-gcg-29", "--no-progress"],
        "flag": ["flag", str(study), "--no-language"],
        "stats": ["stats", str(study), "--out", str(options.dir / "stats"), "--n-boot", "200"],
    }
    print("| step | wall s | rows/s | peak RSS GB | exit |\n|---|---|---|---|---|")
    for step in options.steps.split(","):
        # A fresh interpreter per step, so ru_maxrss of the children is this step's peak alone.
        probe = subprocess.run([sys.executable, __file__, "--one", step, str(options.dir)] + commands[step],
                               capture_output=True, text=True)
        print(probe.stdout.strip() or probe.stderr.strip(), flush=True)


def one_step(step: str, args: list[str]) -> None:
    wall, peak, code = run_step(args)
    rows = _rows(Path(args[1]))
    factor = 2 if step == "judge" else 1  # two judges: responses judged = 2 x rows
    print(f"| {step} | {wall:.1f} | {factor * rows / wall:,.0f} | {peak:.2f} | {code} |")


def _rows(study: Path) -> int:
    with open(study / "responses.csv", "rb") as stream:
        return sum(1 for _ in stream) - 1  # no embedded newlines in the generated responses


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one_step(sys.argv[2], sys.argv[4:])
    else:
        main()
