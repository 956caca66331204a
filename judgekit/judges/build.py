"""Turn a preset name or a spec file into a judge object, with run-time options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from judgekit.errors import InputError
from judgekit.judges.base import DEFAULT_MAX_PADDING, Judge
from judgekit.judges.catalog import check_spec, load_preset

if TYPE_CHECKING:
    from judgekit.judges.http_judge import HttpSettings


@dataclass(frozen=True)
class JudgeOptions:
    """How to run model judges; none of this changes a judge's spec (or its cache key).

    ``model_paths`` maps a judge id to a local directory or hub id that replaces the
    preset's ``model.id`` (for the HTTP backend: where its tokenizer is read). With
    ``http`` set, guard presets are scored by that server instead of in-process; with
    ``backend="vllm"`` in-process by vLLM's offline engine instead of ``transformers``.
    """

    model_paths: dict[str, str] = field(default_factory=dict)
    device: str | None = None
    dtype: str | None = None
    token_budget: int | None = None
    max_padding: float | None = DEFAULT_MAX_PADDING
    padding_side: str = "left"
    device_map: str | None = None
    http: HttpSettings | None = None
    backend: str = "transformers"


def judge_from_spec(spec: dict[str, Any], options: JudgeOptions | None = None) -> Judge:
    options = options or JudgeOptions()
    spec = check_spec(spec, origin=spec.get("judge_id", "spec"))
    if spec["family"] == "keyword":
        from judgekit.judges.keyword import KeywordJudge

        return KeywordJudge(spec)
    if spec["family"] == "rubric":
        from judgekit.judges.http_judge import RubricJudge

        if options.http is None:
            raise InputError(f"{spec['judge_id']}: a rubric judge needs a server: pass --base-url (and --served-model)")
        return RubricJudge(spec, options.http)
    if spec["family"] == "guard_model" and options.http is not None:
        from judgekit.judges.http_judge import HttpGuardJudge

        return HttpGuardJudge(spec, options.http, model_path=options.model_paths.get(spec["judge_id"]))
    if spec["family"] == "guard_model":
        from judgekit.judges.transformers_judge import TransformersJudge

        judge_class = TransformersJudge
        if options.backend == "vllm":
            from judgekit.judges.vllm_judge import VllmGuardJudge

            judge_class = VllmGuardJudge  # same rendering and read-out, forward pass on vLLM
        return judge_class(
            spec,
            model_path=options.model_paths.get(spec["judge_id"]),
            device=options.device,
            dtype=options.dtype,
            token_budget=options.token_budget,
            max_padding=options.max_padding,
            padding_side=options.padding_side,
            device_map=options.device_map,
        )
    raise InputError(f"judge family {spec['family']!r} has no backend")


def judge_from_preset(preset: str, options: JudgeOptions | None = None) -> Judge:
    return judge_from_spec(load_preset(preset), options)
