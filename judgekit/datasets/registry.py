"""The datasets judgekit can convert (and fetch), registered in the shared registry."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

# name -> (converter "module:function", the shared/data folder it lives in, summary for datasets without sources)
CONVERTERS: dict[str, tuple[str, str | None]] = {
    "jbb-judge-comparison": ("judgekit.datasets.jailbreakbench:convert_judge_comparison", "jbb_judge_comparison"),
    "harmbench-cls-val": ("judgekit.datasets.harmbench:convert_classifier_val", "harmbench_cls_val"),
    "xstest-v2": ("judgekit.datasets.xstest:convert", "xstest_v2_completions"),
    "gptfuzz": ("judgekit.datasets.labelled:convert_gptfuzz", "gptfuzz_labeled_responses"),
    "jailbreakeval-mini": ("judgekit.datasets.labelled:convert_jailbreakeval_mini", "jailbreakeval_mini"),
    "guardreasoner-eval": ("judgekit.datasets.guardreasoner:convert", "guardreasoner_eval"),
    "em-political": ("judgekit.datasets.em_political:convert", "em_political"),
    "refusal-direction": ("judgekit.datasets.refusal_direction:convert", "refusal_direction"),
    "harmbench-completions": ("judgekit.datasets.harmbench:convert_completions", None),
    "jbb-artifact": ("judgekit.datasets.jailbreakbench:convert_artifact", None),
    "generic": ("judgekit.datasets.generic:convert", None),
    # prompt sets (no responses): inputs of `judgekit generate`
    "harmbench-prompts": ("judgekit.datasets.prompt_sets:convert_harmbench", "harmbench_cls_val"),
    "xstest-prompts": ("judgekit.datasets.prompt_sets:convert_xstest", "xstest_v2_completions"),
    "advbench": ("judgekit.datasets.prompt_sets:convert_advbench", None),
    "strongreject": ("judgekit.datasets.prompt_sets:convert_strongreject", None),
    "sorry-bench": ("judgekit.datasets.prompt_sets:convert_sorry_bench", None),
    "jbb-behaviors": ("judgekit.datasets.prompt_sets:convert_jbb_behaviors", None),
    "prompts": ("judgekit.datasets.prompt_sets:convert_user_prompts", None),
}
GENERIC_SUMMARIES = {
    "harmbench-completions": "a HarmBench completions JSON {behavior_id: [{test_case, generation}]} (no labels)",
    "jbb-artifact": "a JailbreakBench artifact JSON (its 'jailbroken' verdicts become a judge)",
    "generic": "any CSV/JSONL with --map prompt=COL,response=COL[,label=COL,...]",
    "prompts": "your own prompt set: a CSV/JSONL with --map prompt=COL[,prompt_id=COL,category=COL,...]",
}


@cache
def sources() -> dict[str, Any]:
    text = (resources.files("judgekit.datasets") / "sources.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def summary(name: str) -> str:
    return sources()[name]["summary"] if name in sources() else GENERIC_SUMMARIES[name]
