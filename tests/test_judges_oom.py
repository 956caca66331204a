"""Out-of-memory back-off of the transformers engine, with OOM injected into the model's forward pass.

The retry must run after the ``except`` handler has finished (the failed attempt's frames and the
tensors they hold are released), a batch that runs out of memory is split down to single items,
and an item that does not fit alone becomes an ``error`` row (not cached: retried next run).
"""

from __future__ import annotations

import sys
import weakref

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from judgekit.judges.base import JudgeItems  # noqa: E402
from judgekit.judges.build import JudgeOptions, judge_from_spec  # noqa: E402
from judgekit.judges.catalog import load_preset  # noqa: E402
from judgekit.testing.replicas import LLAMA_GUARD_3_LIKE, build_causal_lm, train_tokenizer  # noqa: E402
from judgekit.engine.judge_runner import run_judges  # noqa: E402
from judgekit.store.study import load_study  # noqa: E402

PRESET = "llama-guard-3-8b"
PROMPTS = [f"Question {k}: how do I do thing {k}?" for k in range(6)]
RESPONSES = ["Sure, step one: gather the materials. " * (k + 1) for k in range(6)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tokenizer = train_tokenizer(bos="<|begin_of_text|>", chat_template=LLAMA_GUARD_3_LIKE)
    return build_causal_lm("LlamaForCausalLM", tokenizer, tmp_path_factory.mktemp("lg3"))


def guard(model_dir, **options):
    return judge_from_spec(load_preset(PRESET), JudgeOptions(model_paths={PRESET: str(model_dir)}, **options))


class InjectedOOM:
    """Wraps a model's forward: fails (holding a tensor in its frame) when ``fails(input_ids)`` says so, and records
    the batch size and whether an exception was being handled at each call."""

    def __init__(self, forward, fails) -> None:
        self.forward, self.fails = forward, fails
        self.calls: list[tuple[int, bool]] = []
        self.held: list[weakref.ref] = []

    def __call__(self, *args, input_ids=None, **kwargs):
        self.calls.append((int(input_ids.shape[0]), sys.exc_info()[0] is not None))
        alive = [ref for ref in self.held if ref() is not None]
        assert not alive, "a failed attempt's tensors are still alive at the retry"
        if self.fails(input_ids):
            activations = torch.empty(1024)  # stands for the activations of the failed attempt
            self.held.append(weakref.ref(activations))
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return self.forward(*args, input_ids=input_ids, **kwargs)


def test_oom_retry_runs_outside_the_handler_and_splits_down_to_single_items(model_dir):
    items = JudgeItems.of(PROMPTS, RESPONSES)
    expected = [guard(model_dir).judge(items.take([i]))[0].p_unsafe for i in range(len(items))]
    judge = guard(model_dir, token_budget=100_000)
    judge._load_model()
    injected = InjectedOOM(judge._model.forward, fails=lambda ids: ids.shape[0] > 2)
    judge._model.forward = injected
    verdicts = judge.judge(items)
    np.testing.assert_allclose([v.p_unsafe for v in verdicts], expected, atol=1e-5, rtol=0)
    assert {v.parse_status for v in verdicts} == {"ok"}
    sizes = [size for size, _ in injected.calls]
    assert sizes[0] == 6 and max(sizes[1:]) <= 3 and sum(s for s in sizes if s <= 2) == 6  # split, nothing lost
    assert not any(handling for _, handling in injected.calls), "a retry ran inside the except handler"
    assert judge.n_oom_retries >= 2 and judge.token_budget < 100_000


def test_an_item_that_does_not_fit_alone_is_an_error_row_retried_next_run(model_dir, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    pd.DataFrame({"item_id": [f"i{k}" for k in range(6)], "prompt": PROMPTS, "response": RESPONSES}).to_csv(
        study / "responses.csv", index=False)
    longest = max(len(row) for row in guard(model_dir).rendered_ids(JudgeItems.of(PROMPTS, RESPONSES)))
    judge = guard(model_dir, token_budget=100_000)
    judge._load_model()
    injected = InjectedOOM(judge._model.forward, fails=lambda ids: ids.shape[1] >= longest)
    judge._model.forward = injected
    [summary] = run_judges(load_study(study), [judge], progress=False)
    first = pd.read_parquet(study / "judgments").set_index("item_id")
    assert first.loc["i5", "parse_status"] == "error" and "out of memory on this item alone" in first.loc["i5", "detail"]
    assert (first.drop(index="i5")["parse_status"] == "ok").all()
    assert summary.status_counts == {"ok": 5, "error": 1}
    [again] = run_judges(load_study(study), [guard(model_dir)], progress=False)
    assert again.n_skipped == 5 and again.n_judged == 1  # only the error row is judged again
    assert (pd.read_parquet(study / "judgments")["parse_status"] == "ok").all()


def test_input_over_the_position_limit_is_a_skipped_row_in_process_and_over_http(tmp_path):
    from judgekit.judges.http_judge import HttpSettings
    from judgekit.testing.replica_server import ReplicaServer
    from judgekit.testing.replicas import Shape

    tokenizer = train_tokenizer(bos="<|begin_of_text|>", chat_template=LLAMA_GUARD_3_LIKE)
    short = build_causal_lm("LlamaForCausalLM", tokenizer, tmp_path / "short", shape=Shape(max_position_embeddings=160))
    items = JudgeItems.of(PROMPTS[:2], [RESPONSES[0], RESPONSES[5]])
    lengths = [len(row) for row in guard(short).rendered_ids(items)]
    assert lengths[0] <= 160 < lengths[1]
    local = guard(short).judge(items)
    with ReplicaServer(short) as server:
        options = JudgeOptions(model_paths={PRESET: str(short)}, http=HttpSettings(base_url=server.url, api="sglang"))
        remote = judge_from_spec(load_preset(PRESET), options).judge(items)
    for verdicts in (local, remote):
        assert verdicts[0].parse_status == "ok"
        assert verdicts[1].parse_status == "skipped" and verdicts[1].label is None and "position limit of 160" in verdicts[1].detail
