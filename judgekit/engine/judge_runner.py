"""Run judges over a study's responses and append their verdicts to ``judgments``.

Each judge plans its batches over the items still to judge (token-budget
packing for model judges), and finished batches are committed to the study's
verdict cache (:mod:`judgekit.judges.cache`) about once a second
(:data:`CACHE_COMMIT_S`, or every :data:`CACHE_COMMIT_ITEMS` items), so a run
killed at any point loses at most that much work. A run started again skips the
committed batches and recomputes the others in the same composition, so its
judgments are identical to those of an uninterrupted run.

Judges that take a whole column of responses at once (keyword judges:
``judge_column``) skip the batches, the cache and the per-item verdicts; their
rows are built column-wise and all of them are committed together. Each
commit merges a judge's new rows into its own stored rows only
(:meth:`judgekit.store.study.Study.save_partition`: one parquet file per judge),
so a run of J judges writes each judge's rows once. ``judgekit judge`` commits
under the study lock (:mod:`judgekit.store.locking`), so judges run by other
processes meanwhile keep their rows.
"""

from __future__ import annotations

import json
import logging
import os
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
from judgekit.store.io import write_text_atomic
from judgekit.store.locking import study_lock
from judgekit.store.manifest import build_manifest
from judgekit.store.schema import SCHEMAS, STUDY_METADATA_FILE, JudgeScale, read_study_metadata
from judgekit.store.study import Study, finish_interrupted_commit, load_study

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


# A verdict-cache commit (one fsync) at most about once a second, or every so many items: a kill loses at most that.
# $JUDGEKIT_CACHE_COMMIT_S sets the interval (0: every batch, as a test of a kill mid-run needs).
CACHE_COMMIT_S = float(os.environ.get("JUDGEKIT_CACHE_COMMIT_S") or 1.0)
CACHE_COMMIT_ITEMS = 4096


@dataclass(frozen=True)
class JudgeRows:
    """One judge's new judgments rows of a run, as handed to a commit."""

    judge_id: str
    spec_hash: str
    rows: pd.DataFrame
    scales: tuple[JudgeScale, ...] = ()
    # True for rows the engine built column-wise from a column judge's fixed verdict values (see _run_column_judges):
    # they are written without validating them again.
    conformed: bool = False


JudgmentsCommit = Callable[[Study, list[JudgeRows]], None]


def run_judges(study: Study, judges: list[Judge], *, replace: bool = False, progress: bool = True,
               commit: JudgmentsCommit | None = None, only_items: dict[str, list[str]] | None = None,
               shard: tuple[int, int] = (0, 1)) -> list[JudgeRunSummary]:
    """Judge every response with each judge; summaries in the order of ``judges``.

    Column judges (``judge_column``: keyword judges) run first, on the whole response column, and are committed
    together in one ``commit(study, [JudgeRows, ...])``. The others run one at a time (one model in memory), their
    verdicts going to the study's verdict cache as they come, and each is committed when it finishes. The default
    commit is :func:`save_judgments` (no lock). ``study.judgments`` stays the snapshot the run started from.
    ``only_items`` (judge id -> item ids) gives a judge the items a snapshot found to do (:func:`items_to_judge`)
    instead of those the study lacks now; ``shard=(k, n)`` takes every n-th of the judge's planned batches from the
    k-th on, so n processes together form exactly the batches of one process (and its numbers).
    """
    commit = commit if commit is not None else partial(save_judgments, replace=replace)
    only_items = only_items or {}
    summaries: dict[int, JudgeRunSummary] = {}
    column_judges = [(k, j) for k, j in enumerate(judges) if hasattr(j, "judge_column")]
    if column_judges:  # one column pass is a moment's work: of several shards, the first does it all
        summaries.update(_run_column_judges(study, column_judges, replace=replace, commit=commit, only_items=only_items)
                         if shard[0] == 0 else {k: _empty_summary(study, j) for k, j in column_judges})
    cache = _StudyVerdictCache(study.path)
    try:
        for position, judge in enumerate(judges):
            if position in summaries:
                continue
            try:
                summaries[position] = _run_one(study, judge, cache, replace=replace, progress=progress, commit=commit,
                                               only_items=only_items.get(judge.judge_id), shard=shard)
            finally:
                close = getattr(judge, "close", None)
                if close is not None:
                    close()
    finally:
        cache.close()
    return [summaries[k] for k in range(len(judges))]


def merge_judgments(current: pd.DataFrame | None, new: pd.DataFrame, *, judge_id: str, spec_hash: str,
                    replace: bool) -> pd.DataFrame:
    """``current`` judgments with ``new`` rows of one judge merged in.

    Every row of other judges is kept as it is; the judge's rows for the items in ``new`` are replaced
    by the new ones (retried errors), and with ``replace`` its rows from another spec are dropped. No
    (item, judge) pair is ever lost or doubled by a merge.
    """
    if current is None or not len(current):  # nothing stored yet: the new rows are the judge's rows
        return new.assign(detail=new["detail"].fillna("")) if "detail" in new else new.assign(detail="")
    mine = (current["judge_id"] == judge_id).to_numpy()
    dropped = mine & current["item_id"].isin(set(new["item_id"])).to_numpy()
    if replace:
        dropped |= mine & (current["judge_spec_hash"] != spec_hash).to_numpy()
    combined = pd.concat([current.loc[~dropped], new], ignore_index=True) if len(new) else current.loc[~dropped]
    # Rows from tables without the optional text column get an empty one, not a null.
    combined["detail"] = combined["detail"].fillna("") if "detail" in combined else ""
    return combined.reset_index(drop=True)


def save_judgments(study: Study, batch: list[JudgeRows], *, replace: bool) -> None:
    """Merge each judge's new rows into its stored rows and save them (the caller holds the study lock).

    Only the judge's own rows are read and written (one file per judge). A graded judge's ``scales`` are
    declared in study.json first: a score needs a declared scale.
    """
    for judged in batch:
        if not len(judged.rows):
            continue
        _declare_scales(study, judged.scales)
        current = study.stored_partition("judgments", judged.judge_id)
        # Stored rows were validated when read, and a merge neither loses nor doubles a key: a merge of conformed
        # new rows is conformed.
        study.save_partition("judgments", judged.judge_id, merge_judgments(
            current, judged.rows, judge_id=judged.judge_id, spec_hash=judged.spec_hash, replace=replace),
            conformed=judged.conformed)


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

    def put(self, spec_hash: str, item_hashes: list[str], verdicts: list[Verdict],
            latency_s: float | list[float]) -> None:
        self._opened(create=True).put(spec_hash, item_hashes, verdicts, latency_s)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


def commit_under_study_lock(study: Study, batch: list[JudgeRows], *, replace: bool) -> None:
    """Under the study lock, merge each judge's new rows into its rows as stored now and save (``judgekit judge``).

    Everything before this ran on a snapshot without the lock; the rows read here hold what other
    processes committed meanwhile, so their rows are kept.
    """
    if not any(len(judged.rows) for judged in batch):
        return
    with study_lock(study.path, step="judge"):
        study.metadata = read_study_metadata(study.path)
        save_judgments(study, batch, replace=replace)


def judge_items_of(frame: pd.DataFrame) -> JudgeItems:
    column = lambda name: frame[name].tolist() if name in frame else None  # noqa: E731
    return JudgeItems.of(frame["prompt"].tolist(), frame["response"].tolist(), column("goal"), column("context"))


@dataclass(frozen=True)
class _Plan:
    """What one judge has to do in this run: its key, what it is, the items done and the responses to judge."""

    identity: dict[str, Any]
    digest: str
    done: set[str]
    todo: pd.DataFrame


def _plan(study: Study, judge: Judge, *, replace: bool, only_items: list[str] | None) -> _Plan:
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
    ids = pd.Series(study.responses["item_id"].to_numpy(dtype=object), dtype=object)  # isin on Arrow strings loops in Python
    wanted = (ids.isin(set(only_items)) if only_items is not None else ~ids.isin(done)).to_numpy()
    todo = study.responses if wanted.all() else study.responses.loc[wanted]  # no copy of a million rows to do them all
    return _Plan(identity, digest, done, todo)


def _run_column_judges(study: Study, judges: list[tuple[int, Judge]], *, replace: bool, commit: JudgmentsCommit,
                       only_items: dict[str, list[str]]) -> dict[int, JudgeRunSummary]:
    """Judge the whole response column with each column judge, then commit all their rows at once."""
    import pyarrow as pa

    # Chunk by chunk as read (an Arrow-backed column is not copied; an object column is converted once).
    responses = pa.chunked_array(study.responses["response"], type=pa.large_string())
    positions = pd.Series(np.arange(len(study.responses)), index=study.responses.index)
    batch, summaries = [], {}
    for k, judge in judges:
        plan = _plan(study, judge, replace=replace, only_items=only_items.get(judge.judge_id))
        started = time.perf_counter()
        todo_responses = (responses if len(plan.todo) == len(study.responses)
                          else responses.take(positions.loc[plan.todo.index].to_numpy()))
        verdicts = judge.judge_column(todo_responses)
        latency = (time.perf_counter() - started) / max(len(plan.todo), 1)
        scales = spec_scales(judge.spec)
        rows = _rows_of(plan, judge.judge_id, verdicts, latency_s=np.full(len(plan.todo), latency),
                        dimension=scales[0].dimension if scales else None)
        # The rows need no second validation before they are written (conform_frame took 1.6 s per judge on a
        # million rows): item_id comes from the validated responses table (non-blank text, unique), judge_id and
        # the spec hash are non-empty strings (the catalog checks a spec's judge_id), and every other cell is one
        # of the few values judge_column builds (label safe/unsafe with parse_status ok, or no label with error;
        # NaN probabilities), in the schema's types. tests/test_judges_keyword.py reads such rows back through
        # the validating reader, as every later read of judgments/ does.
        batch.append(JudgeRows(judge.judge_id, plan.digest, rows, scales, conformed=True))
        summaries[k] = _summary(judge, plan, rows, n_from_cache=0, started=started)
    commit(study, batch)
    for (_, judge), judged in zip(judges, batch, strict=True):
        _warn_low_coverage(judge, judged.rows)
    return summaries


def _empty_summary(study: Study, judge: Judge) -> JudgeRunSummary:
    identity = judge_identity(judge)
    plan = _Plan(identity, judge_key(judge.spec, identity), set(), study.responses.iloc[:0])
    return _summary(judge, plan, _rows_of(plan, judge.judge_id, pd.DataFrame(), latency_s=np.empty(0), dimension=None),
                    n_from_cache=0, started=time.perf_counter())


def _run_one(study: Study, judge: Judge, cache: _StudyVerdictCache, *, replace: bool, progress: bool,
             commit: JudgmentsCommit, only_items: list[str] | None, shard: tuple[int, int]) -> JudgeRunSummary:
    plan = _plan(study, judge, replace=replace, only_items=only_items)
    digest, todo = plan.digest, plan.todo
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
    scales = spec_scales(judge.spec)
    judged = [results[hashes[i]] for i in share]
    new = _rows_of(_Plan(plan.identity, digest, plan.done, todo.iloc[share]), judge.judge_id, _verdict_columns([v for v, _ in judged]),
                   latency_s=np.array([latency for _, latency in judged], dtype=float),
                   dimension=scales[0].dimension if scales else None)
    commit(study, [JudgeRows(judge.judge_id, digest, new, scales)])
    _warn_low_coverage(judge, new)
    return _summary(judge, plan, new, n_from_cache=n_from_cache, started=started)


def _summary(judge: Judge, plan: _Plan, new: pd.DataFrame, *, n_from_cache: int, started: float) -> JudgeRunSummary:
    counts = new["parse_status"].value_counts().to_dict() if len(new) else {}
    return JudgeRunSummary(
        judge_id=judge.judge_id,
        spec_hash=plan.digest,
        n_judged=len(new),
        n_skipped=len(plan.done),
        n_from_cache=n_from_cache,
        wall_s=round(time.perf_counter() - started, 6),
        n_input_tokens=int(new["n_input_tokens"].fillna(0).sum()) if len(new) else 0,
        n_output_tokens=int(new["n_output_tokens"].fillna(0).sum()) if len(new) else 0,
        status_counts={str(k): int(v) for k, v in counts.items()},
        spec=judge.spec,
        backend=dict(getattr(judge, "run_info", lambda: {})()),
        identity=plan.identity,
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
    pending = _PendingVerdicts(cache, digest)
    try:
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
            pending.add([(h, v) for h, v in zip(batch_hashes, verdicts, strict=True) if v.parse_status != "error"],
                        latency)
            for h, verdict in zip(batch_hashes, verdicts, strict=True):
                results.setdefault(h, (verdict, latency))
            bar.update(len(batch))
    finally:
        pending.flush()  # also when a batch fails: the finished ones are kept
        bar.close()


class _PendingVerdicts:
    """Finished batches' verdicts waiting for their verdict-cache commit: one transaction (one fsync) about every
    :data:`CACHE_COMMIT_S` seconds or :data:`CACHE_COMMIT_ITEMS` items, not one per batch (a CPU model judge
    running one item per batch spent 5-8% of its wall time in fsyncs). Whole batches only, so a rerun after a kill
    recomputes whole batches in their planned composition."""

    def __init__(self, cache: _StudyVerdictCache | None, digest: str) -> None:
        self._cache, self._digest = cache, digest
        self._hashes: list[str] = []
        self._verdicts: list[Verdict] = []
        self._latencies: list[float] = []
        self._since = time.monotonic()

    def add(self, kept: list[tuple[str, Verdict]], latency: float) -> None:
        if self._cache is None:
            return
        self._hashes += [h for h, _ in kept]
        self._verdicts += [v for _, v in kept]
        self._latencies += [latency] * len(kept)
        if len(self._hashes) >= CACHE_COMMIT_ITEMS or time.monotonic() - self._since >= CACHE_COMMIT_S:
            self.flush()

    def flush(self) -> None:
        if self._hashes:
            self._cache.put(self._digest, self._hashes, self._verdicts, self._latencies)
            self._hashes, self._verdicts, self._latencies = [], [], []
        self._since = time.monotonic()


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


_VERDICT_FIELDS = ("label", "p_unsafe", "coverage", "parse_status", "raw_output", "n_input_tokens", "n_output_tokens",
                   "detail", "score")


def _verdict_columns(verdicts: list[Verdict]) -> pd.DataFrame:
    """The verdicts of a model judge as columns."""
    return pd.DataFrame({name: pd.Series([getattr(v, name) for v in verdicts], dtype=object)
                         for name in _VERDICT_FIELDS})


def _rows_of(plan: _Plan, judge_id: str, verdicts: pd.DataFrame, *, latency_s: np.ndarray,
             dimension: str | None) -> pd.DataFrame:
    """The judgments rows of ``plan.todo`` from its verdict columns, built column-wise; a graded judge's rows also
    carry its ``dimension`` and ``score``."""
    n = len(plan.todo)
    column = lambda name: (verdicts[name].reset_index(drop=True) if name in verdicts  # noqa: E731
                           else _missing(SCHEMAS["judgments"].column(name).kind, n))
    graded = {"dimension": _repeated(dimension, n), "score": column("score")} if dimension is not None else {}
    return pd.DataFrame({
        **graded,
        "item_id": plan.todo["item_id"].reset_index(drop=True),  # as read: Arrow-backed or object
        "judge_id": _repeated(judge_id, n),
        "label": column("label"),
        "p_unsafe": column("p_unsafe"),
        "coverage": column("coverage"),
        "parse_status": column("parse_status"),
        "raw_output": column("raw_output"),
        "judge_spec_hash": _repeated(plan.digest, n),
        "latency_s": latency_s,
        "n_input_tokens": column("n_input_tokens"),
        "n_output_tokens": column("n_output_tokens"),
        "detail": column("detail"),
    }, copy=False)  # the columns are new or read-only views: no copy of a million rows (copy-on-write)


def _missing(kind: str, n: int) -> pd.Series:
    """A column the judge does not give (a keyword judge's coverage and token counts), all missing, in its kind's
    type: no object array of a million None to consolidate and convert."""
    import pyarrow as pa

    if kind == "float":
        return pd.Series(np.full(n, np.nan))
    if kind == "int":
        return pd.Series(pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)))
    return pd.Series(pa.nulls(n, pa.string()), dtype=pd.ArrowDtype(pa.string()))


def _repeated(text: str, n: int) -> pd.Series:
    """``text`` n times as an Arrow-backed column, built in C (a million rows: no Python list, no object array)."""
    import pyarrow as pa

    repeated = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([text], pa.string()))
    return pd.Series(repeated.cast(pa.string()), dtype=pd.ArrowDtype(pa.string()))


def _empty_judgments() -> pd.DataFrame:
    columns = ["item_id", "judge_id", "label", "p_unsafe", "parse_status", "raw_output", "judge_spec_hash", "detail"]
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def check_model_paths(judges: list, options: JudgeOptions | None) -> None:
    unknown = sorted(set(options.model_paths if options else {}) - {j.judge_id for j in judges})
    if unknown:
        raise InputError(f"--model-path names {unknown[0]!r}, which is not among the judges run")


def read_snapshot(study_dir: Path, *, step: str, arrow_text: bool = False, **manifest_fields) -> tuple[Study, dict]:
    """The study as it is now and the manifest of a step run on it (read under the study lock, briefly).

    A replacement of several files killed after its commit point (a judgments table being moved into its
    folder) is finished first. ``arrow_text``: see :func:`judgekit.store.study.load_study`.
    """
    with study_lock(study_dir, step=step):
        finish_interrupted_commit(study_dir)
        study = load_study(study_dir, arrow_text=arrow_text)
        return study, build_manifest(step=step, inputs=study.files(), **manifest_fields)


def record_judge_runs(record: dict, summaries: list[JudgeRunSummary]) -> None:
    record["judge_specs"] = [{"judge_id": s.judge_id, "spec_hash": s.spec_hash, "spec": s.spec} for s in summaries]
    record["details"] = {"runs": [{k: v for k, v in asdict(s).items() if k != "spec"} for s in summaries]}
