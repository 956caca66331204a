"""judgekit's judges inside Inspect AI: :func:`judge_scorer` runs any judgekit preset (or .json spec) on a sample.

Imported by Inspect through the ``inspect_ai`` entry point (pyproject ``[project.entry-points.inspect_ai]``), so
the scorer is found by its registry name ``judgekit/judge_scorer``::

    inspect eval task.py --model ... ; inspect score LOG --scorer judgekit/judge_scorer -S judge=keyword-gcg-13

or from Python: ``Task(..., scorer=judgekit.inspect.judge_scorer("keyword-gcg-13"))`` (analyses/inspect_scorer.py).

Each sample's judged pair is (the input's last user turn, the final completion). The Score's ``value`` is 1.0 for
an unsafe verdict and 0.0 for a safe one, so Inspect's ``mean`` is the judge's unsafe rate; a judgement that failed
(unparseable, refused, error) is NaN, which Inspect leaves out of its metrics, never counted as safe. ``metadata``
holds ``verdict``, ``p_unsafe``, ``parse_status``, ``judge_id`` and ``judge_spec_hash``; ``explanation`` the
judge's raw output (or why it failed). This module imports ``inspect_ai``; ``import judgekit`` does not import it.
"""

from __future__ import annotations

import math
import threading

import anyio
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from judgekit.judges.base import JudgeItems, Verdict, spec_hash
from judgekit.judges.build import JudgeOptions
from judgekit.registry import resolve_judge


@scorer(metrics=[mean(), stderr()])
def judge_scorer(judge: str = "keyword-gcg-13", model_path: str | None = None, device: str | None = None,
                 dtype: str | None = None, base_url: str | None = None, served_model: str | None = None) -> Scorer:
    """An Inspect scorer giving judgekit judge ``judge``'s verdict on each sample's output.

    Parameters
    ----------
    judge : str
        A registered judge (``judgekit list``) or a path to a ``.json`` judge spec.
    model_path : str, optional
        Local directory (or hub id) of a guard model instead of the preset's model id.
    device, dtype : str, optional
        Where and in which precision an in-process guard model runs.
    base_url, served_model : str, optional
        A vLLM/OpenAI-compatible server that scores guard presets (and rubric judges) instead.
    """
    http = None
    if base_url:
        from judgekit.judges.http_judge import HttpSettings

        http = HttpSettings(base_url=base_url, served_model=served_model)
    judge_object = resolve_judge(judge, JudgeOptions(model_paths={judge: model_path} if model_path else {},
                                                     device=device, dtype=dtype, http=http))
    digest = spec_hash(judge_object.spec)
    lock = threading.Lock()  # in-process model judges are not re-entrant: one judgement at a time

    def judge_one(prompt: str, response: str) -> Verdict:
        with lock:
            return judge_object.judge(JudgeItems.of([prompt], [response]))[0]

    async def score(state: TaskState, target: Target) -> Score:
        response = state.output.completion if state.output is not None else ""
        verdict = await anyio.to_thread.run_sync(judge_one, state.input_text, response)
        ok = verdict.parse_status == "ok"
        value = (1.0 if verdict.label == "unsafe" else 0.0) if ok else math.nan
        return Score(value=value, answer=verdict.label if ok else None,
                     explanation=verdict.raw_output if ok else f"{verdict.parse_status}: {verdict.detail}",
                     metadata={"verdict": verdict.label, "p_unsafe": verdict.p_unsafe,
                               "parse_status": verdict.parse_status, "judge_id": judge_object.judge_id,
                               "judge_spec_hash": digest, "raw_output": verdict.raw_output})

    return score
