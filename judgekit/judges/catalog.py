"""Built-in judge presets: one JSON data file each in ``judges/presets/``.

A preset records what the judge is and where its definition comes from
(repository, path, commit, licence, citation). Presets are data; no code is
ever read from them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from judgekit.errors import InputError

REQUIRED_KEYS = {"judge_id", "family", "version", "description", "source", "license", "citation"}
FAMILIES = ("keyword", "guard_model", "rubric")
FAMILY_KEYS = {"keyword": {"markers"}, "guard_model": {"model", "input", "readout"}, "rubric": {"messages", "parser"}}


@cache
def _preset_files() -> dict[str, Any]:
    folder = resources.files("judgekit.judges") / "presets"
    return {Path(entry.name).stem: entry for entry in folder.iterdir() if entry.name.endswith(".json")}


def preset_names() -> list[str]:
    return sorted(_preset_files())


def load_preset(name: str) -> dict[str, Any]:
    files = _preset_files()
    if name not in files:
        raise InputError(f"no preset named {name!r}; available: {', '.join(sorted(files))}")
    return check_spec(json.loads(files[name].read_text(encoding="utf-8")), origin=f"preset {name}")


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a user-defined judge spec (same keys as a preset)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("judge spec file not found", file=path) from None
    except UnicodeDecodeError as err:
        raise InputError(f"not valid UTF-8 (byte {err.start})", file=path) from None
    except json.JSONDecodeError as err:
        raise InputError(f"invalid JSON: {err.msg}", file=path, row=err.lineno) from None
    return check_spec(spec, origin=str(path))


def check_spec(spec: Any, *, origin: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise InputError(f"{origin}: a judge spec must be a JSON object")
    missing = sorted(REQUIRED_KEYS - set(spec))
    if missing:
        raise InputError(f"{origin}: judge spec lacks {', '.join(missing)}")
    if spec["family"] not in FAMILIES:
        raise InputError(f"{origin}: unknown judge family {spec['family']!r}; known: {', '.join(FAMILIES)}")
    missing = sorted(FAMILY_KEYS[spec["family"]] - set(spec))
    if missing:
        raise InputError(f"{origin}: a {spec['family']} judge spec lacks {', '.join(missing)}")
    return spec


def preset_summary(name: str) -> str:
    return load_preset(name)["description"]
