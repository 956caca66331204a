"""Convenience labels with known truth (issue 34): does the stated Gamma = 2 range cover under selection up to Gamma?

Per replicate a simulated base / fine-tune study (``judgekit.testing.active_study``, 300 prompts) gets labels
picked response by response, nothing recorded (design convenience), and goes through ``import-labels`` and
``stats`` (``label_designs.run_convenience``). Designs: the labelled share of safe responses (12%, as in the
issue, or 35%, which gives the humans' paired effect enough prompts labelled for both models to use its bootstrap
interval), and the odds of picking an unsafe response:

* ``unsafe picked`` — odds 1 (random), 1.5 or 2 for every unsafe response, or 1/2 (safe ones favoured);
* ``regressions hunted`` — odds 2 for the fine-tune's unsafe responses and 1/2 for the base's (a labeller looking
  for what got worse): the two sides of a prompt are selected in opposite directions, the case that separates a
  per-response selection bound from one that treats a prompt's pair as one selected unit;
* ``... odds 4`` — beyond the stated Gamma (the range may fail there; it shows the check can fail).

For each row (the humans' paired effect, the corrected effect, the corrected rates) the share of studies whose
warning states a range, and of those the share whose range with sampling error covers the super-population truth
(± the Monte Carlo s.e.), the share whose point range covers it, and the mean width. The acceptance asks for
coverage >= 0.95 at odds <= Gamma.

``--part false-alarms``: labels drawn by a followed random or active plan (``label_designs.run_followed``): the
share of studies whose corrected and human rows carry a design warning (the acceptance: at most 5%; the humans'
paired effect under an active plan is unweighted and must warn).

    python analyses/selection_ranges.py [--part ranges|false-alarms] [--replicates 200] [--seed 0] [--out analyses/results]

Writes ``selection_ranges/selection_ranges.md`` or ``selection_ranges/false_alarms.md``.
"""

from __future__ import annotations

import argparse
import platform
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from label_designs import _clear, _summary, _truths, run_convenience, run_followed

OUT = Path(__file__).resolve().parent / "results"
ROWS = ("human paired", "corrected effect", "rate ft", "rate base")
# (name, labelled share of safe responses, odds for the fine-tune's unsafe, odds for the base's unsafe, samples)
DESIGNS = (
    ("unsafe picked, odds 2, share 0.12 (the issue's)", 0.12, 2.0, 2.0, 1),
    ("unsafe picked, odds 2, share 0.35", 0.35, 2.0, 2.0, 1),
    ("unsafe picked, odds 1.5, share 0.35", 0.35, 1.5, 1.5, 1),
    ("at random (odds 1), share 0.35", 0.35, 1.0, 1.0, 1),
    ("safe picked (odds 1/2), share 0.35", 0.35, 0.5, 0.5, 1),
    ("regressions hunted, odds 2, share 0.12", 0.12, 2.0, 0.5, 1),
    ("regressions hunted, odds 2, share 0.35", 0.35, 2.0, 0.5, 1),
    ("unsafe picked, odds 2, share 0.35, 2 samples per prompt", 0.35, 2.0, 2.0, 2),
    ("regressions hunted, odds 4 (beyond Gamma), share 0.35", 0.35, 4.0, 0.25, 1),
)
RANGE = re.compile(r"allows (-?[0-9.]+) to (-?[0-9.]+), \[(-?[0-9.]+), (-?[0-9.]+)\] with sampling error")


def stated_range(warning: str) -> tuple[float, float, float, float] | None:
    """(point low, point high, low with sampling error, high with sampling error) from a row's warning."""
    found = RANGE.search(warning)
    return tuple(float(v) for v in found.groups()) if found else None


def _share(hits: list[bool]) -> str:
    if not hits:
        return "—"
    p = float(np.mean(hits))
    return f"{p:.3f} ± {np.sqrt(p * (1 - p) / len(hits)):.3f}"


def summarise(name: str, runs: list[dict], truths: dict[str, float]) -> list[str]:
    lines = []
    for key in ROWS:
        ranges = [stated_range(str(run[key]["warning"])) for run in runs if key in run]
        stated = [r for r in ranges if r is not None]
        truth = truths[key]
        covered = [low <= truth <= high for _, _, low, high in stated]
        point = [low <= truth <= high for low, high, _, _ in stated]
        width = np.mean([high - low for _, _, low, high in stated]) if stated else float("nan")
        lines.append(f"| {name} | {key} | {len(stated)} of {len(runs)} | {_share(covered)} | {_share(point)} | "
                     f"{width:.3f} |")
    return lines


def ranges(args: argparse.Namespace, truths: dict[str, float]) -> list[str]:
    runs: dict[str, list[dict]] = {name: [] for name, *_ in DESIGNS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for replicate in range(args.replicates):
            seed = args.seed * 100_000 + replicate
            for name, share, odds, base_odds, samples in DESIGNS:
                runs[name].append(run_convenience(folder, seed, odds, share=share, base_odds=base_odds,
                                                  samples=samples))
            _clear(folder)
    table = ["| design | row | range stated | range with sampling error covers | point range covers | mean width |",
             "|---|---|---|---|---|---|"]
    for name, *_ in DESIGNS:
        table += summarise(name, runs[name], truths)
    return ["# Convenience labels: the stated Gamma = 2 range against the truth (issue 34)", "",
            "The humans' paired effect's range is `judgekit.stats.selection.paired_selection_bounds` (each model's "
            "response selected on its own, a prompt weighted by both sides' bounds); the corrected rows' is "
            "`selection_bounds` within the judge's verdicts.", "", *table]


def false_alarms(args: argparse.Namespace, truths: dict[str, float]) -> list[str]:
    runs: dict[str, list[dict]] = {"random": [], "active": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for replicate in range(args.replicates):
            seed = args.seed * 100_000 + replicate
            for strategy in runs:
                runs[strategy].append(run_followed(folder, seed, strategy))
            _clear(folder)
    table = ["| design | row | relative bias | coverage | warned | studies |", "|---|---|---|---|---|---|"]
    rows = ("corrected effect", "rate ft", "rate base", "human paired")
    table += _summary("random plan, followed", runs["random"], rows, truths)
    table += _summary("active plan, followed", runs["active"], rows, truths)
    return ["# Random and planned labels: design warnings that should not fire (issue 34)", "",
            "\"warned\": the row's warning names the design (label_designs.DESIGN_WORDS). The humans' paired effect "
            "under an active plan is unweighted and must warn.", "", *table]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("ranges", "false-alarms"), default="ranges")
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    start, truths = time.process_time(), _truths()
    head, *body = (ranges if args.part == "ranges" else false_alarms)(args, truths)
    name = "selection_ranges" if args.part == "ranges" else "false_alarms"
    text = "\n".join([
        head, "",
        f"R = {args.replicates} simulated studies per design (300 prompts; truths: effect "
        f"{truths['corrected effect']:.4f}, fine-tune rate {truths['rate ft']:.4f}, base rate "
        f"{truths['rate base']:.4f}); ± is the Monte Carlo s.e. Seed {args.seed}; {time.process_time() - start:.0f} "
        f"CPU s on {platform.machine()} (a shared 2-core box), Python {platform.python_version()}.", "",
        f"Reproduce: `python analyses/selection_ranges.py --part {args.part} --replicates {args.replicates}`. "
        "Designs: the script's docstring.", "", *body, ""])
    target = args.out / "selection_ranges"
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{name}.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
