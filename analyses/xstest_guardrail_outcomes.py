"""XSTest guardrail: harmful compliance and over-refusal effects of a system prompt, never pooled (issue 24, (c)).

XSTest v2 (Röttger et al., NAACL 2024): ``mistralguard`` is Mistral-7B-Instruct-v0.1 with a guardrail system
prompt, ``mistralinstruct`` without it; ``llama2orig`` is Llama-2-70b-chat with its original system prompt,
``llama2new`` without it. Humans labelled every completion (full compliance / full or partial refusal). The
adapter gives each prompt its intent (``contrast_*`` = harmful, the rest benign) and each mitigated model its
unmitigated twin as ``base_model``; judgekit's stats then give, per comparison and outcome, on the prompts both
models answered:

* harmful compliance (harmful prompts): humans' final label "complied", and every judge's unsafe verdict;
* over-refusal (benign prompts): humans' final label "refused fully or partly", and the refusal detectors'
  refusals (XSTest's GPT-4 and string-match evaluators, judgekit's keyword judges);

the paired effect (cluster bootstrap over prompts) and the PPI++-corrected effect per judge. Writes
``analyses/results/xstest_guardrail_outcomes/{xstest_guardrail_outcomes.md, .png, .pdf}``.

    python analyses/xstest_guardrail_outcomes.py [--data ../shared/data] [--out analyses/results] [--n-boot 2000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

import judgekit
from judgekit.analysis.outcomes import OUTCOMES
from judgekit.outputs.report_finetune import answer_rows, comparison_of, outcome_of
from judgekit.store.schema import HUMAN_MAJORITY

REPO = Path(__file__).resolve().parent.parent
KEYWORD_JUDGES = ("keyword-gcg-29", "keyword-jbb-string")
SHOWN = ("harmful_compliance", "over_refusal")


def outcome_stats(data: Path, workdir: Path, n_boot: int) -> pd.DataFrame:
    study = judgekit.convert_dataset("xstest-v2", data / "xstest_v2_completions", workdir / "xstest")
    judgekit.run_judges(study, list(KEYWORD_JUDGES))
    stats = judgekit.compute_stats(study, judgekit.StatsSettings(n_boot=n_boot, seed=0),
                                   only=("finetune_effect_paired", "finetune_effect_corrected"))
    stats = stats[stats["benchmark"].isna()].copy()
    stats["comparison"] = comparison_of(stats["subset"]).str.removeprefix("comparison=").str.split("|goal=", regex=False).str[0]
    stats["outcome"] = outcome_of(stats)
    return stats


def table(stats: pd.DataFrame) -> list[str]:
    lines = ["| comparison | outcome | rater | paired effect [95% CI] | corrected effect (PPI++) [95% CI] | prompts |",
             "|---|---|---|---|---|---|"]
    fmt = lambda r: f"{r.estimate:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"  # noqa: E731
    for (comparison, outcome), part in stats.groupby(["comparison", "outcome"], sort=True):
        paired = part[part["statistic"] == "finetune_effect_paired"].set_index("judge_id")
        corrected = part[part["statistic"] == "finetune_effect_corrected"].set_index("judge_id")
        for rater in [HUMAN_MAJORITY, *sorted(j for j in paired.index if j != HUMAN_MAJORITY)]:
            row = paired.loc[rater]
            fixed = fmt(corrected.loc[rater]) if rater in corrected.index else "— (humans are the reference)"
            lines.append(f"| {comparison} | {OUTCOMES[outcome].noun} | {'humans (final label)' if rater == HUMAN_MAJORITY else rater} "
                         f"| {fmt(row)} | {fixed} | {row.n_items} |")
    return lines


def figure(stats: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Forest per comparison: each outcome's paired effect by rater (humans black), corrected effects as open marks."""
    import matplotlib.pyplot as plt

    from judgekit.outputs.style import DOUBLE_COLUMN_IN, OKABE_ITO, PAPER_STYLE, save_figure

    comparisons = sorted(stats["comparison"].unique())
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(1, len(comparisons), figsize=(DOUBLE_COLUMN_IN, 3.0), sharex=True, squeeze=False,
                                 layout="constrained")
        for ax, comparison in zip(axes[0], comparisons, strict=True):
            labels, y = [], 0
            for outcome, colour in zip(SHOWN, (OKABE_ITO[5], OKABE_ITO[1]), strict=True):
                part = stats[(stats["comparison"] == comparison) & (stats["outcome"] == outcome)]
                paired = part[part["statistic"] == "finetune_effect_paired"].set_index("judge_id")
                corrected = part[part["statistic"] == "finetune_effect_corrected"].set_index("judge_id")
                for rater in [HUMAN_MAJORITY, *sorted(j for j in paired.index if j != HUMAN_MAJORITY)]:
                    row = paired.loc[rater]
                    human = rater == HUMAN_MAJORITY
                    ax.errorbar(row.estimate, y, xerr=[[row.estimate - row.ci_low], [row.ci_high - row.estimate]],
                                fmt="D" if human else "o", color="black" if human else colour, markersize=3,
                                capsize=1.5, linewidth=0.8)
                    if rater in corrected.index:
                        fixed = corrected.loc[rater]
                        ax.errorbar(fixed.estimate, y + 0.3, xerr=[[fixed.estimate - fixed.ci_low],
                                                                   [fixed.ci_high - fixed.estimate]],
                                    fmt="o", mfc="white", color=colour, markersize=2.5, capsize=1, linewidth=0.6)
                    labels.append(f"{OUTCOMES[outcome].noun}: {'humans' if human else rater}")
                    y += 1
                y += 0.6
            ax.set_yticks([i + (0.6 if i >= len(labels) // 2 else 0) for i in range(len(labels))], labels, fontsize=5.5)
            ax.invert_yaxis()
            ax.axvline(0, color="0.5", linewidth=0.6)
            ax.set_title(f"{comparison}\n(treated − control, same prompts)", fontsize=7)
            ax.set_xlabel("paired effect: < 0 less of the outcome, > 0 more", fontsize=6.5)
        fig.suptitle("XSTest system prompts: harmful compliance (harmful prompts) and over-refusal (benign prompts)\n"
                     "filled: paired effect (cluster bootstrap over prompts); open, offset: PPI++-corrected by that "
                     "judge's errors", fontsize=7)
        return save_figure(fig, out_dir, "xstest_guardrail_outcomes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "analyses" / "results")
    parser.add_argument("--n-boot", type=int, default=2000)
    args = parser.parse_args()
    if not (args.data / "xstest_v2_completions").is_dir():
        parser.exit(2, f"error: {args.data / 'xstest_v2_completions'} not found (pass --data)\n")
    with tempfile.TemporaryDirectory(prefix="judgekit-xstest-") as workdir:
        stats = outcome_stats(args.data, Path(workdir), args.n_boot)
    answers = answer_rows(stats)
    sentences = []
    for row in answers.itertuples(index=False):
        if row.outcome in SHOWN:
            name = row.comparison.removeprefix("comparison=").split("|goal=")[0]
            sentences.append(f"- {name}: {OUTCOMES[row.outcome].noun} {row.estimate:+.3f} [{row.ci_low:+.3f}, "
                             f"{row.ci_high:+.3f}] (humans; {row.n_agree} of {row.n_judges} judges reach the same verdict: "
                             f"{row.words})")
    lines = ["# XSTest system prompts: harmful compliance and over-refusal, never pooled", "",
             "Real data (shared copy: 338 of 450 prompts per model; 150 harmful `contrast_*`, 188 benign). Made by "
             "`python analyses/xstest_guardrail_outcomes.py`; the test `tests/test_outcomes.py` recomputes the "
             "guardrail's two human effects from the raw CSV files (equal within 1e-9).", "",
             "## The answer (humans' final label; paired by prompt, 95% cluster-bootstrap interval)", "",
             *sentences, "", "## Every rater", "", *table(stats), "",
             "Every completion carries a human label, so the PPI++-corrected effect of each judge is the humans' "
             "effect (up to an undefined judge verdict: `xstest-gpt4-eval` has 8 raw-text labels on harmful prompts); "
             "it matters with few labels (see `finetune_effect_xstest/`). The judges' own paired effects agree with "
             "the humans in sign on the guardrail but underestimate both the harm removed and the over-refusal added.",
             ""]
    out = args.out / "xstest_guardrail_outcomes"
    out.mkdir(parents=True, exist_ok=True)
    figure(stats, out)
    (out / "xstest_guardrail_outcomes.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
