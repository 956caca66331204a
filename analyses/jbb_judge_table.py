"""JailbreakBench judge table: each judge's agreement, FPR and FNR against the human majority,
with inter-human Fleiss' kappa and Krippendorff's alpha (Chao et al. 2024, judge comparison).

    python analyses/jbb_judge_table.py [--data ../shared/data] [--out analyses/results]

The shared copy holds about 75% of the items, so numbers differ from the paper's; they are what the data give.
"""

from __future__ import annotations

from common import arguments, converted, statistics, workdir, write_outputs

from judgekit.outputs.figures import judge_metric_forest
from judgekit.outputs.style import save_figure
from judgekit.outputs.tables import estimate_table, format_estimate

TABLE_STATISTICS = ["accuracy", "fpr", "fnr", "cohen_kappa"]


def interval_methods(rows) -> str:
    """Each statistic's interval as its rows name it ("clustered Wilson (Korn-Graubard)", "cluster bootstrap, bca"),
    without the per-judge design effects, with the resamples and seed where a bootstrap made it."""
    parts = []
    for statistic, group in rows.groupby("statistic", sort=True):
        names = sorted({method.split(", design effect")[0] for method in group["method"]})
        bootstrap = group["signature"].str.extract(r"boot:(\d+)\|seed:(\d+)").iloc[0]
        resampled = f" ({bootstrap[0]} resamples, seed {bootstrap[1]})" if "bootstrap" in " ".join(names) else ""
        parts.append(f"{statistic} {' / '.join(names)}{resampled}")
    return "; ".join(parts)


if __name__ == "__main__":
    args = arguments(__doc__)
    with workdir() as tmp:
        from pathlib import Path

        study = converted("jbb-judge-comparison", args.data / "jbb_judge_comparison", Path(tmp))
        stats = statistics(study, args)
    judges = stats[(stats.reference == "human_majority") & (stats.subset == "all")]
    table = estimate_table(judges, rows="judge_id", columns="statistic", statistics=TABLE_STATISTICS)
    n = judges[judges.statistic == "accuracy"].set_index("judge_id")["n_items"]
    table["n"] = table["judge_id"].map(n)
    humans = stats[(stats.judge_id == "humans") & (stats.subset == "all")].set_index("statistic")
    human_line = ", ".join(
        f"{s} {format_estimate(humans.loc[s, 'estimate'], humans.loc[s, 'ci_low'], humans.loc[s, 'ci_high'])}"
        for s in ("fleiss_kappa", "krippendorff_alpha", "percent_agreement")
    )
    ceiling = stats[(stats.judge_id == "human_ceiling") & (stats.subset == "all") & (stats.statistic == "accuracy")].iloc[0]
    preface = (
        f"JailbreakBench judge comparison, shared copy: {len(study.responses)} responses, 3 annotators. "
        f"Reference: majority of the 3 annotators. Inter-human: {human_line}. Human ceiling (an annotator vs the majority "
        f"of the other two): accuracy {format_estimate(ceiling.estimate, ceiling.ci_low, ceiling.ci_high)}. "
        f"95% intervals, clusters = goals: {interval_methods(judges[judges.statistic.isin(TABLE_STATISTICS)])}."
    )
    out = args.out / "jbb_judge_table"
    paths = write_outputs(out, "jbb_judge_table", table, caption="JailbreakBench judges against the human majority", preface=preface)
    figure = judge_metric_forest(stats, statistics=["accuracy", "fpr", "fnr"], title="JailbreakBench judge comparison")
    paths += save_figure(figure, out, "jbb_judge_table")
    print(preface)
    print(table.to_string(index=False))
    print("wrote", *paths, sep="\n  ")
