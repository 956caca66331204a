"""Labels the way people label them, with known truth (issue 34): does every affected row stay unbiased or warn?

Per replicate a simulated base / fine-tune study (``judgekit.testing.active_study``: 300 prompts, a calibrated
judge whose errors sit where its P(unsafe) is near 0.5, truths by numerical integration) goes through the library
steps the CLI runs (``plan-labels``, labels filled from the simulation's truth, ``data import-labels``, ``stats``)
under each labelling design:

* ``random plan`` / ``active plan`` — a random 20-prompt pilot (design random), then ``plan-labels --budget 60``,
  every requested row labelled, imported with the default design (plan): the false-alarm rate of the design
  warnings on the corrected rows (the humans' paired effect under an active plan is unweighted, hence biased, and
  must warn);
* ``active plan, part-filled`` — 2 samples per prompt and model; annotators label only sample 0 of each drawn
  prompt. The default import must refuse; ``--allow-partial`` gives the two-phase estimate (and says so);
* ``convenience, odds 4`` / ``odds 2`` — no pilot, no plan: each response picked for labelling with odds 4 (2)
  when truly unsafe (about 160 items), imported with no design (convenience). Every corrected and human row must
  warn; at odds 2 (within the stated Gamma = 2) the range it states, widened by sampling error, should cover;
* ``judge errs on the fine-tune`` — the judge additionally misses a third of the fine-tune's unsafe responses
  (sensitivity about 0.9 on the base, 0.6 on the fine-tune), labels by a random plan: the judge-only paired
  effect must warn; ``judge_error_shift`` coverage of the super-population sensitivity and specificity shifts;
* ``plan accuracy`` — pilot 20, ``plan-labels --target-halfwidth 0.10`` (random and active), the planned prompts
  labelled: the achieved half-width against the target in reachable plans; the same plan drawn 10 more times
  (other seeds, same count: how far the draw alone moves the achieved half-width, by the stats row's estimator
  applied to the arrays, checked equal on the plan's own draw); and the projection at full labelling (the curve's
  last point) against the half-width of labelling every prompt. ``--only plans`` reruns this section alone;
  ``--only active`` reruns the two active-plan designs' rows alone (``label_designs/active_rows.md``).

A row "warns" when its warning names the design (convenience, the recorded design not followed, labels not drawn
at random, two-phase, unequal recorded probabilities) or, for the judge-only effect, the judge's transport. Coverage and bias are of the
super-population truth; ± is the Monte Carlo s.e.

    python analyses/label_designs.py [--replicates 200] [--seed 0] [--out analyses/results] [--only plans|active]

Writes ``label_designs/label_designs.md``.
"""

from __future__ import annotations

import argparse
import platform
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.analysis import StatsSettings, compute_stats
from judgekit.engine.labelling import MIN_ACTIVE_SAVING, import_labels_step, plan_labels
from judgekit.errors import InputError
from judgekit.stats.ppi import ppi_clustered
from judgekit.store.io import write_table
from judgekit.store.study import load_study
from judgekit.testing.active_study import SHIFT, true_effect, true_rate, write_active_study

OUT = Path(__file__).resolve().parent / "results"
BUDGET, TARGET = 60, 0.10
REDRAWS = 10  # other draws of each accuracy study's plan
ROWS = ("finetune_effect_corrected", "harmful_rate_corrected", "finetune_effect_paired", "judge_error_shift")
DESIGN_WORDS = ("convenience", "do not follow the recorded design", "not drawn at random", "two-phase",
                "unequal recorded probabilities")
TRANSPORT_WORDS = ("read finetune_effect_corrected",)


def _stats(study: Path, seed: int) -> pd.DataFrame:
    stats, _ = compute_stats(load_study(study), StatsSettings(n_boot=50, seed=seed), version="sim", only=ROWS)
    return stats[stats["benchmark"].isna() if "benchmark" in stats else slice(None)]


def _rows(stats: pd.DataFrame) -> dict[str, pd.Series]:
    """The rows measured: corrected effect and rates, the humans' and the judge's paired effect, shift rows."""
    out = {}
    for row in stats.itertuples(index=False):
        row = pd.Series(row._asdict())
        if row["statistic"] == "harmful_rate_corrected":
            out[f"rate {row['model']}"] = row
        elif row["statistic"] == "finetune_effect_paired":
            out["human paired" if row["judge_id"] == "human_majority" else "judge paired"] = row
        elif row["statistic"] == "judge_error_shift":
            out[f"shift {row['subset_value']}"] = row
        else:
            out["corrected effect"] = row
    return out


def _fill(requests: pd.DataFrame, truth: pd.Series) -> pd.DataFrame:
    filled = requests.copy()
    filled["label"] = truth.reindex(filled["item_id"]).to_numpy()
    filled["annotator_id"] = "sim"
    return filled


def _planned(study: Path, truth: pd.Series, folder: Path, *, seed: int, strategy: str, target: float = 0.01,
             budget: int | None = BUDGET) -> tuple[pd.DataFrame, list[str]]:
    requests, lines = plan_labels(load_study(study), target_halfwidth=target, budget=budget, seed=seed,
                                  strategy=strategy, explain=True)
    return _fill(requests, truth), lines


def _import(study: Path, frame: pd.DataFrame, path: Path, **options) -> str:
    write_table(frame, path)
    return import_labels_step(study, path, **options)


def run_followed(folder: Path, seed: int, strategy: str, **study_options) -> dict[str, pd.Series]:
    study = folder / f"{strategy}-{seed}"
    truth = write_active_study(study, seed=seed, **study_options)
    filled, _ = _planned(study, truth, folder, seed=seed, strategy=strategy)
    _import(study, filled, folder / f"{strategy}-{seed}.csv")
    return _rows(_stats(study, seed))


def run_part_filled(folder: Path, seed: int) -> tuple[bool, dict[str, pd.Series]]:
    """(the default import refused, rows after --allow-partial)."""
    study = folder / f"partial-{seed}"
    truth = write_active_study(study, seed=seed, samples=2)
    filled, _ = _planned(study, truth, folder, seed=seed, strategy="active")
    filled.loc[filled["item_id"].str.endswith("-1"), "label"] = None  # only sample 0 of each drawn prompt
    path = folder / f"partial-{seed}.csv"
    try:
        _import(study, filled, path)
        refused = False
    except InputError:
        refused = True
        path.unlink()
        _import(study, filled, path, allow_partial=True)
    return refused, _rows(_stats(study, seed))


def run_convenience(folder: Path, seed: int, odds: float, *, share: float = 0.12, base_odds: float | None = None,
                    samples: int = 1) -> dict[str, pd.Series]:
    """Each response picked on its own: ``share`` of the safe ones, odds x ``odds`` for the fine-tune's unsafe ones
    and x ``base_odds`` (default ``odds``) for the base's (1 / odds: hunting regressions, the base's safe ones
    favoured)."""
    base_odds = odds if base_odds is None else base_odds
    name = f"convenience-{odds}-{base_odds}-{share}-{samples}-{seed}"
    study = folder / name
    truth = write_active_study(study, seed=seed, pilot=0, samples=samples)
    (study / "annotations.parquet").unlink(missing_ok=True)
    rng = np.random.default_rng(seed + 7)
    unsafe = (truth == "unsafe").to_numpy()
    safe_odds = share / (1 - share)
    odds_ratio = np.where(truth.index.str.startswith("ft-"), odds, base_odds)
    picked_odds = safe_odds * np.where(unsafe, odds_ratio, 1.0)
    picked = truth.index[rng.random(len(truth)) < picked_odds / (1 + picked_odds)]
    frame = pd.DataFrame({"item_id": picked, "annotator_id": "sim", "label": truth.reindex(picked).to_numpy()})
    _import(study, frame, folder / f"{name}.csv")
    return _rows(_stats(study, seed))


def _halfwidth_if_labelled(study: Path, truth: pd.Series) -> Callable[[pd.DataFrame], float]:
    """For a plan's requests, the corrected effect's half-width had they been labelled, by the estimator ``stats``
    uses (PPI++ clustered by prompt; the labels of an active draw weighted by their inclusion probability, the
    pilot's by 1)."""
    responses = pd.read_parquet(study / "responses.parquet")
    items = responses["item_id"]
    verdicts = pd.read_parquet(study / "judgments.parquet").set_index("item_id")["label"].reindex(items) == "unsafe"
    pilot = set(pd.read_parquet(study / "annotations.parquet")["item_id"])
    unsafe = (truth.reindex(items) == "unsafe").to_numpy(dtype=float)

    def halfwidth(requests: pd.DataFrame) -> float:
        labelled = items.isin(pilot | set(requests["item_id"])).to_numpy()
        inclusion = None
        if (requests["strategy"] == "active").any():  # an active plan that drew actively (not where it did not pay)
            inclusion = requests.set_index("item_id")["inclusion_probability"].reindex(items).fillna(1.0).to_numpy()
        result = ppi_clustered(np.where(labelled, unsafe, np.nan), verdicts.to_numpy(dtype=float),
                               responses["prompt_id"].to_numpy(), treated=(responses["model"] == "ft").to_numpy(),
                               inclusion=inclusion)
        return (result.ci_high - result.ci_low) / 2

    return halfwidth


def run_plan_accuracy(folder: Path, seed: int, strategy: str, redraws: int = REDRAWS, target: float = TARGET
                      ) -> tuple[bool, float, float, float, list[float], int, bool]:
    """(reachable, achieved half-width after labelling the plan, projected at full, half-width labelling all, the
    achieved half-width of ``redraws`` other draws of the same plan, prompts asked for, drawn actively)."""
    study = folder / f"accuracy-{strategy}-{seed}"
    truth = write_active_study(study, seed=seed)
    filled, lines = _planned(study, truth, folder, seed=seed, strategy=strategy, target=target, budget=None)
    reachable = "not reachable" not in lines[0] and "target met" not in lines[0]
    projected_full = float(re.findall(r"-> ([0-9.]+)", lines[-1])[0])
    # the same plan drawn again (other seeds): how far the achieved half-width moves with the draw alone
    others, own = [], float("nan")
    if reachable and not filled.empty:
        halfwidth, loaded = _halfwidth_if_labelled(study, truth), load_study(study)
        others = [halfwidth(plan_labels(loaded, target_halfwidth=target, seed=seed + k, strategy=strategy)[0])
                  for k in range(1, redraws + 1)]
        own = halfwidth(filled)
    if not filled.empty:
        _import(study, filled, folder / f"accuracy-{strategy}-{seed}.csv")
    achieved = _rows(_stats(study, seed))["corrected effect"]
    if np.isfinite(own):  # the redraws use the stats row's estimator: checked on the plan's own draw
        assert abs(own - (achieved["ci_high"] - achieved["ci_low"]) / 2) < 1e-9, (own, achieved)
    everything = folder / f"accuracy-{strategy}-{seed}-all"
    write_active_study(everything, seed=seed)
    all_items = pd.DataFrame({"item_id": truth.index, "annotator_id": "all", "label": truth.to_numpy()})
    labelled = set(pd.read_parquet(everything / "annotations.parquet")["item_id"])
    _import(everything, all_items[~all_items["item_id"].isin(labelled)], folder / f"all-{strategy}-{seed}.csv",
            design="random")
    full = _rows(_stats(everything, seed))["corrected effect"]
    return (reachable, (achieved["ci_high"] - achieved["ci_low"]) / 2, projected_full,
            (full["ci_high"] - full["ci_low"]) / 2, others, int(filled["unit"].nunique()),
            bool((filled["strategy"] == "active").any()))


def _warned(row: pd.Series, words: tuple[str, ...] = DESIGN_WORDS) -> bool:
    return any(w in str(row["warning"]) for w in words)


def _truths() -> dict[str, float]:
    effect = true_effect()
    return {"corrected effect": effect, "rate ft": true_rate(SHIFT), "rate base": true_rate(0.0),
            "human paired": effect, "judge paired": effect}


def _summary(name: str, runs: list[dict[str, pd.Series]], rows: tuple[str, ...], truths: dict[str, float],
             words: tuple[str, ...] = DESIGN_WORDS) -> list[str]:
    lines = []
    for key in rows:
        values = [r[key] for r in runs if key in r and np.isfinite(r[key]["estimate"])]
        if not values:
            lines.append(f"| {name} | {key} | no estimate | | | |")
            continue
        estimate = np.array([v["estimate"] for v in values])
        hit = np.array([v["ci_low"] <= truths[key] <= v["ci_high"] for v in values])
        warned = np.array([_warned(v, words) for v in values])
        n, truth = len(values), truths[key]
        bias = (estimate.mean() - truth) / abs(truth)
        lines.append(f"| {name} | {key} | {bias:+.1%} ± {estimate.std(ddof=1) / np.sqrt(n) / abs(truth):.1%} | "
                     f"{hit.mean():.3f} ± {np.sqrt(hit.mean() * (1 - hit.mean()) / n):.3f} | {warned.mean():.3f} | "
                     f"{n} |")
    return lines


def _range_coverage(runs: list[dict[str, pd.Series]], truths: dict[str, float]) -> list[str]:
    """Share of convenience rows whose stated Gamma-range with sampling error covers the truth."""
    lines = []
    for key in ("corrected effect", "rate ft", "rate base", "human paired"):
        covered = []
        for run in runs:
            found = re.search(r"\[(-?[0-9.]+), (-?[0-9.]+)\] with sampling error", str(run[key]["warning"]))
            if found:
                covered.append(float(found[1]) <= truths[key] <= float(found[2]))
        p = np.mean(covered) if covered else float("nan")
        lines.append(f"| {key} | {p:.3f} ± {np.sqrt(p * (1 - p) / max(len(covered), 1)):.3f} | {len(covered)} |")
    return lines


def _shift_truth(misses: float) -> dict[str, float]:
    """Super-population sensitivity and specificity shifts (base minus fine-tune) by a 400 000-prompt draw."""
    with tempfile.TemporaryDirectory() as tmp:
        truth = write_active_study(Path(tmp) / "big", seed=999, prompts=200_000, pilot=0, fine_tune_misses=misses)
        verdict = pd.read_parquet(Path(tmp) / "big" / "judgments.parquet").set_index("item_id")["label"]
    frame = pd.DataFrame({"truth": truth == "unsafe", "verdict": verdict.reindex(truth.index) == "unsafe",
                          "ft": truth.index.str.startswith("ft-")})
    out = {}
    for measure, label in (("sensitivity", True), ("specificity", False)):
        part = frame[frame["truth"] == label]
        correct = part["verdict"] == label
        out[f"shift {measure}"] = correct[~part["ft"]].mean() - correct[part["ft"]].mean()
    return out


def _report(runs: dict[str, list], refused: list[bool], truths: dict[str, float], args: argparse.Namespace,
            start: float) -> str:
    corrected = ("corrected effect", "rate ft", "rate base")
    done = len(refused)
    table = ["| design | row | relative bias | coverage | warned | studies |", "|---|---|---|---|---|---|"]
    table += _summary("random plan, followed", runs["random"], corrected + ("human paired",), truths)
    table += _summary("active plan, followed", runs["active"], corrected + ("human paired",), truths)
    table += _summary("active plan, part-filled, --allow-partial", runs["partial"], corrected, truths)
    table += _summary("convenience, odds 4 when unsafe", runs["odds 4"], corrected + ("human paired",), truths)
    table += _summary("convenience, odds 2 when unsafe", runs["odds 2"], corrected + ("human paired",), truths)
    table += _summary("judge misses 1/3 more on the fine-tune (random plan)", runs["transport"], corrected, truths)
    table += _summary("judge misses 1/3 more on the fine-tune: judge-only effect", runs["transport"],
                      ("judge paired",), truths, TRANSPORT_WORDS)
    table += _summary("calibrated judge cut at 0.5 (random plan): judge-only effect", runs["random"],
                      ("judge paired",), truths, TRANSPORT_WORDS)
    shift_lines = []
    for name, key, misses in (("calibrated, cut at 0.5", "random", 0.0), ("misses 1/3 more on the fine-tune",
                                                                          "transport", 1 / 3)):
        for measure, value in SHIFT_TRUTHS.setdefault(misses, _shift_truth(misses)).items():
            rows = [r[measure] for r in runs[key] if measure in r and np.isfinite(r[measure]["ci_low"])]
            hit = np.mean([r["ci_low"] <= value <= r["ci_high"] for r in rows])
            shift_lines.append(f"| {name} | {measure} | {value:+.4f} | {hit:.3f} ± "
                               f"{np.sqrt(hit * (1 - hit) / len(rows)):.3f} | {len(rows)} |")
    return "\n".join([
        "# Labelling designs with known truth (issue 34)", "",
        f"R = {done} simulated studies per design (of {args.replicates} asked; 300 prompts; truths: effect "
        f"{truths['corrected effect']:.4f}, fine-tune rate {truths['rate ft']:.4f}, base rate "
        f"{truths['rate base']:.4f}); nominal 95%; ± is the Monte Carlo s.e. Seed {args.seed}; "
        f"{time.time() - start:.0f} s on {platform.machine()} (a shared 2-core box), Python "
        f"{platform.python_version()}.", "",
        f"Reproduce: `python analyses/label_designs.py --replicates {args.replicates}`. Designs: the script's docstring.",
        "", "## Rows under each design", "", *table, "",
        f"Part-filled active plans: the default import refused in {np.mean(refused):.3f} of studies (one line naming "
        "the empty rows); the rows above are after `--allow-partial` (two-phase weights, warned by design).", "",
        "## Convenience labels: the stated Gamma = 2 range (with sampling error) against the truth", "",
        "| design | row | covered | studies |", "|---|---|---|---|",
        *(f"| odds 2 (within Gamma) {line[1:]}" for line in _range_coverage(runs["odds 2"], truths)),
        *(f"| odds 4 (beyond Gamma) {line[1:]}" for line in _range_coverage(runs["odds 4"], truths)), "",
        "## judge_error_shift interval coverage (MOVER of clustered Wilson intervals)", "",
        "| judge | measure | truth | coverage | studies |", "|---|---|---|---|---|", *shift_lines, "",
        _plan_section(runs), ""])


def _share(values: np.ndarray, centre: float | np.ndarray, tolerance: float) -> float:
    return float(np.mean(np.abs(values / centre - 1) <= tolerance))


def _plan_section(runs: dict[str, list], note: str = "", target: float = TARGET) -> str:
    """The plan-labels accuracy table: achieved against target in reachable plans, the same plans redrawn, and the
    projection at full labelling against labelling every prompt."""
    accuracy = []
    for strategy in ("random", "active"):
        results = runs[f"accuracy {strategy}"]
        reachable = np.array([r[0] for r in results])
        achieved = np.array([r[1] for r in results])[reachable]
        full_ratio = np.array([r[2] / r[3] for r in results])
        within = _share(achieved, target, 0.2)
        redrawn = [np.array(r[4]) for r in results if r[0] and len(r[4])]
        asked = np.array([r[5] for r in results])[reachable]
        actively = np.array([r[6] for r in results])[reachable]
        accuracy.append(
            f"| {strategy} | {reachable.sum()} of {len(results)} | {within:.3f} ± "
            f"{np.sqrt(within * (1 - within) / max(reachable.sum(), 1)):.3f} | "
            f"{np.median(achieved) / target:.3f} [{np.quantile(achieved, 0.1) / target:.3f}, "
            f"{np.quantile(achieved, 0.9) / target:.3f}] | "
            f"{np.mean([_share(r, target, 0.2) for r in redrawn]):.3f} | "
            f"{np.mean([_share(r, np.median(r), 0.2) for r in redrawn]):.3f} | "
            f"{np.median(full_ratio):.3f} [{np.quantile(full_ratio, 0.1):.3f}, {np.quantile(full_ratio, 0.9):.3f}] | "
            f"{_share(full_ratio, 1.0, 0.1):.3f} | {np.median(asked):.0f} [{np.quantile(asked, 0.1):.0f}, "
            f"{np.quantile(asked, 0.9):.0f}] | {actively.mean():.3f} |")
    return "\n".join([
        f"## plan-labels accuracy (pilot 20 prompts, target half-width {target})", "", *([note, ""] if note else []),
        "| strategy | reachable | achieved within ±20% of target | achieved / target (median [10%, 90%]) | the same "
        f"plans drawn {REDRAWS} more times: within ±20% of target | ... within ±20% of their own median (the best "
        "any count could do) | projection at full / labelling all (median [10%, 90%]) | within ±10% | prompts asked "
        f"for (median [10%, 90%]) | drawn actively (active plans draw at random where active saves under "
        f"{MIN_ACTIVE_SAVING:.0%} of the labels) |",
        "|---|---|---|---|---|---|---|---|---|---|", *accuracy])


SHIFT_TRUTHS: dict[float, dict[str, float]] = {}


def _clear(folder: Path) -> None:
    """Empty the temporary folder between replicates (keeps it small)."""
    for path in sorted(folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--every", type=int, default=25, help="rewrite the results after this many replicates")
    parser.add_argument("--only", choices=("all", "plans", "active"), default="all",
                        help="plans: rerun the plan-labels accuracy section alone (the other sections are kept); "
                             "active: the active-plan designs' rows alone, to label_designs/active_rows.md")
    parser.add_argument("--target", type=float, default=TARGET,
                        help="with --only plans: the target half-width (another than 0.10 writes its own file)")
    args = parser.parse_args()
    if args.only == "plans":
        run_plans_only(args)
        return
    if args.only == "active":
        run_active_only(args)
        return
    start, truths = time.time(), _truths()
    runs: dict[str, list] = {k: [] for k in ("random", "active", "partial", "odds 4", "odds 2", "transport",
                                             "accuracy random", "accuracy active")}
    refused: list[bool] = []
    target = args.out / "label_designs"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for replicate in range(args.replicates):
            seed = args.seed * 100_000 + replicate
            runs["random"].append(run_followed(folder, seed, "random"))
            runs["active"].append(run_followed(folder, seed, "active"))
            was_refused, rows = run_part_filled(folder, seed)
            refused.append(was_refused)
            runs["partial"].append(rows)
            runs["odds 4"].append(run_convenience(folder, seed, 4.0))
            runs["odds 2"].append(run_convenience(folder, seed, 2.0))
            runs["transport"].append(run_followed(folder, seed, "random", fine_tune_misses=1 / 3))
            for strategy in ("random", "active"):
                runs[f"accuracy {strategy}"].append(run_plan_accuracy(folder, seed, strategy))
            _clear(folder)
            if (replicate + 1) % args.every == 0 or replicate + 1 == args.replicates:
                text = _report(runs, refused, truths, args, start)
                (target / "label_designs.md").write_text(text, encoding="utf-8")
    print(text)


def run_active_only(args: argparse.Namespace) -> None:
    """The active-plan designs' rows (followed; part-filled with --allow-partial) alone, after a change to the active
    draw, in their own file."""
    start, truths = time.time(), _truths()
    runs: dict[str, list] = {"active": [], "partial": []}
    refused: list[bool] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for replicate in range(args.replicates):
            seed = args.seed * 100_000 + replicate
            runs["active"].append(run_followed(folder, seed, "active"))
            was_refused, rows = run_part_filled(folder, seed)
            refused.append(was_refused)
            runs["partial"].append(rows)
            _clear(folder)
    corrected = ("corrected effect", "rate ft", "rate base")
    text = "\n".join([
        "# Active-plan designs with known truth (issue 34)", "",
        f"`python analyses/label_designs.py --only active --replicates {args.replicates}`: R = {len(refused)} studies, "
        f"seed {args.seed}; {time.time() - start:.0f} s on {platform.machine()} (a shared 2-core box). Designs and "
        "columns as in `label_designs.md` (whose rows for these designs may predate the current active draw).", "",
        "| design | row | relative bias | coverage | warned | studies |", "|---|---|---|---|---|---|",
        *_summary("active plan, followed", runs["active"], corrected + ("human paired",), truths),
        *_summary("active plan, part-filled, --allow-partial", runs["partial"], corrected, truths), "",
        f"Part-filled active plans: the default import refused in {np.mean(refused):.3f} of studies.", ""])
    path = args.out / "label_designs" / "active_rows.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(text)


def run_plans_only(args: argparse.Namespace) -> None:
    """The plan-labels accuracy section alone, spliced into the existing results file in place of its old one."""
    start = time.time()
    runs: dict[str, list] = {"accuracy random": [], "accuracy active": []}
    name = "label_designs.md" if args.target == TARGET else f"plan_accuracy_target_{args.target:g}.md"
    path = args.out / "label_designs" / name
    kept = path.read_text(encoding="utf-8").split("## plan-labels accuracy")[0] if path.exists() else ""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for replicate in range(args.replicates):
            seed = args.seed * 100_000 + replicate
            for strategy in ("random", "active"):
                runs[f"accuracy {strategy}"].append(run_plan_accuracy(folder, seed, strategy, target=args.target))
            _clear(folder)
            if (replicate + 1) % args.every == 0 or replicate + 1 == args.replicates:
                note = (f"This section: `python analyses/label_designs.py --only plans --replicates {args.replicates}"
                        + (f" --target {args.target:g}" if args.target != TARGET else "")
                        + f"`, R = {replicate + 1} studies, seed {args.seed}; {time.time() - start:.0f} s on "
                        f"{platform.machine()} (a shared 2-core box).")
                text = kept + _plan_section(runs, note, args.target) + "\n"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
