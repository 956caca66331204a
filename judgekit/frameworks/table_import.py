"""Your own evaluation table -> a study: ``judgekit data import table FILE... --out STUDY``.

One or more CSV, TSV, JSONL or parquet files (or a ``datasets`` folder) with one response per row. The user
says what each column is; nothing is guessed:

* ``--map TARGET=COL`` (repeat or comma-separate) names the columns of ``prompt``, ``response`` (both needed),
  ``prompt_id``, ``model``, ``sample``, ``benchmark``, ``intent``... One file may hold many models.
* ``--judge NAME=COL``: another judge's verdicts; judge NAME, provenance ``imported: FILE:COL``. Its reading is
  declared with ``--unsafe-value NAME=VALUE`` (that value is unsafe, any other safe) or ``NAME=>=X`` /
  ``NAME=<=X`` (a threshold on a numeric score), the syntax of the Inspect importer (:mod:`.scorer_scales`).
  An empty cell is no verdict, never "safe".
* ``--label COL`` (``--annotator ID`` per column, default the column name): human labels, read with
  ``--unsafe-value label=VALUE``. (``--map label=COL`` keeps the old ``data import hf`` reading: 1/unsafe/true
  unsafe, 0/safe/false safe, annotator ``source-label``.)
* Scores: ``--scale NAME=LOW:HIGH`` declares a score column's range (a score outside it is an error);
  ``--probability NAME`` keeps a P(unsafe) column as ``p_unsafe``; ``--judge JUDGE:DIMENSION=COL`` is a graded score
  on another dimension (``coherent``), no label. An empty score is no judgement, unless ``--if-empty NAME=STATUS`` or
  ``--empty-reason NAME=COL`` makes it a failure row with that parse status (a judge that said CODE or REFUSAL).
* ``--sample-from-order`` numbers several responses per (model, prompt) in row order (paired effects average
  them within the prompt); ``--records KEY.KEY`` says where a JSON file keeps its records (``*``: every key).
* ``--set COLUMN=VALUE`` constants, ``--values COL:OLD=NEW,...`` value maps (applied first), ``--where COL=V`` /
  ``COL!=V`` row filters (on the mapped values; all must hold).
* A source column named like a judgekit column and not mapped is kept as ``source_<name>``; every other
  unmapped column is kept as an extra response column. The preview names both.

Everything is read and checked before anything is written; ``TableImport.preview`` says what would be written
(``--dry-run`` stops there).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.datasets.common import read_json, read_jsonl, read_text
from judgekit.errors import InputError
from judgekit.frameworks.hf_datasets import HF_TARGETS, read_source
from judgekit.frameworks.inspect_import import response_item_id
from judgekit.frameworks.scorer_scales import UnsafeRule, parse_unsafe_values
from judgekit.frameworks.study_append import ImportedRows
from judgekit.store.schema import DEFAULT_DIMENSION, INTENTS, PARSE_STATUSES, SCHEMAS, JudgeScale

TABLE_TARGETS = (*HF_TARGETS, "goal")
REQUIRED = ("prompt", "response")
LABEL_RULE = "label"  # the --unsafe-value name of the human label columns
LEGACY_ANNOTATOR = "source-label"  # annotator of --map label=COL (the data import hf reading)
# Column names people give prompts and responses, for "did you mean" beside the close spellings.
SYNONYMS = {
    "prompt": ("question", "goal", "input", "instruction", "query", "request", "behavior", "user_prompt"),
    "response": ("completion", "answer", "output", "target_response", "generation", "model_response", "reply"),
    "model": ("model_name", "model_id", "target_model", "system"),
    "prompt_id": ("id", "question_id", "behavior_id", "sample_id", "index"),
}
FAILURE_STATUSES = tuple(s for s in PARSE_STATUSES if s != "ok")  # what an empty score may say with --if-empty
_LEGACY_LABELS = {"unsafe": "unsafe", "safe": "safe", "true": "unsafe", "false": "safe", "1": "unsafe", "0": "safe"}


@dataclass(frozen=True)
class TableOptions:
    """The command line's reading of the table (see the module docstring)."""

    maps: tuple[str, ...] = ()
    judges: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    annotators: tuple[str, ...] = ()
    unsafe_values: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    wheres: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    scales: tuple[str, ...] = ()
    if_empty: tuple[str, ...] = ()
    empty_reasons: tuple[str, ...] = ()
    sample_from_order: bool = False
    records: str | None = None
    probabilities: tuple[str, ...] = ()
    model: str | None = None
    split: str | None = None
    encoding: str = "utf-8"


@dataclass
class _Plan:
    mapping: dict[str, str]
    judges: dict[str, str]
    labels: list[tuple[str, str]]  # (column, annotator)
    rules: dict[str | None, UnsafeRule]
    constants: dict[str, str]
    filters: list[tuple[str, bool, str]]  # (column, equal, value)
    value_maps: dict[str, dict[str, str]]
    legacy_label: str | None = None  # --map label=COL
    scales: dict[str, tuple[float, float]] = field(default_factory=dict)  # --scale NAME=LOW:HIGH
    if_empty: dict[str, str] = field(default_factory=dict)  # --if-empty NAME=STATUS
    empty_reasons: dict[str, str] = field(default_factory=dict)  # --empty-reason NAME=COL
    sample_from_order: bool = False
    probabilities: set[str] = field(default_factory=set)  # --probability NAME: the column is P(unsafe)


@dataclass
class TableImport:
    """The rows to write and what the preview says about them."""

    rows: ImportedRows
    preview: list[str] = field(default_factory=list)


def _pairs(texts: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    out = []
    for part in (p.strip() for text in texts for p in text.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InputError(f"{option} takes NAME=VALUE, got {part!r}")
        out.append((name.strip(), value.strip()))
    return out


def _plan(options: TableOptions) -> _Plan:
    mapping: dict[str, str] = {}
    for target, column in _pairs(options.maps, "--map"):
        if target not in TABLE_TARGETS:
            raise InputError(f"--map target {target!r} is not one of {list(TABLE_TARGETS)}")
        mapping[target] = column
    judges = dict(_pairs(options.judges, "--judge"))
    if LABEL_RULE in judges:
        raise InputError("--judge label=... : 'label' names the human labels; give the judge another name")
    if len(options.annotators) > len(options.labels):
        raise InputError("--annotator given more often than --label (one annotator per label column)")
    labels = [(column, options.annotators[k] if k < len(options.annotators) else column)
              for k, column in enumerate(options.labels)]
    legacy = mapping.pop("label", None)
    rules = parse_unsafe_values(list(options.unsafe_values), literal_values=True)
    unknown = sorted(k for k in rules if k not in judges and k != LABEL_RULE)
    if unknown:
        raise InputError(f"--unsafe-value names {unknown[0]!r}, which is neither a --judge nor 'label' "
                         f"(judges: {sorted(judges) or 'none'})")
    constants = dict(_pairs(options.sets, "--set"))
    if options.model is not None:
        constants["model"] = options.model
    clash = sorted(set(constants) & set(mapping))
    if clash:
        raise InputError(f"{clash[0]!r} is given both by --map and by --set/--model; keep one")
    filters = []
    for text in options.wheres:
        column, sep, value = text.partition("!=") if "!=" in text else text.partition("=")
        if not sep or not column.strip():
            raise InputError(f"--where takes COL=VALUE or COL!=VALUE, got {text!r}")
        filters.append((column.strip(), sep == "=", value.strip()))
    value_maps: dict[str, dict[str, str]] = {}
    for text in options.values:
        column, sep, pairs = text.partition(":")
        if not sep or not column.strip():
            raise InputError(f"--values takes COL:OLD=NEW,OLD=NEW, got {text!r}")
        value_maps.setdefault(column.strip(), {}).update(dict(_pairs((pairs,), "--values")))
    scales = {name: _scale_range(name, text) for name, text in _pairs(options.scales, "--scale")}
    if_empty = dict(_pairs(options.if_empty, "--if-empty"))
    empty_reasons = dict(_pairs(options.empty_reasons, "--empty-reason"))
    for option, names in (("--scale", scales), ("--if-empty", if_empty), ("--empty-reason", empty_reasons)):
        stray = sorted(set(names) - set(judges))
        if stray:
            raise InputError(f"{option} names {stray[0]!r}, which is not a --judge (judges: {sorted(judges) or 'none'})")
    for name in scales:
        if name in rules and rules[name].value is not None:
            raise InputError(f"--scale {name}=... declares a numeric score's range; --unsafe-value {name}="
                             f"{rules[name].spec} reads the column as named values (use >=X or <=X)")
    for name, status in if_empty.items():
        if status not in FAILURE_STATUSES:
            raise InputError(f"--if-empty {name}={status}: the status must be one of {list(FAILURE_STATUSES)}")
    for name in options.probabilities:
        rule = rules.get(name)
        if name not in judges or _judge_dimension(name)[1] != DEFAULT_DIMENSION:
            raise InputError(f"--probability {name}: name a --judge whose column is its P(unsafe) (judges: "
                             f"{sorted(judges) or 'none'})")
        if rule is None or rule.value is not None or rule.worse != "high":
            raise InputError(f"--probability {name} needs --unsafe-value {name}=>=X (e.g. >=0.5): the verdict's cut")
        if scales.setdefault(name, (0.0, 1.0)) != (0.0, 1.0):
            raise InputError(f"--probability {name}: a probability's scale is 0:1, not --scale {name}="
                             f"{scales[name][0]:g}:{scales[name][1]:g}")
    if options.sample_from_order and "sample" in mapping:
        raise InputError("--sample-from-order numbers the samples itself; leave out --map sample=COL (or keep it and "
                         "drop --sample-from-order)")
    return _Plan(mapping, judges, labels, rules, constants, filters, value_maps, legacy, scales, if_empty,
                 empty_reasons, options.sample_from_order, set(options.probabilities))


def _scale_range(name: str, text: str) -> tuple[float, float]:
    low, sep, high = text.partition(":")
    try:
        bounds = (float(low), float(high)) if sep else (math.nan, math.nan)
    except ValueError:
        bounds = (math.nan, math.nan)
    if not (all(math.isfinite(b) for b in bounds) and bounds[0] < bounds[1]):
        raise InputError(f"--scale {name}={text}: give the score's range as LOW:HIGH with LOW < HIGH, e.g. 0:100")
    return bounds


def cell_text(value: object) -> str:
    """A cell as text, verbatim: empty for a missing value, integral floats without ``.0`` (a CSV's ``1`` and a
    parquet's ``1.0`` read alike), lists and dicts as JSON. (Filters, value maps and verdicts compare it stripped.)"""
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, list | dict | tuple | np.ndarray):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, ensure_ascii=False, default=str)
    if value is pd.NA or value is pd.NaT:
        return ""
    return str(value)


def _read_one(path: Path, options: TableOptions, plan: _Plan) -> pd.DataFrame:
    """One file's rows as text, with its own row numbers (data rows from 1); a list or struct in a column the
    command reads is refused (extra columns keep theirs as JSON text)."""
    if path.is_file() and path.suffix.lower() in (".csv", ".tsv"):
        text = read_text(path, encoding=options.encoding)
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        try:
            records = list(reader)
        except csv.Error as err:
            raise InputError(f"malformed {path.suffix[1:].upper()}: {err}", file=path) from None
        frame = pd.DataFrame(records, columns=reader.fieldnames or [])
    elif path.is_file() and path.suffix.lower() == ".json":
        frame = _json_table(path, options.records)
    else:
        frame = read_source(path, options.split)
    if frame.empty:
        raise InputError("has no data rows", file=path)
    frame = frame.rename(columns=str)
    read = [*plan.mapping.values(), *plan.judges.values(), *(c for c, _ in plan.labels), plan.legacy_label]
    for column in (c for c in dict.fromkeys(read) if c in frame.columns):
        nested = next((k for k, v in enumerate(frame[column]) if isinstance(v, list | dict | np.ndarray)), None)
        if nested is not None:
            raise InputError("is a list or struct column; map a column of text or numbers", file=path,
                             row=nested + 1, column=column)
    return pd.DataFrame({c: [cell_text(v) for v in frame[c]] for c in frame.columns}, index=range(1, len(frame) + 1))


def _json_table(path: Path, records: str | None) -> pd.DataFrame:
    """A ``.json`` file's records: a list of objects, or where ``--records`` says (``completions``, ``results.*``;
    the keys of a ``*`` level go to ``record_key``, ``record_key_2``...). A file of one object per line is JSON Lines."""
    try:
        data = read_json(path)
    except InputError:
        return pd.DataFrame(read_jsonl(path))
    nodes: list[tuple[tuple[str, ...], object]] = [((), data)]
    for level in records.split(".") if records else []:
        expanded = []
        for keys, node in nodes:
            if not isinstance(node, dict):
                raise InputError(f"--records {records}: {'.'.join(keys) or 'the file'} holds a {type(node).__name__}, "
                                 f"not an object with key {level!r}", file=path)
            if level == "*":
                expanded += [((*keys, str(k)), v) for k, v in node.items()]
            elif level in node:
                expanded.append((keys, node[level]))
            else:
                raise InputError(f"--records {records}: no key {level!r} (keys: {', '.join(map(str, list(node)[:12]))})",
                                 file=path)
        nodes = expanded
    rows = []
    for keys, node in nodes:
        if isinstance(node, dict) and not records:
            raise InputError("is one JSON object, not a list of records; say where its records are with --records KEY "
                             f"(keys: {', '.join(map(str, list(node)[:12]))}; * for every key)", file=path)
        for record in node if isinstance(node, list) else [node]:
            if not isinstance(record, dict):
                raise InputError(f"{'--records ' + records if records else 'the list'} holds a "
                                 f"{type(record).__name__}, not records (objects)", file=path)
            rows.append({**{"record_key" + (f"_{k + 1}" if k else ""): key for k, key in enumerate(keys)}, **record})
    return pd.DataFrame(rows)


def _did_you_mean(target: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(target, columns, n=1, cutoff=0.6)
    named = [c for c in columns if c.lower() in SYNONYMS.get(target, ())]
    guess = (close or named or [None])[0]
    return f"; did you mean --map {target}={guess}?" if guess else ""


def _check_columns(frame: pd.DataFrame, plan: _Plan, path: Path) -> None:
    columns = list(frame.columns)
    for target in REQUIRED:
        if target not in plan.mapping and target not in plan.constants:
            raise InputError(f"no {target} column named: --map {target}=COLUMN is needed (columns: "
                             f"{', '.join(columns)}){_did_you_mean(target, columns)}", file=path)
    used = [(f"--map {t}", c) for t, c in plan.mapping.items()] + [(f"--judge {n}", c) for n, c in plan.judges.items()]
    used += [("--label", c) for c, _ in plan.labels] + [("--where", c) for c, _, _ in plan.filters]
    used += [("--values", c) for c in plan.value_maps] + ([("--map label", plan.legacy_label)] if plan.legacy_label else [])
    used += [(f"--empty-reason {n}", c) for n, c in plan.empty_reasons.items()]
    for option, column in used:
        if column not in frame.columns:
            target = option.removeprefix("--map ")
            hint = _did_you_mean(target, columns) if option.startswith("--map") else ""
            close = difflib.get_close_matches(column, columns, n=1)
            hint = hint or (f"; did you mean {close[0]!r}?" if close else "")
            raise InputError(f"{option} names column {column!r}, which the file lacks (columns: {', '.join(columns)})"
                             f"{hint}", file=path, column=column)


def _filter(frame: pd.DataFrame, plan: _Plan) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    for column, equal, value in plan.filters:
        cells = frame[column].str.strip()
        keep = (cells == value) if equal else (cells != value)
        notes.append(f"--where {column}{'=' if equal else '!='}{value}: {int((~keep).sum())} rows left out")
        frame = frame.loc[keep.to_numpy()]
    return frame, notes


def _apply_values(frame: pd.DataFrame, plan: _Plan) -> pd.DataFrame:
    out = frame.copy()
    for column, mapping in plan.value_maps.items():
        out[column] = [mapping.get(v.strip(), v) for v in out[column]]
    return out


@dataclass(frozen=True)
class _Origin:
    """Where each kept row came from: its file and its data row number there (from 1)."""

    files: list[Path]
    rows: list[int]

    def error(self, message: str, k: int, column: str) -> InputError:
        return InputError(message, file=self.files[k], row=self.rows[k], column=column)


def _verdicts(cells: pd.Series, rule: UnsafeRule, origin: _Origin, column: str) -> tuple[list, np.ndarray]:
    """unsafe/safe/None per cell and the numeric score (NaN unless a threshold rule)."""
    labels, scores = [], np.full(len(cells), np.nan)
    for k, text in enumerate(cells.str.strip()):
        if text == "":
            labels.append(None)
            continue
        if rule.value is not None:
            labels.append("unsafe" if text.casefold() == rule.value.casefold() else "safe")
            continue
        try:
            score = float(text)
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise origin.error(f"value {text!r} is not a number; --unsafe-value {rule.spec} reads a numeric score",
                               k, column)
        scores[k] = score
        labels.append("unsafe" if (score >= rule.threshold if rule.worse == "high" else score <= rule.threshold)
                      else "safe")
    return labels, scores


def _values_seen(cells: pd.Series) -> str:
    counts = Counter(v.strip() for v in cells if v.strip())
    return ", ".join(f"{v!r} {n}" for v, n in counts.most_common(6)) + (", ..." if len(counts) > 6 else "")


def _label_readings(frame: pd.DataFrame, plan: _Plan, origin: _Origin) -> list[tuple[str, str, list]]:
    """(column, annotator, unsafe/safe/None per row) for every human label column."""
    out = []
    rule = plan.rules.get(LABEL_RULE)
    for column, annotator in plan.labels:
        if rule is not None:
            out.append((column, annotator, _verdicts(frame[column], rule, origin, column)[0]))
            continue
        named = {v.strip().casefold() for v in frame[column] if v.strip()}
        if not named <= {"unsafe", "safe"}:
            raise InputError(f"--label {column} needs --unsafe-value label=VALUE (values seen: "
                             f"{_values_seen(frame[column])})", column=column)
        out.append((column, annotator, [v.strip().casefold() or None for v in frame[column]]))
    if plan.legacy_label:
        column, labels = plan.legacy_label, []
        for k, text in enumerate(frame[column].str.strip()):
            if text == "":
                labels.append(None)
            elif text.casefold() in _LEGACY_LABELS:
                labels.append(_LEGACY_LABELS[text.casefold()])
            else:
                raise origin.error(f"unknown label {text!r}; expected 1/0, true/false or unsafe/safe (or use --label "
                                   f"{column} --unsafe-value label=VALUE)", k, column)
        out.append((column, LEGACY_ANNOTATOR, labels))
    return out


def _responses(frame: pd.DataFrame, plan: _Plan, origin: _Origin) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Responses: mapped columns, constants, then the rest as ``source_<name>`` (a clash) or extra columns."""
    out = pd.DataFrame(index=frame.index)
    for target, column in plan.mapping.items():
        out[target] = frame[column]
    for name, value in plan.constants.items():
        out[name] = value
    consumed = set(plan.mapping.values()) | set(plan.judges.values()) | {c for c, _ in plan.labels}
    consumed |= set(plan.empty_reasons.values())
    consumed |= {plan.legacy_label} if plan.legacy_label else set()
    known = {c.name for c in SCHEMAS["responses"].columns} | set(TABLE_TARGETS)
    renamed, extras = [], []
    for column in frame.columns:
        if column in consumed:
            continue
        if column in known or column in out.columns:
            out[f"source_{column}"] = frame[column].replace("", None)
            renamed.append(column)
        else:
            out[column] = frame[column].replace("", None)
            extras.append(column)
    for column in ("model", "prompt_id", "benchmark", "intent", "category", "behavior_id", "base_model",
                   "finetune_goal", "mitigation", "goal"):
        if column in out:
            out[column] = out[column].replace("", None)
    if "intent" in out:
        bad = next((k for k, v in enumerate(out["intent"]) if v is not None and v not in INTENTS), None)
        if bad is not None:
            raise origin.error(f"intent {out['intent'].iloc[bad]!r} is not one of {list(INTENTS)} (map the column's "
                               "values with --values COL:OLD=harmful,...)", bad, plan.mapping.get("intent", "intent"))
    if plan.sample_from_order:
        prompts = out["prompt_id"] if "prompt_id" in out else out["prompt"]
        models = out["model"].fillna("") if "model" in out else pd.Series("", index=out.index)
        out["sample"] = pd.DataFrame({"m": models.to_numpy(), "p": prompts.fillna("").to_numpy()}).groupby(
            ["m", "p"], sort=False).cumcount().to_numpy()
    elif "sample" in out:
        column = plan.mapping.get("sample", "sample")
        out["sample"] = [_sample(v, origin, k, column) for k, v in enumerate(out["sample"])]
    return out, renamed, extras


def _sample(text: str, origin: _Origin, k: int, column: str) -> int | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value.is_integer() and value >= 0):
        raise origin.error(f"sample {text!r} is not a whole number >= 0", k, column)
    return int(value)


def _item_ids(responses: pd.DataFrame, origin: _Origin, plan: _Plan) -> list[str]:
    if "item_id" in responses:  # mapped: the file's own ids, each once
        ids = [str(v) for v in responses.pop("item_id")]
        repeated = pd.Series(ids).duplicated().to_numpy()
        if repeated.any() or "" in ids:
            k = int(np.flatnonzero(repeated | (np.array(ids) == ""))[0])
            raise origin.error(f"item id {ids[k]!r} is empty or repeated; item ids must be unique", k,
                               plan.mapping["item_id"])
        return ids
    if "prompt_id" in responses and "model" in responses and responses[["prompt_id", "model"]].notna().all().all():
        samples = responses["sample"].fillna(0) if "sample" in responses else pd.Series(0, index=responses.index)
        ids = [response_item_id(str(m), str(p), int(s)) for m, p, s in
               zip(responses["model"], responses["prompt_id"], samples, strict=True)]
        seen: dict[str, int] = {}
        for k, item in enumerate(ids):
            if item in seen:
                first = seen[item]
                raise origin.error(f"model {responses['model'].iloc[k]!r} answers prompt {responses['prompt_id'].iloc[k]!r}"
                                   f" twice (rows {origin.rows[first]} of {origin.files[first].name} and "
                                   f"{origin.rows[k]}): leave one out with --where, or map a sample column", k,
                                   plan.mapping.get("prompt_id", "prompt_id"))
            seen[item] = k
        return ids
    # No prompt id: the file and row name the response, after its model (two models' files are often named alike:
    # gemma/jailbreakbench_baseline.json and llama/jailbreakbench_baseline.json), and the file's position among
    # files of one name.
    stems = Counter(p.stem for p in dict.fromkeys(origin.files))
    position = {p: k for k, p in enumerate(dict.fromkeys(origin.files))}
    models = responses["model"] if "model" in responses else pd.Series(None, index=responses.index, dtype=object)
    return [(f"{m}--" if pd.notna(m) else "") + p.stem + (f"-f{position[p]}" if stems[p.stem] > 1 else "") + f"-{r:06d}"
            for p, r, m in zip(origin.files, origin.rows, models, strict=True)]


def _judge_dimension(name: str) -> tuple[str, str]:
    """``--judge`` NAME is ``JUDGE`` (its safety verdict) or ``JUDGE:DIMENSION`` (a graded score on another dimension)."""
    judge, _, dimension = name.partition(":")
    return judge, dimension or DEFAULT_DIMENSION


def _empty_statuses(frame: pd.DataFrame, plan: _Plan, name: str, origin: _Origin) -> list[str | None]:
    """Per row, the parse status an empty score cell gets: the ``--empty-reason`` column's value (after
    ``--values``), else the ``--if-empty`` status, else None (no judgment row: no verdict, never "safe")."""
    column = plan.empty_reasons.get(name)
    reasons = frame[column].str.strip() if column else pd.Series("", index=frame.index)
    out = []
    for k, reason in enumerate(reasons):
        if reason and reason not in FAILURE_STATUSES:
            raise origin.error(f"reason {reason!r} for an empty {name} score is not one of {list(FAILURE_STATUSES)} "
                               f"(map the column's values, e.g. --values {column}:{reason}=judge_said_code)", k, column)
        out.append(reason or plan.if_empty.get(name))
    return out


def _judge_scale(name: str, column: str, rule: UnsafeRule, scores: np.ndarray, plan: _Plan,
                 origin: _Origin) -> JudgeScale:
    """The declared ``--scale`` (every score checked against it), else the range of the scores seen."""
    judge, dimension = _judge_dimension(name)
    reading = f"unsafe = {rule.spec}" if dimension == DEFAULT_DIMENSION else f"degraded = {rule.spec}"
    if name in plan.scales:
        low, high = plan.scales[name]
        outside = np.flatnonzero(np.isfinite(scores) & ((scores < low) | (scores > high)))
        if outside.size:
            raise origin.error(f"score {scores[outside[0]]:g} is outside --scale {name}={low:g}:{high:g}",
                               int(outside[0]), column)
        if not low <= rule.threshold <= high:
            raise InputError(f"--unsafe-value {name}={rule.spec}: the threshold is outside --scale {name}={low:g}:{high:g}")
        source = f"imported column {column!r}; scale {low:g}-{high:g} (--scale); {reading} (--unsafe-value)"
    else:
        finite = scores[np.isfinite(scores)]
        low = min(float(finite.min()), rule.threshold) if finite.size else rule.threshold
        high = max(float(finite.max()), rule.threshold) if finite.size else rule.threshold
        high = high if high > low else low + 1.0
        source = (f"imported column {column!r}; range of the scores seen, {low:g}-{high:g} (no --scale); {reading} "
                  "(--unsafe-value)")
    return JudgeScale(judge_id=judge, dimension=dimension, min=low, max=high, level="interval", worse=rule.worse,
                      threshold=rule.threshold, source=source)


def _judge_rows(frame: pd.DataFrame, plan: _Plan, items: list[str], origin: _Origin
                ) -> tuple[pd.DataFrame | None, list[JudgeScale], dict[str, list]]:
    """Judgment rows of every ``--judge`` column, their scales, and per judge and row what was read: unsafe, safe,
    scored (a score on a dimension other than safety), a failure status (an empty score with a reason) or None."""
    frames, scales, readings = [], [], {}
    for name, column in plan.judges.items():
        rule = plan.rules.get(name)
        if rule is None:
            raise InputError(f"--judge {name}={column} needs --unsafe-value {name}=VALUE, {name}=>=X or {name}=<=X "
                             f"(values seen: {_values_seen(frame[column])}); judgekit never guesses which is unsafe",
                             column=column)
        judge, dimension = _judge_dimension(name)
        if dimension != DEFAULT_DIMENSION and rule.value is not None:
            raise InputError(f"--judge {name}: a score on dimension {dimension!r} needs --unsafe-value {name}=>=X or "
                             f"{name}=<=X (the degraded side of the score), not a value")
        labels, scores = _verdicts(frame[column], rule, origin, column)
        if dimension != DEFAULT_DIMENSION:  # a graded score only: the binary verdict is the safety dimension's
            labels = [None if label is None else "scored" for label in labels]
        statuses = _empty_statuses(frame, plan, name, origin)
        outcome = [label if label is not None else status for label, status in zip(labels, statuses, strict=True)]
        readings[name] = outcome
        reason_column = plan.empty_reasons.get(name)
        reasons = frame[reason_column] if reason_column else pd.Series("", index=frame.index)
        ok = np.array([label is not None for label in labels])
        spec = hashlib.sha256(json.dumps({"imported_column_judge": name, "unsafe": rule.spec}).encode()).hexdigest()[:16]
        rows = pd.DataFrame({
            "item_id": items, "judge_id": judge, "dimension": dimension,
            "label": [label if label in ("unsafe", "safe") else None for label in labels],
            "score": scores, "p_unsafe": scores if name in plan.probabilities else np.nan,
            "parse_status": ["ok" if good else (status or "") for good, status in zip(ok, statuses, strict=True)],
            "raw_output": [text if good else reason for good, text, reason in zip(ok, frame[column], reasons, strict=True)],
            "judge_spec_hash": spec,
            "detail": ["" if good else (f"empty {column!r} cell; " + (f"{reason_column} says {reason.strip()!r}"
                                                                    if reason.strip() else f"--if-empty {name}"))
                       for good, reason in zip(ok, reasons, strict=True)],
            "provenance": [f"imported: {p.name}:{column}" for p in origin.files],
        }).loc[[value is not None for value in outcome]]
        frames.append(rows)
        if rule.value is None:
            scales.append(_judge_scale(name, column, rule, scores, plan, origin))
    judgments = pd.concat(frames, ignore_index=True) if frames else None
    return judgments, scales, readings


def import_table(paths: list[Path], options: TableOptions) -> TableImport:
    """Read, check and convert every file; nothing is written (the caller shows ``preview``, then ``append_to_study``)."""
    if not paths:
        raise InputError("give at least one FILE")
    plan = _plan(options)
    parts, read_counts = [], []
    for path in paths:
        frame = _read_one(path, options, plan)
        _check_columns(frame, plan, path)
        read_counts.append(len(frame))
        parts.append(frame)
    origins = _Origin([p for p, part in zip(paths, parts, strict=True) for _ in part.index],
                      [int(r) for part in parts for r in part.index])
    frame = pd.concat(parts, sort=False, ignore_index=True).fillna("")
    frame, where_notes = _filter(_apply_values(frame, plan), plan)
    if frame.empty:
        raise InputError("no rows are left after --where" + "".join(f" ({n})" for n in where_notes))
    origin = _Origin([origins.files[k] for k in frame.index], [origins.rows[k] for k in frame.index])
    frame = frame.reset_index(drop=True)
    responses, renamed, extras = _responses(frame, plan, origin)
    items = _item_ids(responses, origin, plan)
    responses.insert(0, "item_id", items)
    judgments, scales, readings = _judge_rows(frame, plan, items, origin)
    label_readings = _label_readings(frame, plan, origin)
    annotations = [pd.DataFrame({"item_id": items, "annotator_id": annotator, "label": labels})
                   for _, annotator, labels in label_readings]
    annotation_rows = pd.concat(annotations, ignore_index=True).dropna(subset=["label"]) if annotations else None
    inputs = [f for p in paths for f in (sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])]
    rows = ImportedRows(responses.reset_index(drop=True), judgments, scales, inputs, annotations=annotation_rows,
                        details={"source": "table", "options": {k: v for k, v in options.__dict__.items() if v}})
    preview = _preview(responses, read_counts, paths, where_notes, renamed, extras,
                       {name: (plan.judges[name], labels) for name, labels in readings.items()},
                       {f"{column} (annotator {annotator})": labels for column, annotator, labels in label_readings},
                       _scale_notes(plan, scales))
    return TableImport(rows, preview)


def _scale_notes(plan: _Plan, scales: list[JudgeScale]) -> dict[str, str]:
    """Per score column, its range: declared with --scale, or only the scores seen (then the preview says so)."""
    notes = {}
    for name in plan.judges:
        scale = next((s for s in scales if (s.judge_id, s.dimension) == _judge_dimension(name)), None)
        if scale is not None:
            notes[name] = (", P(unsafe) on 0-1" if name in plan.probabilities else
                           f", score on {scale.min:g}-{scale.max:g}" if name in plan.scales else
                           f", scores seen {scale.min:g}-{scale.max:g}: declare the range with --scale {name}=LOW:HIGH")
    return notes


def _preview(responses: pd.DataFrame, read_counts: list[int], paths: list[Path], where_notes: list[str],
             renamed: list[str], extras: list[str], judges: dict[str, tuple[str, list]],
             labels: dict[str, list], scale_notes: dict[str, str]) -> list[str]:
    lines = [f"read {sum(read_counts)} rows from {len(paths)} file{'s' if len(paths) > 1 else ''}; kept {len(responses)}"
             + (f" ({'; '.join(where_notes)})" if where_notes else "")]
    models = responses["model"].fillna("(none)") if "model" in responses else pd.Series("(none)", index=responses.index)
    prompts = responses["prompt_id"] if "prompt_id" in responses else responses["prompt"]
    per_model = prompts.groupby(models.to_numpy()).nunique()
    lines.append("models: " + ", ".join(f"{m} ({n} prompts)" for m, n in per_model.items())
                 + ("" if "model" in responses else " -- no model column: --map model=COL or --set model=NAME"))
    if "sample" in responses and responses["sample"].notna().any():
        per_prompt = responses.groupby([models.to_numpy(), prompts.to_numpy()]).size()
        lines.append(f"samples per (model, prompt): {per_prompt.min()}-{per_prompt.max()} (paired by prompt, samples "
                     "averaged within it)")
    if len(per_model) > 1:
        answered = pd.DataFrame({"p": prompts.to_numpy(), "m": models.to_numpy()}).groupby("p")["m"].nunique()
        lines.append(f"paired prompts (answered by all {len(per_model)} models): {int((answered == len(per_model)).sum())}"
                     + ("" if "prompt_id" in responses else " (matched by prompt text; --map prompt_id=COL to match by id)"))
    for title, (name, column, values) in [*(("judge", (n, c, v)) for n, (c, v) in judges.items()),
                                          *(("label", (n, n, v)) for n, v in labels.items())]:
        counts = Counter("missing" if v is None else v for v in values)
        read = (f"scored {counts.pop('scored')}" if "scored" in counts
                else f"unsafe {counts.pop('unsafe', 0)}, safe {counts.pop('safe', 0)}")
        missing = counts.pop("missing", 0)
        failures = "".join(f", {status} {n}" for status, n in sorted(counts.items()))
        verdict = pd.Series([v in ("unsafe", "safe", "scored") for v in values], index=responses.index)
        uncovered = [m for m, share in verdict.groupby(models.to_numpy()).mean().items() if share == 0]
        lines.append(f"{title} {name}" + (f" (column {column}{scale_notes.get(name, '')})" if title == "judge" else "")
                     + f": {read}{failures}, missing {missing}"
                     + (f"; no verdict on model {', '.join(uncovered)}" if uncovered and len(per_model) > 1 else ""))
    if renamed:
        lines.append("kept as source_<name> (named like a judgekit column, not mapped): " + ", ".join(renamed))
    if extras:
        lines.append("kept as extra response columns: " + ", ".join(extras))
    return lines
