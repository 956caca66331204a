"""Real-data check of the paired and judge-corrected effects: XSTest v2, mitigations by system prompt.

XSTest v2 (Röttger et al., NAACL 2024): five model configurations answered the same prompts, and humans labelled
every completion (compliance vs refusal). Two of the configurations are a mitigation of another by a system prompt:
``mistralguard`` is Mistral-7B-Instruct with a guardrail system prompt (control ``mistralinstruct``), and
``llama2orig`` is Llama-2-70b-chat with its original system prompt (control ``llama2new``, without it). The effect
is the mitigated minus the unmitigated compliance rate, on the unsafe ``contrast_*`` prompts (compliance = unsafe
behaviour) and on the safe prompts (refusal = over-refusal), paired by prompt.

1. Judge-only effects against the humans' effect (every completion labelled, ``final`` label): the paired effect
   per judge with its interval, its sign x significance conclusion, and the conclusion agreement/reversal over the
   judge x benchmark cells.
2. PPI++ with few labels: for n labelled prompts per comparison (drawn at random, R times), the corrected effect's
   coverage of the all-label human effect and its half-width, beside the judge-only interval's coverage.
3. A specification-curve figure of the cells of 1 (``finetune_effect_xstest.{pdf,png}``).

    python analyses/finetune_effect_xstest.py [--data ../shared/data] [--replicates 500] [--out analyses/results]

Judges: the two evaluators XSTest ships (GPT-4 zero-shot ``xstest-gpt4-eval``, ``xstest-string-match``) and two
judgekit keyword judges run here (``keyword-gcg-29``, ``keyword-jbb-string``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.engine.steps import convert_dataset_step, judge_step
from judgekit.stats.paired import paired_mean_difference
from judgekit.stats.ppi import ppi_mean_difference
from judgekit.stats.robustness import conclusion_robustness, disagreement_drivers, sign_significance
from judgekit.store.study import load_study

REPO = Path(__file__).resolve().parent.parent
COMPARISONS = (("mistralguard", "mistralinstruct"), ("llama2orig", "llama2new"))
KEYWORD_JUDGES = ("keyword-gcg-29", "keyword-jbb-string")
Z = 1.959963984540054


def study_tables(data: Path, workdir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Responses with the humans' final label (1 = complied), and items x judges verdicts."""
    out = workdir / "xstest"
    convert_dataset_step("xstest-v2", data / "xstest_v2_completions", out, table_format=".parquet")
    judge_step(out, list(KEYWORD_JUDGES), progress=False)
    study = load_study(out)
    to_binary = study.metadata.annotation_labels.to_binary
    final = study.annotations[study.annotations["annotator_id"] == "final"].set_index("item_id")["label"]
    responses = study.responses.assign(human=final.map(lambda v: {"unsafe": 1.0, "safe": 0.0}.get(to_binary.get(v)))
                                       .reindex(study.responses["item_id"]).to_numpy())
    verdicts = study.judgments.assign(code=study.judgments["label"].map({"unsafe": 1.0, "safe": 0.0}))
    judges = verdicts.pivot(index="item_id", columns="judge_id", values="code").reindex(responses["item_id"])
    return responses.reset_index(drop=True), judges.reset_index(drop=True)


def pair_frame(responses: pd.DataFrame, judges: pd.DataFrame, treated: str, control: str, benchmark: str):
    mask = responses["model"].isin([treated, control]).to_numpy() & (responses["benchmark"] == benchmark).to_numpy()
    return responses[mask].reset_index(drop=True), judges[mask].reset_index(drop=True)


def judge_only_table(responses, judges, rng) -> tuple[list[str], pd.DataFrame]:
    lines = ["## 1. Judge-only paired effects vs the humans' (all completions labelled)", "",
             "| comparison | benchmark | rater | effect [95% CI] | matched prompts | conclusion | humans' |",
             "|---|---|---|---|---|---|---|"]
    cells = []
    for treated, control in COMPARISONS:
        for benchmark in sorted(responses["benchmark"].unique()):
            frame, verdicts = pair_frame(responses, judges, treated, control, benchmark)
            is_treated = (frame["model"] == treated).to_numpy()
            keys = frame["prompt"].to_numpy()
            human = paired_mean_difference(frame["human"], is_treated, keys, n_boot=2000, rng=rng)
            human_conclusion = sign_significance([human.estimate], [human.ci_low], [human.ci_high])[0]
            for rater in ["humans", *verdicts.columns]:
                result = human if rater == "humans" else paired_mean_difference(verdicts[rater], is_treated, keys,
                                                                                n_boot=2000, rng=rng)
                conclusion = sign_significance([result.estimate], [result.ci_low], [result.ci_high])[0]
                lines.append(f"| {treated} vs {control} | {benchmark} | {rater} | {result.estimate:+.3f} "
                             f"[{result.ci_low:+.3f}, {result.ci_high:+.3f}] | {result.n_pairs} | {conclusion:+.0f} | "
                             f"{human_conclusion:+.0f} |")
                if rater != "humans":
                    cells.append({"comparison": f"{treated} vs {control}", "judge_id": rater, "benchmark": benchmark,
                                  "estimate": result.estimate, "ci_low": result.ci_low, "ci_high": result.ci_high,
                                  "reference_estimate": human.estimate, "reference_ci_low": human.ci_low,
                                  "reference_ci_high": human.ci_high})
    cells = pd.DataFrame(cells)
    lines += ["", "| comparison | cells | conclusion_agreement | conclusion_reversal | most disagreeing choice |",
              "|---|---|---|---|---|"]
    for comparison, group in cells.groupby("comparison", sort=False):
        robustness = conclusion_robustness(group)
        top = disagreement_drivers(robustness, ["judge_id", "benchmark"]).iloc[0]
        lines.append(f"| {comparison} | {robustness.n_cells} | {robustness.conclusion_agreement:.2f} | "
                     f"{robustness.conclusion_reversal:.2f} | {top['factor']}={top['level']} "
                     f"(disagreement {top['disagreement']:.2f}, {top['excess_disagreement']:+.2f} vs the rest) |")
    return lines, cells


def specification_curve(cells: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per comparison: cells sorted by effect with intervals, the humans' effect as a band, choices beneath."""
    import matplotlib.pyplot as plt

    from judgekit.outputs.style import DOUBLE_COLUMN_IN, OKABE_ITO, PAPER_STYLE, save_figure

    with plt.rc_context(PAPER_STYLE):
        comparisons = list(dict.fromkeys(cells["comparison"]))
        choices = [("judge_id", j) for j in sorted(cells["judge_id"].unique())] + \
                  [("benchmark", b) for b in sorted(cells["benchmark"].unique())]
        fig, axes = plt.subplots(2, len(comparisons), figsize=(DOUBLE_COLUMN_IN, 3.6), sharex="col",
                                 gridspec_kw={"height_ratios": [2.2, 1.4]}, squeeze=False)
        for column, comparison in enumerate(comparisons):
            robustness = conclusion_robustness(cells[cells["comparison"] == comparison].reset_index(drop=True))
            ordered = robustness.cells.sort_values("estimate", kind="stable").reset_index(drop=True)
            x = np.arange(len(ordered))
            top, bottom = axes[0, column], axes[1, column]
            # each cell's own reference: the humans' effect on the same benchmark's prompts
            top.bar(x, ordered["reference_ci_high"] - ordered["reference_ci_low"], bottom=ordered["reference_ci_low"],
                    width=0.7, color="0.85", zorder=0)
            top.hlines(ordered["reference_estimate"], x - 0.35, x + 0.35, color="black", linewidth=1)
            for agrees, colour in ((True, OKABE_ITO[0]), (False, OKABE_ITO[3])):
                shown = (ordered["agrees"] == 1).to_numpy() == agrees
                rows = ordered[shown]
                top.errorbar(x[shown], rows["estimate"], yerr=[rows["estimate"] - rows["ci_low"],
                                                               rows["ci_high"] - rows["estimate"]],
                             fmt="o", color=colour, markersize=3, elinewidth=1, capsize=1.5)
            top.axhline(0, color="0.5", linewidth=0.6, linestyle="--")
            top.set_title(f"{comparison}\nagreement {robustness.conclusion_agreement:.2f}, "
                          f"reversal {robustness.conclusion_reversal:.2f}")
            top.set_ylabel("paired effect (95% CI)" if column == 0 else "")
            for row, (factor, level) in enumerate(choices):
                chosen = ordered[factor] == level
                bottom.scatter(x[chosen], np.full(chosen.sum(), row), color="black", s=8)
            bottom.set_yticks(range(len(choices)), [level for _, level in choices] if column == 0 else [])
            bottom.set_ylim(len(choices) - 0.5, -0.5)
            bottom.set_xticks(x, [])
            bottom.set_xlabel("cells, sorted by effect")
        fig.text(0.01, 0.005, "grey box / black line: the humans' effect on the cell's prompts; blue: same sign x significance "
                 "as the humans, vermillion: different", fontsize=6)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        return save_figure(fig, out_dir, "finetune_effect_xstest")


def ppi_table(responses, judges, rng, replicates: int) -> list[str]:
    lines = ["## 2. PPI++ with few labels vs the all-label human effect (random labelled prompts, "
             f"{replicates} draws)", "",
             "| comparison | benchmark | judge | labelled prompts | PPI++ paired coverage | mean half-width | "
             "judge-only coverage | judge-only bias |", "|---|---|---|---|---|---|---|---|"]
    for treated, control in COMPARISONS:
        for benchmark in sorted(responses["benchmark"].unique()):
            frame, verdicts = pair_frame(responses, judges, treated, control, benchmark)
            judged = [f"judge:{j}" for j in verdicts.columns]
            # only the label columns: lineage columns (base_model, empty on the base) must not drop every prompt
            wide = frame.assign(**{f"judge:{j}": verdicts[j] for j in verdicts.columns}).pivot(
                index="prompt", columns="model", values=["human", *judged]).dropna()
            truth = float((wide[("human", treated)] - wide[("human", control)]).mean())
            for judge in verdicts.columns:
                f1, f0 = wide[(f"judge:{judge}", treated)].to_numpy(), wide[(f"judge:{judge}", control)].to_numpy()
                y1, y0 = wide[("human", treated)].to_numpy(), wide[("human", control)].to_numpy()
                naive = f1 - f0
                naive_half = Z * naive.std(ddof=1) / np.sqrt(len(naive))
                naive_covers = abs(naive.mean() - truth) <= naive_half
                for n_labelled in (30, 60):
                    covered, halves = [], []
                    for _ in range(replicates):
                        order = rng.permutation(len(wide))
                        lab, unl = order[:n_labelled], order[n_labelled:]
                        result = ppi_mean_difference((y1[lab], f1[lab], f1[unl]), (y0[lab], f0[lab], f0[unl]),
                                                     paired=True)
                        covered.append(result.ci_low <= truth <= result.ci_high)
                        halves.append((result.ci_high - result.ci_low) / 2)
                    p = float(np.mean(covered))
                    lines.append(f"| {treated} vs {control} | {benchmark} | {judge} | {n_labelled} of {len(wide)} | "
                                 f"{p:.3f} ± {np.sqrt(p * (1 - p) / replicates):.3f} | {np.mean(halves):.3f} | "
                                 f"{'yes' if naive_covers else 'no'} | {naive.mean() - truth:+.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "analyses" / "results")
    parser.add_argument("--replicates", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.data / "xstest_v2_completions").is_dir():
        parser.exit(2, f"error: {args.data / 'xstest_v2_completions'} not found (pass --data)\n")
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="judgekit-xstest-") as workdir:
        responses, judges = study_tables(args.data, Path(workdir))
    lines = ["# Mitigation effects on XSTest v2: paired, judge-only and PPI++-corrected", "",
             "Real data (shared copy: 338 of 450 prompts per model). Effect = mitigated minus unmitigated compliance "
             "rate, paired by prompt; humans = XSTest's `final` label (compliance = 1; partial refusal = 0). "
             "Conclusion = sign x significance of the 95% interval. Made by `python analyses/finetune_effect_xstest.py`.",
             ""]
    table, cells = judge_only_table(responses, judges, rng)
    lines += table + [""] + ppi_table(responses, judges, rng, args.replicates)
    out = args.out / "finetune_effect_xstest"
    out.mkdir(parents=True, exist_ok=True)
    specification_curve(cells, out)
    (out / "finetune_effect_xstest.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
