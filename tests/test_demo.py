"""The bundled SIMULATED demo study: reproducible from its generator, and the whole pipeline runs on it."""

from __future__ import annotations

import json
import re
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import REPO
from judgekit.testing.simulate import INCOHERENT_TYPES, write_demo_study
from judgekit.store.study import load_study

DEMO = REPO / "data" / "demo"


def test_committed_demo_equals_its_seeded_generator(tmp_path: Path) -> None:
    write_demo_study(tmp_path / "demo")
    for name in ("responses.csv", "annotations.csv", "judgments.csv", "models.csv", "capability.csv", "study.json",
                 "README.md"):
        assert (tmp_path / "demo" / name).read_bytes() == (DEMO / name).read_bytes(), name


def test_demo_is_labelled_simulated_and_has_the_promised_shape() -> None:
    study = load_study(DEMO)
    assert study.metadata.simulated and "SIMULATED" in study.metadata.name
    assert "SIMULATED" in (DEMO / "README.md").read_text()
    responses = study.responses
    models = pd.read_csv(DEMO / "models.csv")
    assert responses["base_model"].nunique() == 1 and responses["model"].nunique() == 4 == len(models)
    assert set(responses["finetune_goal"].dropna()) == {"coding", "medical-qa"}
    assert set(models["mitigation"]) == {"none", "safety-data-mix"}
    assert responses["benchmark"].nunique() == 2 and responses["prompt"].nunique() >= 150
    # every model answers every prompt: paired by prompt_id
    assert responses.groupby("prompt_id")["model"].nunique().eq(4).all()
    capability = pd.read_csv(DEMO / "capability.csv")
    assert set(capability["task"]) == set(models["goal_task"].dropna()) and capability["item_id"].notna().all()
    # a labelled subset: the same half of the prompts for every model, the rest judged only
    assert study.annotations["annotator_id"].nunique() == 3
    labelled = responses["item_id"].isin(set(study.annotations["item_id"]))
    assert 0.4 < labelled.mean() < 0.6 and responses[labelled].groupby("prompt_id")["model"].nunique().eq(4).all()
    assert study.judgments["judge_id"].str.startswith("sim-").all() and study.judgments["judge_id"].nunique() == 5
    incoherent = responses["sim_response_type"].isin(INCOHERENT_TYPES)
    base = responses["finetune_goal"].isna()
    assert incoherent[~base].mean() > 2 * incoherent[base].mean()
    # Harmful specifics are always placeholders.
    compliant = responses[responses["sim_response_type"] == "compliance"]["response"]
    assert compliant.str.contains("[PLACEHOLDER", regex=False).all()
    # Humans disagree on some items, more on ambiguous ones.
    votes = study.annotations.pivot(index="item_id", columns="annotator_id", values="label")
    split = votes.nunique(axis=1) > 1
    assert 0.03 < split.mean() < 0.3


def test_simulated_judges_are_worse_on_incoherent_responses() -> None:
    study = load_study(DEMO)
    binary = study.annotations["label"].map(study.metadata.annotation_labels.to_binary)  # refusal -> safe
    truth = study.annotations.assign(label=binary).groupby("item_id")["label"].agg(lambda s: s.mode().iloc[0])
    types = study.responses.set_index("item_id")["sim_response_type"]
    judged = study.judgments.dropna(subset=["label"]).assign(
        wrong=lambda d: d["label"].to_numpy() != truth.reindex(d["item_id"]).to_numpy(),
        incoherent=lambda d: types.reindex(d["item_id"]).isin(INCOHERENT_TYPES).to_numpy(),
    )
    error = judged.groupby(["judge_id", "incoherent"])["wrong"].mean().unstack()
    assert (error[True] > error[False]).sum() >= 4, error


def test_demo_refusals_carry_the_markers_the_shipped_keyword_judges_look_for() -> None:
    from judgekit.registry import resolve_judge
    from judgekit.engine.steps import DEMO_JUDGES

    responses = load_study(DEMO).responses
    refusals = responses[responses["sim_response_type"].str.startswith("refusal")]
    compliant = responses[responses["sim_response_type"] == "compliance"]
    for name in DEMO_JUDGES:
        judge = resolve_judge(name, None)
        caught = [v.label == "safe" for v in judge.judge(_items(refusals))]
        missed = [v.label == "unsafe" for v in judge.judge(_items(compliant))]
        # most refusals are worded as chat models word them; a few ("Let's talk about something else") carry no
        # marker; compliance is called unsafe unless the request itself holds a marker ("an illegal drug")
        assert 0.7 < np.mean(caught) < 1 and np.mean(missed) > 0.9, name


def _items(responses: pd.DataFrame):
    from judgekit.judges.base import JudgeItems

    return JudgeItems.of(list(responses["prompt"]), list(responses["response"]))


def test_demo_pipeline_end_to_end(demo_output: Path) -> None:
    out = demo_output
    stdout = (out / "demo-stdout.txt").read_text(encoding="utf-8")
    assert str((out / "report.html").resolve()) in stdout and "SIMULATED" in stdout
    judgments = pd.read_parquet(out / "study" / "judgments")
    assert {"keyword-gcg-13", "keyword-gcg-29"} <= set(judgments["judge_id"])
    flags = pd.read_csv(out / "study" / "flags.csv")
    assert flags.groupby("detector").size().eq(640).all()
    stats = pd.read_parquet(out / "stats" / "stats.parquet")
    assert {"all", "coherent", "incoherent"} <= set(stats["subset"])
    html = (out / "report.html").read_text()
    assert "SIMULATED DATA" in html and html.count("data:image/png;base64,") == len(list((out / "figures").glob("*.png")))
    # the report opens with the fine-tuning answer (issue 14): before the study overview
    # (fine-tunes and a mitigation of one: the title names both)
    assert html.index("Did fine-tuning, and its mitigation, change safety?") < html.index("<h2>Study</h2>")
    assert (out / "figures" / "safety_capability_plane.png").exists()
    for figure in ("specification_curve", "conclusion_flip_matrix"):  # 4 comparisons: one figure each
        assert len(list((out / "figures").glob(f"{figure}__*.png"))) == 4
    for sub in ("stats", "figures", "."):
        manifest = json.loads((out / sub / "manifest.json").read_text())
        assert manifest["judgekit_version"] and "git" in manifest


def test_demo_report_reads_its_random_labels_and_leads_with_one_judge_per_outcome(demo_output: Path) -> None:
    """The demo's labels are a random half of the prompts (no convenience warning, no Γ range); one judge leads
    each outcome in every sentence; the demo prints no layout-migration notice; the plane's details are its
    caption, under the figure, not its title."""
    from judgekit.outputs.report_finetune import png_caption

    assert "moved judgments" not in (demo_output / "demo-stdout.txt").read_text(encoding="utf-8")
    html = (demo_output / "report.html").read_text(encoding="utf-8")
    answer = html.split("<ul class='answer'>", 1)[1].split("</ul>", 1)[0]
    assert "convenience" not in answer and "Γ=" not in answer
    leads = {}
    for outcome, judge in re.findall(r"\): (harmful compliance|over-refusal) .*?corrected by \d+ human labels, ([^;]+);",
                                     answer):
        leads.setdefault(outcome, set()).add(judge)
    assert set(leads) == {"harmful compliance", "over-refusal"} and all(len(j) == 1 for j in leads.values()), leads
    caption = png_caption(demo_output / "figures" / "safety_capability_plane.png")
    assert "x: capability" in caption and f"{next(iter(leads['harmful compliance']))}'s errors" in caption
    assert html_escape(caption) in html
