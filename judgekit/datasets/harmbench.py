"""HarmBench: the classifier validation set (3 humans, 11 judges) and completions JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.datasets.common import (
    ConvertedStudy,
    binary_label,
    judgment_row,
    metadata,
    parse_pair_rating,
    parse_yes_no,
    parse_zero_one,
    read_csv_records,
    read_json,
)
from judgekit.errors import InputError

VAL_FILE = "text_behaviors_val_set.json"
BEHAVIOURS_FILE = "harmbench_behaviors_text_all.csv"
HUMANS = ("human_0", "human_1", "human_2")
ZERO_ONE_JUDGES = ("cls", "cls_mistral", "llama_guard", "gpt-4-0613", "gpt-4-1106-preview", "mixtral", "GPTFuzz", "chatglm", "advbench")
YES_NO_JUDGES = ("gpt-3.5-turbo-0613",)
PAIR_JUDGES = ("PAIR_gpt-4-0613",)


def _behaviours(source: Path) -> dict[str, dict[str, str]]:
    path = source / BEHAVIOURS_FILE if source.is_dir() else source.parent / BEHAVIOURS_FILE
    if not path.exists():
        return {}
    return {row["BehaviorID"]: row for row in read_csv_records(path, ["Behavior", "BehaviorID"])}


def _judgment(item_id: str, judge: str, value: Any) -> dict[str, Any]:
    text = "" if value is None else str(value)
    if judge in PAIR_JUDGES:
        label, rating = parse_pair_rating(text)
        detail = f"no 'Rating: [[k]]' with k in 1..10 (got {text[:60]!r})"
    elif judge in YES_NO_JUDGES:
        label, detail = parse_yes_no(text), f"not yes/no: {text[:60]!r}"
    else:
        label, detail = parse_zero_one(text), f"not 0/1: {text[:60]!r}"
    return judgment_row(item_id, judge, label, text, spec=f"shipped:harmbench:{judge}", detail=detail)


def convert_classifier_val(source: Path) -> ConvertedStudy:
    """``text_behaviors_val_set.json`` (+ the behaviours CSV beside it for behaviour text and category)."""
    path = source / VAL_FILE if source.is_dir() else source
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError("expected an object {behavior_id: [items]}", file=path)
    behaviours = _behaviours(source)
    responses, annotations, judgments = [], [], []
    row = 0
    for behavior_id, items in data.items():
        if not isinstance(items, list):
            raise InputError(f"behaviour {behavior_id!r} must map to a list of items", file=path)
        for k, item in enumerate(items):
            row += 1
            for key in ("test_case", "generation", *HUMANS):
                if key not in item:
                    raise InputError(f"item lacks '{key}'", file=path, row=row, column=key)
            item_id = f"hb-{behavior_id}-{k}"
            behaviour = behaviours.get(behavior_id, {})
            responses.append({
                "item_id": item_id, "prompt": item["test_case"], "response": item["generation"],
                "goal": behaviour.get("Behavior"), "model": item.get("experiment"), "benchmark": "harmbench",
                "category": behaviour.get("SemanticCategory"), "behavior_id": behavior_id,
                "attack_method": item.get("method"), "functional_category": behaviour.get("FunctionalCategory"),
            })
            for human in HUMANS:
                label = binary_label(str(item[human]), path=path, row=row, column=human)
                annotations.append({"item_id": item_id, "annotator_id": human, "label": label})
            for judge in (*ZERO_ONE_JUDGES, *YES_NO_JUDGES, *PAIR_JUDGES):
                if judge in item:
                    judgments.append(_judgment(item_id, judge, item[judge]))
    study = ConvertedStudy(
        pd.DataFrame(responses), pd.DataFrame(annotations), pd.DataFrame(judgments),
        metadata("HarmBench classifier validation set",
                 "HarmBench (Mazeika et al., 2024) classifier validation set: 3 human labels per generation and 11 "
                 "judges' shipped predictions (cls = HarmBench Llama-2-13B classifier, PAIR = GPT-4 'Rating: [[k]]' "
                 "with k = 10 as unsafe, gpt-3.5 yes/no, advbench = refusal-string matching). MIT."),
    )
    failed = study.judgments[study.judgments["parse_status"] != "ok"].groupby("judge_id").size()
    study.notes.append("unparseable shipped values: " + (", ".join(f"{j} {n}" for j, n in failed.items()) or "none"))
    return study


def convert_completions(source: Path) -> ConvertedStudy:
    """A HarmBench completions JSON ``{behavior_id: [{test_case, generation}, ...]}``; no labels."""
    data = read_json(source)
    if not isinstance(data, dict):
        raise InputError("expected an object {behavior_id: [completions]}", file=source)
    model = source.stem
    responses = []
    for behavior_id, items in data.items():
        for k, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict) or "generation" not in item:
                raise InputError(f"completion {k} of {behavior_id!r} lacks 'generation'", file=source)
            responses.append({"item_id": f"{model}-{behavior_id}-{k}", "prompt": item.get("test_case", behavior_id),
                              "response": item["generation"], "model": model, "benchmark": "harmbench",
                              "behavior_id": behavior_id})
    if not responses:
        raise InputError("no completions found", file=source)
    return ConvertedStudy(pd.DataFrame(responses), None, None,
                          metadata(f"HarmBench completions ({model})", "Converted HarmBench completions; no labels."))
