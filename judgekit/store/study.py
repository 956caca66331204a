"""A study directory: its tables, their cross-table checks, and updates in place.

One table is replaced by an atomic rename (:meth:`Study.save`). Several at once
(``data convert --force``) go through a commit folder: every new file is first
written to ``STUDY/.judgekit-commit.partial-*``, which is renamed to
``STUDY/.judgekit-commit`` when complete (the commit point); its files are then
moved over the old ones and the folder removed. A study holding
``.judgekit-commit`` was killed half-way through a replacement: readers refuse
it, and the next replacement finishes the interrupted one first.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.errors import InputError
from judgekit.store.io import conform_frame, read_table, write_table, write_text_atomic
from judgekit.store.layout import existing_study_dir, table_path
from judgekit.store.lineage import check_lineage_forest
from judgekit.store.schema import (
    DEFAULT_DIMENSION,
    SCHEMAS,
    TABLE_EXTENSIONS,
    TABLE_NAMES,
    StudyMetadata,
    read_study_metadata,
)


@dataclass
class Study:
    """The validated tables of one study directory (absent tables are None)."""

    path: Path
    metadata: StudyMetadata
    responses: pd.DataFrame
    annotations: pd.DataFrame | None = None
    judgments: pd.DataFrame | None = None
    flags: pd.DataFrame | None = None

    def files(self) -> list[Path]:
        """The files this study was read from (for hashing into manifests)."""
        names = [table_path(self.path, n) for n in TABLE_NAMES]
        meta = self.path / "study.json"
        return [p for p in names if p is not None] + ([meta] if meta.exists() else [])

    def storage_format(self) -> str:
        """Extension new tables get: the one the responses table uses."""
        return table_path(self.path, "responses").suffix

    def save(self, name: str, frame: pd.DataFrame) -> Path:
        """Replace table ``name`` atomically, keeping its existing format."""
        existing = table_path(self.path, name)
        target = existing if existing is not None else self.path / f"{name}{self.storage_format()}"
        # Round trips are exact in every format (tests/test_io.py), so the conformed frame is what a re-read gives.
        conformed = conform_frame(frame, SCHEMAS[name], target)
        write_table(conformed, target)
        setattr(self, name, conformed)
        return target


COMMIT_DIR = ".judgekit-commit"


def replace_study_files(study_dir: Path, tables: dict[str, pd.DataFrame], *, table_format: str,
                        texts: dict[str, str]) -> list[Path]:
    """Replace tables (in ``table_format``) and text files (e.g. ``study.json``) of a study as one set.

    A replaced table's files in other formats are removed with the commit, so no table is left stored
    twice. The caller holds the study lock. Linked tables are refused rather than cut from their target.
    """
    for name in tables:
        linked = [p for p in (study_dir / f"{name}{ext}" for ext in TABLE_EXTENSIONS) if p.is_symlink()]
        if linked:
            raise InputError("is a symbolic link; remove it before replacing the table", file=linked[0])
    _finish_interrupted_commit(study_dir)
    for partial in study_dir.glob(f"{COMMIT_DIR}.partial-*"):  # a replacement killed before its commit point
        shutil.rmtree(partial, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{COMMIT_DIR}.partial-", dir=study_dir))
    try:
        for name, frame in tables.items():
            write_table(frame, staging / f"{name}{table_format}", SCHEMAS[name])
        for name, text in texts.items():
            write_text_atomic(staging / name, text)
        staging.rename(study_dir / COMMIT_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _finish_interrupted_commit(study_dir)


def _finish_interrupted_commit(study_dir: Path) -> list[Path]:
    commit = study_dir / COMMIT_DIR
    if not commit.is_dir():
        return []
    moved = []
    for entry in sorted(commit.iterdir()):
        stem, suffix = entry.name.split(".", 1)[0], entry.suffix
        if stem in TABLE_NAMES and suffix in TABLE_EXTENSIONS:
            for twin in (study_dir / f"{stem}{ext}" for ext in TABLE_EXTENSIONS if ext != suffix):
                twin.unlink(missing_ok=True)
        entry.replace(study_dir / entry.name)
        moved.append(study_dir / entry.name)
    commit.rmdir()
    return moved


def load_study(study_dir: str | Path) -> Study:
    """Read and cross-check every table present in ``study_dir``.

    Raises
    ------
    InputError
        For any problem in any table, naming the file, row and column.
    """
    study_dir = existing_study_dir(study_dir)
    if (study_dir / COMMIT_DIR).exists():
        raise InputError(f"holds {COMMIT_DIR}: a `data convert --force` into this study was killed half-way; "
                         "rerun it", file=study_dir)
    responses_path = table_path(study_dir, "responses")
    if responses_path is None:
        raise InputError(
            f"no responses table (expected responses{'|'.join(TABLE_EXTENSIONS)})", file=study_dir
        )
    metadata = read_study_metadata(study_dir)
    tables = {"responses": read_table(responses_path, SCHEMAS["responses"])}
    for name in TABLE_NAMES[1:]:
        path = table_path(study_dir, name)
        if path is not None:
            tables[name] = read_table(path, SCHEMAS[name])
            _check_known_items(tables[name], tables["responses"], path)
    if "annotations" in tables:
        _check_labels(tables["annotations"], metadata, table_path(study_dir, "annotations"))
    if "judgments" in tables:
        _check_scores(tables["judgments"], metadata, table_path(study_dir, "judgments"))

    check_lineage_forest(study_dir, tables["responses"], responses_path)
    return Study(path=study_dir, metadata=metadata, **tables)


def _check_known_items(table: pd.DataFrame, responses: pd.DataFrame, path: Path) -> None:
    unknown = ~table["item_id"].isin(set(responses["item_id"])).to_numpy()
    if unknown.any():
        position = int(np.flatnonzero(unknown)[0])
        raise InputError(
            f"item_id {table['item_id'].iloc[position]!r} is not in the responses table",
            file=path,
            row=position + 1,
            column="item_id",
        )


def _check_labels(annotations: pd.DataFrame, metadata: StudyMetadata, path: Path) -> None:
    allowed = set(metadata.annotation_labels.labels)
    bad = ~annotations["label"].isin(allowed).to_numpy()
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"label {annotations['label'].iloc[position]!r} is not in the declared label set "
            f"{list(metadata.annotation_labels.labels)} (declare labels in study.json)",
            file=path,
            row=position + 1,
            column="label",
        )


def _check_scores(judgments: pd.DataFrame, metadata: StudyMetadata, path: Path) -> None:
    """Every score has a declared scale (study.json ``judge_scales``) and lies on it."""
    if "score" not in judgments:
        return
    scored = np.flatnonzero(judgments["score"].notna().to_numpy())
    if not len(scored):
        return
    dimensions = (judgments["dimension"].fillna(DEFAULT_DIMENSION) if "dimension" in judgments
                  else pd.Series(DEFAULT_DIMENSION, index=judgments.index))
    frame = pd.DataFrame({"judge_id": judgments["judge_id"].iloc[scored].to_numpy(),
                          "dimension": dimensions.iloc[scored].to_numpy(),
                          "score": judgments["score"].iloc[scored].to_numpy(), "position": scored})
    for (judge, dimension), group in frame.groupby(["judge_id", "dimension"], sort=False):
        scale = metadata.scale_for(judge, dimension)
        if scale is None:
            position, score = int(group["position"].iloc[0]), group["score"].iloc[0]
            raise InputError(f"score {score!r} of judge {judge!r} on dimension {dimension!r} has no declared scale "
                             "(add it to study.json 'judge_scales')", file=path, row=position + 1, column="score")
        outside = group[(group["score"] < scale.min) | (group["score"] > scale.max)]
        if len(outside):
            position, score = int(outside["position"].min()), outside.sort_values("position")["score"].iloc[0]
            raise InputError(f"score {score!r} is outside judge {judge!r}'s declared {dimension} scale "
                             f"[{scale.min:g}, {scale.max:g}]", file=path, row=position + 1, column="score")


def validate_path(path: str | Path) -> str:
    """Validate a study directory or a single table file; return a one-line summary."""
    path = Path(path)
    if not path.exists():
        raise InputError("not found (expected a study directory or a table file)", file=path)
    if path.is_dir():
        prompts = table_path(path, "prompts")
        if prompts is not None and table_path(path, "responses") is None:
            # A prompt set (input of `judgekit generate`): no responses yet.
            return f"{path}: ok (prompt set, {len(read_table(prompts, SCHEMAS['prompts']))} prompts)"
        study = load_study(path)
        parts = [f"{len(study.responses)} responses"]
        for name in TABLE_NAMES[1:]:
            table = getattr(study, name)
            if table is not None:
                parts.append(f"{len(table)} {name}")
        return f"{path}: ok ({', '.join(parts)})"
    stem = path.name.split(".")[0]
    if stem not in SCHEMAS:
        raise InputError(
            f"cannot tell which table this is; name it {', '.join(TABLE_NAMES)} with a table extension", file=path
        )
    table = read_table(path, SCHEMAS[stem])
    if stem == "annotations":
        _check_labels(table, read_study_metadata(path.parent), path)
    return f"{path}: ok ({len(table)} rows)"

