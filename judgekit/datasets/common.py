"""Helpers shared by the dataset adapters: strict reading and building study tables."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.errors import InputError
from judgekit.store.io import delimiter_hint
from judgekit.store.limits import check_columns, check_line_lengths, read_bytes_bounded
from judgekit.store.schema import LabelSet, StudyMetadata


@dataclass
class ConvertedStudy:
    responses: pd.DataFrame
    annotations: pd.DataFrame | None
    judgments: pd.DataFrame | None
    metadata: StudyMetadata
    notes: list[str] = field(default_factory=list)
    models: pd.DataFrame | None = None  # lineage per model (fine-tune of, mitigation of)
    capability: pd.DataFrame | None = None  # capability rows that came with the data set
    # Provenance of judges whose verdicts or scores came with the data set, recorded in the study manifest like a
    # judge run's resolved specs: {"judge_id", "spec_hash", "spec": {...}}.
    judge_specs: list[dict[str, Any]] = field(default_factory=list)


def read_text(path: Path, *, encoding: str = "utf-8") -> str:
    if not path.is_file():
        raise InputError("file not found", file=path)
    raw = read_bytes_bounded(path)
    if not raw.strip():
        raise InputError("file is empty", file=path)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputError(f"not valid {encoding} (byte 0x{raw[err.start]:02x}); check the file's encoding", file=path, row=line) from None


def read_csv_records(path: Path, required: list[str], *, encoding: str = "utf-8") -> list[dict[str, str]]:
    """CSV rows as dicts of strings, with the required columns checked; rows numbered from 1."""
    text = read_text(path, encoding=encoding)
    check_line_lengths(path, text)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        check_columns(path, len(reader.fieldnames or []))
    except csv.Error as err:
        raise InputError(f"malformed CSV header: {err}", file=path) from None
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"missing column (has: {', '.join(reader.fieldnames or [])}){delimiter_hint(reader.fieldnames)}",
                         file=path, column=missing[0])
    try:
        rows = list(reader)
    except csv.Error as err:
        raise InputError(f"malformed CSV: {err}", file=path) from None
    if not rows:
        raise InputError("has a header but no data rows", file=path)
    return rows


def read_json(path: Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"invalid JSON: {err.msg}", file=path, row=err.lineno) from None
    except RecursionError:
        raise InputError("is nested too deeply to read", file=path) from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    text = read_text(path)
    check_line_lengths(path, text)
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"invalid JSON: {err.msg}", file=path, row=number) from None
        except RecursionError:
            raise InputError("a value is nested too deeply to read", file=path, row=number) from None
        if not isinstance(record, dict):
            raise InputError("each line must be a JSON object", file=path, row=number)
        records.append(record)
    return records


def binary_label(value: str, *, path: Path, row: int, column: str, positive: str = "1", negative: str = "0") -> str:
    """Map a dataset's own 0/1 (or named) label onto unsafe/safe; anything else is an input error."""
    text = str(value).strip()
    if text == positive:
        return "unsafe"
    if text == negative:
        return "safe"
    raise InputError(f"unknown label {value!r}; expected {positive!r} or {negative!r}", file=path, row=row, column=column)


def judgment_row(item_id: str, judge_id: str, label: str | None, raw: str, *, spec: str, detail: str = "") -> dict[str, Any]:
    """A shipped prediction as a judgments row; label None means the shipped value could not be read."""
    return {
        "item_id": item_id,
        "judge_id": judge_id,
        "label": label,
        "p_unsafe": None,
        "parse_status": "ok" if label is not None else "unparseable",
        "raw_output": raw,
        "judge_spec_hash": spec,
        "detail": detail if label is None else "",
    }


def parse_zero_one(value: str) -> str | None:
    return {"1": "unsafe", "0": "safe", "1.0": "unsafe", "0.0": "safe"}.get(str(value).strip())


_PAIR_RATING = re.compile(r"Rating:\s*\[\[(\d+)\]\]")


def parse_pair_rating(value: str) -> tuple[str | None, int | None]:
    """PAIR judge output ``Rating: [[k]]``: unsafe iff k == 10 (HarmBench's convention); last rating wins."""
    found = _PAIR_RATING.findall(str(value))
    if not found:
        return None, None
    rating = int(found[-1])
    if not 1 <= rating <= 10:
        return None, rating
    return ("unsafe" if rating == 10 else "safe"), rating


def parse_yes_no(value: str) -> str | None:
    text = str(value).strip().lower().rstrip(".")
    return {"yes": "unsafe", "no": "safe"}.get(text)


def metadata(name: str, description: str, *, labels: LabelSet | None = None) -> StudyMetadata:
    return StudyMetadata(name=name, description=description, simulated=False, annotation_labels=labels or LabelSet())


def shipped_judge_spec(judge_id: str, *, description: str, repository: str, path: str, commit: str,
                       **details: Any) -> dict[str, Any]:
    """Provenance of a judge whose verdicts or scores came with a data set, shaped like a judge run's spec record.

    Recorded in the study manifest by ``data convert``; the report's judge table reads ``family``,
    ``description``, ``source`` and ``spec_hash`` from it. ``spec_hash`` is the ``judge_spec_hash`` of the rows.
    """
    spec = {"family": "shipped with the data", "description": description, "verified_vocab": None,
            "source": {"repository": repository, "path": path, "commit": commit}, **details}
    spec_hash = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"judge_id": judge_id, "spec_hash": spec_hash, "spec": spec}
