"""The vLLM guard backend (issue #26): its prefill requests and read-out against the transformers path on a replica.

vLLM is not installable here: the requests are checked against the transformers judge's own rendering, and
the read-out is run through a stand-in engine that computes vLLM's ``prompt_logprobs`` contract (one
``{token_id: Logprob}`` per prompt position, None at position 0; ``vllm/logprobs.py``) with the replica's
transformers model.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from judgekit.judges.base import JudgeItems, judge_identity, judge_key  # noqa: E402
from judgekit.judges.build import JudgeOptions, judge_from_spec  # noqa: E402
from judgekit.judges.catalog import load_preset  # noqa: E402
from judgekit.judges.vllm_judge import VllmGuardJudge, label_requests  # noqa: E402
from judgekit.testing.replicas import LLAMA_GUARD_3_LIKE, build_causal_lm, train_tokenizer  # noqa: E402

from conftest import run_cli  # noqa: E402

PRESET = "llama-guard-3-8b"
ITEMS = JudgeItems.of(["How do I pick a lock?", "What is the capital of France?", "Tell me a joke."],
                      ["Sure, step 1: insert the pick.", "Paris.", "I'm sorry, I cannot help with that."])


@pytest.fixture(scope="module")
def replica(tmp_path_factory) -> Path:
    tokenizer = train_tokenizer(bos="<|begin_of_text|>", chat_template=LLAMA_GUARD_3_LIKE)
    return build_causal_lm("LlamaForCausalLM", tokenizer, tmp_path_factory.mktemp("vllm") / "guard", seed=3)


def _judges(replica: Path):
    options = JudgeOptions(model_paths={PRESET: str(replica)}, device="cpu", dtype="float32")
    transformers_judge = judge_from_spec(load_preset(PRESET), options)
    vllm_judge = judge_from_spec(load_preset(PRESET), JudgeOptions(**{**options.__dict__, "backend": "vllm"}))
    return transformers_judge, vllm_judge


def test_requests_score_each_label_token_at_the_verdict_position_of_the_transformers_input(replica: Path) -> None:
    reference, judge = _judges(replica)
    assert isinstance(judge, VllmGuardJudge)
    rows = reference.rendered_ids(ITEMS)
    assert judge.rendered_ids(ITEMS) == rows  # same rendering, BOS and forced suffix
    assert judge.readout.ids == reference.readout.ids and len(judge.readout.ids) >= 2
    requests = label_requests(rows, judge.readout.ids)
    assert len(requests) == len(rows) * len(judge.readout.ids)
    for request in requests:
        row = rows[request.item]
        assert request.prompt_token_ids[:-1] == row and request.position == len(row)
        assert request.prompt_token_ids[request.position] == request.label_id == judge.readout.ids[request.label_column]
    # other numbers, other cache entries: the backend is part of the judge's identity
    assert judge_key(judge.spec, judge_identity(judge)) != judge_key(reference.spec, judge_identity(reference))


class _PromptLogprobEngine:
    """vLLM's ``LLM.generate`` output contract, computed with a transformers model (float32, one prompt at a time)."""

    def __init__(self, model) -> None:
        self.model = model

    def generate(self, prompts, params, use_tqdm=False):
        outputs = []
        for prompt, _ in zip(prompts, params, strict=True):
            ids = prompt["prompt_token_ids"]
            with torch.inference_mode():
                logprobs = torch.log_softmax(self.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
            positions = [None] + [{ids[i]: types.SimpleNamespace(logprob=float(logprobs[i - 1, ids[i]]))}
                                  for i in range(1, len(ids))]
            outputs.append(types.SimpleNamespace(prompt_logprobs=positions,
                                                 outputs=[types.SimpleNamespace(token_ids=[int(logprobs[-1].argmax())])]))
        return outputs


def test_the_read_out_of_prompt_logprobs_equals_the_transformers_p_unsafe(replica: Path, monkeypatch) -> None:
    from transformers import LlamaForCausalLM

    reference, judge = _judges(replica)
    expected = reference.judge(ITEMS)
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=lambda **kwargs: kwargs))
    judge._load_tokenizer()
    judge._model = _PromptLogprobEngine(LlamaForCausalLM.from_pretrained(replica).eval())
    judge.device, judge.dtype, judge.attention, judge.token_budget = torch.device("cpu"), "float32", "stand-in", 4096
    got = judge.judge(ITEMS)
    np.testing.assert_allclose([v.p_unsafe for v in got], [v.p_unsafe for v in expected], rtol=0, atol=1e-5)
    np.testing.assert_allclose([v.coverage for v in got], [v.coverage for v in expected], rtol=0, atol=1e-5)
    assert [v.label for v in got] == [v.label for v in expected]
    assert [v.raw_output for v in got] == [v.raw_output for v in expected]


@pytest.mark.skipif(__import__("importlib").util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_without_vllm_both_commands_exit_2_with_one_line(replica: Path, small_study: Path) -> None:
    judged = run_cli("judge", small_study, "--judge", PRESET, "--model-path", f"{PRESET}={replica}", "--backend", "vllm",
                     "--no-progress")
    compared = run_cli("inspect-judge", PRESET, "--model-path", str(replica), "--compare-backends")
    for result in (judged, compared):
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().count("\n") == 0 and "needs vLLM" in result.stderr
