"""Inspect AI eval logs -> a study: every sample a response, every scorer's value a judgment.

* One response per (sample, epoch): ``prompt`` is the last user turn of the input, ``input_messages`` keeps the
  whole input (JSON), ``response`` the final completion (``output.completion``); ``prompt_id`` is
  ``<task>/<sample id>`` (two logs of one task pair up), ``sample`` the epoch from 0. Samples that ended in an
  error have no completion and are left out (counted in the notes), never imported as an empty answer.
* ``model`` is the log's (``eval.model``) unless ``--model`` names it.
* Sample metadata ``category``, ``benchmark``, ``behavior_id``, ``intent`` and ``goal`` fill those columns;
  ``benchmark`` defaults to the task name.
* Each scorer is a judge (judge id = scorer name): its value read as Inspect does (:mod:`.scorer_scales`),
  its explanation (else its answer) as ``raw_output``. Which values are unsafe is the user's to say.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from judgekit.errors import InputError
from judgekit.frameworks.inspect_log import InspectLog, last_user_turn, read_inspect_log, value_to_float
from judgekit.frameworks.scorer_scales import UnsafeRule, scorer_scale, unstated_notes, verdict_labels
from judgekit.frameworks.study_append import ImportedRows

METADATA_COLUMNS = ("category", "benchmark", "behavior_id", "intent", "goal")
_CATEGORICAL = {"C", "I", "P", "N"}


def response_item_id(model: str, prompt_id: str, sample: int) -> str:
    """The item id of a model's ``sample``-th answer to a prompt (the one ``judgekit generate`` gives)."""
    return f"{model}--{prompt_id}--s{sample}"


def import_inspect_logs(paths: list[Path], *, model: str | None = None,
                        unsafe_values: dict[str | None, UnsafeRule] | None = None) -> ImportedRows:
    """Responses and scorer judgments of one or more Inspect logs (see the module docstring)."""
    unsafe_values = unsafe_values or {}
    responses, scored, notes = [], [], []
    specs: dict[str, dict] = {}
    for path in paths:
        log = read_inspect_log(path)
        name = model or log.model
        if not log.task or not name:
            raise InputError("the log names no task or model", file=path, column="eval")
        if not log.samples:
            raise InputError("the log has no samples (it was written with log_samples=False)", file=path)
        for scorer in log.spec.get("scorers") or []:
            if isinstance(scorer, dict) and scorer.get("name"):
                specs.setdefault(scorer["name"], scorer)
        errored = 0
        for row, sample in enumerate(log.samples, start=1):
            if sample.get("error"):
                errored += 1
                continue
            record = _response(log, sample, name, row)
            responses.append(record)
            scored.extend(_scores(log, sample, record["item_id"], row))
        if errored:
            notes.append(f"{path}: {errored} samples ended in an error (no completion) and were left out")
    unknown = sorted(k for k in unsafe_values if k is not None and k not in specs and k not in {s[1] for s in scored})
    if unknown:
        raise InputError(f"--unsafe-value names scorer {unknown[0]!r}, which no log has "
                         f"(they have {sorted({s[1] for s in scored})})")
    frame = pd.DataFrame(responses)
    duplicated = frame.duplicated(subset=["item_id"])
    if duplicated.any():
        row = frame.loc[duplicated].iloc[0]
        raise InputError(f"model {row['model']!r} answers prompt {row['prompt_id']!r} (epoch {row['sample'] + 1}) in "
                         "two of the logs given; import one, or name the models apart with separate --model calls")
    judgments, scales = _judgments(scored, specs, unsafe_values, paths)
    return ImportedRows(frame, judgments, scales, list(paths), notes + unstated_notes(scales),
                        details={"source": "inspect", "unsafe_values": {str(k): v.spec for k, v in unsafe_values.items()}})


def _response(log: InspectLog, sample: dict[str, Any], model: str, row: int) -> dict[str, Any]:
    if "id" not in sample or not isinstance(sample.get("epoch", 1), int):
        raise InputError("sample has no id or epoch", file=log.path, row=row, column="id")
    prompt = last_user_turn(sample.get("input"))
    if prompt is None:
        raise InputError(f"sample {sample['id']!r} has no user message in its input", file=log.path, row=row,
                         column="input")
    output = sample.get("output") if isinstance(sample.get("output"), dict) else {}
    completion = output.get("completion")
    prompt_id = f"{log.task}/{sample['id']}"
    epoch = int(sample.get("epoch", 1))
    metadata = sample.get("metadata") if isinstance(sample.get("metadata"), dict) else {}
    target = sample.get("target")
    record = {
        "item_id": response_item_id(model, prompt_id, epoch - 1),
        "prompt": prompt,
        "response": completion if isinstance(completion, str) else "",
        "model": model,
        "prompt_id": prompt_id,
        "sample": epoch - 1,
        "benchmark": log.task,
        "input_messages": json.dumps(sample.get("input"), ensure_ascii=False),
        "target": target if isinstance(target, str) else json.dumps(target, ensure_ascii=False),
        "source_log": log.path.name,
    }
    for column in METADATA_COLUMNS:
        value = metadata.get(column)
        if isinstance(value, str) and value.strip():
            record[column] = value
    return record


def _scores(log: InspectLog, sample: dict[str, Any], item_id: str, row: int) -> list[tuple]:
    out = []
    for scorer, score in (sample.get("scores") or {}).items():
        if not isinstance(score, dict):
            raise InputError(f"score of {scorer!r} is not an object", file=log.path, row=row, column=f"scores.{scorer}")
        raw = score.get("value")
        number = value_to_float(raw)
        explanation = score.get("explanation") if isinstance(score.get("explanation"), str) else None
        answer = score.get("answer") if isinstance(score.get("answer"), str) else ""
        out.append((item_id, scorer, raw, number, explanation if explanation is not None else answer))
    return out


def _judgments(scored: list[tuple], specs: dict[str, dict], unsafe_values: dict[str | None, UnsafeRule],
               paths: list[Path]) -> tuple[pd.DataFrame | None, list]:
    if not scored:
        return None, []
    frame = pd.DataFrame(scored, columns=["item_id", "judge_id", "inspect_value", "score", "raw_output"])
    frames, scales = [], []
    for scorer, group in frame.groupby("judge_id", sort=True):
        values = group["score"].to_numpy(dtype=float, na_value=np.nan)
        categorical = all(isinstance(v, str) and v in _CATEGORICAL for v in group["inspect_value"])
        rule = unsafe_values.get(scorer, unsafe_values.get(None))
        scale = scorer_scale(scorer, values, rule, categorical=categorical,
                             source=f"Inspect scorer {scorer!r} from {', '.join(p.name for p in paths)}")
        readable = np.isfinite(values)
        out = pd.DataFrame({
            "item_id": group["item_id"].to_numpy(),
            "judge_id": scorer,
            "dimension": scale.dimension,
            "label": verdict_labels(np.where(readable, values, np.nan), scale),
            "score": np.where(readable, values, np.nan),
            "p_unsafe": np.nan,
            "parse_status": [_status(v, ok) for v, ok in zip(group["inspect_value"], readable, strict=True)],
            "raw_output": group["raw_output"].fillna("").astype(str).to_numpy(),
            "judge_spec_hash": _spec_hash(specs.get(scorer, {"name": scorer}), scale),
            "detail": [_unreadable(v) if not ok else "" for v, ok in zip(group["inspect_value"], readable, strict=True)],
            "inspect_value": [json.dumps(v) if not isinstance(v, str) else v for v in group["inspect_value"]],
        })
        out.loc[~readable, "label"] = None
        frames.append(out)
        scales.append(scale)
    return pd.concat(frames, ignore_index=True), scales


def _status(value: Any, readable: bool) -> str:
    if readable:
        return "ok"
    return "skipped" if isinstance(value, float) and math.isnan(value) else "unparseable"


def _unreadable(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "unscored (NaN): Inspect's metrics leave it out"
    return f"value {value!r} has no numeric reading (Inspect would count it as 0 with a warning)"


def _spec_hash(scorer_spec: dict, scale) -> str:
    # the range is left out: it widens with the values seen, while the meaning (dimension, side, threshold) stays
    meaning = {k: v for k, v in scale.to_json().items() if k not in ("min", "max", "source")}
    text = json.dumps({"inspect_scorer": scorer_spec, "scale": meaning}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
