"""Built-in judge presets: one JSON data file each in ``judges/presets/``.

A preset records what the judge is and where its definition comes from
(repository, path, commit, licence, citation). Presets are data; no code is
ever read from them. A rubric preset whose verdict is a refusal detector's
("safe" = the response refuses) says ``"detects": "refusal"``; keyword presets
are refusal detectors by their family. Both measure over-refusal on benign
prompts (:mod:`judgekit.analysis.outcomes`).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from judgekit.errors import InputError
from judgekit.store.schema import JudgeScale

REQUIRED_KEYS = {"judge_id", "family", "version", "description", "source", "license", "citation"}
# Every built-in preset also states how far it was checked: the upstream file it was read from, whether its
# token facts were checked on the model's real vocabulary (None: the judge reads no vocabulary), and where it
# departs from upstream on purpose (empty: it follows upstream exactly).
PROVENANCE_KEYS = {"verified_vocab", "deviations"}
SOURCE_KEYS = {"repository", "path", "commit"}
# Why a guard model has no pinned revision: hub commits cannot be read from here, and none is known from a stored source.
NOT_PINNED = "unpinned: no hub access"
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
    spec = check_spec(json.loads(files[name].read_text(encoding="utf-8")), origin=f"preset {name}")
    missing = sorted(PROVENANCE_KEYS - set(spec)) + sorted(SOURCE_KEYS - set(spec["source"]))
    if missing:
        raise InputError(f"preset {name}: lacks {', '.join(missing)}")
    return spec


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a user-defined judge spec (same keys as a preset)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("judge spec file not found", file=path) from None
    except RecursionError:
        raise InputError("is nested too deeply to read", file=path) from None
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
    if not isinstance(spec["judge_id"], str) or not spec["judge_id"].strip():
        # It names rows of judgments and keys the cache: it must be a usable id.
        raise InputError(f"{origin}: 'judge_id' must be a non-empty string, got {spec['judge_id']!r}")
    if not isinstance(spec["family"], str) or spec["family"] not in FAMILIES:
        raise InputError(f"{origin}: unknown judge family {spec['family']!r}; known: {', '.join(FAMILIES)}")
    missing = sorted(FAMILY_KEYS[spec["family"]] - set(spec))
    if missing:
        raise InputError(f"{origin}: a {spec['family']} judge spec lacks {', '.join(missing)}")
    deviations = spec.get("deviations", [])
    if not isinstance(deviations, list) or not all(isinstance(d, str) and d for d in deviations):
        raise InputError(f"{origin}: 'deviations' must be a list of non-empty strings")
    if spec.get("verified_vocab") not in (True, False, None):
        raise InputError(f"{origin}: 'verified_vocab' must be true, false or null")
    try:
        spec_scales(spec)
    except InputError as err:
        raise InputError(f"{origin}: {err}") from None
    return spec


def spec_scales(spec: dict[str, Any]) -> tuple[JudgeScale, ...]:
    """The scales a graded judge scores on (its spec's ``scales``: the study.json ``judge_scales`` fields without
    ``judge_id``); empty for a judge that gives safety verdicts only."""
    raw = spec.get("scales", [])
    if not isinstance(raw, list):
        raise InputError("'scales' must be a list of scale objects")
    return tuple(JudgeScale.from_json({**entry, "judge_id": spec["judge_id"]} if isinstance(entry, dict) else entry)
                 for entry in raw)


def preset_summary(name: str) -> str:
    return load_preset(name)["description"]


def provenance(spec: dict[str, Any]) -> dict[str, Any]:
    """What a judge spec says about its own fidelity: upstream source, pinned revision, vocabulary check,
    deviations from upstream (for ``judgekit list --verbose`` and reports)."""
    source = spec.get("source") or {}
    model = spec.get("model") or {}
    weights = spec.get("family") == "guard_model"
    revision = model.get("revision") if weights else None
    return {
        "judge_id": spec["judge_id"],
        "source": {key: source.get(key) for key in ("repository", "path", "commit", "read_via") if source.get(key)},
        "revision": revision or (NOT_PINNED if weights else None),
        "revision_source": model.get("revision_source") if revision else None,
        "verified_vocab": spec.get("verified_vocab"),
        "verified_on_gpu": spec.get("verified_on_gpu"),
        "deviations": list(spec.get("deviations", [])),
    }


def describe_presets() -> str:
    """Per preset: upstream source (the preset's ``source``), pinned revision (``model.revision``), vocabulary check
    and deviations, as plain text."""
    vocab_words = {True: "verified on the real vocabulary", False: "NOT verified (vocabulary not available)",
                   None: "n/a (reads no token vocabulary)"}
    lines = []
    for name in preset_names():
        info = provenance(load_preset(name))
        source = info["source"]
        revision = info["revision"] or "n/a (no weights)"
        if info["revision_source"]:
            revision += f" (from {info['revision_source']})"
        lines += [
            f"{name}",
            f"  upstream:        {source.get('repository')} {source.get('path')} @ {source.get('commit')}",
            f"  pinned revision: {revision}",
            f"  verified_vocab:  {vocab_words[info['verified_vocab']]}",
            "  deviations:      " + ("none (follows upstream)" if not info["deviations"] else f"{len(info['deviations'])}"),
            *(f"    - {d}" for d in info["deviations"]),
        ]
    return "\n".join(lines)
