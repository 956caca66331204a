"""Hugging Face ``datasets`` in and out: a ``save_to_disk`` folder (or a parquet/jsonl/csv export) -> responses;
a study's tables -> a ``DatasetDict`` folder with one split per table.

Import (``data import hf``, an alias of ``data import table``) is :mod:`judgekit.frameworks.table_import`, which
reads parquet, JSONL and folders with :func:`read_source`. ``datasets`` is needed only for folders
(``pip install 'judgekit[hf]'``); files are read with pyarrow.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd

from judgekit.datasets.common import read_json, read_jsonl
from judgekit.datasets.generic import TARGETS
from judgekit.errors import InputError
from judgekit.store.io import first_line, read_parquet_table
from judgekit.store.limits import ExpansionBudget
from judgekit.store.partitioned import read_stored_table
from judgekit.store.schema import SCHEMAS
from judgekit.store.study import load_study, table_path

HF_TARGETS = (*TARGETS, "prompt_id", "sample", "mitigation", "intent", "context")
STUDY_TABLES = ("responses", "annotations", "judgments", "flags", "prompts", "models", "capability")


def read_source(source: Path, split: str | None) -> pd.DataFrame:
    if source.is_dir():
        return _read_datasets_folder(source, split)
    if not source.is_file():
        raise InputError("not found", file=source)
    suffix = source.suffix.lower()
    if split is not None:
        raise InputError("--split applies to a datasets folder, not a file", file=source)
    if suffix == ".parquet":
        return read_parquet_table(source).to_pandas()
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
    check_datasets_folder(folder)
    datasets.disable_progress_bars()
    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as err:  # noqa: BLE001 - datasets and pyarrow raise many types for one unreadable folder
        raise InputError(f"not a readable datasets folder: {first_line(err)}", file=folder) from None
    if isinstance(loaded, datasets.DatasetDict):
        if split is None and len(loaded) != 1:
            raise InputError(f"has splits {sorted(loaded)}; choose one with --split", file=folder)
        if split is not None and split not in loaded:
            raise InputError(f"no split {split!r} (has {sorted(loaded)})", file=folder)
        loaded = loaded[split if split is not None else next(iter(loaded))]
    elif split is not None:
        raise InputError("is a single dataset without splits; leave out --split", file=folder)
    ExpansionBudget(folder).take(loaded.data.nbytes, "its arrow tables")
    try:
        return loaded.to_pandas()
    except Exception as err:  # noqa: BLE001 - a truncated or corrupt arrow file fails only when its rows are read
        raise InputError(f"not a readable datasets folder: {first_line(err)}", file=folder) from None


def check_datasets_folder(folder: Path) -> None:
    """What ``save_to_disk`` wrote, and only that: every split and data file it names lies inside ``folder``
    (no ``../`` and no symlink out), is a regular file, and all of them together fit the expansion limit; no
    feature reads a file of its own (``ClassLabel(names_file=...)``)."""
    root = folder.resolve()
    listing = folder / "dataset_dict.json"
    if listing.exists():
        splits = _json_object(listing).get("splits")
        if not isinstance(splits, list) or not all(isinstance(name, str) for name in splits):
            raise InputError("'splits' must be a list of folder names", file=listing)
        split_dirs = [_inside(root, folder / name, listing) for name in splits]
    else:
        split_dirs = [folder]
    budget = ExpansionBudget(folder)
    for split_dir in split_dirs:
        state_path = split_dir / "state.json"
        state = _json_object(state_path)
        files = state.get("_data_files")
        if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("filename"), str) for f in files):
            raise InputError("'_data_files' must be a list of {\"filename\": ...}", file=state_path)
        for entry in files:
            data_file = _inside(root, split_dir / entry["filename"], state_path)
            if not data_file.is_file():
                raise InputError(f"names {entry['filename']!r}, which is not a file in the folder", file=state_path)
            budget.take(data_file.stat().st_size, entry["filename"])
        info_path = split_dir / "dataset_info.json"
        if info_path.exists() and _names_a_file(_json_object(info_path).get("features")):
            raise InputError("a feature names a file of its own (ClassLabel names_file); save the names in the "
                             "dataset (names=[...]) instead", file=info_path)


def _json_object(path: Path) -> dict:
    if not path.is_file():
        raise InputError("not found (a datasets folder written by save_to_disk has one)", file=path)
    content = read_json(path)
    if not isinstance(content, dict):
        raise InputError("must hold a JSON object", file=path)
    return content


def _inside(root: Path, path: Path, named_in: Path) -> Path:
    """``path`` when it resolves inside ``root``; a name that leads out (``..``, an absolute path, a symlink
    out) is refused: a datasets folder reads only its own files."""
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise InputError(f"names {path.relative_to(named_in.parent) if path.is_relative_to(named_in.parent) else path}, "
                         f"outside the datasets folder {root}", file=named_in)
    return resolved


def _names_a_file(features: object) -> bool:
    """Whether any feature (nested ones too) carries a ``names_file``: walked without recursion."""
    stack = [features]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if value.get("names_file") is not None:
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


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
        frame = read_stored_table(path, SCHEMAS[name]) if path is not None else None
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

