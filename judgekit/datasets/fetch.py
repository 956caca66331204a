"""Download a dataset's files from their canonical locations, checked against pinned sha256.

Downloads go to ``<file>.part`` beside the target and resume with an HTTP
Range request after an interruption; a file is renamed into place only after
its size and hash check out. A mismatch deletes the partial file and fails:
nothing unchecked is ever left where a converter would read it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgekit.errors import InputError

DEFAULT_CACHE = Path(os.environ.get("JUDGEKIT_CACHE", Path.home() / ".cache" / "judgekit")) / "datasets"
CHUNK = 1 << 16


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    sha256: str
    pinned: bool
    resumed: bool


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, part: Path, *, timeout: float) -> bool:
    """Append the rest of ``url`` to ``part``; True if a previous partial download was resumed."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "judgekit"} | ({"Range": f"bytes={offset}-"} if offset else {}))
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URLs come from the pinned sources file or the user
        resumed = offset > 0 and response.status == 206
        announced = response.headers.get("Content-Length")
        received = 0
        with open(part, "ab" if resumed else "wb") as stream:
            while block := response.read(CHUNK):
                stream.write(block)
                received += len(block)
    if announced is not None and received < int(announced):
        # A dropped connection can end the body silently; the retry resumes from what was written.
        raise ConnectionError(f"connection closed after {received} of {announced} bytes")
    return resumed


def fetch_file(entry: dict[str, Any], target: Path, *, allow_unpinned: bool = False, retries: int = 4,
               timeout: float = 60.0, source: Path | None = None) -> FetchedFile:
    """Fetch one file (from ``entry["url"]`` or a local ``source`` copy) to ``target``, verified."""
    expected = entry.get("sha256")
    if expected is None and not allow_unpinned:
        raise InputError(f"{entry['path']}: no pinned sha256 is known for this file; pass --allow-unpinned to accept it unverified")
    if target.exists() and expected is not None and sha256_of(target) == expected:
        return FetchedFile(target, expected, True, False)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    resumed = False
    if source is not None:
        if not source.is_file():
            raise InputError("local copy not found", file=source)
        shutil.copyfile(source, part)
    else:
        for attempt in range(retries):
            try:
                resumed = _download(entry["url"], part, timeout=timeout) or resumed
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
                if attempt == retries - 1:
                    raise InputError(f"{entry['path']}: download failed after {retries} attempts: {err}") from None
                time.sleep(min(2.0**attempt * 0.2, 5.0))
    actual = sha256_of(part)
    size = entry.get("size")
    if (expected is not None and actual != expected) or (size is not None and part.stat().st_size != size):
        part.unlink(missing_ok=True)
        raise InputError(f"{entry['path']}: checksum mismatch (expected {expected}, got {actual}); nothing was kept")
    os.replace(part, target)
    return FetchedFile(target, actual, expected is not None, resumed)


def fetch_dataset(name: str, files: list[dict[str, Any]], *, to: Path | None = None, from_path: Path | None = None,
                  allow_unpinned: bool = False, timeout: float = 60.0) -> list[FetchedFile]:
    """Fetch every file of dataset ``name`` into ``to`` (default: the cache), keeping relative paths."""
    root = to if to is not None else DEFAULT_CACHE / name
    fetched = []
    for entry in files:
        local = from_path / entry["path"] if from_path is not None else None
        fetched.append(fetch_file(entry, root / entry["path"], allow_unpinned=allow_unpinned, timeout=timeout, source=local))
    return fetched
