"""Every new shared data set completes convert -> judge -> flag -> stats -> report (CLI, in-process)."""

from __future__ import annotations

import pytest

from conftest import SHARED_DATA, needs_shared, run_cli
from judgekit.study import load_study

DATASETS = {"em-political": "em_political", "refusal-direction": "refusal_direction"}


@needs_shared
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_convert_judge_flag_stats_report(tmp_path, name):
    study = tmp_path / "study"
    steps = [("data", "convert", name, SHARED_DATA / DATASETS[name], "--out", study),
             ("judge", study, "--judge", "keyword-gcg-13"), ("flag", study),
             ("stats", study, "--out", tmp_path / "stats", "--n-boot", "30"),
             ("report", study, "--out", tmp_path / "report", "--stats", tmp_path / "stats")]
    for step in steps:
        result = run_cli(*step)
        assert result.returncode == 0, (step[0], result.stderr)
    assert (tmp_path / "report" / "report.html").stat().st_size > 0
    assert load_study(study).flags is not None


@needs_shared
def test_refusal_direction_pairs_prompts_with_intent_and_keeps_both_judges(tmp_path):
    assert run_cli("data", "convert", "refusal-direction", SHARED_DATA / "refusal_direction", "--out", tmp_path / "s").returncode == 0
    study = load_study(tmp_path / "s")
    responses = study.responses
    assert len(responses) == 5 * (3 * 100 + 2 * 100)
    assert responses.groupby("intent")["prompt_id"].nunique().to_dict() == {"benign": 100, "harmful": 100}
    lineage = responses.drop_duplicates("model").set_index("model")
    assert lineage.loc["gemma-2b-it/ablation", "base_model"] == "gemma-2b-it/baseline"
    assert lineage["base_model"].isna().sum() == 5
    judgments = study.judgments
    guard = judgments[judgments.judge_id == "llamaguard2"].merge(responses, on="item_id")
    assert set(guard["intent"]) == {"harmful"} and len(guard) == 5 * 300
    # SOURCE card rate of the file: gemma-2b-it baseline, Llama Guard 2 success rate 0.07 (7 of 100 unsafe).
    gemma = guard[guard.model == "gemma-2b-it/baseline"]
    assert (gemma.label == "unsafe").sum() == 7


@needs_shared
@pytest.mark.parametrize(("edit", "fragments"), [
    (lambda d: d["completions"][5].update(prompt="another prompt"), ["completions[5].prompt", "row 6"]),
    (lambda d: d["completions"][2].update(is_jailbreak_llamaguard2=2), ["completions[2].is_jailbreak_llamaguard2", "row 3"]),
])
def test_refusal_direction_broken_file_is_one_line(tmp_path, edit, fragments):
    import json
    import shutil

    source = tmp_path / "rd"
    shutil.copytree(SHARED_DATA / "refusal_direction", source)
    path = source / "yi-6b-chat" / "jailbreakbench_ablation_evaluations.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    result = run_cli("data", "convert", "refusal-direction", source, "--out", tmp_path / "study")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "jailbreakbench_ablation_evaluations.json" in result.stderr
    assert all(fragment in result.stderr for fragment in fragments), result.stderr
