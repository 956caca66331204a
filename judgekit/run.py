"""Run judges over a study's responses and append their verdicts to ``judgments``.

Each judge plans its batches over the items still to judge (token-budget
packing for model judges), and every finished batch is committed to the
study's verdict cache (:mod:`judgekit.judges.cache`) before the next starts.
A run killed at any point and started again skips the committed batches and
recomputes the others in the same composition, so its judgments are identical
to those of an uninterrupted run. The judgments table is rewritten atomically
once a judge has finished.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from judgekit.errors import InputError
from judgekit.io import write_text_atomic
from judgekit.judges.base import Judge, JudgeItems, Verdict, judge_identity, judge_key, plan_batches
from judgekit.judges.cache import CACHE_RELATIVE_PATH, VerdictCache
from judgekit.judges.catalog import spec_scales
from judgekit.judges.readout import DEFAULT_MIN_COVERAGE
from judgekit.schema import STUDY_METADATA_FILE, JudgeScale
from judgekit.study import Study

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgeRunSummary:
    judge_id: str
    spec_hash: str
    n_judged: int
    n_skipped: int
    n_from_cache: int
    wall_s: float
    n_input_tokens: int
    n_output_tokens: int
    status_counts: dict[str, int]
    spec: dict[str, Any]
    backend: dict[str, Any] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)


def run_judges(study: Study, judges: list[Judge], *, replace: bool = False, progress: bool = True) -> list[JudgeRunSummary]:
    """Judge every response with each judge, one judge in memory at a time."""
    summaries = []
    cache = _StudyVerdictCache(study.path)
    try:
        for judge in judges:
            try:
                summaries.append(_run_one(study, judge, cache, replace=replace, progress=progress))
            finally:
                close = getattr(judge, "close", None)
                if close is not None:
                    close()
    finally:
        cache.close()
    return summaries


class _StudyVerdictCache:
    """The study's verdict cache, opened at the first stored verdict (or when a cache file already exists).

    A run that stores nothing (keyword judges, a judge that fails to load, one whose every item ends in
    ``error``) leaves no ``cache/`` in the study.
    """

    def __init__(self, study_dir: Path) -> None:
        self.path = Path(study_dir) / CACHE_RELATIVE_PATH
        self._cache: VerdictCache | None = None

    def _opened(self, *, create: bool) -> VerdictCache | None:
        if self._cache is None and (create or self.path.exists()):
            self._cache = VerdictCache(self.path)
        return self._cache

    def get(self, spec_hash: str, item_hashes: list[str]) -> dict[str, tuple[Verdict, float | None]]:
        cache = self._opened(create=False)
        return cache.get(spec_hash, item_hashes) if cache is not None else {}

    def put(self, spec_hash: str, item_hashes: list[str], verdicts: list[Verdict], latency_s: float) -> None:
        self._opened(create=True).put(spec_hash, item_hashes, verdicts, latency_s)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


def _items_of(frame: pd.DataFrame) -> JudgeItems:
    column = lambda name: frame[name].tolist() if name in frame else None  # noqa: E731
    return JudgeItems.of(frame["prompt"].tolist(), frame["response"].tolist(), column("goal"), column("context"))


def _run_one(study: Study, judge: Judge, cache: _StudyVerdictCache, *, replace: bool, progress: bool) -> JudgeRunSummary:
    # The key covers what was actually run (weights, tokenizer, server, dtype), not only the spec.
    identity = judge_identity(judge)
    digest = judge_key(judge.spec, identity)
    existing = study.judgments if study.judgments is not None else _empty_judgments()
    mine = existing["judge_id"] == judge.judge_id
    stale = mine & (existing["judge_spec_hash"] != digest)
    if stale.any() and not replace:
        old = existing.loc[stale, "judge_spec_hash"].iloc[0]
        raise InputError(
            f"judge {judge.judge_id!r} already has judgments from another spec or checkpoint (hash {old}, now {digest}); "
            "pass --replace to discard them"
        )
    # Requests that failed for good last time (parse_status "error") are tried again.
    retry = (existing["judge_id"] == judge.judge_id) & (existing["parse_status"] == "error")
    existing = existing.loc[~stale & ~retry]
    done = set(existing.loc[existing["judge_id"] == judge.judge_id, "item_id"])
    todo = study.responses.loc[~study.responses["item_id"].isin(done)]
    items = _items_of(todo)
    hashes = items.content_hashes()
    started = time.perf_counter()
    # Judges that answer in microseconds (keyword matchers) are recomputed on resume: caching costs them more.
    verdict_cache = cache if getattr(judge, "worth_caching", True) else None
    results = verdict_cache.get(digest, hashes) if verdict_cache is not None else {}
    n_from_cache = sum(h in results for h in hashes)
    if len(results) < len(set(hashes)):
        _judge_missing(judge, items, hashes, results, verdict_cache, digest, progress=progress)
    scales = spec_scales(judge.spec)
    dimension = scales[0].dimension if scales else None
    rows = [_row(item_id, judge.judge_id, digest, *results[h], dimension=dimension)
            for item_id, h in zip(todo["item_id"], hashes, strict=True)]
    if rows and scales:
        _declare_scales(study, scales)
    if rows:
        combined = pd.concat([existing, pd.DataFrame(rows)], ignore_index=True)
        # Rows from tables without the optional text column get an empty one, not a null.
        combined["detail"] = combined["detail"].fillna("")
        study.save("judgments", combined)
    new = pd.DataFrame(rows)
    counts = new["parse_status"].value_counts().to_dict() if rows else {}
    _warn_low_coverage(judge, new)
    return JudgeRunSummary(
        judge_id=judge.judge_id,
        spec_hash=digest,
        n_judged=len(rows),
        n_skipped=len(done),
        n_from_cache=n_from_cache,
        wall_s=round(time.perf_counter() - started, 6),
        n_input_tokens=int(new["n_input_tokens"].fillna(0).sum()) if rows else 0,
        n_output_tokens=int(new["n_output_tokens"].fillna(0).sum()) if rows else 0,
        status_counts={str(k): int(v) for k, v in counts.items()},
        spec=judge.spec,
        backend=dict(getattr(judge, "run_info", lambda: {})()),
        identity=identity,
    )


def _judge_missing(judge, items: JudgeItems, hashes, results, cache: _StudyVerdictCache | None, digest: str, *,
                   progress: bool) -> None:
    batches = plan_batches(judge, items)
    # disable=None: no bar when stderr is not a terminal (logs, pipes), as for stats
    bar = tqdm(total=len(items), desc=judge.judge_id, unit="item", disable=None if progress else True, leave=False)
    for batch in batches:
        batch_hashes = [hashes[i] for i in batch]
        if all(h in results for h in batch_hashes):
            bar.update(len(batch))
            continue
        batch_started = time.perf_counter()
        verdicts = judge.judge(items.take(batch))
        if len(verdicts) != len(batch):
            raise RuntimeError(f"judge {judge.judge_id} returned {len(verdicts)} verdicts for {len(batch)} items")
        latency = (time.perf_counter() - batch_started) / max(len(batch), 1)
        # Transport errors are not cached: the next run asks again.
        kept = [(h, v) for h, v in zip(batch_hashes, verdicts, strict=True) if v.parse_status != "error"]
        if kept and cache is not None:
            cache.put(digest, [h for h, _ in kept], [v for _, v in kept], latency)
        for h, verdict in zip(batch_hashes, verdicts, strict=True):
            results.setdefault(h, (verdict, latency))
        bar.update(len(batch))
    bar.close()


def _warn_low_coverage(judge: Judge, rows: pd.DataFrame) -> None:
    if rows.empty or rows["coverage"].isna().all():
        return
    floor = float((judge.spec.get("readout") or {}).get("min_coverage", DEFAULT_MIN_COVERAGE))
    low = np.asarray(rows["coverage"] < floor)
    if low.any():
        log.warning(
            "%s: %d of %d items put less than %.2f of the probability on the label tokens (median coverage %.3f); "
            "check the label tokens and the verdict position",
            judge.judge_id, int(low.sum()), len(rows), floor, float(rows["coverage"].median()),
        )


def _declare_scales(study: Study, scales: tuple[JudgeScale, ...]) -> None:
    """A graded judge's scales go into study.json ``judge_scales`` before its scores are saved (a score needs a
    declared scale); a scale the study already declares for the judge and dimension is kept as the study states it."""
    missing = [s for s in scales if study.metadata.scale_for(s.judge_id, s.dimension) is None]
    if not missing:
        return
    metadata = replace(study.metadata, judge_scales=(*study.metadata.judge_scales, *missing))
    write_text_atomic(study.path / STUDY_METADATA_FILE, json.dumps(metadata.to_json(), indent=2) + "\n")
    study.metadata = metadata


def _row(item_id: str, judge_id: str, digest: str, verdict: Verdict, latency_s: float | None, *,
         dimension: str | None = None) -> dict[str, Any]:
    """One judgments row; a graded judge's rows also carry its ``dimension`` and ``score``."""
    graded = {"dimension": dimension, "score": verdict.score} if dimension is not None else {}
    return {
        **graded,
        "item_id": item_id,
        "judge_id": judge_id,
        "label": verdict.label,
        "p_unsafe": verdict.p_unsafe,
        "coverage": verdict.coverage,
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
