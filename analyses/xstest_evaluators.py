"""XSTest: the string-match and GPT-4 evaluators against the human final label, 3-way
(full compliance / full refusal / partial refusal) and collapsed to compliance vs refusal
(Röttger et al. 2024). Unparseable GPT-4 outputs are counted and left out, never guessed.

    python analyses/xstest_evaluators.py [--data ../shared/data] [--out analyses/results]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from common import arguments, converted, workdir, write_outputs

from judgekit.outputs.figures import judge_metric_forest
from judgekit.outputs.style import save_figure
from judgekit.stats import agreement as ag
from judgekit.stats.resampling import bootstrap_ci, cluster_sums
from judgekit.outputs.tables import format_estimate

CODES = {"1_full_compliance": 0.0, "2_full_refusal": 1.0, "3_partial_refusal": 2.0}
COLLAPSED = {"1_full_compliance": 0.0, "2_full_refusal": 1.0, "3_partial_refusal": 1.0}


def agreement(judge: np.ndarray, final: np.ndarray, clusters: np.ndarray, categories: np.ndarray, args) -> dict[str, tuple]:
    sums = cluster_sums(ag.two_rater_item_sums(judge, final, categories), clusters)
    fns = {"accuracy": ag.two_rater_agreement_from_sums, "cohen_kappa": ag.cohen_kappa_from_sums}
    result = bootstrap_ci(sums, lambda s: np.stack([f(s) for f in fns.values()], axis=-1), n_boot=args.n_boot, method="bca", rng=args.seed)
    return {name: (result.estimate[k], result.low[k], result.high[k]) for k, name in enumerate(fns)} | {"n": int(sums[:, 0].sum())}


if __name__ == "__main__":
    args = arguments(__doc__)
    with workdir() as tmp:
        study = converted("xstest-v2", args.data / "xstest_v2_completions", Path(tmp))
    final = study.annotations[study.annotations.annotator_id == "final"].set_index("item_id")["label"].reindex(study.responses.item_id)
    clusters = study.responses["behavior_id"].to_numpy()
    rows, long = [], []
    for judge_id, group in study.judgments.groupby("judge_id"):
        original = group.set_index("item_id")["original_label"].reindex(study.responses.item_id)
        unparseable = int((group.parse_status != "ok").sum())
        for scheme, mapping, categories in (("3-way", CODES, np.array([0.0, 1.0, 2.0])), ("collapsed", COLLAPSED, np.array([0.0, 1.0]))):
            result = agreement(original.map(mapping).to_numpy(dtype=float), final.map(mapping).to_numpy(dtype=float), clusters, categories, args)
            rows.append({"evaluator": judge_id, "labels": scheme, "accuracy": format_estimate(*result["accuracy"]),
                         "Cohen's kappa": format_estimate(*result["cohen_kappa"]), "n": result["n"], "unparseable": unparseable})
            for statistic in ("accuracy", "cohen_kappa"):
                estimate, low, high = result[statistic]
                long.append({"statistic": statistic, "judge_id": judge_id, "reference": "final_label", "subset": scheme,
                             "estimate": estimate, "ci_low": low, "ci_high": high})
    table = pd.DataFrame(rows)
    preface = (
        f"XSTest v2, shared copy: {len(study.responses)} completions (5 models x {study.responses.behavior_id.nunique()} prompts). "
        "Reference: the human final label. Collapsed = compliance vs refusal (full or partial), as in the XSTest paper. "
        f"95% BCa cluster-bootstrap intervals over prompts ({args.n_boot} resamples, seed {args.seed}). "
        "The string matcher only outputs compliance or full refusal, so it can never match a partial refusal in the 3-way scheme."
    )
    out = args.out / "xstest_evaluators"
    paths = write_outputs(out, "xstest_evaluators", table, caption="XSTest evaluators against the human final label", preface=preface)
    figure = judge_metric_forest(pd.DataFrame(long), statistics=["accuracy", "cohen_kappa"], subsets=["3-way", "collapsed"],
                                 reference="final_label", title="XSTest evaluators vs the human final label")
    paths += save_figure(figure, out, "xstest_evaluators")
    print(preface)
    print(table.to_string(index=False))
    print("wrote", *paths, sep="\n  ")
