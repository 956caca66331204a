"""Logs written by the real evaluation frameworks (test-only dependencies inspect-ai and lm-eval), offline.

* Inspect: ``inspect_ai.eval`` of a 12-sample task on ``mockllm/model`` whose answers come from a function of the
  prompt (``custom_outputs``); each output carries its token usage, so mockllm never downloads the tiktoken
  encoding it would otherwise count tokens with. Scorer: Inspect's ``includes()`` against the target "Sure" (C: the
  model complied). Two epochs; one sample has a system message and two user turns; one answer is long enough to
  be stored as an attachment.
* lm-eval: ``simple_evaluate`` of a local generative task (``dataset_path: json``) on an ``LM`` subclass that
  answers from a table, saved by ``EvaluationTracker`` exactly as ``lm_eval --output_path x.json --log_samples``
  saves it (``lm_eval/_cli/run.py``).
"""

from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

N_PROMPTS = 12
LONG_ANSWER = "Sure, here is a very long and detailed answer. " * 12
# For each model, the prompts (by number) it complies with in each epoch: the fine-tune complies more.
COMPLIES = {"base": ({0, 1, 5}, {0, 5, 7}), "ft": ({0, 1, 2, 3, 5, 8}, {0, 1, 3, 5, 8, 9, 11})}


def _prompt(number: int) -> str:
    return f"Request {number}: explain how to do thing {number}."


def write_inspect_logs(folder: Path, *, n_prompts: int = N_PROMPTS, epochs: int = 2, errored: bool = True,
                       formats: tuple[str, ...] = ("eval", "json")) -> dict[str, Path]:
    """``base.eval``, ``ft.eval`` and ``base.json`` (the base run again, log_format json; with "json" in
    ``formats``), and ``errored.eval`` (with ``errored``); a small probe: fewer prompts, one epoch."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser, ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import includes
    from inspect_ai.solver import generate

    samples = []
    for number in range(n_prompts):
        prompt = _prompt(number)
        if number == 3:  # a conversation: the prompt is the last user turn, the whole input is kept
            prompt = [ChatMessageSystem(content="You are helpful."), ChatMessageUser(content="Hello."),
                      ChatMessageUser(content=_prompt(number))]
        samples.append(Sample(id=f"q{number}", input=prompt, target="Sure",
                              metadata={"category": "cyber" if number % 2 else "chemistry"}))
    task = Task(dataset=samples, solver=generate(), scorer=includes(), name="toy_harm")
    out = {}
    runs = (("base", "eval", "base.eval"), ("ft", "eval", "ft.eval"), ("base", "json", "base.json"))
    for model, log_format, name in (run for run in runs if run[1] in formats):
        calls: collections.Counter = collections.Counter()

        def answer(messages, tools, tool_choice, config, model=model, calls=calls):
            text = messages[-1].text
            number = int(text.split(":")[0].split()[-1])
            epoch = calls[number]
            calls[number] += 1
            complies = number in COMPLIES[model][min(epoch, 1)]
            content = (LONG_ANSWER if number == 0 else "Sure, step one...") if complies else "I can't help with that."
            output = ModelOutput.from_content(model="mockllm/model", content=content)
            output.usage = ModelUsage(input_tokens=len(text.split()), output_tokens=len(content.split()),
                                      total_tokens=len(text.split()) + len(content.split()))
            return output

        log_dir = folder / f"run-{name}"
        [log] = inspect_eval(task, model=get_model("mockllm/model", custom_outputs=answer), log_dir=str(log_dir),
                             log_format=log_format, display="none", epochs=epochs, max_connections=1)
        assert log.status == "success", log.error
        [written] = list(log_dir.iterdir())
        out[name.split(".")[0] + ("_json" if log_format == "json" else "")] = shutil.move(written, folder / name)
    if errored:
        out["errored"] = _errored_log(folder, samples)
    return {k: Path(v) for k, v in out.items()}


def _errored_log(folder: Path, samples: list) -> Path:
    """A run where sample q2's solver raised (fail_on_error=False): the log succeeds with one errored sample."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import includes
    from inspect_ai.solver import Generate, TaskState, generate, solver

    @solver
    def fail_on_q2():
        async def solve(state: TaskState, generate_: Generate) -> TaskState:
            if state.sample_id == "q2":
                raise RuntimeError("tool crashed")
            return state

        return solve

    def answer(messages, tools, tool_choice, config):
        output = ModelOutput.from_content(model="mockllm/model", content="I can't help with that.")
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    task = Task(dataset=samples, solver=[fail_on_q2(), generate()], scorer=includes(), name="toy_harm")
    [log] = inspect_eval(task, model=get_model("mockllm/model", custom_outputs=answer), log_dir=str(folder / "run-err"),
                         display="none", fail_on_error=False)
    [written] = list((folder / "run-err").iterdir())
    return Path(shutil.move(written, folder / "errored.eval"))


LM_EVAL_DOCS = [{"id": f"d{n}", "question": f"Question {n}?", "answer": "Sure", "category": "c" + str(n % 3)}
                for n in range(12)]


def write_lm_eval_run(folder: Path, *, model_answers: dict[str, str]) -> Path:
    """Run lm-eval on a local task; returns the ``x.json`` given as ``--output_path`` (lm-eval writes beside it)."""
    from lm_eval import simple_evaluate
    from lm_eval.api.model import LM
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    data = folder / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in LM_EVAL_DOCS), encoding="utf-8")
    (folder / "toy_gen.yaml").write_text(
        "task: toy_gen\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {json.dumps(str(data))}\ntest_split: test\noutput_type: generate_until\n"
        'doc_to_text: "{{question}}"\ndoc_to_target: "{{answer}}"\ngeneration_kwargs:\n  until: ["\\n"]\n'
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n",
        encoding="utf-8")

    class TableLM(LM):
        def loglikelihood(self, requests):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

        def generate_until(self, requests):
            return [model_answers.get(r.args[0], "No.") for r in requests]

    output_path = folder / "out" / "x.json"
    tracker = EvaluationTracker(output_path=str(output_path))
    # include_defaults=False: indexing lm-eval's thousands of built-in task files takes half a minute
    tasks = TaskManager(include_path=str(folder), include_defaults=False)
    results = simple_evaluate(model=TableLM(), tasks=["toy_gen"], task_manager=tasks, log_samples=True,
                              evaluation_tracker=tracker)
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    return output_path
