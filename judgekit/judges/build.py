"""Turn a preset name or a spec file into a judge object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from judgekit.errors import InputError
from judgekit.judges.base import Judge
from judgekit.judges.catalog import check_spec, load_preset, load_spec_file


def judge_from_spec(spec: dict[str, Any]) -> Judge:
    spec = check_spec(spec, origin=spec.get("judge_id", "spec"))
    if spec["family"] == "keyword":
        from judgekit.judges.keyword import KeywordJudge

        return KeywordJudge(spec)
    raise InputError(f"judge family {spec['family']!r} has no backend")


def judge_from_preset(preset: str) -> Judge:
    return judge_from_spec(load_preset(preset))


def resolve_judge(name_or_path: str) -> Judge:
    """A registered judge name, or a path to a JSON judge spec."""
    from judgekit.registry import JUDGES

    if name_or_path.endswith(".json"):
        return judge_from_spec(load_spec_file(Path(name_or_path)))
    try:
        entry = JUDGES.get(name_or_path)
    except KeyError as err:
        raise InputError(f"{err.args[0]} (or pass a path to a .json judge spec)") from None
    return entry.load()(**entry.params)
