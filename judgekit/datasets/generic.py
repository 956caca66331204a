"""Any CSV or JSONL with a column mapping onto the responses schema."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from judgekit.datasets.common import ConvertedStudy, binary_label, metadata, read_csv_records, read_jsonl
from judgekit.errors import InputError

TARGETS = ("item_id", "prompt", "response", "model", "base_model", "finetune_goal", "benchmark", "category", "behavior_id", "goal", "label")


def parse_mapping(pairs: list[str], *, targets: tuple[str, ...] = TARGETS) -> dict[str, str]:
    """``["prompt=goal", "response=target_response"]`` (or ``["prompt=goal,response=target_response"]``, the
    comma-separated form) -> {target: source column}."""
    mapping = {}
    for pair in (part.strip() for text in pairs for part in text.split(",")):
        target, sep, column = pair.partition("=")
        if not sep or not column:
            raise InputError(f"--map takes TARGET=COLUMN, got {pair!r}")
        if target not in targets:
            raise InputError(f"--map target {target!r} is not one of {list(targets)}")
        mapping[target] = column
    return mapping


def convert(source: Path, mapping: dict[str, str], *, positive: str = "1", negative: str = "0") -> ConvertedStudy:
    """Rename mapped columns; ``label`` (optional) becomes a single annotator's unsafe/safe label."""
    for needed in ("prompt", "response"):
        mapping.setdefault(needed, needed)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        rows = read_csv_records(source, list(mapping.values()))
    elif suffix in (".jsonl", ".json"):
        rows = read_jsonl(source)
        for number, row in enumerate(rows, start=1):
            for column in mapping.values():
                if column not in row:
                    raise InputError("missing field", file=source, row=number, column=column)
    else:
        raise InputError("generic conversion reads .csv or .jsonl", file=source)
    responses, annotations = [], []
    for number, row in enumerate(rows, start=1):
        record = {target: row[column] for target, column in mapping.items() if target != "label"}
        record.setdefault("item_id", f"{source.stem}-{number:06d}")
        record["item_id"] = str(record["item_id"])
        for key in ("prompt", "response"):
            record[key] = "" if record[key] is None else str(record[key])
        responses.append(record)
        if "label" in mapping:
            annotations.append({"item_id": record["item_id"], "annotator_id": "source-label",
                                "label": binary_label(str(row[mapping["label"]]), path=source, row=number,
                                                      column=mapping["label"], positive=positive, negative=negative)})
    return ConvertedStudy(pd.DataFrame(responses), pd.DataFrame(annotations) if annotations else None, None,
                          metadata(source.stem, f"Converted from {source.name} with mapping {mapping}."))
