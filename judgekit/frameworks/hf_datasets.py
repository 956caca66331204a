"""Hugging Face ``datasets`` in and out: a ``save_to_disk`` folder (or a parquet/jsonl/csv export) -> responses;
a study's tables -> a ``DatasetDict`` folder with one split per table.

Import (``data import hf``, an alias of ``data import table``) is :mod:`judgekit.frameworks.table_import`, which
reads parquet, JSONL and folders with :func:`_read`. ``datasets`` is needed only for folders
(``pip install 'judgekit[hf]'``); files are read with pyarrow.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd

from judgekit.datasets.common import read_jsonl
from judgekit.datasets.generic import TARGETS
from judgekit.errors import InputError
from judgekit.store.io import read_table
from judgekit.store.schema import SCHEMAS
from judgekit.store.study import load_study, table_path

HF_TARGETS = (*TARGETS, "prompt_id", "sample", "mitigation", "intent", "context")
STUDY_TABLES = ("responses", "annotations", "judgments", "flags", "prompts", "models", "capability")


def _read(source: Path, split: str | None) -> pd.DataFrame:
    if source.is_dir():
        return _read_datasets_folder(source, split)
    if not source.is_file():
        raise InputError("not found", file=source)
    suffix = source.suffix.lower()
    if split is not None:
        raise InputError("--split applies to a datasets folder, not a file", file=source)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(source).to_pandas()
        except Exception as err:  # noqa: BLE001 - pyarrow's many error types all mean an unreadable file
            raise InputError(f"not a readable parquet file: {err}", file=source) from None
    if suffix in (".jsonl", ".json"):
        return pd.DataFrame(read_jsonl(source))
    if suffix == ".csv":
        from judgekit.datasets.common import read_csv_records

        return pd.DataFrame(read_csv_records(source, []))
    raise InputError("expected a datasets folder (save_to_disk) or a .parquet, .jsonl or .csv file", file=source)


def _read_datasets_folder(folder: Path, split: str | None) -> pd.DataFrame:
    try:
        import datasets
    except ImportError:
        raise InputError("reading a datasets folder needs the 'datasets' package (pip install 'judgekit[hf]'); "
                         "or export it to parquet", file=folder) from None
    if not ((folder / "dataset_dict.json").exists() or (folder / "state.json").exists()):
        raise InputError("not a datasets folder (no dataset_dict.json or state.json from save_to_disk)", file=folder)
    datasets.disable_progress_bars()
    loaded = datasets.load_from_disk(str(folder))
    if isinstance(loaded, datasets.DatasetDict):
        if split is None and len(loaded) != 1:
            raise InputError(f"has splits {sorted(loaded)}; choose one with --split", file=folder)
        if split is not None and split not in loaded:
            raise InputError(f"no split {split!r} (has {sorted(loaded)})", file=folder)
        loaded = loaded[split if split is not None else next(iter(loaded))]
    elif split is not None:
        raise InputError("is a single dataset without splits; leave out --split", file=folder)
    return loaded.to_pandas()


def export_hf(study_dir: Path, out_dir: Path) -> str:
    """Write the study's tables as a ``DatasetDict`` (one split per table) with ``save_to_disk``."""
    try:
        import datasets
    except ImportError:
        raise InputError("exporting to a datasets folder needs the 'datasets' package (pip install 'judgekit[hf]')") from None
    datasets.disable_progress_bars()  # stderr carries one line on failure, nothing on success
    load_study(study_dir)  # only a valid study is exported
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError("must be a new or empty folder", file=out_dir)
    splits = {}
    for name in STUDY_TABLES:
        path = table_path(study_dir, name)
        frame = read_table(path, SCHEMAS[name]) if path is not None else None
        if frame is not None and len(frame):
            splits[name] = datasets.Dataset.from_pandas(_plain(frame), preserve_index=False)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        datasets.DatasetDict(splits).save_to_disk(str(staging))
        meta = study_dir / "study.json"
        if meta.exists():
            (staging / "judgekit_study.json").write_text(meta.read_text(encoding="utf-8"), encoding="utf-8")
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    counts = ", ".join(f"{name} {len(split)}" for name, split in splits.items())
    return f"wrote {out_dir} (datasets.load_from_disk; splits: {counts})"


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns arrow can type: categories as strings, nullable ints kept nullable."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out

