"""JailbreakBench: the judge-comparison set (3 humans, 4 judges) and artifact JSON files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from judgekit.datasets.common import (
    ConvertedStudy,
    binary_label,
    judgment_row,
    metadata,
    parse_zero_one,
    read_csv_records,
    read_json,
)
from judgekit.errors import InputError

JBB_FILE = "judge-comparison.csv"
JBB_HUMANS = ("human1", "human2", "human3")
# Judge columns keep their names, so "llama3_cf" still says Llama-3 (the JailbreakBench judge).
JBB_JUDGES = {
    "harmbench_cf": "HarmBench Llama-2-13B classifier",
    "gpt4_cf": "GPT-4 judge",
    "llamaguard2_cf": "Llama Guard 2",
    "llama3_cf": "Llama-3-70B with the JailbreakBench prompt",
}


def _source_file(source: Path, name: str) -> Path:
    return source / name if source.is_dir() else source


def convert_judge_comparison(source: Path) -> ConvertedStudy:
    """``judge-comparison.csv`` (Mac Roman encoded, as published)."""
    path = _source_file(source, JBB_FILE)
    rows = read_csv_records(path, ["Index", "goal", "prompt", "target_response", *JBB_HUMANS, "human_majority", *JBB_JUDGES],
                            encoding="mac_roman")
    responses, annotations, judgments = [], [], []
    mismatched_majority = 0
    for number, row in enumerate(rows, start=1):
        try:
            index = int(row["Index"])
        except ValueError:
            raise InputError(f"Index {row['Index']!r} is not an integer", file=path, row=number, column="Index") from None
        item_id = f"jbb-{index:03d}"
        responses.append({
            "item_id": item_id, "prompt": row["prompt"], "response": row["target_response"], "goal": row["goal"],
            # Rows 200-299 are XSTest's safe prompts answered by Mistral-7B-Instruct (SOURCE.md).
            "benchmark": "jbb-behaviors" if index < 200 else "xstest-safe",
            "behavior_id": " ".join(row["goal"].lower().split()),
        })
        labels = [binary_label(row[h], path=path, row=number, column=h) for h in JBB_HUMANS]
        annotations.extend({"item_id": item_id, "annotator_id": h, "label": lab} for h, lab in zip(JBB_HUMANS, labels, strict=True))
        majority = "unsafe" if labels.count("unsafe") >= 2 else "safe"
        mismatched_majority += majority != binary_label(row["human_majority"], path=path, row=number, column="human_majority")
        for column in JBB_JUDGES:
            judgments.append(judgment_row(item_id, column, parse_zero_one(row[column]), row[column], spec=f"shipped:jbb:{column}",
                                          detail=f"value {row[column]!r} is not 0/1"))
    notes = [f"human_majority column disagrees with the majority of human1..3 on {mismatched_majority} rows"]
    return ConvertedStudy(
        pd.DataFrame(responses), pd.DataFrame(annotations), pd.DataFrame(judgments),
        metadata("JailbreakBench judge comparison",
                 "JailbreakBench judge-comparison set (Chao et al., 2024): 3 human labels per response, judge "
                 "predictions shipped with the data (" + "; ".join(f"{k} = {v}" for k, v in JBB_JUDGES.items()) + "). MIT."),
        notes,
    )


def convert_artifact(source: Path) -> ConvertedStudy:
    """A JailbreakBench artifact JSON (``{"parameters": ..., "jailbreaks": [{goal, prompt, response, jailbroken}]}``).

    The artifact's own ``jailbroken`` verdict becomes a judgment of judge
    ``jbb-artifact-<evaluation method>``; there are no human labels.
    """
    data = read_json(source)
    if not isinstance(data, dict) or not isinstance(data.get("jailbreaks"), list):
        raise InputError("expected a JailbreakBench artifact with a 'jailbreaks' list", file=source)
    parameters = data.get("parameters", {}) if isinstance(data.get("parameters"), dict) else {}
    judge_id = f"jbb-artifact-{parameters.get('evaluation_llm_provider', 'judge')}"
    model = str(parameters.get("model", "unknown"))
    responses, judgments = [], []
    for number, entry in enumerate(data["jailbreaks"], start=1):
        for key in ("goal", "response"):
            if not isinstance(entry, dict) or key not in entry:
                raise InputError(f"jailbreak entry lacks '{key}'", file=source, row=number, column=key)
        item_id = f"{model}-{number:04d}"
        responses.append({"item_id": item_id, "prompt": entry.get("prompt") or entry["goal"], "goal": entry["goal"],
                          "response": entry["response"] or "", "model": model,
                          "category": entry.get("category"), "behavior_id": entry.get("behavior") or entry["goal"]})
        verdict = entry.get("jailbroken")
        label = {True: "unsafe", False: "safe"}.get(verdict)
        judgments.append(judgment_row(item_id, judge_id, label, str(verdict), spec=f"shipped:{judge_id}",
                                      detail=f"'jailbroken' is {verdict!r}, not true/false"))
    return ConvertedStudy(pd.DataFrame(responses), None, pd.DataFrame(judgments),
                          metadata(f"JailbreakBench artifact ({model})", "Converted JailbreakBench artifact; no human labels."))
