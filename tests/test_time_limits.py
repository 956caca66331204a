"""Time limits on chat-template rendering and output parsing (issue #23, item 3): a template that never
finishes is a one-line exit 2 naming it, within the configured limit; a parse that runs away is an `error` row."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from judgekit.errors import InputError
from judgekit.judges.base import JudgeItems
from judgekit.judges.rendering import InputRenderer
from judgekit.testing.replicas import build_causal_lm, train_tokenizer
from judgekit.guards.time_limit import TimeLimitExceeded, time_limit
from tests.conftest import run_cli

# Never finishes: 10^10 iterations of the sandbox's largest range.
HANGING = ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
           "{% for m in messages %}{{ m['content'] }}{% endfor %}")
LIMIT_S = 0.5


@pytest.fixture(scope="module")
def hanging_model(tmp_path_factory) -> Path:
    tokenizer = train_tokenizer(bos=None, eos="<|im_end|>", chat_template=HANGING, vocab_size=300)
    return build_causal_lm("Qwen2ForCausalLM", tokenizer, tmp_path_factory.mktemp("hang") / "model")


@pytest.fixture(autouse=True)
def short_limits(monkeypatch):
    monkeypatch.setenv("JUDGEKIT_TEMPLATE_TIMEOUT_S", str(LIMIT_S))
    monkeypatch.setenv("JUDGEKIT_PARSE_TIMEOUT_S", str(LIMIT_S))


def test_time_limit_interrupts_python_and_nests():
    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded):
        with time_limit(0.2):
            while True:
                pass
    assert time.monotonic() - started < 2
    with pytest.raises(TimeLimitExceeded):  # an inner, longer limit does not extend the outer one
        with time_limit(0.2):
            with time_limit(30):
                pass
            while True:
                pass


def test_hanging_judge_template_is_one_line_naming_it(hanging_model):
    from judgekit.guards.model_gate import load_tokenizer

    spec = {"judge_id": "hang-judge", "input": {"format": "chat_template"}}
    renderer = InputRenderer(spec, load_tokenizer(str(hanging_model), option="test"))
    started = time.monotonic()
    with pytest.raises(InputError, match=r"hang-judge: the chat template did not finish rendering within 0.5 s"):
        renderer.render(JudgeItems.of(["hi"], ["hello"]))
    assert time.monotonic() - started < 5


def test_render_timeout_is_configurable_per_judge(hanging_model):
    from judgekit.guards.model_gate import load_tokenizer

    spec = {"judge_id": "j", "input": {"format": "chat_template", "render_timeout_s": 0.2}}
    with pytest.raises(InputError, match="within 0.2 s"):
        InputRenderer(spec, load_tokenizer(str(hanging_model), option="test")).render(JudgeItems.of(["a"], ["b"]))
    with pytest.raises(InputError, match="render_timeout_s must be a positive number"):
        InputRenderer({"judge_id": "j", "input": {"format": "chat_template", "render_timeout_s": -1}},
                      load_tokenizer(str(hanging_model), option="test"))


def test_flag_with_a_hanging_fluency_template_fails_the_run_with_exit_2(small_study, hanging_model):
    started = time.monotonic()
    done = run_cli("flag", small_study, "--fluency-model", hanging_model)
    assert time.monotonic() - started < 60
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "the chat template did not finish" in done.stderr
    runs = json.loads((small_study / "manifest.json").read_text(encoding="utf-8"))["runs"]
    assert runs[-1]["status"] == "failed"  # not left "started"
    assert not any(p.name.startswith("flags") for p in small_study.iterdir())


def test_generate_with_a_hanging_template_is_exit_2_and_writes_no_study(tmp_path, hanging_model):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "prompts.csv").write_text("prompt_id,prompt\np1,Say hi\n", encoding="utf-8")
    done = run_cli("generate", prompts, "--model", hanging_model, "--backend", "transformers", "--out", tmp_path / "ft",
                   "--no-progress")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "did not finish rendering" in done.stderr


def test_a_runaway_verdict_pattern_is_an_error_row():
    from judgekit.judges.parsing import parse_output
    from judgekit.judges.transformers_judge import parse_generated

    spec = {"readout": {"pattern": r"(?P<verdict>(a+)+)b", "labels": {"a": "unsafe"}}}
    started = time.monotonic()
    verdict = parse_generated(spec, "a" * 40 + "c", n_input_tokens=1, n_output_tokens=1)
    assert verdict.parse_status == "error" and "exceeded 0.5 s" in verdict.detail
    assert time.monotonic() - started < 5
    assert parse_output("unsafe", {"name": "verdict_word", "labels": {"unsafe": "unsafe", "safe": "safe"}}).status == "ok"
