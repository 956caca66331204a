"""Provenance: every output directory gets a ``manifest.json``.

It records the package and library versions, the judgekit git commit and
whether the tree was dirty, the command line, sha256 of every input file,
seeds and the resolved judge specs. API keys or other secrets never go in:
only what callers pass explicitly is written.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from judgekit.errors import InputError
from judgekit.io import write_text_atomic

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_LIBRARIES = ("numpy", "pandas", "pyarrow", "scikit-learn", "statsmodels", "krippendorff", "matplotlib", "torch", "transformers")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def write_manifest(out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    return write_text_atomic(Path(out_dir) / MANIFEST_NAME, json.dumps(manifest, indent=2, default=str) + "\n")


def append_study_run(study_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Steps that update a study in place (judge, flag) append their run to the study's manifest."""
    path = Path(study_dir) / MANIFEST_NAME
    runs: list[dict[str, Any]] = []
    if path.exists():
        try:
            runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            raise InputError("is not a judgekit study manifest; move it aside so provenance is not lost", file=path) from None
    runs.append(manifest)
    return write_text_atomic(path, json.dumps({"manifest_version": MANIFEST_VERSION, "runs": runs}, indent=2, default=str) + "\n")


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    path = Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
