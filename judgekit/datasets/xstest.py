"""XSTest v2 completions: 5 models, 2 annotators + final label, GPT-4 and string-match evaluators.

XSTest labels compliance, not harm: ``1_full_compliance``, ``2_full_refusal``,
``3_partial_refusal``. The study declares that label set and maps it onto the
binary columns as the XSTest paper collapses it: compliance -> "unsafe" (read:
*complied*), full or partial refusal -> "safe" (read: *refused*), and onto
refusal (``to_refusal``: full and partial refusal -> refusal). The original
3-way label of each evaluator is kept in the judgments' ``original_label`` column.

Each prompt's ``intent`` comes from its type: the ``contrast_*`` prompts are
unsafe (``harmful``: compliance is the harm), the others safe prompts that only
look unsafe (``benign``: a refusal is over-refusal). ``mistralguard`` and
``llama2orig`` are ``mistralinstruct`` and ``llama2new`` with a system prompt
(the paper's guardrail prompt, Llama-2's original one): they are given as
``base_model`` with the ``mitigation`` named, so the report compares each
pair on the same prompts. ``prompt_id`` is XSTest's
``v2-<n>`` id, so the models' responses pair by prompt. Both shipped evaluators
classify compliance vs refusal: the study declares them ``refusal_judges``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from judgekit.datasets.common import ConvertedStudy, judgment_row, metadata, read_csv_records
from judgekit.errors import InputError
from judgekit.store.schema import LabelSet

MODELS = ("gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct")
LABELS = ("1_full_compliance", "2_full_refusal", "3_partial_refusal")
TO_BINARY = {"1_full_compliance": "unsafe", "2_full_refusal": "safe", "3_partial_refusal": "safe"}
TO_REFUSAL = {"1_full_compliance": "compliance", "2_full_refusal": "refusal", "3_partial_refusal": "refusal"}
# The two mitigations by system prompt (paper, Table 1): the mitigated configuration and the one without it.
MITIGATED = {"mistralguard": ("mistralinstruct", "guardrail system prompt"),
             "llama2orig": ("llama2new", "original system prompt")}
UNMITIGATED = {control for control, _ in MITIGATED.values()}
EVALUATORS = {"gpteval": ("gpt4_label", "xstest-gpt4-eval"), "streval": ("strmatch_label", "xstest-string-match")}


def _check_label(value: str, path: Path, row: int, column: str) -> str:
    if value not in LABELS:
        raise InputError(f"unknown label {value!r}; expected one of {list(LABELS)}", file=path, row=row, column=column)
    return value


def _lineage(model: str) -> dict[str, str | None]:
    """``base_model``/``mitigation``: a system-prompt mitigation is compared with the same model without it."""
    if model in MITIGATED:
        control, mitigation = MITIGATED[model]
        return {"base_model": control, "mitigation": mitigation}
    return {"base_model": None, "mitigation": "none" if model in UNMITIGATED else None}


def convert(source: Path) -> ConvertedStudy:
    completions = source / "model_completions"
    evaluations = source / "automated_evaluation_labels"
    if not completions.is_dir():
        raise InputError("expected the XSTest repository layout with model_completions/", file=source)
    responses, annotations, judgments = [], [], []
    for model in MODELS:
        path = completions / f"xstest_v2_completions_{model}.csv"
        if not path.exists():
            continue
        for number, row in enumerate(read_csv_records(path, ["id", "type", "prompt", "completion", "annotation_1", "annotation_2", "final_label"]), start=1):
            item_id = f"{model}-{row['id']}"
            unsafe_prompt = row["type"].startswith("contrast")
            responses.append({
                "item_id": item_id, "prompt": row["prompt"], "response": row["completion"], "model": model,
                "benchmark": "xstest-contrast" if unsafe_prompt else "xstest-safe",
                "category": row["type"], "behavior_id": row["id"], "prompt_id": row["id"],
                "intent": "harmful" if unsafe_prompt else "benign", **_lineage(model),
            })
            for column, annotator in (("annotation_1", "annotator_1"), ("annotation_2", "annotator_2"), ("final_label", "final")):
                annotations.append({"item_id": item_id, "annotator_id": annotator, "label": _check_label(row[column], path, number, column)})
        for kind, (column, judge_id) in EVALUATORS.items():
            eval_path = evaluations / f"xstest_v2_completions_{model}_{kind}.csv"
            if not eval_path.exists():
                continue
            for row in read_csv_records(eval_path, ["id", column]):
                value = row[column]
                label = TO_BINARY.get(value)
                record = judgment_row(f"{model}-{row['id']}", judge_id, label, value, spec=f"shipped:xstest:{judge_id}",
                                      detail=f"not one of {list(LABELS)}")
                record["original_label"] = value if value in LABELS else None
                judgments.append(record)
    if not responses:
        raise InputError("no xstest_v2_completions_<model>.csv files found", file=completions)
    # `final` is XSTest's adjudicated label: the reference where present, never a third rater (as a rater it
    # agreed with the majority by construction and pushed the human ceiling to 1.000).
    return ConvertedStudy(
        pd.DataFrame(responses), pd.DataFrame(annotations), pd.DataFrame(judgments),
        replace(metadata("XSTest v2 completions",
                 "XSTest (Röttger et al., NAACL 2024): completions of 5 models, 2 annotators plus the final label. "
                 "Labels are compliance/refusal, not harm: in this study 'unsafe' means the model COMPLIED and "
                 "'safe' that it refused fully or partly. CC-BY-4.0 prompts; completions under their models' terms.",
                 labels=LabelSet(labels=LABELS, to_binary=dict(TO_BINARY), to_refusal=dict(TO_REFUSAL))),
                adjudicator="final", refusal_judges=tuple(judge_id for _, judge_id in EVALUATORS.values())),
    )
