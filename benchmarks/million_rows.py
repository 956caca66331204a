"""Every step on a generated 1,000,000-row study: wall time, CPU time and peak memory per step.

    python benchmarks/million_rows.py [--rows 1000000] [--dir /tmp/judgekit-1m]
        [--steps validate,judge-vs-pandas,judge,flag,stats]

The study (about 240 MB of CSV at 1M rows: 5,000 prompts, 4 models, 3 benchmarks, 1M distinct responses
drawn from refusal openers, compliant sentences and loops filled with random words) is generated into
``--dir`` and not kept in the repository. Each step runs as its own process, as a user would run it;
peak memory is that process's maximum resident set size and CPU its user + system time (``getrusage``
of the child). ``judge-vs-pandas`` runs ``judgekit judge`` with two keyword judges and a 12-line pandas
script doing the same job (:data:`PANDAS_BASELINE`), each on a fresh copy of the study, and checks that
their labels are equal. Targets: every step completes, peak ≤ 4 GB, validation ≥ 100,000 rows/s
(issue #16); keyword judging ≤ 2× the pandas baseline's CPU and ≤ 1.5× its memory (issue #31).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

# Responses are drawn from refusal openers (some carrying a refusal marker, some phrased without one), compliant
# bodies and degenerate loops, filled with words from a vocabulary and numbers, so that (almost) every response is
# distinct, as in a real study; a marker may sit anywhere in the text, as in model outputs.
OPENERS = (
    "I'm sorry, but I cannot help with {w} {w}.", "As an AI, I can't assist with {w} that could cause harm.",
    "I cannot provide instructions for {w} {w}.", "My apologies, {w} is not something I can discuss.",
    "I am really sorry, but {w} {w} would be illegal.", "That request about {w} is unethical.",
    "I'd rather not go into {w} {w}.", "Let me redirect: {w} {w} is a better topic.",
    "Sure, here is an overview of {w} and why {w} matters.", "Here is a plan for {w} in {n} steps.",
    "Great question about {w} {w}!", "Okay.",
)
BODIES = (
    "Step {n} is to gather the {w} and check the {w} carefully.", "It is important to consider {w}, {w} and the "
    "wellbeing of others.", "Many people ask about {w}; the short answer is that {w} depends on {w}.",
    "First, {w} the {w}. Then {w} it {n} times.", "Note that {w} {w} may vary by region ({n} cases reported).",
    "In summary, {w} is not the same as {w}, although I cannot say more about {w}.",
    "the the model model output output {w} {w} {w} {w}",
)
VOCABULARY_SIZE = 4000


def _vocabulary(rng: np.random.Generator) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(["".join(rng.choice(letters, size=rng.integers(3, 10))) for _ in range(VOCABULARY_SIZE)])


def _fill(template: str, words: np.ndarray, numbers: np.ndarray) -> str:
    parts = template.split("{w}")
    filled = "".join(part + (words[k] if k < len(parts) - 1 else "") for k, part in enumerate(parts))
    return filled.replace("{n}", str(numbers[0]))


def draw_responses(rows: int, rng: np.random.Generator) -> list[str]:
    """``rows`` responses of 1 to 6 sentences: an opener, then compliant or degenerate sentences."""
    vocabulary = _vocabulary(rng)
    openers = rng.integers(0, len(OPENERS), size=rows)
    lengths = rng.integers(0, 6, size=rows)
    bodies = rng.integers(0, len(BODIES), size=int(lengths.sum()))
    words = vocabulary[rng.integers(0, VOCABULARY_SIZE, size=(int(lengths.sum()) + rows, 4))]
    numbers = rng.integers(2, 500, size=(int(lengths.sum()) + rows, 1))
    out, sentence = [], rows
    for row in range(rows):
        parts = [_fill(OPENERS[openers[row]], words[row], numbers[row])]
        for _ in range(lengths[row]):
            parts.append(_fill(BODIES[bodies[sentence - rows]], words[sentence], numbers[sentence]))
            sentence += 1
        out.append(" ".join(parts))
    return out


def make_study(directory: Path, rows: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    prompts = np.array([f"Request {k}: how to do task {k % 97}?" for k in range(5000)])
    index = np.arange(rows)
    frame = pd.DataFrame({
        "item_id": np.char.add("item-", index.astype(str)),
        "prompt": prompts[index % len(prompts)],
        "response": draw_responses(rows, rng),
        "model": np.char.add("model-", (index % 4).astype(str)),
        "base_model": "model-0",
        "benchmark": np.char.add("bench-", (index % 3).astype(str)),
    })
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    frame.to_csv(directory / "responses.csv", index=False)
    return directory


# The pandas baseline: the same job (two keyword judges' labels for every response, one long table written as
# parquet) as a user would script it. pandas 3 reads the strings into Arrow, so str.contains runs on RE2.
PANDAS_BASELINE = """
import json, re, sys
import numpy as np, pandas as pd
study, out, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
responses = pd.read_csv(f"{study}/responses.csv")
frames = []
for path in specs:
    spec = json.load(open(path))
    refused = responses["response"].str.contains("|".join(map(re.escape, spec["markers"])), regex=True)
    frames.append(pd.DataFrame({"item_id": responses["item_id"], "judge_id": spec["judge_id"],
                                "label": np.where(refused, "safe", "unsafe"), "parse_status": "ok"}))
pd.concat(frames, ignore_index=True).to_parquet(out)
"""
KEYWORD_JUDGES = ("keyword-gcg-13", "keyword-gcg-29")
PRESETS = Path(__file__).resolve().parent.parent / "judgekit" / "judges" / "presets"


def run_child(command: list[str]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds (user + system), peak RSS (GB) and exit code of one process."""
    started = time.perf_counter()
    child = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        print(child.stderr.strip().splitlines()[-1] if child.stderr.strip() else "(no stderr)", file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024**2, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/judgekit-1m"))
    parser.add_argument("--steps", default="validate,judge-vs-pandas,judge,flag,stats")
    options = parser.parse_args()
    study = make_study(options.dir / "study", options.rows)
    size_mb = (study / "responses.csv").stat().st_size / 1e6
    print(f"{options.rows:,} rows ({pd.read_csv(study / 'responses.csv')['response'].nunique():,} distinct responses), "
          f"responses.csv {size_mb:.0f} MB; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, pandas {pd.__version__}")
    judge_args = [arg for judge in KEYWORD_JUDGES for arg in ("--judge", judge)]
    commands = {
        "validate": ["validate", str(study)],
        "judge": ["judge", str(study), *judge_args, "--no-progress"],
        "flag": ["flag", str(study), "--no-language"],
        "stats": ["stats", str(study), "--out", str(options.dir / "stats"), "--n-boot", "200"],
    }
    print("| step | wall s | CPU s | rows/s (wall) | peak RSS GB | exit |\n|---|---|---|---|---|---|")
    for step in options.steps.split(","):
        if step == "judge-vs-pandas":
            compare_with_pandas(study, options.dir)
            continue
        # A fresh interpreter per step, so ru_maxrss of the children is this step's peak alone.
        print(_probe(step, [sys.executable, "-m", "judgekit.cli", *commands[step]], _rows(study)), flush=True)


def compare_with_pandas(study: Path, work: Path) -> None:
    """``judge`` with two keyword judges and the pandas baseline, each on a fresh copy of the study, then their labels."""
    sides = {}
    for side in ("pandas baseline", "judgekit judge"):
        copy = work / side.replace(" ", "-")
        if copy.exists():
            shutil.rmtree(copy)
        copy.mkdir(parents=True)
        shutil.copy(study / "responses.csv", copy / "responses.csv")
        if side == "pandas baseline":
            out = copy / "judgments.parquet"
            command = [sys.executable, "-c", PANDAS_BASELINE, str(copy), str(out),
                       *(str(PRESETS / f"{judge}.json") for judge in KEYWORD_JUDGES)]
        else:
            out = copy / "judgments"
            command = [sys.executable, "-m", "judgekit.cli", "judge", str(copy),
                       *(arg for judge in KEYWORD_JUDGES for arg in ("--judge", judge)), "--no-progress"]
        print(_probe(side, command, 2 * _rows(study)), flush=True)
        sides[side] = pd.read_parquet(out, columns=["item_id", "judge_id", "label"])
    merged = sides["pandas baseline"].merge(sides["judgekit judge"], on=["item_id", "judge_id"], how="outer",
                                           suffixes=("_pandas", "_judgekit"), indicator=True)
    equal = (merged["_merge"] == "both").all() and (merged["label_pandas"] == merged["label_judgekit"]).all()
    print(f"\nlabels: {len(merged):,} (item, judge) pairs, equal: {bool(equal)}; safe share "
          f"{(merged['label_judgekit'] == 'safe').mean():.3f}\n")


def _probe(name: str, command: list[str], rows: int) -> str:
    """One table row for ``command`` run in a fresh interpreter (so the children's ru_maxrss is its peak alone)."""
    probe = subprocess.run([sys.executable, __file__, "--one", name, str(rows), *command], capture_output=True, text=True)
    return probe.stdout.strip() or probe.stderr.strip()


def one_step(name: str, rows: int, command: list[str]) -> None:
    wall, cpu, peak, code = run_child(command)
    print(f"| {name} | {wall:.1f} | {cpu:.1f} | {rows / wall:,.0f} | {peak:.2f} | {code} |")


def _rows(study: Path) -> int:
    with open(study / "responses.csv", "rb") as stream:
        return sum(1 for _ in stream) - 1  # no embedded newlines in the generated responses


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one_step(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    else:
        main()
