"""em_political end to end: convert, the graded agreement rows against krippendorff and sklearn on the raw files."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from conftest import SHARED_DATA, needs_shared, run_cli
from judgekit.analysis import StatsSettings, compute_stats
from judgekit.analysis.inputs import judge_codes, threshold_verdicts
from judgekit.store.lineage import read_capability, read_models
from judgekit.store.study import load_study

SOURCE = SHARED_DATA / "em_political"
DIMENSIONS = ("persona", "safety", "drift")


@pytest.fixture(scope="module")
def em_study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("em") / "study"
    result = run_cli("data", "convert", "em-political", SOURCE, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def _raw_scores() -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """condition -> dimension -> (150, 4) scores straight from the multi_judge files, -1 (judge error) as NaN."""
    files = sorted(SOURCE.glob("multi_judge_*.json"))
    out: dict[str, dict[str, list]] = {}
    for path in files:
        for stem, result in json.loads(path.read_text())["per_file_results"].items():
            entries = [e for category in ("persona", "freeform", "safety") for e in result["details"][category]]
            for dimension in DIMENSIONS:
                column = [np.nan if e["scores"][dimension] == -1 else float(e["scores"][dimension]) for e in entries]
                out.setdefault(stem.removeprefix("expanded_"), {}).setdefault(dimension, []).append(column)
    return {c: {d: np.array(v).T for d, v in dims.items()} for c, dims in out.items()}, [p.stem.removeprefix("multi_judge_") for p in files]


@needs_shared
def test_per_model_alpha_and_linear_kappa_equal_krippendorff_and_sklearn_on_the_raw_files(em_study):
    stats, _ = compute_stats(load_study(em_study), StatsSettings(n_boot=20),
                             version="test", only=("krippendorff_alpha_interval", "weighted_kappa_linear"))
    raw, judges = _raw_scores()
    assert len(raw) == 9 and len(judges) == 4
    alpha = stats[(stats.statistic == "krippendorff_alpha_interval") & (stats.subset_kind == "model")]
    kappa = stats[(stats.statistic == "weighted_kappa_linear") & (stats.subset_kind == "model")]
    checked = 0
    for condition, dimensions in raw.items():
        for dimension, scores in dimensions.items():
            row = alpha[(alpha.model == condition) & (alpha.dimension == dimension)]
            expected = krippendorff.alpha(reliability_data=scores.T, level_of_measurement="interval")
            assert row["estimate"].item() == pytest.approx(expected, abs=1e-12), (condition, dimension)
            for i in range(4):
                for j in range(i + 1, 4):
                    both = ~np.isnan(scores[:, [i, j]]).any(axis=1)
                    expected = cohen_kappa_score(scores[both, i], scores[both, j], labels=[0, 1, 2, 3], weights="linear")
                    row = kappa[(kappa.model == condition) & (kappa.dimension == dimension)
                                & (kappa.judge_id == judges[i]) & (kappa.reference == judges[j])]
                    assert row["estimate"].item() == pytest.approx(expected, abs=1e-12), (condition, dimension, i, j)
                    assert row["n_items"].item() == both.sum()
                    checked += 1
    assert checked == 9 * 3 * 6


@needs_shared
def test_convert_keeps_the_sources_names_lineage_pairing_intent_and_errors(em_study):
    study = load_study(em_study)
    responses = study.responses
    assert len(responses) == 9 * 150 and responses.groupby("prompt_id")["model"].nunique().eq(9).all()
    lineage = responses.drop_duplicates("model").set_index("model")
    assert lineage.loc["qwen25_political_2e4", "base_model"] == "base_qwen25"
    assert lineage[["base_model"]].isna().loc[["base_qwen25", "base_qwen25_lambda"]].all().all()
    assert responses.groupby("benchmark")["intent"].agg(set).to_dict() == {
        "freeform": {"benign"}, "persona": {"benign"}, "safety": {"harmful"}}
    judgments = study.judgments
    # The source has 10 scores of -1 (Mistral Large 3: 1 per dimension; Nova Pro: 3 drift, 2 persona, 2 safety).
    errors = judgments[judgments.parse_status == "error"]
    assert len(errors) == 10 and errors["score"].isna().all()
    assert set(errors.groupby("judge_id").size().items()) == {("mistral_large_3", 3), ("nova_pro", 7)}
    assert judgments.loc[judgments.parse_status == "ok", "score"].isin([0, 1, 2, 3]).all()
    assert len(study.metadata.judge_scales) == 4 * 3
    manifest = json.loads((em_study / "manifest.json").read_text())
    specs = {s["judge_id"]: s for s in manifest["runs"][0]["judge_specs"]}
    assert specs["nova_pro"]["spec"]["model"]["id"] == "amazon.nova-pro-v1:0"
    assert set(judgments["judge_spec_hash"]) == {s["spec_hash"] for s in specs.values()}
    capability = read_capability(em_study)
    base = capability.set_index("model").loc["base_qwen25"]
    assert base["estimate"] == pytest.approx(0.7584667320047914) and base["n"] == 9183


@needs_shared
def test_threshold_verdicts_give_the_stated_cut_first_and_match_the_verdicts_at_it(em_study):
    study = load_study(em_study)
    variants = threshold_verdicts(study)
    assert [t for (j, t) in variants if j == "nova_pro"] == [2.0, 1.0, 3.0]
    codes = judge_codes(study)
    for judge in ("claude_35_haiku", "llama_33_70b", "mistral_large_3", "nova_pro"):
        assert np.array_equal(variants[(judge, 2.0)].to_numpy(), codes[judge].to_numpy(), equal_nan=True)
    scores = study.judgments.query("judge_id == 'nova_pro' and dimension == 'safety'").set_index("item_id")["score"]
    expected = np.where(scores.isna(), np.nan, (scores >= 3).astype(float))
    assert np.array_equal(variants[("nova_pro", 3.0)].reindex(scores.index).to_numpy(), expected, equal_nan=True)


@needs_shared
def test_rows_on_verdicts_cut_from_scores_name_the_threshold(em_study):
    stats, _ = compute_stats(load_study(em_study), StatsSettings(n_boot=20), version="test", only=("harmful_rate",))
    llm = stats[stats.judge_id == "nova_pro"]
    assert len(llm) and llm["method"].str.contains("verdict nova_pro: safety >= 2 on 0-3 (ordinal)", regex=False).all()


@needs_shared
@pytest.mark.parametrize(("file", "edit", "fragments"), [
    ("expanded_qwen25_valence_control.json", lambda d: d["results"]["safety"][3].pop("response"),
     ["expanded_qwen25_valence_control.json", "row 4", "results.safety[3].response"]),
    ("expanded_qwen25_valence_control.json", lambda d: d["results"]["persona"][0].update(probe="something else"),
     ["expanded_qwen25_valence_control.json", "row 1", "results.persona[0].probe"]),
    ("multi_judge_nova_pro.json",
     lambda d: d["per_file_results"]["expanded_base_qwen25"]["details"]["freeform"].pop(),
     ["multi_judge_nova_pro.json", "details.freeform", "expected 50"]),
])
def test_a_broken_source_file_is_one_line_naming_file_row_and_column(tmp_path, file, edit, fragments):
    source = tmp_path / "em"
    source.mkdir()
    for path in SOURCE.glob("*.json"):
        (source / path.name).write_bytes(path.read_bytes())
    data = json.loads((source / file).read_text())
    edit(data)
    (source / file).write_text(json.dumps(data))
    result = run_cli("data", "convert", "em-political", source, "--out", tmp_path / "study")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert all(fragment in result.stderr for fragment in fragments), result.stderr
    assert not (tmp_path / "study" / "responses.parquet").exists()


@needs_shared
def test_a_score_outside_0_3_becomes_an_unparseable_row_not_a_score(tmp_path):
    source = tmp_path / "em"
    source.mkdir()
    for path in SOURCE.glob("*.json"):
        (source / path.name).write_bytes(path.read_bytes())
    data = json.loads((source / "multi_judge_llama_33_70b.json").read_text())
    data["per_file_results"]["expanded_base_qwen25"]["details"]["safety"][0]["scores"]["safety"] = 7
    (source / "multi_judge_llama_33_70b.json").write_text(json.dumps(data))
    assert run_cli("data", "convert", "em-political", source, "--out", tmp_path / "study").returncode == 0
    judgments = load_study(tmp_path / "study").judgments.set_index(["item_id", "judge_id", "dimension"])
    row = judgments.loc[("base_qwen25--safety-00", "llama_33_70b", "safety")]
    assert row["parse_status"] == "unparseable" and pd.isna(row["score"]) and "7" in row["detail"]


@needs_shared
def test_the_second_base_run_is_compared_with_the_first_and_is_the_reports_noise_floor(em_study, tmp_path):
    from judgekit.analysis.blocks.finetune import comparisons
    from judgekit.outputs.report_finetune import noise_floor_comparisons
    from judgekit.store.lineage import model_lineage

    study = load_study(em_study)
    present = set(study.responses["model"])
    found = comparisons(model_lineage(study.responses, read_models(em_study, study.responses)), present)
    kinds = {f"comparison={c.treated} vs {c.control}|goal={c.goal}": c.kind for c in found}
    assert kinds["comparison=base_qwen25_lambda vs base_qwen25|goal=None"] == "model_comparison"
    assert noise_floor_comparisons(kinds) == ["comparison=base_qwen25_lambda vs base_qwen25|goal=None"]
