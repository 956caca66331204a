"""``judgekit judge --engine ray``: model judges as Ray Data ``map_batches`` over actor pools.

The driver reads a snapshot of the study, plans each model judge's batches over
the items it lacks (the judge's own token-budget plan, so the batches and the
numbers are those of a single process), and turns every planned batch not yet
in the verdict cache into one row of a Ray dataset. A pool of actors, each
holding one copy of the model (``gpus_per_actor`` GPUs, ``cpus_per_actor``
CPUs), judges the rows; the driver writes every returned verdict batch into the
study's verdict cache as it arrives, so a run stopped half-way resumes from
there. The judgments are then committed exactly as ``judgekit judge`` does,
reading the verdicts back from the cache and merging them under the study lock.

Ray is an optional dependency (``pip install 'judgekit[ray]'``); on a cluster,
judgekit and the models must be installed where the actors run and the study
directory need only be visible to the driver.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from dataclasses import replace as with_fields
from functools import partial
from pathlib import Path
from typing import Any

from judgekit.errors import InputError
from judgekit.judges.base import JudgeItems, Verdict, judge_identity, judge_key, plan_batches
from judgekit.judges.build import JudgeOptions
from judgekit.registry import resolve_judge
from judgekit.judges.cache import VerdictCache
from judgekit.store.locking import study_lock, work_locks
from judgekit.store.manifest import recorded_study_run
from judgekit.engine.judge_runner import (JudgeRunSummary, check_model_paths, commit_under_study_lock, items_to_judge,
                                          judge_items_of, read_snapshot, record_judge_runs, run_judges)


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the actor pools run.

    ``address`` is a running cluster (``auto`` or ``ray://host:port``); None starts a local Ray instance
    for the run unless one is already initialised in this process.
    """

    address: str | None = None
    actors: int = 1
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0


def judge_with_ray(study_dir: Path, judge_names: list[str], *, replace: bool, progress: bool, options: JudgeOptions,
                   ray_options: RayOptions) -> list[JudgeRunSummary]:
    """Fill the verdict cache through Ray actor pools, then commit the judgments (see the module doc)."""
    ray = _import_ray()

    judges = [resolve_judge(name, options) for name in judge_names]
    check_model_paths(judges, options)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=ray_options.address, include_dashboard=False, log_to_driver=False)
    try:
        with work_locks(study_dir, [f"judge {j.judge_id}" for j in judges], step="judge"):
            study, manifest = read_snapshot(study_dir, step="judge", details={"engine": "ray", **asdict(ray_options)})
            with recorded_study_run(study_dir, manifest, lock=partial(study_lock, study_dir, step="judge")) as record:
                for name, judge in zip(judge_names, judges, strict=True):
                    if getattr(judge, "worth_caching", True):  # keyword judges answer faster than Ray starts a task
                        _fill_cache(ray, study, name, judge, options, ray_options)
                summaries = run_judges(study, judges, replace=replace, progress=progress,
                                       commit=partial(commit_under_study_lock, replace=replace))
                record_judge_runs(record, summaries)
    finally:
        if started_here:
            ray.shutdown()
    return summaries


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the engine is Ray Data
    except ImportError:
        raise InputError("--engine ray needs Ray Data: pip install 'judgekit[ray]'") from None
    return ray


def _fill_cache(ray, study, name: str, judge, options: JudgeOptions, ray_options: RayOptions) -> None:

    todo = study.responses.loc[study.responses["item_id"].isin(set(items_to_judge(study, judge)))]
    items = judge_items_of(todo)
    hashes = items.content_hashes()
    digest = judge_key(judge.spec, judge_identity(judge))
    cache = VerdictCache.for_study(study.path)
    try:
        cached = cache.get(digest, hashes)
        payloads = [json.dumps({"hashes": [hashes[i] for i in batch], **_columns(items.take(batch))})
                    for batch in plan_batches(judge, items) if any(hashes[int(i)] not in cached for i in batch)]
        if not payloads:
            return
        dataset = ray.data.from_items([{"payload": p} for p in payloads])
        judged = dataset.map_batches(
            _JudgeActor, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(ray_options.actors, len(payloads))),
            num_gpus=ray_options.gpus_per_actor or None, num_cpus=ray_options.cpus_per_actor,
            fn_constructor_kwargs={"name": name, "options": options, "on_gpu": ray_options.gpus_per_actor > 0},
        )
        for batch in judged.iter_batches(batch_size=None, batch_format="numpy"):
            for result in batch["result"]:
                answer = json.loads(result)
                kept = [(h, Verdict(**v)) for h, v in zip(answer["hashes"], answer["verdicts"], strict=True)
                        if v["parse_status"] != "error"]  # transport errors are asked again, as in a local run
                if kept:
                    cache.put(digest, [h for h, _ in kept], [v for _, v in kept], answer["latency_s"])
    finally:
        cache.close()


def _columns(items: JudgeItems) -> dict[str, list[str]]:
    return {"prompts": list(items.prompts), "responses": list(items.responses), "goals": list(items.goals),
            "contexts": list(items.contexts)}


class _JudgeActor:
    """One model per actor; each call judges one planned batch."""

    def __init__(self, name: str, options: JudgeOptions, on_gpu: bool) -> None:
        # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPUs: "cuda" is the first of them.
        self.judge = resolve_judge(name, with_fields(options, device="cuda" if on_gpu else "cpu"))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        results = []
        for payload in batch["payload"]:
            request = json.loads(payload)
            started = time.perf_counter()
            verdicts = self.judge.judge(JudgeItems(request["prompts"], request["responses"], request["goals"],
                                                   request["contexts"]))
            latency = (time.perf_counter() - started) / max(len(verdicts), 1)
            results.append(json.dumps({"hashes": request["hashes"], "latency_s": latency,
                                       "verdicts": [asdict(v) for v in verdicts]}))
        return {"result": np.array(results, dtype=object)}
