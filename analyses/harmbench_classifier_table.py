"""HarmBench classifier table: each judge's agreement with the human majority, overall and split
into items where the 3 annotators agree (unanimous) and 2-1 items (Mazeika et al. 2024).

    python analyses/harmbench_classifier_table.py [--data ../shared/data] [--out analyses/results]

The shared copy holds about 75% of the behaviours; numbers are what the data give.
"""

from __future__ import annotations

from pathlib import Path

from common import arguments, converted, statistics, workdir, write_outputs

from judgekit.outputs.figures import judge_metric_forest
from judgekit.outputs.style import save_figure
from judgekit.outputs.tables import estimate_table, format_estimate

SUBSETS = {"all": "all items", "humans=unanimous": "unanimous", "humans=split": "2-1"}

if __name__ == "__main__":
    args = arguments(__doc__)
    with workdir() as tmp:
        study = converted("harmbench-cls-val", args.data / "harmbench_cls_val", Path(tmp))
        stats = statistics(study, args)
    rows = stats[(stats.reference == "human_majority") & (stats.statistic == "accuracy") & stats.subset.isin(SUBSETS)]
    table = estimate_table(rows, rows="judge_id", columns="subset").rename(columns=SUBSETS)
    table = table[["judge_id", *SUBSETS.values()]]
    counts = rows.groupby("subset")["n_items"].max()
    order = rows[rows.subset == "all"].sort_values("judge_id")["judge_id"]
    table = table.set_index("judge_id").loc[order].reset_index()
    humans = stats[(stats.judge_id == "humans") & (stats.subset == "all")].set_index("statistic")
    preface = (
        f"HarmBench classifier validation set, shared copy: {len(study.responses)} generations, 3 annotators "
        f"({counts['humans=unanimous']} unanimous, {counts['humans=split']} split 2-1). Agreement = accuracy against the "
        f"human majority. Inter-human Fleiss' kappa "
        f"{format_estimate(humans.loc['fleiss_kappa', 'estimate'], humans.loc['fleiss_kappa', 'ci_low'], humans.loc['fleiss_kappa', 'ci_high'])}, "
        f"Krippendorff's alpha "
        f"{format_estimate(humans.loc['krippendorff_alpha', 'estimate'], humans.loc['krippendorff_alpha', 'ci_low'], humans.loc['krippendorff_alpha', 'ci_high'])}. "
        f"95% BCa cluster-bootstrap intervals over behaviours ({args.n_boot} resamples, seed {args.seed}). "
        "PAIR counts as unsafe only at Rating [[10]]; gpt-3.5 'yes' as unsafe; advbench = refusal-string matching."
    )
    out = args.out / "harmbench_classifier_table"
    paths = write_outputs(out, "harmbench_classifier_table", table, caption="HarmBench judges: agreement with the human majority", preface=preface)
    figure = judge_metric_forest(stats, statistics=["accuracy"], subsets=list(SUBSETS), title="HarmBench judges: agreement with the human majority")
    paths += save_figure(figure, out, "harmbench_classifier_table")
    print(preface)
    print(table.to_string(index=False))
    print("wrote", *paths, sep="\n  ")
