"""Tables stored as a folder of parquet files, one file per value of a partition column.

The judgments table lives in ``STUDY/judgments/``: every judge's rows in a file of their own,
``part-<judge id, filesystem-safe>-<sha256 prefix of the judge id>.parquet``, each file holding the
``judge_id`` column as well. A judge's commit replaces its own file atomically (temporary file,
fsync, rename: :func:`judgekit.store.io.write_arrow_parquet`) and touches no other judge's rows, so
committing J judges one after another writes each judge's rows once, not the whole table J times.

The folder reads as one table in every common reader, without judgekit::

    pandas.read_parquet("STUDY/judgments")            # pyarrow.parquet.read_table too
    duckdb.sql("SELECT * FROM 'STUDY/judgments/*.parquet'")
    ray.data.read_parquet("STUDY/judgments")

The folder is not hive-partitioned (no ``judge_id=`` directory): a partition key in the path and
the same column in the files is a type conflict for pyarrow, and a key only in the path would be
read back as a dictionary or, for a numeric-looking judge id, as a number.

A table stored as one file (``judgments.csv`` brought by a user, or written before this layout)
stays readable; the first commit into it moves it into the folder (:mod:`judgekit.store.study`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd

from judgekit.errors import InputError
from judgekit.store.io import conform_frame, read_table, write_arrow_parquet
from judgekit.store.schema import PARTITION_COLUMNS, TableSchema

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def partition_file(folder: Path, value: str) -> Path:
    """The file holding the rows of one partition value (e.g. one judge) in ``folder``."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    readable = _UNSAFE_NAME.sub("_", value)[:48].strip("._") or "x"
    return Path(folder) / f"part-{readable}-{digest}.parquet"


def partition_files(folder: Path) -> list[Path]:
    """The data files of a table folder, in name order (hidden files are temporaries of a writer)."""
    return sorted(p for p in Path(folder).glob("*.parquet") if not p.name.startswith((".", "_")))


def read_partitioned(folder: Path, schema: TableSchema, *, allow_empty: bool = False) -> pd.DataFrame:
    """Read and validate every file of a table folder as one table.

    Each file is validated on its own, so an error names the file, its row and the column. A file
    must hold exactly the rows of the partition value its name encodes: rows anywhere else would be
    doubled or lost by the next commit of that value.
    """
    folder = Path(folder)
    column = PARTITION_COLUMNS[schema.name]
    frames = []
    for path in partition_files(folder):
        frame = read_table(path, schema, allow_empty=True)
        if len(frame):
            _check_partition(frame, column, path)
            frames.append(frame)
    if not frames:
        if allow_empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in schema.required_columns})
        raise InputError(f"holds no rows (expected part-*.parquet files with {schema.name} rows)", file=folder)
    return concat_rows(frames, schema)


def read_partition(folder: Path, schema: TableSchema, value: str) -> pd.DataFrame | None:
    """The rows of one partition value (None when it has no file)."""
    path = partition_file(folder, value)
    if not path.is_file():
        return None
    frame = read_table(path, schema, allow_empty=True)
    _check_partition(frame, PARTITION_COLUMNS[schema.name], path)
    return frame


def write_partition(folder: Path, schema: TableSchema, value: str, frame: pd.DataFrame, *,
                    conformed: bool = False) -> Path:
    """Replace the rows of one partition value atomically (after validating them); an empty ``frame`` removes its file.

    Every file holds every column of the schema with the same Arrow type, absent ones null (empty text): readers
    that take the first file's schema for the folder (pandas, pyarrow, Ray) then lose no column of another file.
    With ``conformed`` the caller vouches that ``frame`` already meets the schema (rows the engine built itself,
    :class:`judgekit.engine.judge_runner.JudgeRows`): it is written without validating it again.
    """
    path = partition_file(folder, value)
    if not len(frame):
        path.unlink(missing_ok=True)
        return path
    return write_arrow_parquet(_full_width(frame if conformed else conform_frame(frame, schema, path), schema), path)


def write_partitioned(folder: Path, frame: pd.DataFrame, schema: TableSchema) -> list[Path]:
    """Write a whole table into a new folder, one file per partition value (a commit folder's copy)."""
    column = PARTITION_COLUMNS[schema.name]
    return [write_partition(folder, schema, str(value), rows) for value, rows in frame.groupby(column, sort=True)]


_ARROW_TYPES = {"id": "string", "text": "string", "category": "string", "float": "float64", "int": "int64",
                "bool": "bool"}


def _full_width(frame: pd.DataFrame, schema: TableSchema):
    """``frame`` (conformed) as an Arrow table with every schema column, in schema order and with its Arrow type
    (the pandas metadata keeps nullable integers integers when read back)."""
    import pyarrow as pa

    full = {spec.name: frame[spec.name] if spec.name in frame else
            pd.Series("" if spec.kind == "text" else None, index=frame.index, dtype=object) for spec in schema.columns}
    fields = [pa.field(spec.name, pa.type_for_alias(_ARROW_TYPES[spec.kind])) for spec in schema.columns]
    extras = [name for name in frame.columns if schema.column(name) is None]
    if extras:
        fields += list(pa.Schema.from_pandas(frame[extras], preserve_index=False))
        full.update({name: frame[name] for name in extras})
    # One thread: the columns are mostly Arrow already, so there is little to convert in parallel and a pool only adds hand-offs.
    table = pa.Table.from_pandas(pd.DataFrame(full, index=frame.index, copy=False), schema=pa.schema(fields),
                                 preserve_index=False, nthreads=1)
    # The pandas metadata names each schema column's canonical type (text: object, int: Int64), whatever type
    # the frame held it in (Arrow-backed columns of engine-built rows): every file of a folder reads back alike.
    metadata = json.loads(table.schema.metadata[b"pandas"])
    for entry in metadata["columns"]:
        spec = schema.column(entry["name"])
        if spec is not None:
            entry["pandas_type"], entry["numpy_type"] = _PANDAS_TYPES[spec.kind]
    return table.replace_schema_metadata({**table.schema.metadata, b"pandas": json.dumps(metadata).encode()})


_PANDAS_TYPES = {"id": ("unicode", "object"), "text": ("unicode", "object"), "category": ("unicode", "object"),
                 "float": ("float64", "float64"), "int": ("int64", "Int64"), "bool": ("bool", "bool")}


def _check_partition(frame: pd.DataFrame, column: str, path: Path) -> None:
    values = pd.unique(frame[column])
    wrong = [v for v in values if partition_file(path.parent, v).name != path.name]
    if wrong:
        position = int((frame[column] == wrong[0]).to_numpy().argmax())
        raise InputError(f"holds rows of {column} {wrong[0]!r}, which belong in {partition_file(path.parent, wrong[0]).name} "
                         f"(each file of {path.parent.name}/ holds one {column}'s rows)", file=path, row=position + 1,
                         column=column)


def concat_rows(frames: list[pd.DataFrame], schema: TableSchema) -> pd.DataFrame:
    """Rows of several frames of one table as one frame (a column some frames lack is null there, empty text for
    a text column)."""
    frames = [f for f in frames if len(f)] or frames[:1]
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    combined = pd.concat(frames, ignore_index=True, sort=False)
    # An optional text column one file lacks is empty text there, as the reader gives it for a single file.
    for name in combined.columns:
        spec = schema.column(name)
        if spec is not None and spec.kind == "text":
            combined[name] = combined[name].fillna("")
    return combined


def read_stored_table(path: Path, schema: TableSchema, *, allow_empty: bool = False) -> pd.DataFrame:
    """Read a table as :func:`judgekit.store.layout.table_path` found it: one file, or a table folder."""
    path = Path(path)
    if path.is_dir():
        return read_partitioned(path, schema, allow_empty=allow_empty)
    return read_table(path, schema, allow_empty=allow_empty)
