"""A study directory: its tables, their cross-table checks, and updates in place.

One table is replaced by an atomic rename (:meth:`Study.save`). Several at once
(``data convert --force``) go through a commit folder: every new file is first
written to ``STUDY/.judgekit-commit.partial-*``, which is renamed to
``STUDY/.judgekit-commit`` when complete (the commit point); its files are then
moved over the old ones and the folder removed. A study holding
``.judgekit-commit`` was killed half-way through a replacement: readers refuse
it, and the next writer finishes the interrupted one first (:func:`finish_interrupted_commit`).

The judgments table is a folder with one parquet file per judge (:mod:`judgekit.store.partitioned`):
:meth:`Study.save_partition` replaces one judge's file. A judgments table stored as one file
(``judgments.csv`` brought by a user, or a study written before the folder layout) is read as it is
and moved into the folder, as one commit, by the first write into it.
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
from judgekit.store.partitioned import (
    concat_rows,
    partition_files,
    read_partition,
    read_stored_table,
    write_partition,
    write_partitioned,
)
from judgekit.store.schema import (
    DEFAULT_DIMENSION,
    PARTITION_COLUMNS,
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
        stored = [p for p in (table_path(self.path, n) for n in TABLE_NAMES) if p is not None]
        files = [f for p in stored for f in (partition_files(p) if p.is_dir() else [p])]
        meta = self.path / "study.json"
        return files + ([meta] if meta.exists() else [])

    def storage_format(self) -> str:
        """Extension new tables get: the one the responses table uses."""
        return table_path(self.path, "responses").suffix

    def save(self, name: str, frame: pd.DataFrame) -> Path:
        """Replace table ``name`` atomically, keeping its existing format (a partitioned table: its folder)."""
        if name in PARTITION_COLUMNS:
            replace_study_files(self.path, {name: frame}, table_format=self.storage_format(), texts={})
            setattr(self, name, conform_frame(frame, SCHEMAS[name], self.path / name))
            return self.path / name
        existing = table_path(self.path, name)
        target = existing if existing is not None else self.path / f"{name}{self.storage_format()}"
        # Round trips are exact in every format (tests/test_io.py), so the conformed frame is what a re-read gives.
        conformed = conform_frame(frame, SCHEMAS[name], target)
        write_table(conformed, target)
        setattr(self, name, conformed)
        return target


    def stored_partition(self, name: str, value: str) -> pd.DataFrame | None:
        """The rows of one partition value (one judge's judgments) as stored now, or None."""
        stored = table_path(self.path, name)
        if stored is None:
            return None
        if stored.is_dir():
            return read_partition(stored, SCHEMAS[name], value)
        table = read_table(stored, SCHEMAS[name])
        rows = table.loc[table[PARTITION_COLUMNS[name]] == value]
        return rows.reset_index(drop=True) if len(rows) else None

    def save_partition(self, name: str, value: str, frame: pd.DataFrame, *, conformed: bool = False) -> Path:
        """Replace the rows of one partition value (one judge's judgments) atomically; the caller holds the study lock.

        Only that value's file is written (``conformed``: the caller vouches that ``frame`` meets the schema,
        :func:`judgekit.store.partitioned.write_partition`). A table still stored as one file is first moved into the folder,
        with every other row kept, in one commit (:func:`replace_study_files`), and the move is told in one line on stdout.
        """
        folder = self.path / name
        stored = table_path(self.path, name)
        if stored is None or stored.is_dir():
            return write_partition(folder, SCHEMAS[name], value, frame, conformed=conformed)
        table = read_table(stored, SCHEMAS[name])
        others = table.loc[table[PARTITION_COLUMNS[name]] != value]
        replace_study_files(self.path, {name: concat_rows([others, frame], SCHEMAS[name])}, table_format=".parquet",
                            texts={})
        print(f"judgekit: moved {stored.name} ({len(table)} rows, all kept) into {name}/, one parquet file per "
              f"{PARTITION_COLUMNS[name]} (docs/concepts/study-files.md)", flush=True)
        return folder

    def drop(self, name: str) -> None:
        """Remove table ``name`` (its file or its folder)."""
        stored = table_path(self.path, name)
        if stored is not None and stored.is_dir():
            shutil.rmtree(stored)
        elif stored is not None:
            stored.unlink()
        setattr(self, name, None)


COMMIT_DIR = ".judgekit-commit"


def replace_study_files(study_dir: Path, tables: dict[str, pd.DataFrame], *, table_format: str,
                        texts: dict[str, str]) -> list[Path]:
    """Replace tables (in ``table_format``) and text files (e.g. ``study.json``) of a study as one set.

    A replaced table's files in other formats are removed with the commit, so no table is left stored
    twice; a partitioned table (:data:`PARTITION_COLUMNS`) is written as its folder whatever the format.
    The caller holds the study lock. Linked tables are refused rather than cut from their target.
    """
    for name in tables:
        linked = [p for p in _stored_forms(study_dir, name) if p.is_symlink()]
        if linked:
            raise InputError("is a symbolic link; remove it before replacing the table", file=linked[0])
    finish_interrupted_commit(study_dir)
    for partial in study_dir.glob(f"{COMMIT_DIR}.partial-*"):  # a replacement killed before its commit point
        shutil.rmtree(partial, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{COMMIT_DIR}.partial-", dir=study_dir))
    try:
        for name, frame in tables.items():
            if name in PARTITION_COLUMNS:
                write_partitioned(staging / name, frame, SCHEMAS[name])
            else:
                write_table(frame, staging / f"{name}{table_format}", SCHEMAS[name])
        for name, text in texts.items():
            write_text_atomic(staging / name, text)
        staging.rename(study_dir / COMMIT_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return finish_interrupted_commit(study_dir)


def _stored_forms(study_dir: Path, name: str) -> list[Path]:
    """Every place table ``name`` may be stored: one file per format, and a folder for a partitioned table."""
    folder = [study_dir / name] if name in PARTITION_COLUMNS else []
    return [study_dir / f"{name}{ext}" for ext in TABLE_EXTENSIONS] + folder


def finish_interrupted_commit(study_dir: Path) -> list[Path]:
    """Move the files of a committed ``.judgekit-commit`` into the study (each move can be redone after a kill)."""
    commit = study_dir / COMMIT_DIR
    if not commit.is_dir():
        return []
    moved = []
    for entry in sorted(p for p in commit.iterdir() if not p.name.startswith(".")):
        stem = entry.name.split(".", 1)[0]
        if stem in TABLE_NAMES:
            for twin in _stored_forms(study_dir, stem):
                if twin.name != entry.name:
                    _set_aside(twin, commit)
        target = study_dir / entry.name
        if entry.is_dir():
            _set_aside(target, commit)  # a folder cannot be renamed over a non-empty one
        entry.replace(target)
        moved.append(target)
    shutil.rmtree(commit)  # with the old table folders set aside in it
    return moved


def _set_aside(path: Path, commit: Path) -> None:
    """Take an old table out of the study: a file is removed, a folder moved into the commit folder (removed last)."""
    if path.is_dir() and not path.is_symlink():
        path.rename(commit / f".replaced-{path.name}")
    else:
        path.unlink(missing_ok=True)


def load_study(study_dir: str | Path, *, arrow_text: bool = False) -> Study:
    """Read and cross-check every table present in ``study_dir``.

    With ``arrow_text`` the responses' text columns may stay Arrow strings (pandas ``str`` columns,
    :func:`judgekit.store.io.read_table`), for a caller that hands them to Arrow again (keyword judges);
    the checks are the same.

    Raises
    ------
    InputError
        For any problem in any table, naming the file, row and column.
    """
    study_dir = existing_study_dir(study_dir)
    if (study_dir / COMMIT_DIR).exists():
        raise InputError(f"holds {COMMIT_DIR}: a replacement of several files (`data convert --force`, or a `judge` "
                         "moving judgments into judgments/) was killed half-way; rerun it", file=study_dir)
    responses_path = table_path(study_dir, "responses")
    if responses_path is None:
        raise InputError(
            f"no responses table (expected responses{'|'.join(TABLE_EXTENSIONS)})", file=study_dir
        )
    metadata = read_study_metadata(study_dir)
    tables = {"responses": read_table(responses_path, SCHEMAS["responses"], arrow_text=arrow_text)}
    for name in TABLE_NAMES[1:]:
        path = table_path(study_dir, name)
        if path is not None:
            tables[name] = read_stored_table(path, SCHEMAS[name])
            _check_known_items(tables[name], tables["responses"], path)
    if "annotations" in tables:
        _check_labels(tables["annotations"], metadata, table_path(study_dir, "annotations"))
    if "judgments" in tables:
        _check_scores(tables["judgments"], metadata, table_path(study_dir, "judgments"))

    check_lineage_forest(study_dir, tables["responses"], responses_path)
    return Study(path=study_dir, metadata=metadata, **tables)


def _check_known_items(table: pd.DataFrame, responses: pd.DataFrame, path: Path) -> None:
    unknown = ~table["item_id"].isin(responses["item_id"].to_numpy(dtype=object)).to_numpy()  # Arrow-backed too
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
    if path.is_dir() and path.name in PARTITION_COLUMNS and any(partition_files(path)):  # STUDY/judgments/
        return f"{path}: ok ({len(read_stored_table(path, SCHEMAS[path.name]))} rows)"
    if path.is_dir():
        prompts = table_path(path, "prompts")
        if prompts is not None and table_path(path, "responses") is None:
            # A prompt set (input of `judgekit generate`): no responses yet.
            return f"{path}: ok (prompt set, {len(read_table(prompts, SCHEMAS['prompts']))} prompts)"
        study = load_study(path)
        models = study.responses["model"].nunique() if "model" in study.responses else 0
        parts = [f"{len(study.responses)} responses" + (f" from {models} models" if models > 1 else "")]
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

