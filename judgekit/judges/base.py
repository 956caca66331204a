"""What every judge returns, and how a judge is identified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Verdict:
    """One judgement. ``label`` is None exactly when ``parse_status`` is not ``ok``."""

    label: str | None
    p_unsafe: float | None
    parse_status: str
    raw_output: str
    detail: str = ""
    n_input_tokens: int | None = None
    n_output_tokens: int | None = None


class Judge(Protocol):
    judge_id: str
    spec: dict[str, Any]

    def judge(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Verdict]:
        """Judge each (prompt, response) pair; return one verdict per pair, in order."""


def spec_hash(spec: dict[str, Any]) -> str:
    """Short sha256 of the canonical JSON of a resolved judge spec."""
    canonical = json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
