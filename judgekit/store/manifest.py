"""Provenance: every output directory gets a ``manifest.json``.

It records the package and library versions, the judgekit git commit and
whether the tree was dirty, the command line, sha256 of every input file,
seeds and the resolved judge specs. API keys or other secrets never go in:
only what callers pass explicitly is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from judgekit.errors import InputError
from judgekit.store.io import write_text_atomic

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_LIBRARIES = ("numpy", "pandas", "pyarrow", "scikit-learn", "statsmodels", "krippendorff", "matplotlib", "torch", "transformers")


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as stream:
        # One reused buffer (readinto), not a new megabyte of bytes per block to fault in and free.
        return hashlib.file_digest(stream, "sha256").hexdigest()


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the judgekit source tree, when it is a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def _library_versions() -> dict[str, str | None]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def build_manifest(
    *,
    step: str,
    inputs: list[Path],
    seeds: dict[str, int] | None = None,
    judge_specs: list[dict[str, Any]] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from judgekit import __version__

    return {
        "manifest_version": MANIFEST_VERSION,
        "step": step,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "judgekit_version": __version__,
        "git": git_state(),
        "command": sys.argv,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": _library_versions(),
        "inputs": {str(p): sha256_file(p) for p in sorted(inputs)},
        "seeds": seeds or {},
        "judge_specs": judge_specs or [],
        "details": details or {},
    }


def _finite(value: Any) -> Any:
    """NaN and infinities become null: bare ``NaN`` would make the manifest invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def write_manifest(out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    return write_text_atomic(Path(out_dir) / MANIFEST_NAME, json.dumps(_finite(manifest), indent=2, default=str, allow_nan=False) + "\n")


def _read_study_runs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, RecursionError):
        runs = None
    if not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs):
        raise InputError("is not a judgekit study manifest; move it aside so provenance is not lost", file=path)
    return runs


def _write_study_runs(path: Path, runs: list[dict[str, Any]]) -> Path:
    text = json.dumps(_finite({"manifest_version": MANIFEST_VERSION, "runs": runs}), indent=2, default=str,
                      allow_nan=False)
    return write_text_atomic(path, text + "\n")


def append_study_run(study_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Append a finished run to the study's manifest (steps that write a study all at once: ``data convert``)."""
    path = Path(study_dir) / MANIFEST_NAME
    return _write_study_runs(path, [*_read_study_runs(path), {**manifest, "status": "finished"}])


@contextmanager
def recorded_study_run(study_dir: str | Path, manifest: dict[str, Any], *,
                       lock: Callable[[], AbstractContextManager] = nullcontext) -> Iterator[dict[str, Any]]:
    """Record a step that updates a study in place (judge, flag) before and after its work.

    The run is written as ``started`` before any work, so a malformed manifest
    stops the step before it changes anything and a killed run still leaves its
    record; it becomes ``finished`` (with what the caller added to the yielded
    ``details``) or ``failed`` with the error. Each of these writes is made under
    ``lock()`` (the study lock, for a step that does not hold it throughout), as
    concurrent steps record their runs in the same file.
    """
    path = Path(study_dir) / MANIFEST_NAME
    run_id = uuid.uuid4().hex
    with lock():
        _write_study_runs(path, [*_read_study_runs(path), {**manifest, "run_id": run_id, "status": "started"}])
    details: dict[str, Any] = {}
    try:
        yield details
    except BaseException as err:
        with lock():
            _finish_study_run(path, run_id, {"status": "failed", "error": f"{type(err).__name__}: {err}"})
        raise
    with lock():
        _finish_study_run(path, run_id, {"status": "finished", **details})


def _finish_study_run(path: Path, run_id: str, update: dict[str, Any]) -> None:
    runs = _read_study_runs(path)
    for run in runs:
        if run.get("run_id") == run_id:
            run.update(update)
    _write_study_runs(path, runs)


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    path = Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
