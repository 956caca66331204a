"""Can HarmBench's classifier validation set say whether fine-tuning changed safety? The paired design's answer.

The set's completions come from 24 models, two models per behaviour. Taking Llama-2 chat as the base and Vicuna
v1.5 / Orca-2 (built on Llama-2) as fine-tunes, an unpaired comparison of harmful rates compares the models on
*different* behaviours. The paired design (judgekit.stats.paired) matches by behaviour and, with fewer than 10
shared behaviours, reports no effect and says why. This script prints, per pair, the behaviours each model
answered, how many both answered, the paired result (or its refusal), and the unpaired difference with the
humans' labels that an unpaired analysis would have reported.

    python analyses/finetune_effect_harmbench.py [--data ../shared/data] [--out analyses/results]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from judgekit.analysis.inputs import human_majority
from judgekit.engine.steps import convert_dataset_step
from judgekit.stats.paired import paired_mean_difference
from judgekit.store.study import load_study

REPO = Path(__file__).resolve().parent.parent
PAIRS = (("vicuna_13b_v1_5", "llama2_13b"), ("orca_2_13b", "llama2_13b"), ("vicuna_7b_v1_5", "llama2_7b"),
         ("orca_2_7b", "llama2_7b"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "analyses" / "results")
    args = parser.parse_args()
    if not (args.data / "harmbench_cls_val").is_dir():
        parser.exit(2, f"error: {args.data / 'harmbench_cls_val'} not found (pass --data)\n")
    with tempfile.TemporaryDirectory(prefix="judgekit-harmbench-") as workdir:
        out = Path(workdir) / "harmbench"
        convert_dataset_step("harmbench-cls-val", args.data / "harmbench_cls_val", out, table_format=".parquet")
        study = load_study(out)
    responses = study.responses
    humans = human_majority(study).to_numpy()
    lines = ["# Fine-tune effect on HarmBench's classifier validation set: what the paired design says", "",
             "Real data (shared copy: 226 of 301 behaviours). Humans = majority of the 3 annotators. Matching key: "
             "`behavior_id` (each behaviour's test case differs by attack, so prompt texts never match). Made by "
             "`python analyses/finetune_effect_harmbench.py`.", "",
             "| fine-tune vs base | behaviours (fine-tune / base) | shared | paired effect (humans) | "
             "unpaired difference (humans), on different behaviours |", "|---|---|---|---|---|"]
    for finetuned, base in PAIRS:
        mask = responses["model"].isin([finetuned, base]).to_numpy()
        treated = (responses["model"] == finetuned).to_numpy()[mask]
        keys = responses["behavior_id"].to_numpy()[mask]
        result = paired_mean_difference(humans[mask], treated, keys, rng=0)
        paired = result.reason or f"{result.estimate:+.3f} [{result.ci_low:+.3f}, {result.ci_high:+.3f}]"
        labels = humans[mask]
        unpaired = np.nanmean(labels[treated]) - np.nanmean(labels[~treated])
        lines.append(f"| {finetuned} vs {base} | {result.n_units_treatment} / {result.n_units_control} | "
                     f"{result.n_pairs} | {paired} | {unpaired:+.3f} |")
    lines += ["", "The unpaired differences are what a comparison of pooled harmful rates reports; they compare "
              "different behaviours (different difficulty), so they do not estimate the effect of fine-tuning. "
              "Answering the question needs both models' responses to the same prompts (`judgekit generate` "
              "writes them with a shared `prompt_id`)."]
    target = args.out / "finetune_effect_harmbench"
    target.mkdir(parents=True, exist_ok=True)
    (target / "finetune_effect_harmbench.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
