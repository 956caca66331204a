"""Run judges over a study's responses and append their verdicts to ``judgments``.

Each judge plans its batches over the items still to judge (token-budget
packing for model judges), and every finished batch is committed to the
study's verdict cache (:mod:`judgekit.judges.cache`) before the next starts.
A run killed at any point and started again skips the committed batches and
recomputes the others in the same composition, so its judgments are identical
to those of an uninterrupted run. Once a judge has finished, its new rows are
merged into the judgments table as it is then (:func:`merge_judgments`) and the
table is rewritten atomically; ``judgekit judge`` does that merge under the
study lock (:mod:`judgekit.store.locking`), so judges run by other processes meanwhile
keep their rows.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from judgekit.errors import InputError
from judgekit.judges.base import Judge, JudgeItems, Verdict, judge_identity, judge_key, plan_batches
from judgekit.judges.cache import CACHE_RELATIVE_PATH, VerdictCache
from judgekit.judges.catalog import spec_scales
from judgekit.judges.readout import DEFAULT_MIN_COVERAGE
from judgekit.store.io import read_table, write_text_atomic
from judgekit.store.locking import study_lock
from judgekit.store.manifest import build_manifest
from judgekit.store.schema import SCHEMAS, STUDY_METADATA_FILE, JudgeScale, read_study_metadata
from judgekit.store.study import Study, load_study, table_path

if TYPE_CHECKING:
    from judgekit.judges.build import JudgeOptions

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


JudgmentsCommit = Callable[..., None]  # (study, judge_id, spec_hash, rows, *, scales)


def run_judges(study: Study, judges: list[Judge], *, replace: bool = False, progress: bool = True,
               commit: JudgmentsCommit | None = None, only_items: dict[str, list[str]] | None = None,
               shard: tuple[int, int] = (0, 1)) -> list[JudgeRunSummary]:
    """Judge every response with each judge, one judge in memory at a time.

    Verdicts go to the study's verdict cache batch by batch; each judge's new rows are then handed to
    ``commit(study, judge_id, spec_hash, rows)`` (default: :func:`save_judgments`, merging them into
    ``study.judgments`` and saving it). ``only_items`` (judge id -> item ids) gives a judge the items
    a snapshot found to do (:func:`items_to_judge`) instead of those the study lacks now; ``shard=(k, n)`` takes every n-th of the judge's planned batches from the
    k-th on, so n processes together form exactly the batches of one process (and its numbers).
    """
    commit = commit if commit is not None else partial(save_judgments, replace=replace)
    summaries = []
    cache = _StudyVerdictCache(study.path)
    try:
        for judge in judges:
            try:
                summaries.append(_run_one(study, judge, cache, replace=replace, progress=progress, commit=commit,
                                          only_items=(only_items or {}).get(judge.judge_id), shard=shard))
            finally:
                close = getattr(judge, "close", None)
                if close is not None:
                    close()
    finally:
        cache.close()
    return summaries


def merge_judgments(current: pd.DataFrame | None, new: pd.DataFrame, *, judge_id: str, spec_hash: str,
                    replace: bool) -> pd.DataFrame:
    """``current`` judgments with ``new`` rows of one judge merged in.

    Every row of other judges is kept as it is; the judge's rows for the items in ``new`` are replaced
    by the new ones (retried errors), and with ``replace`` its rows from another spec are dropped. No
    (item, judge) pair is ever lost or doubled by a merge.
    """
    current = current if current is not None else _empty_judgments()
    mine = (current["judge_id"] == judge_id).to_numpy()
    dropped = mine & current["item_id"].isin(set(new["item_id"])).to_numpy()
    if replace:
        dropped |= mine & (current["judge_spec_hash"] != spec_hash).to_numpy()
    combined = pd.concat([current.loc[~dropped], new], ignore_index=True) if len(new) else current.loc[~dropped]
    # Rows from tables without the optional text column get an empty one, not a null.
    combined["detail"] = combined["detail"].fillna("") if "detail" in combined else ""
    return combined.reset_index(drop=True)


def save_judgments(study: Study, judge_id: str, spec_hash: str, rows: pd.DataFrame, *, replace: bool,
                   scales: tuple[JudgeScale, ...] = ()) -> None:
    """Merge a judge's new rows into ``study.judgments`` and save the table (the caller holds the study lock).

    A graded judge's ``scales`` are declared in study.json first: a score needs a declared scale.
    """
    if len(rows):
        _declare_scales(study, scales)
        study.save("judgments", merge_judgments(study.judgments, rows, judge_id=judge_id, spec_hash=spec_hash,
                                                replace=replace))


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


def commit_under_study_lock(study: Study, judge_id: str, spec_hash: str, rows: pd.DataFrame, *, replace: bool,
                            scales: tuple[JudgeScale, ...] = ()) -> None:
    """Re-read the study's judgments under its lock, merge a judge's new rows in and save (``judgekit judge``).

    Everything before this ran on a snapshot without the lock; the table read here holds what other
    processes committed meanwhile, so their rows are kept.
    """
    if not len(rows):
        return
    with study_lock(study.path, step="judge"):
        path = table_path(study.path, "judgments")
        study.judgments = read_table(path, SCHEMAS["judgments"]) if path is not None else None
        study.metadata = read_study_metadata(study.path)
        save_judgments(study, judge_id, spec_hash, rows, replace=replace, scales=scales)


def judge_items_of(frame: pd.DataFrame) -> JudgeItems:
    column = lambda name: frame[name].tolist() if name in frame else None  # noqa: E731
    return JudgeItems.of(frame["prompt"].tolist(), frame["response"].tolist(), column("goal"), column("context"))


def _run_one(study: Study, judge: Judge, cache: _StudyVerdictCache, *, replace: bool, progress: bool,
             commit: JudgmentsCommit, only_items: list[str] | None, shard: tuple[int, int]) -> JudgeRunSummary:
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
    done = _judged_items(existing, judge.judge_id, digest)
    # Items a snapshot found to do stay this run's items while other shards of it commit theirs.
    todo = study.responses.loc[study.responses["item_id"].isin(set(only_items)) if only_items is not None
                               else ~study.responses["item_id"].isin(done)]
    items = judge_items_of(todo)
    hashes = items.content_hashes()
    started = time.perf_counter()
    # Judges that answer in microseconds (keyword matchers) are recomputed on resume: caching costs them more.
    verdict_cache = cache if getattr(judge, "worth_caching", True) else None
    results = verdict_cache.get(digest, hashes) if verdict_cache is not None else {}
    batches, share = _share_of(judge, items, shard)
    n_from_cache = sum(hashes[i] in results for i in share)
    if any(hashes[i] not in results for i in share):
        _judge_missing(judge, items, hashes, results, verdict_cache, digest, progress=progress,
                       batches=batches if batches is not None else plan_batches(judge, items))
    item_ids = todo["item_id"].tolist()
    scales = spec_scales(judge.spec)
    dimension = scales[0].dimension if scales else None
    new = pd.DataFrame([_row(item_ids[i], judge.judge_id, digest, *results[hashes[i]], dimension=dimension)
                        for i in share])
    commit(study, judge.judge_id, digest, new, scales=scales)
    counts = new["parse_status"].value_counts().to_dict() if len(new) else {}
    _warn_low_coverage(judge, new)
    return JudgeRunSummary(
        judge_id=judge.judge_id,
        spec_hash=digest,
        n_judged=len(new),
        n_skipped=len(done),
        n_from_cache=n_from_cache,
        wall_s=round(time.perf_counter() - started, 6),
        n_input_tokens=int(new["n_input_tokens"].fillna(0).sum()) if len(new) else 0,
        n_output_tokens=int(new["n_output_tokens"].fillna(0).sum()) if len(new) else 0,
        status_counts={str(k): int(v) for k, v in counts.items()},
        spec=judge.spec,
        backend=dict(getattr(judge, "run_info", lambda: {})()),
        identity=identity,
    )


def items_to_judge(study: Study, judge: Judge) -> list[str]:
    """Ids of the items ``judge`` has no usable verdict for in ``study`` (what a run of it would judge)."""
    existing = study.judgments if study.judgments is not None else _empty_judgments()
    done = _judged_items(existing, judge.judge_id, judge_key(judge.spec, judge_identity(judge)))
    return study.responses.loc[~study.responses["item_id"].isin(done), "item_id"].tolist()


def _judged_items(existing: pd.DataFrame, judge_id: str, digest: str) -> set[str]:
    # Requests that failed for good last time (parse_status "error") are tried again.
    usable = ((existing["judge_id"] == judge_id) & (existing["judge_spec_hash"] == digest)
              & (existing["parse_status"] != "error"))
    return set(existing.loc[usable, "item_id"])


def _share_of(judge: Judge, items: JudgeItems, shard: tuple[int, int]) -> tuple[list[np.ndarray] | None, list[int]]:
    """This shard's planned batches (None: all, planned only when something is missing) and item positions."""
    k, n = shard
    if n == 1:
        return None, list(range(len(items)))
    batches = plan_batches(judge, items)[k::n]
    return batches, sorted(int(i) for batch in batches for i in batch)


def _judge_missing(judge, items: JudgeItems, hashes, results, cache: _StudyVerdictCache | None, digest: str, *,
                   progress: bool, batches: list[np.ndarray]) -> None:
    # disable=None: no bar when stderr is not a terminal (logs, pipes), as for stats
    bar = tqdm(total=sum(len(b) for b in batches), desc=judge.judge_id, unit="item", disable=None if progress else True, leave=False)
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
    columns = ["item_id", "judge_id", "label", "p_unsafe", "parse_status", "raw_output", "judge_spec_hash", "detail"]
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def check_model_paths(judges: list, options: JudgeOptions | None) -> None:
    unknown = sorted(set(options.model_paths if options else {}) - {j.judge_id for j in judges})
    if unknown:
        raise InputError(f"--model-path names {unknown[0]!r}, which is not among the judges run")


def read_snapshot(study_dir: Path, *, step: str, **manifest_fields) -> tuple[Study, dict]:
    """The study as it is now and the manifest of a step run on it (read under the study lock, briefly)."""
    with study_lock(study_dir, step=step):
        study = load_study(study_dir)
        return study, build_manifest(step=step, inputs=study.files(), **manifest_fields)


def record_judge_runs(record: dict, summaries: list[JudgeRunSummary]) -> None:
    record["judge_specs"] = [{"judge_id": s.judge_id, "spec_hash": s.spec_hash, "spec": s.spec} for s in summaries]
    record["details"] = {"runs": [{k: v for k, v in asdict(s).items() if k != "spec"} for s in summaries]}
