"""Inspect AI eval logs as plain data: the ``.eval`` zip and the ``.json`` file, read without ``inspect_ai``.

Layout read (inspect-ai 0.3.285, ``src/inspect_ai/log/_recorders/eval.py`` and ``log/_log.py`` of
UKGovernmentBEIS/inspect_ai):

* ``.eval``: a zip whose members are zstandard-compressed (zip method 93) in current versions, deflated in
  older ones. ``header.json`` holds ``version``, ``status``, ``eval`` (task, model, scorers...), ``results``;
  ``_journal/start.json`` alone means the run never finished. ``samples/<id>_epoch_<n>.json`` are the samples,
  ``reductions.json`` the per-sample values after Inspect's epoch reducer (what its metrics are computed on).
* ``.json``: the same objects in one file (``samples`` and ``reductions`` lists).

Long strings of a sample may be stored once in its ``attachments`` and referred to as ``attachment://<hash>``;
they are resolved here, as ``resolve_sample_attachments`` does.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgekit.datasets.common import read_json
from judgekit.errors import InputError
from judgekit.store.limits import ExpansionBudget, over_limit

ZIP_ZSTANDARD = 93  # the zip compression method number of zstandard (APPNOTE 4.4.5)
ATTACHMENT = "attachment://"
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")


@dataclass(frozen=True)
class InspectLog:
    """One eval log: its spec (``eval``), status, results, samples (attachments resolved) and reductions."""

    path: Path
    spec: dict[str, Any]
    status: str | None
    results: dict[str, Any] | None
    samples: list[dict[str, Any]] = field(default_factory=list)
    reductions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def task(self) -> str:
        return str(self.spec.get("task") or "")

    @property
    def model(self) -> str:
        return str(self.spec.get("model") or "")


def read_inspect_log(path: str | Path, *, require_success: bool = True) -> InspectLog:
    """Read a ``.eval`` or ``.json`` Inspect log; an unfinished or failed run is an error unless allowed."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    raw = _read_eval_zip(path) if path.suffix == ".eval" else read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("eval"), dict):
        raise InputError("not an Inspect AI eval log (no 'eval' object)", file=path)
    if require_success and raw.get("status") != "success":
        raise InputError(f"eval status is {raw.get('status')!r}, not 'success': its scores are incomplete",
                         file=path, column="status")
    samples = raw.get("samples") or []
    reductions = raw.get("reductions") or []
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise InputError("'samples' must be a list of sample objects", file=path, column="samples")
    if not isinstance(reductions, list):
        raise InputError("'reductions' must be a list", file=path, column="reductions")
    return InspectLog(path, raw["eval"], raw.get("status"), raw.get("results"),
                      [_resolve_attachments(s) for s in _dataset_order(samples, raw["eval"])], reductions)


def _dataset_order(samples: list[dict[str, Any]], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Samples in the dataset's order, epochs within a sample ascending (both formats read alike)."""
    ids = (spec.get("dataset") or {}).get("sample_ids") if isinstance(spec.get("dataset"), dict) else None
    position = {str(v): k for k, v in enumerate(ids)} if isinstance(ids, list) else {}

    def key(sample: dict[str, Any]) -> tuple:
        epoch = sample.get("epoch")
        return (position.get(str(sample.get("id")), len(position)), str(sample.get("id")),
                epoch if isinstance(epoch, int) else 0)

    return sorted(samples, key=key)


def _read_eval_zip(path: Path) -> dict[str, Any]:
    """The log's objects from its zip, every member bounded (:mod:`judgekit.store.limits`) and checked to own
    its bytes: overlapping or repeated entries (a zip bomb's trick) are refused before anything expands."""
    budget = ExpansionBudget(path)
    try:
        with zipfile.ZipFile(path) as archive:
            _check_entries(archive, path)
            names = set(archive.namelist())
            if "header.json" in names:
                raw = _member_json(archive, path, "header.json", budget)
            elif "_journal/start.json" in names:  # started, never finished: no header was written
                raw = {**_member_json(archive, path, "_journal/start.json", budget), "status": "started"}
            else:
                raise InputError("not an Inspect AI .eval log (no header.json or _journal/start.json)", file=path)
            if not isinstance(raw, dict):
                raise InputError("header.json must hold a JSON object", file=path)
            sample_names = sorted(n for n in names if n.startswith("samples/") and n.endswith(".json"))
            raw["samples"] = [_member_json(archive, path, name, budget) for name in sample_names]
            if "reductions.json" in names:
                raw["reductions"] = _member_json(archive, path, "reductions.json", budget)
            return raw
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as err:
        raise InputError(f"not a readable Inspect .eval log: {err}", file=path) from None


def _check_entries(archive: zipfile.ZipFile, path: Path) -> None:
    """Each entry names its own member: no name twice, and no two entries' bytes (local header, name, extra
    field, compressed data) sharing a byte or reaching into the central directory."""
    seen: set[str] = set()
    spans = []
    stream = archive.fp
    for info in archive.infolist():
        if info.filename in seen:
            raise InputError(f"member {info.filename} appears twice in the zip directory; refusing the archive",
                             file=path)
        seen.add(info.filename)
        stream.seek(info.header_offset)
        header = stream.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise InputError(f"member {info.filename}: bad local header", file=path)
        name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
        spans.append((info.header_offset, info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
                      + info.compress_size, info.filename))
    spans.sort()
    directory_start = getattr(archive, "start_dir", None)
    for (start, end, name), following in zip(spans, [*spans[1:], None], strict=True):
        limit = following[0] if following is not None else directory_start
        if limit is not None and end > limit:
            other = following[2] if following is not None else "the central directory"
            raise InputError(f"member {name} overlaps {other} (entries sharing compressed bytes: a zip bomb); "
                             "refusing the archive", file=path)


def _member_json(archive: zipfile.ZipFile, path: Path, name: str, budget: ExpansionBudget) -> Any:
    info = archive.getinfo(name)
    member_limit = budget.limits.max_member_bytes
    if info.file_size > member_limit:
        raise over_limit(path, f"member {name} declares {info.file_size} bytes", "max_member_bytes", member_limit)
    budget.take(info.file_size, f"member {name}")
    data = _zstd_member(archive, path, info) if info.compress_type == ZIP_ZSTANDARD and not _stdlib_zstd() \
        else _stdlib_member(archive, path, info)
    if len(data) != info.file_size:
        found = "more than that" if len(data) > info.file_size else f"{len(data)} bytes"
        raise InputError(f"member {name} declares {info.file_size} bytes but expands to {found}", file=path)
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"member {name} is not valid JSON: {err}", file=path) from None
    except RecursionError:
        raise InputError(f"member {name} is nested too deeply to read", file=path) from None


def _stdlib_zstd() -> bool:
    return getattr(zipfile, "ZIP_ZSTANDARD", None) == ZIP_ZSTANDARD  # Python 3.14 reads zstandard members itself


def _stdlib_member(archive: zipfile.ZipFile, path: Path, info: zipfile.ZipInfo) -> bytes:
    """At most one byte more than declared: a member that expands further is refused without expanding it."""
    try:
        with archive.open(info) as member:
            return member.read(info.file_size + 1)
    except (NotImplementedError, zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(f"cannot read member {info.filename}: {err}", file=path) from None


def _zstd_member(archive: zipfile.ZipFile, path: Path, info: zipfile.ZipInfo) -> bytes:
    """A zstandard member, decompressed with the ``zstandard`` package (the format Inspect writes since 0.3.2xx)."""
    try:
        import zstandard
    except ImportError:
        raise InputError("this .eval log is zstandard-compressed; install the 'zstandard' package "
                         "(pip install 'judgekit[inspect]') to read it", file=path) from None
    stream = archive.fp
    stream.seek(info.header_offset)
    header = stream.read(_LOCAL_HEADER.size)
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
    stream.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
    compressed = stream.read(info.compress_size)
    try:
        # Inspect writes several frames for a large member: read across them, and no further than declared.
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(compressed), read_across_frames=True)
        return reader.read(info.file_size + 1)
    except zstandard.ZstdError as err:
        raise InputError(f"member {info.filename}: {err}", file=path) from None


def _resolve_attachments(sample: dict[str, Any]) -> dict[str, Any]:
    attachments = sample.get("attachments")
    if not isinstance(attachments, dict) or not attachments:
        return sample

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(ATTACHMENT):
            return attachments.get(value[len(ATTACHMENT):], value)
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    # events are left alone: only what the importers read is resolved (input, messages, output, scores, metadata)
    return {k: (v if k in ("events", "attachments") else resolve(v)) for k, v in sample.items()}


def message_text(content: Any) -> str:
    """The text of a chat message's ``content``: a string, or the ``text`` parts of a content list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content
                         if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str))
    return ""


def last_user_turn(sample_input: Any) -> str | None:
    """The prompt of a sample: its input when that is a string, else the last user message's text."""
    if isinstance(sample_input, str):
        return sample_input
    if isinstance(sample_input, list):
        users = [m for m in sample_input if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            return message_text(users[-1].get("content"))
    return None


def value_to_float(value: object) -> float | None:
    """Inspect's ``value_to_float`` (``scorer/_metric.py``) for its default values; None where it has no reading.

    C 1, P 0.5, I and N 0, yes/true 1, no/false 0, numbers as they are (NaN kept: Inspect's "unscored").
    """
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
    return number if math.isfinite(number) else None  # Inspect's is_finite_number: "nan"/"inf" text is no number
