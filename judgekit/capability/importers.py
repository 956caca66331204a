"""Capability scores from evaluation harnesses' own files, as rows of the ``capability`` table.

* **lm-evaluation-harness** — the results JSON (``results_<date>.json``:
  ``results.<task>["<metric>,<filter>"]``, ``"<metric>_stderr,<filter>"``,
  ``n-samples.<task>.effective``, ``model_name``) and, when present, its
  per-sample logs (``samples_<task>_<date>.jsonl`` beside it, written with
  ``--log_samples``: one JSON object per line with ``doc_id``, ``filter`` and
  the per-sample metric values). Per-sample logs give per-item rows; without
  them each task is one aggregate row. Format: ``lm_eval/result_schema.py``
  and ``lm_eval/loggers/evaluation_tracker.py`` of EleutherAI/lm-evaluation-harness.
* **Inspect AI** — an eval log, ``.json`` or the zipped ``.eval`` format (read by
  :mod:`judgekit.frameworks.inspect_log`): per-sample ``scores.<scorer>.value`` read
  as Inspect's ``value_to_float`` does (C 1, P 0.5, I and N 0, yes/true 1,
  no/false 0, numbers), epochs reduced by Inspect's own reducer as logged in
  ``reductions`` (averaged when a log has none); a value it cannot read is an
  error here, never 0 as in Inspect.
* **CSV/JSONL/parquet** already in the table's shape.

Every score must lie in [0, 1]; a metric that does not (perplexity, BLEU on
0-100) is refused with the metric named, so pick another with ``metric``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.datasets.common import read_json, read_jsonl
from judgekit.errors import InputError
from judgekit.frameworks.inspect_log import InspectLog, read_inspect_log, value_to_float
from judgekit.frameworks.lm_eval_files import results_file
from judgekit.frameworks.lm_eval_files import sample_files as lm_eval_sample_files
from judgekit.store.io import read_table
from judgekit.store.schema import SCHEMAS
from judgekit.stats.resampling import wilson_interval

Z95 = 1.959963984540054
_TASK_FIXED_KEYS = {"alias", "name", "sample_len", "sample_count"}


def _unit_score(value: object, *, file: Path, column: str, row: int | None = None) -> float:
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"expected a number, got {value!r}", file=file, row=row, column=column)
    if not 0 <= value <= 1:
        raise InputError(f"value {value!r} is outside [0, 1]; capability scores must be in [0, 1] "
                         "(choose another metric)", file=file, row=row, column=column)
    return float(value)


# ---------------------------------------------------------------- lm-evaluation-harness


def lm_eval_rows(results_path: str | Path, *, model: str | None = None, metric: str | None = None,
                 samples: Sequence[str | Path] = ()) -> pd.DataFrame:
    """Capability rows from an lm-evaluation-harness results JSON and its per-sample logs.

    Parameters
    ----------
    results_path : path
        ``results_<date>.json`` (or ``x_<date>.json``) as written by ``lm_eval --output_path``; the
        ``--output_path`` given to lm-eval (``x.json`` or a folder) finds the file it wrote.
    model : str, optional
        Model name in the study (default: the file's ``model_name``).
    metric : str, optional
        ``acc`` or ``acc,none`` (metric[,filter]); default: each task's first
        metric. Tasks without it are skipped; none having it is an error.
    samples : paths, optional
        Per-sample logs; default: ``samples_<task>_<date>.jsonl`` files in the
        results file's folder with the same date (:mod:`judgekit.frameworks.lm_eval_files`).
    """
    path = results_file(Path(results_path))
    raw = read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("results"), dict) or not raw["results"]:
        raise InputError("not an lm-evaluation-harness results file (no 'results' object with tasks)", file=path)
    name = model or _lm_eval_model_name(raw, path)
    groups = {g for g, members in (raw.get("group_subtasks") or {}).items() if members}
    sample_files = lm_eval_sample_files(path, [Path(s) for s in samples])
    frames = []
    for task, metrics in raw["results"].items():
        if task in groups or not isinstance(metrics, dict):
            continue  # a group's numbers aggregate its subtasks, which are imported themselves
        key = _lm_eval_metric_key(metrics, metric)
        if key is None:
            continue
        if task in sample_files:
            frames.append(_lm_eval_samples(sample_files[task], task, key, name))
        else:
            frames.append(_lm_eval_aggregate(raw, metrics, task, key, name, path))
    if not frames:
        raise InputError(f"no task reports metric {metric!r}", file=path, column="results")
    return pd.concat(frames, ignore_index=True)


def _lm_eval_model_name(raw: dict, path: Path) -> str:
    if isinstance(raw.get("model_name"), str) and raw["model_name"]:
        return raw["model_name"]
    args = (raw.get("config") or {}).get("model_args")
    if isinstance(args, str):
        for part in args.split(","):
            key, _, value = part.partition("=")
            if key.strip() == "pretrained" and value:
                return value.strip()
    raise InputError("cannot tell which model was evaluated (no model_name or pretrained=...); pass --model",
                     file=path)


def _lm_eval_metric_key(metrics: dict, wanted: str | None) -> str | None:
    keys = [k for k in metrics if k not in _TASK_FIXED_KEYS and "_stderr," not in k and "," in k]
    if wanted is None:
        return keys[0] if keys else None
    if "," in wanted:
        return wanted if wanted in keys else None
    return next((k for k in keys if k.split(",", 1)[0] == wanted), None)


def _lm_eval_samples(path: Path, task: str, key: str, model: str) -> pd.DataFrame:
    metric, filter_name = key.split(",", 1)
    scores: dict[str, float] = {}
    for line_number, record in enumerate(read_jsonl(path), start=1):
        if "doc_id" not in record:
            raise InputError("each line must be a JSON object with a doc_id", file=path, row=line_number)
        if record.get("filter", filter_name) != filter_name:
            continue  # the same document scored under another filter
        if metric not in record:
            raise InputError(f"no per-sample value of {metric!r}", file=path, row=line_number, column=metric)
        item = str(record["doc_id"])
        if item in scores:
            raise InputError(f"doc_id {item} appears twice for filter {filter_name!r}", file=path, row=line_number,
                             column="doc_id")
        scores[item] = _unit_score(record[metric], file=path, row=line_number, column=metric)
    if not scores:
        raise InputError(f"no samples for filter {filter_name!r}", file=path)
    return pd.DataFrame({"model": model, "task": task, "item_id": list(scores), "score": list(scores.values()),
                         "source": "lm-eval", "metric": key})


def _lm_eval_aggregate(raw: dict, metrics: dict, task: str, key: str, model: str, path: Path) -> pd.DataFrame:
    column = f"results.{task}.{key}"
    estimate = _unit_score(metrics[key], file=path, column=column)
    counts = (raw.get("n-samples") or {}).get(task) or {}
    n = counts.get("effective", counts.get("original")) if isinstance(counts, dict) else None
    if not isinstance(n, int) or n < 1:
        raise InputError("no item count (n-samples.<task>.effective); cannot give an interval", file=path,
                         column=f"n-samples.{task}")
    metric, filter_name = key.split(",", 1)
    stderr = metrics.get(f"{metric}_stderr,{filter_name}")
    if isinstance(stderr, int | float) and math.isfinite(stderr) and stderr >= 0:
        low, high, method = max(0.0, estimate - Z95 * stderr), min(1.0, estimate + Z95 * stderr), "lm-eval stderr"
    else:  # lm-eval writes "N/A" when it did not bootstrap
        low, high = (float(v) for v in wilson_interval(estimate * n, n))
        method = "wilson (no stderr in results)"
    return pd.DataFrame([{"model": model, "task": task, "item_id": None, "estimate": estimate, "ci_low": low,
                          "ci_high": high, "n": n, "source": "lm-eval", "metric": key, "ci_method": method}])


# ---------------------------------------------------------------- Inspect AI


def inspect_rows(log_path: str | Path, *, model: str | None = None, scorer: str | None = None) -> pd.DataFrame:
    """Capability rows from an Inspect AI eval log: per sample (epochs reduced), or the scorer's aggregate."""
    log = read_inspect_log(log_path)
    name = model or log.model
    if not log.task or not name:
        raise InputError("the log names no task or model", file=log.path, column="eval")
    if log.samples:
        return _inspect_samples(log, name, scorer)
    return _inspect_aggregate(log.path, log.results, log.task, name, scorer)


def _choose_scorer(available: list[str], wanted: str | None, path: Path) -> str:
    if wanted is not None:
        if wanted not in available:
            raise InputError(f"no scorer {wanted!r}; the log has {available}", file=path, column="scores")
        return wanted
    if len(available) != 1:
        raise InputError(f"the log has scorers {available}; choose one with --scorer", file=path, column="scores")
    return available[0]


def _inspect_samples(log: InspectLog, model: str, scorer: str | None) -> pd.DataFrame:
    path = log.path
    available = sorted({k for s in log.samples for k in (s.get("scores") or {})})
    chosen = _choose_scorer(available, scorer, path)
    values: dict[str, list[float]] = {}
    for row, sample in enumerate(log.samples, start=1):
        score = (sample.get("scores") or {}).get(chosen)
        if score is None or "id" not in sample:
            raise InputError(f"sample has no id or no {chosen!r} score", file=path, row=row, column="scores")
        values.setdefault(str(sample["id"]), []).append(
            _inspect_number(score.get("value") if isinstance(score, dict) else None, path, row, f"scores.{chosen}.value",
                            sample["id"]))
    reduced = _inspect_reductions(log, chosen)
    scores = {item: reduced.get(item, math.nan) if reduced is not None else _mean_scored(v) for item, v in values.items()}
    kept = {item: score for item, score in scores.items() if not math.isnan(score)}  # NaN: Inspect's "unscored"
    if not kept:
        raise InputError(f"no sample has a {chosen!r} score", file=path, column="samples")
    for item, score in kept.items():
        _unit_score(score, file=path, column=f"scores.{chosen}.value (sample id {item})")
    return pd.DataFrame({"model": model, "task": log.task, "item_id": list(kept), "score": list(kept.values()),
                         "n_epochs": [len(values[item]) for item in kept], "source": "inspect", "metric": chosen})


def _mean_scored(values: list[float]) -> float:
    scored = [v for v in values if not math.isnan(v)]
    return float(np.mean(scored)) if scored else math.nan


def _inspect_number(raw: object, path: Path, row: int, column: str, sample_id: object) -> float:
    number = value_to_float(raw)
    if number is None:  # Inspect itself would log a warning and count it as 0
        raise InputError(f"cannot read the score value {raw!r} as a number (sample id {sample_id!r})", file=path,
                         row=row, column=column)
    return number


def _inspect_reductions(log: InspectLog, scorer: str) -> dict[str, float] | None:
    """Per-sample values after Inspect's own epoch reducer (what its metrics are computed on), when logged."""
    entry = next((r for r in log.reductions if isinstance(r, dict) and r.get("scorer") == scorer), None)
    if entry is None:
        return None
    reduced = {}
    for row, sample in enumerate(entry.get("samples") or [], start=1):
        if not isinstance(sample, dict) or "sample_id" not in sample:
            raise InputError("reduction has no sample_id", file=log.path, row=row, column=f"reductions.{scorer}")
        reduced[str(sample["sample_id"])] = _inspect_number(sample.get("value"), log.path, row,
                                                             f"reductions.{scorer}.value", sample["sample_id"])
    return reduced


def _inspect_aggregate(path: Path, results: dict | None, task: str, model: str, scorer: str | None) -> pd.DataFrame:
    scores = {s.get("name"): s for s in (results or {}).get("scores") or [] if isinstance(s, dict)}
    chosen = _choose_scorer(sorted(k for k in scores if k), scorer, path)
    metrics = scores[chosen].get("metrics") or {}
    name = next((m for m in ("accuracy", "mean") if m in metrics), None)
    if name is None:
        raise InputError(f"scorer {chosen!r} reports no accuracy or mean metric (has {sorted(metrics)})", file=path,
                         column=f"results.scores.{chosen}.metrics")
    column = f"results.scores.{chosen}.metrics.{name}"
    estimate = _unit_score((metrics[name] or {}).get("value"), file=path, column=column)
    n = scores[chosen].get("scored_samples") or (results or {}).get("completed_samples")
    if not isinstance(n, int) or n < 1:
        raise InputError("no scored sample count; cannot give an interval", file=path, column="results")
    stderr = (metrics.get("stderr") or {}).get("value")
    if isinstance(stderr, int | float) and math.isfinite(stderr) and stderr >= 0:
        low, high, method = max(0.0, estimate - Z95 * stderr), min(1.0, estimate + Z95 * stderr), "inspect stderr"
    else:
        low, high = (float(v) for v in wilson_interval(estimate * n, n))
        method = "wilson (no stderr in log)"
    return pd.DataFrame([{"model": model, "task": task, "item_id": None, "estimate": estimate, "ci_low": low,
                          "ci_high": high, "n": n, "source": "inspect", "metric": f"{chosen}/{name}",
                          "ci_method": method}])


# ---------------------------------------------------------------- generic table


def table_rows(path: str | Path) -> pd.DataFrame:
    """Capability rows from a CSV/JSONL/parquet file already in the ``capability`` table's shape."""
    return read_table(Path(path), SCHEMAS["capability"])
