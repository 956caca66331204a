"""Run judges over a study's responses and append their verdicts to ``judgments``.

Reruns are incremental: items a judge (same spec hash) already judged are
skipped, so an interrupted run resumes where it stopped. The table is
rewritten atomically after each judge.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from judgekit.errors import InputError
from judgekit.judges.base import Judge, spec_hash
from judgekit.study import Study

CHUNK_SIZE = 512


@dataclass(frozen=True)
class JudgeRunSummary:
    judge_id: str
    spec_hash: str
    n_judged: int
    n_skipped: int
    wall_s: float
    status_counts: dict[str, int]
    spec: dict[str, Any]


def run_judges(study: Study, judges: list[Judge], *, replace: bool = False, progress: bool = True) -> list[JudgeRunSummary]:
    """Judge every response with each judge; save the judgments table after each judge."""
    summaries = []
    for judge in judges:
        summaries.append(_run_one(study, judge, replace=replace, progress=progress))
    return summaries


def _run_one(study: Study, judge: Judge, *, replace: bool, progress: bool) -> JudgeRunSummary:
    digest = spec_hash(judge.spec)
    existing = study.judgments if study.judgments is not None else _empty_judgments()
    mine = existing["judge_id"] == judge.judge_id
    stale = mine & (existing["judge_spec_hash"] != digest)
    if stale.any() and not replace:
        old = existing.loc[stale, "judge_spec_hash"].iloc[0]
        raise InputError(
            f"judge {judge.judge_id!r} already has judgments from another spec (hash {old}, now {digest}); "
            "pass --replace to discard them"
        )
    existing = existing.loc[~stale]
    done = set(existing.loc[existing["judge_id"] == judge.judge_id, "item_id"])
    todo = study.responses.loc[~study.responses["item_id"].isin(done)]
    started = time.perf_counter()
    rows = []
    bar = tqdm(total=len(todo), desc=judge.judge_id, unit="item", disable=not progress, leave=False)
    for begin in range(0, len(todo), CHUNK_SIZE):
        chunk = todo.iloc[begin : begin + CHUNK_SIZE]
        chunk_started = time.perf_counter()
        verdicts = judge.judge(chunk["prompt"].tolist(), chunk["response"].tolist())
        if len(verdicts) != len(chunk):
            raise RuntimeError(f"judge {judge.judge_id} returned {len(verdicts)} verdicts for {len(chunk)} items")
        per_item = (time.perf_counter() - chunk_started) / max(len(chunk), 1)
        for item_id, verdict in zip(chunk["item_id"], verdicts, strict=True):
            rows.append(_row(item_id, judge.judge_id, digest, verdict, per_item))
        bar.update(len(chunk))
    bar.close()
    if rows:
        combined = pd.concat([existing, pd.DataFrame(rows)], ignore_index=True)
        # Rows from tables without the optional text column get an empty one, not a null.
        combined["detail"] = combined["detail"].fillna("")
        study.save("judgments", combined)
    new = pd.DataFrame(rows)
    counts = new["parse_status"].value_counts().to_dict() if rows else {}
    return JudgeRunSummary(
        judge_id=judge.judge_id,
        spec_hash=digest,
        n_judged=len(rows),
        n_skipped=len(done),
        wall_s=round(time.perf_counter() - started, 6),
        status_counts={str(k): int(v) for k, v in counts.items()},
        spec=judge.spec,
    )


def _row(item_id: str, judge_id: str, digest: str, verdict, latency_s: float) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "judge_id": judge_id,
        "label": verdict.label,
        "p_unsafe": verdict.p_unsafe,
        "parse_status": verdict.parse_status,
        "raw_output": verdict.raw_output,
        "judge_spec_hash": digest,
        "latency_s": latency_s,
        "n_input_tokens": verdict.n_input_tokens,
        "n_output_tokens": verdict.n_output_tokens,
        "detail": verdict.detail,
    }


def _empty_judgments() -> pd.DataFrame:
    columns = ["item_id", "judge_id", "label", "p_unsafe", "parse_status", "raw_output", "judge_spec_hash"]
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
