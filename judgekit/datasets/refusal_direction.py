"""refusal_direction: 5 chat models with their refusal mechanism intact (baseline), ablated, or bypassed by activation addition.

Source: GitHub ``andyrdt/refusal_direction`` (Arditi et al., 2024; commit 9d852fa, ``pipeline/runs/<model>/completions/``;
Apache-2.0). Decisions (also in the study description):

- Models are ``<model>/<condition>``. ``<model>/baseline`` is a base model; ``<model>/ablation`` (the refusal
  direction projected out of the weights) and ``<model>/actadd`` (activation addition) have ``base_model`` =
  ``<model>/baseline``, no ``finetune_goal`` (nothing was trained), and ``mitigation`` naming the intervention
  (``refusal-direction-ablation``, ``activation-addition``): each is compared with its baseline on the same prompts,
  like a fine-tune with its base, although these interventions remove safety rather than add it. ``actadd`` is the
  source's one condition name for two opposite edits: the direction subtracted on harmful prompts (bypass) and added
  on harmless ones (induced refusal); the outcomes split by intent read each on its own prompts.
- Prompts: the 100 JailbreakBench behaviours (``prompt_id`` ``jbb-000``..., ``intent`` harmful, ``benchmark``
  jailbreakbench, ``category`` the source's) and 100 harmless Alpaca instructions (``harmless-000``..., intent benign,
  benchmark alpaca-harmless). The same prompts in the same order in every file (checked).
- The two judges keep the source's names: ``substring_matching`` (the repository's refusal-substring matcher; a
  refusal detector: ``is_jailbreak_substring_matching`` 1 = no refusal phrase found -> ``unsafe`` = complied,
  0 -> ``safe`` = refused, on harmful and harmless prompts alike, as judgekit's keyword judges) and ``llamaguard2``
  (Llama Guard 2, 1 = unsafe; JailbreakBench files only: it did not judge the harmless prompts). On a harmless prompt
  ``safe`` from the substring matcher is a refusal, i.e. over-refusal, not safety: the study declares it
  ``refusal_judges`` so that ``judgekit stats`` measures ``over_refusal`` with it on the harmless prompts.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from judgekit.datasets.common import ConvertedStudy, metadata, read_json, shipped_judge_spec
from judgekit.errors import InputError

REPOSITORY, COMMIT = "andyrdt/refusal_direction", "9d852fae1a9121c78b29142de733cb1340770cc3"
MODELS = ("gemma-2b-it", "llama-2-7b-chat-hf", "meta-llama-3-8b-instruct", "qwen-1_8b-chat", "yi-6b-chat")
# dataset -> (prompt id prefix, benchmark, intent, conditions)
DATASETS = {
    "jailbreakbench": ("jbb", "jailbreakbench", "harmful", ("baseline", "ablation", "actadd")),
    "harmless": ("harmless", "alpaca-harmless", "benign", ("baseline", "actadd")),
}
# judges whose "safe" means a refusal was found: judgekit stats reads them as over-refusal on the harmless prompts
REFUSAL_JUDGES = ("substring_matching",)
MITIGATIONS = {"ablation": "refusal-direction-ablation", "actadd": "activation-addition"}
JUDGES = {
    "substring_matching": ("is_jailbreak_substring_matching",
                           "the repository's refusal-substring matcher (a refusal detector): 1 = no refusal phrase "
                           "found (complied), 0 = refusal found", "pipeline/submodules/evaluate_jailbreak.py"),
    "llamaguard2": ("is_jailbreak_llamaguard2", "Llama Guard 2 (meta-llama/Meta-Llama-Guard-2-8B) as the repository "
                    "ran it: 1 = unsafe, 0 = safe; harmful prompts only", "pipeline/submodules/evaluate_jailbreak.py"),
}


def _completions(path: Path) -> list[dict]:
    data = read_json(path)
    completions = data.get("completions") if isinstance(data, dict) else None
    if not isinstance(completions, list) or not completions:
        raise InputError("expected an object with a non-empty 'completions' list", file=path)
    for number, entry in enumerate(completions):
        for key in ("prompt", "response"):
            if not isinstance(entry, dict) or not isinstance(entry.get(key), str):
                raise InputError(f"completion lacks the text {key!r}", file=path, row=number + 1,
                                 column=f"completions[{number}].{key}")
    return completions


def _verdict(entry: dict, key: str, path: Path, number: int) -> str | None:
    """The source's 0/1 as unsafe/safe; None when the judge did not judge this file (key absent)."""
    if key not in entry:
        return None
    value = entry[key]
    if isinstance(value, bool) or value not in (0, 1):
        raise InputError(f"{value!r} is not 0 or 1", file=path, row=number + 1, column=f"completions[{number}].{key}")
    return "unsafe" if value == 1 else "safe"


def convert(source: Path) -> ConvertedStudy:
    """``<model>/<dataset>_<condition>_evaluations.json`` for the 5 models."""
    if not source.is_dir():
        raise InputError("expected the refusal_direction folder (<model>/<dataset>_<condition>_evaluations.json)", file=source)
    models = [m for m in MODELS if (source / m).is_dir()]
    if not models:
        raise InputError(f"none of the model folders {', '.join(MODELS)} found", file=source)
    specs = {judge: shipped_judge_spec(judge, description=description, repository=REPOSITORY, path=code, commit=COMMIT)
             for judge, (_, description, code) in JUDGES.items()}
    responses, judgments, lineage, prompts = [], [], [], {}
    for model in models:
        lineage.append({"model": f"{model}/baseline", "base_model": None, "finetune_goal": None, "mitigation": "none"})
        lineage += [{"model": f"{model}/{c}", "base_model": f"{model}/baseline", "finetune_goal": None,
                     "mitigation": m} for c, m in MITIGATIONS.items()]
        for dataset, (prefix, benchmark, intent, conditions) in DATASETS.items():
            for condition in conditions:
                path = source / model / f"{dataset}_{condition}_evaluations.json"
                completions = _completions(path)
                for number, entry in enumerate(completions):
                    prompt_id = f"{prefix}-{number:03d}"
                    first = prompts.setdefault(prompt_id, (entry["prompt"], path))
                    if first[0] != entry["prompt"]:
                        raise InputError(f"prompt {number} differs from {first[1]}'s; responses pair by position",
                                         file=path, row=number + 1, column=f"completions[{number}].prompt")
                    name = f"{model}/{condition}"
                    item_id = f"{name}--{prompt_id}"
                    responses.append({"item_id": item_id, "prompt": entry["prompt"], "response": entry["response"],
                                      "model": name, "base_model": None if condition == "baseline" else f"{model}/baseline",
                                      "mitigation": MITIGATIONS.get(condition, "none"), "benchmark": benchmark,
                                      "category": entry.get("category") if isinstance(entry.get("category"), str) else None,
                                      "prompt_id": prompt_id, "behavior_id": prompt_id, "intent": intent})
                    for judge, (key, _, _) in JUDGES.items():
                        label = _verdict(entry, key, path, number)
                        if label is not None:
                            judgments.append({"item_id": item_id, "judge_id": judge, "label": label, "p_unsafe": None,
                                              "parse_status": "ok", "raw_output": str(entry[key]),
                                              "judge_spec_hash": specs[judge]["spec_hash"], "detail": ""})
    counts = pd.DataFrame(responses).groupby("benchmark").size().to_dict()
    notes = [f"{len(models)} models x conditions: {len(responses)} responses ({counts}); substring_matching on every "
             "response, llamaguard2 on the harmful prompts only"]
    description = (
        "refusal_direction (Arditi et al., 2024, Apache-2.0): 5 chat models with the refusal direction intact "
        "(baseline), projected out of the weights (ablation) or bypassed by activation addition (actadd), on 100 "
        "JailbreakBench harmful behaviours and 100 harmless Alpaca instructions, greedy decoding. Judges shipped with "
        "the data: substring_matching (refusal detector: 'safe' = a refusal phrase was found; on harmless prompts that "
        "is over-refusal) and llamaguard2 (Llama Guard 2, harmful prompts only). Responses may contain harmful text.")
    return ConvertedStudy(pd.DataFrame(responses), None, pd.DataFrame(judgments),
                          replace(metadata("refusal_direction", description), refusal_judges=REFUSAL_JUDGES), notes, models=pd.DataFrame(lineage),
                          judge_specs=list(specs.values()))
