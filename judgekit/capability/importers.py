"""Capability scores from evaluation harnesses' own files, as rows of the ``capability`` table.

* **lm-evaluation-harness** — the results JSON (``results_<date>.json``:
  ``results.<task>["<metric>,<filter>"]``, ``"<metric>_stderr,<filter>"``,
  ``n-samples.<task>.effective``, ``model_name``) and, when present, its
  per-sample logs (``samples_<task>_<date>.jsonl`` beside it, written with
  ``--log_samples``: one JSON object per line with ``doc_id``, ``filter`` and
  the per-sample metric values). Per-sample logs give per-item rows; without
  them each task is one aggregate row. Format: ``lm_eval/result_schema.py``
  and ``lm_eval/loggers/evaluation_tracker.py`` of EleutherAI/lm-evaluation-harness.
* **Inspect AI** — an eval log, ``.json`` or the zipped ``.eval`` format
  (``start.json``, ``results.json``, ``samples/<id>_epoch_<n>.json``): per-sample
  ``scores.<scorer>.value`` read as Inspect's ``value_to_float`` does (C 1,
  P 0.5, I and N 0, yes/true 1, no/false 0, numbers), epochs averaged per
  sample; a value it cannot read is an error here, never 0 as in Inspect.
  Format: ``src/inspect_ai/log/_log.py``, ``scorer/_metric.py`` and
  ``log/_recorders/eval.py`` of UKGovernmentBEIS/inspect_ai.
* **CSV/JSONL/parquet** already in the table's shape.

Every score must lie in [0, 1]; a metric that does not (perplexity, BLEU on
0-100) is refused with the metric named, so pick another with ``metric``.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.datasets.common import read_json, read_jsonl
from judgekit.errors import InputError
from judgekit.io import read_table
from judgekit.schema import SCHEMAS
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
        ``results_<date>.json`` as written by ``lm_eval --output_path``.
    model : str, optional
        Model name in the study (default: the file's ``model_name``).
    metric : str, optional
        ``acc`` or ``acc,none`` (metric[,filter]); default: each task's first
        metric. Tasks without it are skipped; none having it is an error.
    samples : paths, optional
        Per-sample logs; default: ``samples_<task>_<date>.jsonl`` files in the
        results file's folder with the same date.
    """
    path = Path(results_path)
    raw = read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("results"), dict) or not raw["results"]:
        raise InputError("not an lm-evaluation-harness results file (no 'results' object with tasks)", file=path)
    name = model or _lm_eval_model_name(raw, path)
    groups = {g for g, members in (raw.get("group_subtasks") or {}).items() if members}
    sample_files = _lm_eval_sample_files(path, [Path(s) for s in samples])
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


def _lm_eval_sample_files(results: Path, given: list[Path]) -> dict[str, Path]:
    if given:
        files = given
    else:
        date = results.stem.removeprefix("results_") if results.stem.startswith("results_") else None
        files = sorted(results.parent.glob(f"samples_*_{date}.jsonl")) if date else []
    out = {}
    for file in files:
        stem = file.name.removeprefix("samples_").removesuffix(".jsonl")
        task, sep, _date = stem.rpartition("_")
        if not file.name.startswith("samples_") or not sep or not task:
            raise InputError("cannot read the task from the name; per-sample logs are named "
                             "samples_<task>_<date>.jsonl", file=file)
        out[task] = file
    return out


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


def inspect_value(value: object) -> float | None:
    """Inspect's ``value_to_float`` for the default C/I/P/N values; None where it has no reading."""
    if isinstance(value, bool | int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    fixed = {"C": 1.0, "P": 0.5, "I": 0.0, "N": 0.0}
    if value in fixed:
        return fixed[value]
    lowered = value.lower()
    if lowered in ("yes", "true"):
        return 1.0
    if lowered in ("no", "false"):
        return 0.0
    try:
        number = float(lowered)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _read_inspect_log(path: Path) -> tuple[dict, dict | None, list[dict]]:
    """(eval spec, results, samples) of a ``.json`` or ``.eval`` log."""
    if path.suffix == ".eval":
        try:
            with zipfile.ZipFile(path) as archive:
                start = json.loads(archive.read("start.json"))
                finished = json.loads(archive.read("results.json")) if "results.json" in archive.namelist() else {}
                samples = [json.loads(archive.read(n)) for n in sorted(archive.namelist())
                           if n.startswith("samples/") and n.endswith(".json")]
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"not a readable Inspect .eval log: {err}", file=path) from None
        raw = {"eval": start.get("eval"), "status": finished.get("status"), "results": finished.get("results"),
               "samples": samples}
    else:
        raw = read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("eval"), dict):
        raise InputError("not an Inspect AI eval log (no 'eval' object)", file=path)
    if raw.get("status") != "success":
        raise InputError(f"eval status is {raw.get('status')!r}, not 'success': its scores are incomplete",
                         file=path, column="status")
    return raw["eval"], raw.get("results"), raw.get("samples") or []


def inspect_rows(log_path: str | Path, *, model: str | None = None, scorer: str | None = None) -> pd.DataFrame:
    """Capability rows from an Inspect AI eval log: per sample (epochs averaged), or the scorer's aggregate."""
    path = Path(log_path)
    spec, results, samples = _read_inspect_log(path)
    task = spec.get("task")
    name = model or spec.get("model")
    if not task or not name:
        raise InputError("the log names no task or model", file=path, column="eval")
    if samples:
        return _inspect_samples(path, samples, str(task), str(name), scorer)
    return _inspect_aggregate(path, results, str(task), str(name), scorer)


def _choose_scorer(available: list[str], wanted: str | None, path: Path) -> str:
    if wanted is not None:
        if wanted not in available:
            raise InputError(f"no scorer {wanted!r}; the log has {available}", file=path, column="scores")
        return wanted
    if len(available) != 1:
        raise InputError(f"the log has scorers {available}; choose one with --scorer", file=path, column="scores")
    return available[0]


def _inspect_samples(path: Path, samples: list[dict], task: str, model: str, scorer: str | None) -> pd.DataFrame:
    available = sorted({k for s in samples if isinstance(s, dict) for k in (s.get("scores") or {})})
    chosen = _choose_scorer(available, scorer, path)
    values: dict[str, list[float]] = {}
    for row, sample in enumerate(samples, start=1):
        score = (sample.get("scores") or {}).get(chosen) if isinstance(sample, dict) else None
        if score is None or "id" not in sample:
            raise InputError(f"sample has no id or no {chosen!r} score", file=path, row=row, column="scores")
        raw = score.get("value") if isinstance(score, dict) else None
        number = inspect_value(raw)
        if number is None:
            raise InputError(f"cannot read the score value {raw!r} as a number (sample id {sample['id']!r})",
                             file=path, row=row, column=f"scores.{chosen}.value")
        if math.isnan(number):
            continue  # Inspect's "unscored" sentinel: excluded, as Inspect's metrics exclude it
        values.setdefault(str(sample["id"]), []).append(
            _unit_score(number, file=path, row=row, column=f"scores.{chosen}.value"))
    if not values:
        raise InputError(f"no sample has a {chosen!r} score", file=path, column="samples")
    return pd.DataFrame({"model": model, "task": task, "item_id": list(values),
                         "score": [float(np.mean(v)) for v in values.values()],
                         "n_epochs": [len(v) for v in values.values()], "source": "inspect", "metric": chosen})


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
