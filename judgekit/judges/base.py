"""What every judge takes and returns, and how a judge is identified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Verdict:
    """One judgement. ``label`` and ``score`` are None when ``parse_status`` is not ``ok``; a graded judge's ok
    verdict has a ``score`` on its declared scale (the preset's ``scales``) and may have no label."""

    label: str | None
    p_unsafe: float | None
    parse_status: str
    raw_output: str
    detail: str = ""
    n_input_tokens: int | None = None
    n_output_tokens: int | None = None
    coverage: float | None = None
    score: float | None = None


@dataclass(frozen=True)
class JudgeItems:
    """The pairs to judge. ``goals`` is the underlying request (the prompt when none is given);
    ``contexts`` is optional context a contextual judge shows (empty when none)."""

    prompts: Sequence[str]
    responses: Sequence[str]
    goals: Sequence[str]
    contexts: Sequence[str]

    @classmethod
    def of(cls, prompts: Sequence[str], responses: Sequence[str], goals=None, contexts=None) -> JudgeItems:
        goals = [g if isinstance(g, str) and g else p for g, p in zip(goals or prompts, prompts, strict=True)]
        contexts = [c if isinstance(c, str) else "" for c in (contexts or [""] * len(prompts))]
        return cls(list(prompts), list(responses), goals, contexts)

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, indices: Sequence[int]) -> JudgeItems:
        return JudgeItems(*([column[i] for i in indices] for column in (self.prompts, self.responses, self.goals, self.contexts)))

    def content_hashes(self) -> list[str]:
        """sha256 of each item's judged content: a cache key independent of item ids."""
        return [
            hashlib.sha256("\x1f".join(fields).encode("utf-8", "surrogatepass")).hexdigest()
            for fields in zip(self.prompts, self.responses, self.goals, self.contexts, strict=True)
        ]


class Judge(Protocol):
    judge_id: str
    spec: dict[str, Any]

    def judge(self, items: JudgeItems) -> list[Verdict]:
        """Judge each pair; return one verdict per pair, in order."""


DEFAULT_BATCH_ITEMS = 512
# A model judge's batch closes before a tenth of its tokens are padding: packed by the CUDA token budget alone,
# the demo's items padded 40% of what the passes computed (tests/test_judges_packing.py).
DEFAULT_MAX_PADDING = 0.10


def plan_batches(judge: Judge, items: JudgeItems) -> list[np.ndarray]:
    """The judge's own batch plan (token-budget packing) or fixed-size chunks (``judge.batch_items``, default 512).

    The plan depends only on the items, so a rerun after a crash forms the same
    batches and reproduces the same numbers bit for bit.
    """
    planner = getattr(judge, "plan", None)
    if planner is not None:
        return planner(items)
    size = getattr(judge, "batch_items", DEFAULT_BATCH_ITEMS)
    return [np.arange(b, min(b + size, len(items))) for b in range(0, len(items), size)]


def spec_hash(spec: dict[str, Any]) -> str:
    """Short sha256 of the canonical JSON of a resolved judge spec."""
    canonical = json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def judge_identity(judge: Judge) -> dict[str, Any]:
    """What decides a verdict besides the spec (weights, tokenizer, server, dtype, the rendering as run);
    empty for judges that are their spec (keyword judges). See :mod:`judgekit.judges.identity`."""
    identity = getattr(judge, "identity", None)
    return identity() if identity is not None else {}


def judge_key(spec: dict[str, Any], identity: dict[str, Any]) -> str:
    """The verdict-cache key and ``judge_spec_hash``: the spec hash, extended by the resolved identity."""
    return spec_hash({"spec": spec, "identity": identity}) if identity else spec_hash(spec)
