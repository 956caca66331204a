"""Every new shared data set completes convert -> judge -> flag -> stats -> report (CLI, in-process).

Each data set goes through the pipeline once per session (fixture ``pipeline``) and every test reads that one study.
The report test draws every figure but does not rasterise it (PNG/PDF rendering of the report's figures took ~85 of
~120 s on refusal_direction and tests nothing about the data; the figure tests cover saving).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA, needs_shared, run_cli
from judgekit.store.study import load_study

DATASETS = {"em-political": "em_political", "refusal-direction": "refusal_direction"}
MODELS = ("gemma-2b-it", "llama-2-7b-chat-hf", "meta-llama-3-8b-instruct", "qwen-1_8b-chat", "yi-6b-chat")


def _placeholder_figure(fig, out_dir, name, *, formats=("pdf", "png"), dpi=300):
    """Stands in for ``save_figure``: the figure was drawn; write its files without rendering it (a PNG of the
    figure's size in pixels at ``dpi``, blank, so that the report can read its size)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    width, height = fig.get_size_inches()
    plt.close(fig)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{suffix}" for suffix in formats]
    for path in paths:
        if path.suffix == ".png":
            Image.new("L", (max(1, int(width * dpi)), max(1, int(height * dpi)))).save(path, dpi=(dpi, dpi))
        else:
            path.write_bytes(b"not rendered in this test")
    return paths


def _run_pipeline(name: str, root: Path) -> dict:
    """One data set through convert -> judge -> flag -> stats -> report: its folders and each step's CLI result."""
    study = root / "study"
    steps = [("data", "convert", name, SHARED_DATA / DATASETS[name], "--out", study),
             ("judge", study, "--judge", "keyword-gcg-13"), ("flag", study),
             ("stats", study, "--out", root / "stats", "--n-boot", "30"),
             ("report", study, "--out", root / "report", "--stats", root / "stats")]
    results = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("judgekit.outputs.figures.save_figure", _placeholder_figure)
        for step in steps:
            results[step[0]] = result = run_cli(*step)
            if result.returncode != 0:
                break
    return {"root": root, "study": study, "results": results}


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """``pipeline(name)``: the data set's pipeline run, done once per session and shared by every test."""
    done: dict[str, dict] = {}

    def run(name: str) -> dict:
        if name not in done:
            done[name] = _run_pipeline(name, tmp_path_factory.mktemp(name))
        return done[name]
    return run


@needs_shared
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_convert_judge_flag_stats_report(pipeline, name):
    run = pipeline(name)
    for step, result in run["results"].items():
        assert result.returncode == 0, (step, result.stderr)
    assert list(run["results"]) == ["data", "judge", "flag", "stats", "report"]
    assert (run["root"] / "report" / "report.html").stat().st_size > 0
    assert load_study(run["study"]).flags is not None


@needs_shared
def test_refusal_direction_pairs_prompts_with_intent_and_keeps_both_judges(pipeline):
    study = load_study(pipeline("refusal-direction")["study"])
    responses = study.responses
    assert len(responses) == 5 * (3 * 100 + 2 * 100)
    assert responses.groupby("intent")["prompt_id"].nunique().to_dict() == {"benign": 100, "harmful": 100}
    lineage = responses.drop_duplicates("model").set_index("model")
    assert lineage.loc["gemma-2b-it/ablation", "base_model"] == "gemma-2b-it/baseline"
    assert lineage["base_model"].isna().sum() == 5
    assert study.metadata.refusal_judges == ("substring_matching",)
    judgments = study.judgments
    guard = judgments[judgments.judge_id == "llamaguard2"].merge(responses, on="item_id")
    assert set(guard["intent"]) == {"harmful"} and len(guard) == 5 * 300
    # SOURCE card rate of the file: gemma-2b-it baseline, Llama Guard 2 success rate 0.07 (7 of 100 unsafe).
    gemma = guard[guard.model == "gemma-2b-it/baseline"]
    assert (gemma.label == "unsafe").sum() == 7


@needs_shared
def test_refusal_direction_stats_measure_actadd_over_refusal_with_the_substring_matcher(pipeline):
    """The study's refusal judge gives over_refusal rows: actadd minus baseline on the harmless prompts equals the
    hand computation from the source's verdicts ('safe' = a refusal phrase found) and is positive for every model."""
    run = pipeline("refusal-direction")
    study = load_study(run["study"])
    stats = pd.read_parquet(run["root"] / "stats" / "stats.parquet")
    verdicts = study.judgments[study.judgments.judge_id == "substring_matching"].merge(study.responses, on="item_id")
    refused = verdicts[verdicts.intent == "benign"].assign(refused=lambda d: (d.label == "safe").astype(float))
    rows = stats[(stats.statistic == "finetune_effect_paired") & (stats.outcome == "over_refusal")
                 & (stats.judge_id == "substring_matching") & stats.subset.str.contains("|benchmark=all", regex=False)]
    for model in MODELS:
        by_prompt = refused.pivot(index="prompt_id", columns="model", values="refused")
        hand = float(np.mean(by_prompt[f"{model}/actadd"] - by_prompt[f"{model}/baseline"]))
        actadd = rows[rows.model == f"{model}/actadd"]
        assert len(actadd) == 1, model
        assert actadd.estimate.iloc[0] == pytest.approx(hand, abs=1e-12)
        assert actadd.ci_low.iloc[0] > 0 and actadd.n_items.iloc[0] == 100, model
        # ablation was not run on the harmless prompts: the row says why instead of a number
        ablation = rows[rows.model == f"{model}/ablation"]
        assert ablation.estimate.isna().all() and ablation.warning.str.contains("0 units").all(), model


@needs_shared
@pytest.mark.parametrize(("edit", "fragments"), [
    (lambda d: d["completions"][5].update(prompt="another prompt"), ["completions[5].prompt", "row 6"]),
    (lambda d: d["completions"][2].update(is_jailbreak_llamaguard2=2), ["completions[2].is_jailbreak_llamaguard2", "row 3"]),
])
def test_refusal_direction_broken_file_is_one_line(tmp_path, edit, fragments):
    source = tmp_path / "rd"
    shutil.copytree(SHARED_DATA / "refusal_direction" / "yi-6b-chat", source / "yi-6b-chat")  # one model suffices
    path = source / "yi-6b-chat" / "jailbreakbench_ablation_evaluations.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    result = run_cli("data", "convert", "refusal-direction", source, "--out", tmp_path / "study")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "jailbreakbench_ablation_evaluations.json" in result.stderr
    assert all(fragment in result.stderr for fragment in fragments), result.stderr
