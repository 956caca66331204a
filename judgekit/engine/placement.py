"""Judges on several devices from one command: one worker process per device.

``judgekit judge STUDY --judge A --judge B --devices cuda:0,cuda:1,...`` places the
judges on the devices (:func:`place`): with at least as many judges as devices,
each device runs every n-th judge; with fewer, each judge gets a group of devices
and its items are split between them by whole planned batches
(:func:`judgekit.engine.judge_runner.run_judges` ``shard``), so the batches, and the numbers, are
those of one process. Workers are started with ``spawn`` (CUDA does not survive a
fork); each computes into the study's verdict cache and merges its rows into the
judgments under the study lock, as separate ``judge`` processes do
(:mod:`judgekit.store.locking`). The parent holds the judges' work locks and records
one run in the study manifest.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace as with_fields
from functools import partial
from pathlib import Path

from judgekit.judges.build import JudgeOptions
from judgekit.registry import resolve_judge
from judgekit.store.locking import study_lock, work_locks
from judgekit.store.manifest import recorded_study_run
from judgekit.engine.judge_runner import (JudgeRunSummary, check_model_paths, commit_under_study_lock,
                                          items_to_judge, read_snapshot, record_judge_runs, run_judges)

Task = tuple[str, int, int]  # (judge name, shard k, of n shards)


def place(judge_names: list[str], n_devices: int) -> list[list[Task]]:
    """The tasks of each device, in order.

    With at least as many judges as devices, judge i runs on device i mod n; otherwise the devices are
    split into one group per judge (earlier judges get the extra devices) and a judge on a group of m
    devices runs as m shards.
    """
    if n_devices < 1:
        raise ValueError("n_devices must be at least 1")
    tasks: list[list[Task]] = [[] for _ in range(n_devices)]
    if len(judge_names) >= n_devices:
        for i, name in enumerate(judge_names):
            tasks[i % n_devices].append((name, 0, 1))
        return tasks
    base, extra = divmod(n_devices, len(judge_names))
    device = 0
    for i, name in enumerate(judge_names):
        size = base + (i < extra)
        for k in range(size):
            tasks[device + k].append((name, k, size))
        device += size
    return tasks


def judge_on_devices(study_dir: Path, judge_names: list[str], devices: list[str], *, replace: bool, progress: bool,
                     options: JudgeOptions) -> list[JudgeRunSummary]:
    """Run the judges on ``devices``, one worker process each; return one summary per judge."""

    judges = [resolve_judge(name, options) for name in judge_names]  # models load in the workers
    check_model_paths(judges, options)
    with work_locks(study_dir, [f"judge {j.judge_id}" for j in judges], step="judge"):
        study, manifest = read_snapshot(study_dir, step="judge", details={"devices": devices})
        # Every shard of a judge works on the items this snapshot lacks, while the other shards commit theirs.
        todo = {judge.judge_id: items_to_judge(study, judge) for judge in judges}
        plan = place(judge_names, len(devices))
        with recorded_study_run(study_dir, manifest, lock=partial(study_lock, study_dir, step="judge")) as record:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=len(devices), mp_context=context) as pool:
                futures = [pool.submit(_work_on_device, str(study_dir), tasks, options, device, replace, todo,
                                       _threads_per_worker(devices))
                           for device, tasks in zip(devices, plan, strict=True) if tasks]
                shards = [summary for future in futures for summary in future.result()]
            summaries = [_combined([s for s in shards if s.judge_id == j.judge_id]) for j in judges]
            record_judge_runs(record, summaries)
            record["details"]["shards"] = [{"judge_id": s.judge_id, "device": s.backend.get("device"),
                                            "n_judged": s.n_judged, "wall_s": s.wall_s} for s in shards]
    return summaries


def _threads_per_worker(devices: list[str]) -> int | None:
    """CPU workers share the cores instead of each starting one thread per core."""
    n_cpu = sum(d == "cpu" for d in devices)
    return max(1, (os.cpu_count() or 1) // n_cpu) if n_cpu else None


def _work_on_device(study_dir: str, tasks: list[Task], options: JudgeOptions, device: str, replace: bool,
                    todo: dict[str, list[str]], cpu_threads: int | None) -> list[JudgeRunSummary]:
    """One worker: its tasks in order on ``device``, each committing its rows under the study lock."""
    from judgekit.store.study import load_study

    if device == "cpu" and cpu_threads:
        import torch

        torch.set_num_threads(cpu_threads)
    study = load_study(study_dir)
    summaries = []
    for name, k, n in tasks:
        judge = resolve_judge(name, with_fields(options, device=device))
        summaries += run_judges(study, [judge], replace=replace, progress=False, only_items=todo,
                                commit=partial(commit_under_study_lock, replace=replace), shard=(k, n))
    return summaries


def _combined(shards: list[JudgeRunSummary]) -> JudgeRunSummary:
    """One judge's summary from those of its shards."""
    first = shards[0]
    counts: dict[str, int] = {}
    for shard in shards:
        for status, count in shard.status_counts.items():
            counts[status] = counts.get(status, 0) + count
    return with_fields(
        first,
        n_judged=sum(s.n_judged for s in shards),
        n_from_cache=sum(s.n_from_cache for s in shards),
        wall_s=max(s.wall_s for s in shards),
        n_input_tokens=sum(s.n_input_tokens for s in shards),
        n_output_tokens=sum(s.n_output_tokens for s in shards),
        status_counts=counts,
        backend={**first.backend, "devices": sorted({str(s.backend.get("device")) for s in shards})},
    )
