"""Hugging Face ``datasets`` in and out: a ``save_to_disk`` folder (or a parquet/jsonl/csv export) -> responses;
a study's tables -> a ``DatasetDict`` folder with one split per table.

Import maps columns with ``--map TARGET=COLUMN`` (repeat, or comma-separated): ``prompt`` and ``response`` are
needed; ``label`` becomes one annotator's human label (``source-label``, 1/unsafe -> unsafe, 0/safe -> safe).
Only mapped columns are read, so a list or struct column elsewhere does no harm; a mapped one is refused.
``datasets`` is needed only for folders (``pip install 'judgekit[hf]'``); files are read with pyarrow.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.datasets.common import binary_label, read_jsonl
from judgekit.datasets.generic import TARGETS, parse_mapping
from judgekit.errors import InputError
from judgekit.frameworks.inspect_import import response_item_id
from judgekit.frameworks.study_append import ImportedRows
from judgekit.store.partitioned import read_stored_table
from judgekit.store.schema import SCHEMAS
from judgekit.store.study import load_study, table_path

HF_TARGETS = (*TARGETS, "prompt_id", "sample", "mitigation", "intent", "context")
STUDY_TABLES = ("responses", "annotations", "judgments", "flags", "prompts", "models", "capability")


def import_hf(source: Path, pairs: list[str], *, split: str | None = None, model: str | None = None) -> ImportedRows:
    """Responses (and human labels) from a datasets folder or a parquet/jsonl/csv file, columns renamed."""
    mapping = parse_mapping([part for pair in pairs for part in pair.split(",") if part], targets=HF_TARGETS)
    for needed in ("prompt", "response"):
        if needed not in mapping:
            raise InputError(f"--map {needed}=COLUMN is needed (the column holding the {needed})")
    frame = _read(source, split)
    missing = [c for c in mapping.values() if c not in frame.columns]
    if missing:
        raise InputError(f"no column {missing[0]!r} (has: {', '.join(map(str, frame.columns))})", file=source,
                         column=missing[0])
    responses = pd.DataFrame({target: frame[column].to_numpy() for target, column in mapping.items() if target != "label"})
    for target, column in mapping.items():
        bad = next((k for k, v in enumerate(frame[column]) if isinstance(v, list | dict | np.ndarray)), None)
        if bad is not None:
            raise InputError("is a list or struct column; map a column of text or numbers", file=source, row=bad + 1,
                             column=column)
    if model is not None:
        responses["model"] = model
    for column in ("prompt", "response"):
        responses[column] = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                             for v in responses[column]]
    if "item_id" not in responses:
        if "prompt_id" in responses and "model" in responses:
            samples = responses["sample"] if "sample" in responses else [0] * len(responses)
            responses["item_id"] = [response_item_id(str(m), str(p), int(s)) for m, p, s in
                                    zip(responses["model"], responses["prompt_id"], samples, strict=True)]
        else:
            responses["item_id"] = [f"{source.stem}-{k:06d}" for k in range(1, len(responses) + 1)]
    responses["item_id"] = responses["item_id"].astype(str)
    annotations = None
    if "label" in mapping:
        column = mapping["label"]
        labels = [_label(v, source, k, column) for k, v in enumerate(frame[column], start=1)]
        annotations = pd.DataFrame({"item_id": responses["item_id"], "annotator_id": "source-label", "label": labels})
    inputs = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    return ImportedRows(responses, None, [], inputs, annotations=annotations,
                        details={"source": "hf", "mapping": mapping, "split": split})


def _label(value: object, source: Path, row: int, column: str) -> str:
    text = str(value).strip().lower()
    named = {"unsafe": "1", "safe": "0", "true": "1", "false": "0", "1.0": "1", "0.0": "0"}.get(text, text)
    return binary_label(named, path=source, row=row, column=column)


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

