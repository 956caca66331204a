"""The threshold as an axis of the specification curve: one cell per threshold of a judge cut from a graded score."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from judgekit.analysis import StatsSettings, compute_stats
from judgekit.store.study import load_study

N = 40  # prompts, answered by base and ft
# graded judge g scores safety 0-3 (>= 2 unsafe, alternatives 1 and 3); per prompt index
FT_SCORES = [2] * 30 + [3] + [1] * 4 + [0] * 5
BASE_SCORES = [1] * 2 + [0] * 38
FT_UNSAFE = 31  # humans and the binary judge k: ft unsafe on prompts 0..30, base never


@pytest.fixture(scope="module")
def cell_stats(tmp_path_factory):
    folder = tmp_path_factory.mktemp("thresholds") / "s"
    folder.mkdir()
    responses, judgments, annotations = [], [], []
    for model, scores in (("base", BASE_SCORES), ("ft", FT_SCORES)):
        for p, score in enumerate(scores):
            item = f"{model}-{p}"
            unsafe = model == "ft" and p < FT_UNSAFE
            responses.append({"item_id": item, "prompt": f"prompt {p}", "response": "r", "model": model,
                              "base_model": None if model == "base" else "base",
                              "finetune_goal": None if model == "base" else "coding", "prompt_id": f"p{p}",
                              "benchmark": "b"})
            common = {"item_id": item, "p_unsafe": None, "parse_status": "ok", "raw_output": "", "judge_spec_hash": "h"}
            judgments.append({**common, "judge_id": "g", "label": None, "score": float(score)})
            judgments.append({**common, "judge_id": "k", "label": "unsafe" if unsafe else "safe", "score": None})
            annotations.append({"item_id": item, "annotator_id": "a", "label": "unsafe" if unsafe else "safe"})
    for name, rows in (("responses", responses), ("judgments", judgments), ("annotations", annotations)):
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    (folder / "study.json").write_text(json.dumps({"judge_scales": [
        {"judge_id": "g", "dimension": "safety", "min": 0, "max": 3, "level": "ordinal", "worse": "high",
         "threshold": 2, "thresholds": [1, 3]}]}))
    stats, _ = compute_stats(load_study(folder), StatsSettings(n_boot=200), version="test",
                             only=("finetune_effect_cell", "conclusion_agreement", "conclusion_reversal",
                                   "conclusion_disagreement"))
    return stats


def test_one_cell_per_threshold_equals_the_hand_computation(cell_stats):
    cells = cell_stats[cell_stats.statistic == "finetune_effect_cell"].set_index(["judge_id", "subset"])
    label = "comparison=ft vs base|goal=coding|benchmark=b|incoherent=include"
    ft, base = np.array(FT_SCORES), np.array(BASE_SCORES)
    for threshold in (1, 2, 3):
        row = cells.loc[("g", f"{label}|threshold={threshold}")]
        by_hand = np.mean((ft >= threshold).astype(float) - (base >= threshold))  # 0.825, 0.775, 0.025
        assert row.estimate == pytest.approx(by_hand, abs=1e-12)
        assert f"verdict g: safety >= {threshold} on 0-3 (ordinal)" in row.method
        assert row.subset_value == "include" and row.n_items == N
    assert len(cells.loc["g"]) == 3  # the stated threshold is not repeated
    # a binary judge and the humans: one cell each, no threshold
    assert cells.loc[("k", label)].estimate == pytest.approx(FT_UNSAFE / N)
    assert cells.loc[("human_majority", label)].estimate == pytest.approx(FT_UNSAFE / N)


def test_conclusion_agreement_counts_every_threshold(cell_stats):
    """Cells k, g>=1, g>=2 reach the humans' 'significantly more unsafe'; g>=3 (1 of 40 prompts) does not: 3 of 4."""
    by_statistic = cell_stats.set_index("statistic")
    agreement = by_statistic.loc["conclusion_agreement"]
    assert agreement.estimate == pytest.approx(3 / 4) and agreement.n_items == 4
    assert "x threshold" in agreement.method
    assert by_statistic.loc["conclusion_reversal"].estimate == 0
    drivers = cell_stats[cell_stats.statistic == "conclusion_disagreement"].set_index("subset_value")
    assert drivers.loc["threshold=3", "estimate"] == 1.0
    assert drivers.loc["threshold=2", "estimate"] == 0.0 and drivers.loc["threshold=binary verdict", "estimate"] == 0.0


def test_specification_curve_indicator_shows_the_threshold(cell_stats):
    import matplotlib.pyplot as plt

    from judgekit.outputs.finetune_figures import specification_curve
    from judgekit.outputs.style import FigureInputs, figure_caption

    figure = specification_curve(FigureInputs(cell_stats))
    _, indicator = figure.axes
    labels = [t.get_text() for t in indicator.get_yticklabels()]
    assert labels[-4:] == ["threshold: 1", "threshold: 2", "threshold: 3", "threshold: binary verdict"]
    # one dark square per cell on the threshold rows: the three cells of g, and k's binary verdict
    dark = [line for line in indicator.get_lines() if line.get_color() == "0.2"]
    squares = {int(line.get_ydata()[0]) if len(line.get_ydata()) else None: len(line.get_xdata()) for line in dark}
    assert [squares[y] for y in range(len(labels) - 4, len(labels))] == [1, 1, 1, 1]
    assert "threshold" in figure_caption(figure)
    plt.close(figure)
