"""Imported responses and judgments added to a study (new or existing) as one set: all or nothing.

Every importer (Inspect, lm-eval, Hugging Face datasets) produces an :class:`ImportedRows`; this module
stamps the lineage the user gave, refuses rows the study already has (one line, nothing written), merges
the declared judge scales into ``study.json`` and commits the tables together.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from judgekit.errors import InputError
from judgekit.store.io import conform_frame, read_table
from judgekit.store.partitioned import read_stored_table
from judgekit.store.locking import study_lock
from judgekit.store.manifest import build_manifest, recorded_study_run
from judgekit.store.schema import SCHEMAS, JudgeScale, StudyMetadata, read_study_metadata
from judgekit.store.study import load_study, replace_study_files, table_path


@dataclass
class ImportedRows:
    """What an importer read: responses, judgments (or None), the judges' scales, notes for the user."""

    responses: pd.DataFrame
    judgments: pd.DataFrame | None
    scales: list[JudgeScale]
    inputs: list[Path]
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    annotations: pd.DataFrame | None = None


@dataclass(frozen=True)
class Lineage:
    """The model lineage the user stated on the command line (None: not stated)."""

    base_model: str | None = None
    finetune_goal: str | None = None
    mitigation: str | None = None

    def stamp(self, responses: pd.DataFrame) -> pd.DataFrame:
        out = responses.copy()
        for column in ("base_model", "finetune_goal", "mitigation"):
            value = getattr(self, column)
            if value is not None:
                out[column] = value
        return out


def append_to_study(out_dir: Path, rows: ImportedRows, *, step: str, table_format: str = ".parquet",
                    models: pd.DataFrame | None = None) -> list[str]:
    """Add ``rows`` (and a models table's rows) to the study at ``out_dir``, created when absent."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("is not a directory", file=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(step=step, inputs=rows.inputs, details=rows.details)
    with study_lock(out_dir, step=step):
        responses_path = table_path(out_dir, "responses")
        fmt = responses_path.suffix if responses_path is not None else table_format
        tables = {"responses": _combined(out_dir, "responses", rows.responses, _duplicate_response)}
        if rows.judgments is not None and len(rows.judgments):
            tables["judgments"] = _combined(out_dir, "judgments", rows.judgments, None)
        if rows.annotations is not None and len(rows.annotations):
            tables["annotations"] = _combined(out_dir, "annotations", rows.annotations, None)
        if models is not None:
            tables["models"] = _combined_models(out_dir, models)
        metadata = _with_scales(read_study_metadata(out_dir), rows.scales, out_dir)
        if not metadata.name:
            metadata = dataclasses.replace(metadata, name=out_dir.name)
        text = json.dumps(metadata.to_json(), indent=2, ensure_ascii=False) + "\n"
        with recorded_study_run(out_dir, manifest):
            replace_study_files(out_dir, tables, table_format=fmt, texts={"study.json": text})
        load_study(out_dir)  # what was written reads back as a valid study
    counts = ", ".join(f"{len(frame)} {name}" for name, frame in (("responses", rows.responses), ("judgments", rows.judgments),
                                                                ("annotations", rows.annotations)) if frame is not None)
    return [f"added {counts} to {out_dir}", *rows.notes]


def _combined(out_dir: Path, name: str, new: pd.DataFrame, duplicate) -> pd.DataFrame:
    path = table_path(out_dir, name)
    source = f"<imported {name}>"
    conformed = conform_frame(new, SCHEMAS[name], source)
    if path is None:
        return conformed
    existing = read_stored_table(path, SCHEMAS[name])
    if duplicate is not None:
        duplicate(existing, conformed, path)
    if name == "responses":
        conformed = _inherit_lineage(existing, conformed, path)
    return conform_frame(pd.concat([existing, conformed], ignore_index=True, sort=False), SCHEMAS[name], path)


def _duplicate_response(existing: pd.DataFrame, new: pd.DataFrame, path: Path) -> None:
    clash = new["item_id"].isin(set(existing["item_id"]))
    if clash.any():
        row = new.loc[clash].iloc[0]
        what = (f"model {row.get('model')!r} already has a response to prompt {row.get('prompt_id')!r} (sample "
                f"{row.get('sample')})" if "prompt_id" in new else f"item {row['item_id']!r} is already there")
        raise InputError(f"{what}: {int(clash.sum())} of the imported responses are in the study already; "
                         "nothing was written (import each log once, or name the model with --model)", file=path)


def _inherit_lineage(existing: pd.DataFrame, new: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A model already in the study keeps its base, goal and mitigation: an import that states none inherits
    them, one that states others is refused (two lineages would give two fine-tune effects)."""
    if "model" not in existing or "model" not in new:
        return new
    out = new.copy()
    for column in ("base_model", "finetune_goal", "mitigation"):
        if column not in existing:
            continue
        before = existing[["model", column]].dropna().drop_duplicates()
        stated = dict(zip(before["model"], before[column], strict=True))
        values = out[column] if column in out else pd.Series([None] * len(out), index=out.index, dtype=object)
        for model, value in zip(out["model"], values, strict=True):
            if model in stated and pd.notna(value) and stated[model] != value:
                raise InputError(f"model {model!r} is in the study with {column} {stated[model]!r}; this import "
                                 f"gives {value!r} (name the other model apart with --model)", file=path, column=column)
        out[column] = [stated.get(m) if pd.isna(v) else v for m, v in zip(out["model"], values, strict=True)]
    return out


def _combined_models(out_dir: Path, new: pd.DataFrame) -> pd.DataFrame:
    path = table_path(out_dir, "models")
    if path is None:
        return conform_frame(new, SCHEMAS["models"], "<models>")
    existing = read_table(path, SCHEMAS["models"])
    fresh = new.loc[~new["model"].isin(set(existing["model"]))]
    return conform_frame(pd.concat([existing, fresh], ignore_index=True, sort=False), SCHEMAS["models"], path)


def _with_scales(metadata: StudyMetadata, scales: list[JudgeScale], out_dir: Path) -> StudyMetadata:
    """Declared scales plus the imported ones; the same judge and dimension must keep its meaning."""
    merged = {(s.judge_id, s.dimension): s for s in metadata.judge_scales}
    imported = {(s.judge_id, s.dimension) for s in scales}
    for scale in scales:
        key = (scale.judge_id, scale.dimension)
        old = merged.get(key)
        # A judge may rate several dimensions (a table's JUDGE:DIMENSION columns), but an import must bring every
        # dimension the study has for it: a scorer read as safety once and as its own graded dimension later is refused.
        other = next((s for k, s in merged.items() if k[0] == scale.judge_id and k not in imported), None)
        if old is None and other is not None:
            raise InputError(f"judge {scale.judge_id!r} is in the study rating {other.dimension!r}, and would now rate "
                             f"{scale.dimension!r}; import every model's log with the same --unsafe-value",
                             file=out_dir / "study.json")
        if old is not None and (old.worse, old.threshold, old.level) != (scale.worse, scale.threshold, scale.level):
            raise InputError(f"judge {scale.judge_id!r} ({scale.dimension}) is declared with another scale "
                             f"({old.describe()}, now {scale.describe()}); give the same --unsafe-value as before",
                             file=out_dir / "study.json")
        if old is not None:
            scale = dataclasses.replace(scale, min=min(old.min, scale.min), max=max(old.max, scale.max))
        merged[key] = scale
    return dataclasses.replace(metadata, judge_scales=tuple(merged.values()))
