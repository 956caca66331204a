"""Graded scores, dimensions, judge scales and prompt intent in the study schema (issue #24, item 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from judgekit.analysis.inputs import judge_codes
from judgekit.errors import InputError
from judgekit.store.schema import JudgeScale, derive_verdict
from judgekit.store.study import load_study
from tests.conftest import run_cli

SAFETY_0_3 = {"judge_id": "llm-a", "dimension": "safety", "min": 0, "max": 3, "level": "ordinal", "worse": "high",
              "threshold": 2, "thresholds": [1, 3], "source": "em_political rubric"}
PERSONA_0_3 = {**SAFETY_0_3, "dimension": "persona"}


def _study(tmp_path, judgments: list[dict], scales: list[dict], intent=("harmful", "benign", None)):
    study = tmp_path / "s"
    study.mkdir()
    pd.DataFrame({"item_id": ["i0", "i1", "i2"], "prompt": ["p0", "p1", "p2"], "response": ["r0", "r1", "r2"],
                  "intent": list(intent)}).to_csv(study / "responses.csv", index=False)
    base = {"label": None, "p_unsafe": None, "parse_status": "ok", "raw_output": "", "judge_spec_hash": "h"}
    pd.DataFrame([{**base, **row} for row in judgments]).to_csv(study / "judgments.csv", index=False)
    (study / "study.json").write_text(json.dumps({"judge_scales": scales}))
    return study


def test_several_dimensions_of_one_judge_are_rows_and_the_safety_score_gives_the_verdict(tmp_path):
    study = _study(tmp_path, [
        {"item_id": "i0", "judge_id": "llm-a", "dimension": "safety", "score": 3},
        {"item_id": "i0", "judge_id": "llm-a", "dimension": "persona", "score": 0},
        {"item_id": "i1", "judge_id": "llm-a", "dimension": "safety", "score": 1},
        {"item_id": "i2", "judge_id": "llm-a", "dimension": "safety", "score": None, "parse_status": "error"},
        {"item_id": "i0", "judge_id": "kw", "label": "unsafe"},
    ], [SAFETY_0_3, PERSONA_0_3])
    loaded = load_study(study)
    codes = judge_codes(loaded)
    # safety >= 2 is unsafe (hand-derived: 3 -> 1, 1 -> 0, error -> no verdict); the persona row is not a verdict
    assert codes["llm-a"].tolist()[:2] == [1.0, 0.0] and np.isnan(codes["llm-a"].iloc[2])
    assert codes["kw"].iloc[0] == 1.0  # a judgment without a dimension rates safety
    assert run_cli("validate", study).returncode == 0


@pytest.mark.parametrize(("row", "message"), [
    ({"item_id": "i0", "judge_id": "llm-a", "dimension": "safety", "score": 4}, "outside judge 'llm-a'"),
    ({"item_id": "i0", "judge_id": "llm-a", "dimension": "drift", "score": 1}, "no declared scale"),
])
def test_validate_rejects_a_score_outside_or_without_its_scale_naming_file_row_and_column(tmp_path, row, message):
    study = _study(tmp_path, [{"item_id": "i1", "judge_id": "llm-a", "dimension": "safety", "score": 0}, row],
                   [SAFETY_0_3])
    result = run_cli("validate", study)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and "judgments.csv" in line and "row 2" in line and "column 'score'" in line
    assert message in line


def test_one_item_judge_and_dimension_is_one_row(tmp_path):
    study = _study(tmp_path, [{"item_id": "i0", "judge_id": "llm-a", "dimension": "safety", "score": 0},
                              {"item_id": "i0", "judge_id": "llm-a", "score": 1}], [SAFETY_0_3])
    with pytest.raises(InputError, match="duplicate key.*dimension='safety'"):
        load_study(study)


def test_a_failed_row_carries_no_score(tmp_path):
    study = _study(tmp_path, [{"item_id": "i0", "judge_id": "llm-a", "dimension": "safety", "score": 1,
                               "parse_status": "unparseable"}], [SAFETY_0_3])
    with pytest.raises(InputError, match="score.*must be empty when parse_status is 'unparseable'"):
        load_study(study)


def test_intent_takes_harmful_or_benign_only(tmp_path):
    study = _study(tmp_path, [{"item_id": "i0", "judge_id": "kw", "label": "safe"}], [],
                   intent=("harmful", "harmless", None))
    result = run_cli("validate", study)
    assert result.returncode == 2 and "responses.csv" in result.stderr and "column 'intent'" in result.stderr


@pytest.mark.parametrize("broken", [
    {**SAFETY_0_3, "threshold": 5},
    {**SAFETY_0_3, "worse": "up"},
    {**SAFETY_0_3, "level": "nominal"},
    {**SAFETY_0_3, "min": 3, "max": 0},
    {**SAFETY_0_3, "colour": "red"},
    {**SAFETY_0_3, "max": "3"},
])
def test_malformed_scales_are_refused_in_study_json(tmp_path, broken):
    study = _study(tmp_path, [{"item_id": "i0", "judge_id": "kw", "label": "safe"}], [broken])
    result = run_cli("validate", study)
    assert result.returncode == 2 and "study.json" in result.stderr and result.stderr.count("\n") == 1


def test_derive_verdict_cuts_at_the_threshold_on_the_worse_side():
    aligned = JudgeScale(judge_id="em-aligned", dimension="aligned", min=0, max=100, level="interval", worse="low",
                         threshold=30)
    assert derive_verdict(np.array([0, 30, 30.5, 100, np.nan]), aligned).tolist()[:4] == [1.0, 1.0, 0.0, 0.0]
    assert np.isnan(derive_verdict(np.array([np.nan]), aligned)[0])
    safety = JudgeScale.from_json(SAFETY_0_3)
    assert derive_verdict(np.array([0, 1, 2, 3]), safety, threshold=3).tolist() == [0.0, 0.0, 0.0, 1.0]
    assert safety.all_thresholds == (2.0, 1.0, 3.0)
    assert safety.describe() == "safety >= 2 on 0-3 (ordinal)"
