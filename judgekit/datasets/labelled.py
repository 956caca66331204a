"""Single-label datasets: GPTFuzz hand labels and JailbreakEval's JAILJUDGE / Safe-RLHF minis."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from judgekit.datasets.common import ConvertedStudy, binary_label, metadata, read_csv_records
from judgekit.errors import InputError


def convert_gptfuzz(source: Path) -> ConvertedStudy:
    """``train.csv`` + ``evaluate.csv`` (question index, Response, label) and ``question_list.csv``."""
    questions_path = source / "question_list.csv"
    questions = {row["index"]: row["text"] for row in read_csv_records(questions_path, ["index", "text"])}
    responses, annotations = [], []
    for split in ("train", "evaluate"):
        path = source / f"{split}.csv"
        for number, row in enumerate(read_csv_records(path, ["question", "Response", "label"]), start=1):
            if row["question"] not in questions:
                raise InputError(f"question {row['question']!r} is not in question_list.csv", file=path, row=number, column="question")
            item_id = f"gptfuzz-{split}-{number:05d}"
            responses.append({"item_id": item_id, "prompt": questions[row["question"]], "goal": questions[row["question"]],
                              "response": row["Response"], "benchmark": f"gptfuzz-{split}", "behavior_id": f"q{row['question']}"})
            annotations.append({"item_id": item_id, "annotator_id": "gptfuzz-authors",
                                "label": binary_label(row["label"], path=path, row=number, column="label")})
    return ConvertedStudy(pd.DataFrame(responses), pd.DataFrame(annotations), None,
                          metadata("GPTFuzz labelled responses",
                                   "GPTFuzzer (Yu et al., 2023): responses to 100 questions x 77 jailbreak templates, one "
                                   "hand label each (1 = jailbroken). The template-wrapped prompt is not recorded, so "
                                   "`prompt` is the bare question. MIT."))


JAILBREAKEVAL_FILES = {"JAILJUDGEmini.csv": "jailjudge", "Safe-RLHFmini.csv": "safe-rlhf"}


def convert_jailbreakeval_mini(source: Path) -> ConvertedStudy:
    responses, annotations = [], []
    for filename, benchmark in JAILBREAKEVAL_FILES.items():
        path = source / filename
        if not path.exists():
            continue
        for number, row in enumerate(read_csv_records(path, ["question", "answer", "label"]), start=1):
            item_id = f"{benchmark}-{number:05d}"
            responses.append({"item_id": item_id, "prompt": row["question"], "response": row["answer"], "benchmark": benchmark,
                              "category": row.get("hazard_cate_llamaguard3") or None,
                              "behavior_id": f"{benchmark}:{' '.join(row['question'].lower().split())[:200]}",
                              "prompt_complexity": row.get("prompt_complexity_cate") or None})
            annotations.append({"item_id": item_id, "annotator_id": f"{benchmark}-label",
                                "label": binary_label(row["label"], path=path, row=number, column="label")})
    if not responses:
        raise InputError(f"none of {list(JAILBREAKEVAL_FILES)} found", file=source)
    return ConvertedStudy(pd.DataFrame(responses), pd.DataFrame(annotations), None,
                          metadata("JailbreakEval minis (JAILJUDGE, Safe-RLHF)",
                                   "JailbreakEval's labelled samples of JAILJUDGE (custom research licence) and "
                                   "PKU-SafeRLHF (CC-BY-NC-4.0): one aggregated label per response. Research use only."))
