"""Cross-dataset view: how the same judge's FPR and FNR move between datasets.

Judges compared: the GCG 29-string refusal matcher (run here by judgekit on every dataset),
the HarmBench Llama-2-13B classifier and the GPT-4 judge (predictions shipped with JailbreakBench
and HarmBench), Llama Guard (v2 in JailbreakBench, v1 in HarmBench: different versions, shown
apart) and GuardReasoner-8B (HarmBench-response vs XSTest-Response). Reference: each dataset's
human label (majority where there are several annotators).

    python analyses/cross_dataset.py [--data ../shared/data] [--out analyses/results]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from common import arguments, converted, workdir, write_outputs

from judgekit.outputs.figures import judge_metric_forest
from judgekit.outputs.style import save_figure
from judgekit.stats.classification import confusion_item_sums, metric_from_sums
from judgekit.stats.resampling import bootstrap_ci, cluster_sums
from judgekit.analysis import human_majority, judge_codes
from judgekit.outputs.tables import format_estimate

KEYWORD = "keyword-gcg-29"
# (adapter, folder, {judge id in the study: judge family shown})
DATASETS = [
    ("jbb-judge-comparison", "jbb_judge_comparison",
     {KEYWORD: KEYWORD, "harmbench_cf": "HarmBench-Llama-2-13b-cls", "gpt4_cf": "GPT-4 judge", "llamaguard2_cf": "Llama Guard 2"}),
    ("harmbench-cls-val", "harmbench_cls_val",
     {KEYWORD: KEYWORD, "cls": "HarmBench-Llama-2-13b-cls", "gpt-4-0613": "GPT-4 judge", "llama_guard": "Llama Guard 1"}),
    ("gptfuzz", "gptfuzz_labeled_responses", {KEYWORD: KEYWORD}),
    ("jailbreakeval-mini", "jailbreakeval_mini", {KEYWORD: KEYWORD}),
    ("guardreasoner-eval", "guardreasoner_eval", {KEYWORD: KEYWORD, "guardreasoner-8b": "GuardReasoner-8B"}),
]


SOURCE_TAG = {"jbb-judge-comparison": "JBB", "harmbench-cls-val": "HarmBench", "gptfuzz": "GPTFuzz",
              "jailbreakeval-mini": "JailbreakEval", "guardreasoner-eval": "GuardReasoner"}


def rates(study, judges: dict[str, str], tag: str, args) -> list[dict]:
    reference = human_majority(study).to_numpy()
    codes = judge_codes(study)
    responses = study.responses
    out = []
    for name, index in responses.groupby("benchmark").indices.items():
        benchmark = f"{name} ({tag})"
        for judge_id, family in judges.items():
            if judge_id not in codes:
                continue
            verdicts = codes[judge_id].to_numpy()[index]
            sums = cluster_sums(confusion_item_sums(reference[index], verdicts), responses["behavior_id"].to_numpy()[index])
            if sums[:, 0].sum() == 0:
                continue
            result = bootstrap_ci(sums, lambda s: np.stack([metric_from_sums("fpr", s), metric_from_sums("fnr", s)], axis=-1),
                                  n_boot=args.n_boot, method="bca", rng=args.seed)
            for k, statistic in enumerate(("fpr", "fnr")):
                out.append({"statistic": statistic, "judge_id": f"{family} @ {benchmark}", "family": family, "dataset": benchmark,
                            "reference": "human_majority", "subset": "all", "estimate": result.estimate[k],
                            "ci_low": result.low[k], "ci_high": result.high[k], "n_items": int(sums[:, 0].sum())})
    return out


if __name__ == "__main__":
    args = arguments(__doc__)
    long = []
    with workdir() as tmp:
        for adapter, folder, judges in DATASETS:
            study = converted(adapter, args.data / folder, Path(tmp), judges=(KEYWORD,))
            long += rates(study, judges, SOURCE_TAG[adapter], args)
    frame = pd.DataFrame(long).sort_values(["family", "dataset"])
    wide = frame.assign(cell=[format_estimate(e, lo, hi) for e, lo, hi in zip(frame.estimate, frame.ci_low, frame.ci_high, strict=True)])
    table = wide.pivot(index=["family", "dataset"], columns="statistic", values="cell").reset_index()
    table["n"] = table.set_index(["family", "dataset"]).index.map(frame.groupby(["family", "dataset"])["n_items"].first())
    table = table[["family", "dataset", "fpr", "fnr", "n"]]
    preface = (
        "FPR = share of human-safe responses the judge calls unsafe; FNR = share of human-unsafe responses it calls safe. "
        f"95% BCa cluster-bootstrap intervals ({args.n_boot} resamples, seed {args.seed}; clusters = behaviours/prompts). "
        "keyword-gcg-29 was run by judgekit on the text; the other judges' predictions ship with the datasets. "
        "Datasets: jbb-behaviors/xstest-safe (JailbreakBench), harmbench (HarmBench val), gptfuzz-train/evaluate, "
        "jailjudge and safe-rlhf (JailbreakEval minis), harmbench-response, xstest-response-harmful, safe-rlhf, beavertails "
        "(GuardReasoner's copies)."
    )
    out = args.out / "cross_dataset"
    paths = write_outputs(out, "cross_dataset", table, caption="The same judges' error rates across datasets", preface=preface)
    figure = judge_metric_forest(frame, statistics=["fpr", "fnr"], title="One judge, many datasets: FPR and FNR against humans")
    paths += save_figure(figure, out, "cross_dataset")
    print(table.to_string(index=False))
    print("wrote", *paths, sep="\n  ")
