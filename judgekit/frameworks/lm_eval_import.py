"""lm-evaluation-harness per-sample logs of generative tasks -> a study.

Read: ``samples_<task>_<date>.jsonl`` as ``EvaluationTracker.save_results_samples`` writes it (lm-eval 0.4.13): per
line ``doc_id``, ``doc``, ``target``, ``arguments.gen_args_0.arg_0`` (the prompt sent, few-shot examples and chat
template included) and ``arg_1`` (generation kwargs: a dict for ``generate_until``), ``resps`` (raw generations),
``filtered_resps``, ``filter`` and the metric values by name; one line per (document, filter).

* One response per document (``resps[0][k]`` is sample k): ``prompt`` = ``arg_0``, ``doc`` kept as JSON,
  ``prompt_id`` = ``<task>/<doc_id>``; ``category`` from the document when it has one, ``benchmark`` = task.
* The task's metric on each document is a judge ``lm-eval/<metric>,<filter>`` (graded score; a verdict only with
  ``--unsafe-value``, :mod:`.scorer_scales`), with the filtered answer and the target as ``raw_output``. With
  several samples per document the metric scores the document, not a response, so no judgment is written.
* ``model``: ``--model``, else ``model_name`` of the run's results file beside the samples (same date).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from judgekit.datasets.common import read_json, read_jsonl
from judgekit.errors import InputError
from judgekit.frameworks.inspect_import import response_item_id
from judgekit.frameworks.lm_eval_files import run_results, sample_files
from judgekit.frameworks.scorer_scales import UnsafeRule, scorer_scale, unstated_notes, verdict_labels
from judgekit.frameworks.study_append import ImportedRows

_DOC_COLUMNS = ("category", "behavior_id", "intent", "goal")


def import_lm_eval_samples(paths: list[Path], *, model: str | None = None, metric: str | None = None,
                           unsafe_values: dict[str | None, UnsafeRule] | None = None) -> ImportedRows:
    """Responses and per-document metric judgments of lm-eval per-sample logs (see the module docstring)."""
    unsafe_values = unsafe_values or {}
    responses, judged, notes = [], [], []
    for task, path in sample_files(paths[0], paths).items():
        name = model or _model_name(path)
        records = read_jsonl(path)
        if not records:
            raise InputError("has no samples", file=path)
        key = _metric_key(records, metric, path)
        seen: set = set()
        several = 0
        for row, record in enumerate(records, start=1):
            if record.get("filter") != key[1] or record.get("doc_id") in seen:
                continue
            seen.add(record.get("doc_id"))
            rows, judgment = _document(record, row, path, task, name, key)
            responses.extend(rows)
            if len(rows) == 1:
                judged.append(judgment)
            else:
                several += 1
        if several:
            notes.append(f"{path}: {several} documents have several samples; they get no {key[0]} judgment "
                         "(the metric scores the document, not one response)")
    frame = pd.DataFrame(responses)
    judgments, scales = _judgments(judged, unsafe_values, paths)
    return ImportedRows(frame, judgments, scales, list(paths), notes + unstated_notes(scales),
                        details={"source": "lm-eval"})


def _model_name(samples: Path) -> str:
    results = run_results(samples)
    raw = read_json(results) if results is not None else {}
    name = raw.get("model_name") if isinstance(raw, dict) else None
    if not isinstance(name, str) or not name:
        raise InputError("cannot tell which model answered (no results file of this run beside it naming "
                         "model_name); pass --model", file=samples)
    return name


def _metric_key(records: list[dict], wanted: str | None, path: Path) -> tuple[str, str]:
    first = records[0]
    names = [m for m in first.get("metrics") or [] if isinstance(m, str)]
    filters = list(dict.fromkeys(str(r.get("filter")) for r in records))
    if wanted is None:
        if not names:
            raise InputError("the first line lists no metrics", file=path, row=1, column="metrics")
        return names[0], filters[0]
    metric_name, _, filter_name = wanted.partition(",")
    if metric_name not in names or (filter_name and filter_name not in filters):
        raise InputError(f"no metric {wanted!r} (the file has {names} under filters {filters})", file=path,
                         column="metrics")
    return metric_name, filter_name or filters[0]


def _document(record: dict[str, Any], row: int, path: Path, task: str, model: str,
              key: tuple[str, str]) -> tuple[list[dict], tuple | None]:
    arguments = (record.get("arguments") or {}).get("gen_args_0") if isinstance(record.get("arguments"), dict) else None
    if "doc_id" not in record or not isinstance(arguments, dict) or not isinstance(arguments.get("arg_0"), str):
        raise InputError("a line needs doc_id and arguments.gen_args_0.arg_0 (the prompt)", file=path, row=row,
                         column="arguments")
    if not isinstance(arguments.get("arg_1"), dict):
        raise InputError(f"task {task!r} is not generative (its requests score a given continuation, "
                         "not a generated answer): nothing to judge", file=path, row=row, column="arguments")
    generations = record.get("resps")
    if not (isinstance(generations, list) and generations and isinstance(generations[0], list)
            and all(isinstance(g, str) for g in generations[0])):
        raise InputError("resps must be [[generated text, ...]]", file=path, row=row, column="resps")
    doc = record.get("doc") if isinstance(record.get("doc"), dict) else {}
    prompt_id = f"{task}/{record['doc_id']}"
    rows = []
    for sample, text in enumerate(generations[0]):
        item = {"item_id": response_item_id(model, prompt_id, sample), "prompt": arguments["arg_0"], "response": text,
                "model": model, "prompt_id": prompt_id, "sample": sample, "benchmark": task,
                "doc": json.dumps(doc, ensure_ascii=False, default=str), "target": str(record.get("target", "")),
                "source_log": path.name}
        item.update({c: doc[c] for c in _DOC_COLUMNS if isinstance(doc.get(c), str) and doc[c].strip()})
        rows.append(item)
    value = record.get(key[0])
    filtered = record.get("filtered_resps")
    shown = filtered[0] if isinstance(filtered, list) and filtered else filtered
    judgment = (rows[0]["item_id"], value, f"filtered answer: {shown!r}; target: {record.get('target')!r}")
    return rows, (judgment, f"lm-eval/{key[0]},{key[1]}")


def _judgments(judged: list, unsafe_values: dict[str | None, UnsafeRule], paths: list[Path]
               ) -> tuple[pd.DataFrame | None, list]:
    if not judged:
        return None, []
    frames, scales = [], []
    by_judge: dict[str, list] = {}
    for (item_id, value, raw), judge_id in judged:
        by_judge.setdefault(judge_id, []).append((item_id, value, raw))
    for judge_id, rows in by_judge.items():
        values = np.array([float(v) if isinstance(v, int | float) else np.nan for _, v, _ in rows])
        metric = judge_id.removeprefix("lm-eval/").split(",", 1)[0]
        rule = unsafe_values.get(metric, unsafe_values.get(judge_id, unsafe_values.get(None)))
        scale = scorer_scale(judge_id, values, rule, categorical=False,
                             source=f"lm-eval metric {judge_id.removeprefix('lm-eval/')} from "
                                    f"{', '.join(p.name for p in paths)}")
        readable = np.isfinite(values)
        meaning = {k: v for k, v in scale.to_json().items() if k not in ("min", "max", "source")}
        frames.append(pd.DataFrame({
            "item_id": [r[0] for r in rows], "judge_id": judge_id, "dimension": scale.dimension,
            "label": verdict_labels(values, scale), "score": values, "p_unsafe": np.nan,
            "parse_status": np.where(readable, "ok", "unparseable"), "raw_output": [r[2] for r in rows],
            "judge_spec_hash": hashlib.sha256(json.dumps(meaning, sort_keys=True).encode()).hexdigest()[:16],
            "detail": ["" if ok else f"metric value {r[1]!r} is not a number" for r, ok in zip(rows, readable,
                                                                                               strict=True)],
        }))
        scales.append(scale)
    return pd.concat(frames, ignore_index=True), scales
