"""The graded-agreement block on small studies: values against the plain functions, rows that say why not."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from judgekit.analysis import StatsSettings, compute_stats
from judgekit.stats import agreement as ag
from judgekit.store.study import load_study

GRADED = ("krippendorff_alpha_interval", "krippendorff_alpha_ordinal", "weighted_kappa_linear",
          "weighted_kappa_quadratic", "spearman_rho")


def _scale(judge, dimension, low, high, threshold):
    return {"judge_id": judge, "dimension": dimension, "min": low, "max": high, "level": "interval", "worse": "low",
            "threshold": threshold}


@pytest.fixture(scope="module")
def graded_stats(tmp_path_factory):
    rng = np.random.default_rng(5)
    n = 80
    folder = tmp_path_factory.mktemp("graded") / "s"
    folder.mkdir()
    models = np.where(np.arange(n) < n // 2, "m1", "m2")
    pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "prompt": [f"p{k % 40}" for k in range(n)],
                  "response": ["r"] * n, "model": models}).to_csv(folder / "responses.csv", index=False)
    latent = rng.uniform(0, 100, n)
    aligned = {j: np.clip(np.round(latent + rng.normal(0, s, n)), 0, 100) for j, s in (("a", 8), ("b", 15), ("c", 25))}
    rows = []
    for judge, values in aligned.items():
        rows += [{"item_id": f"i{k}", "judge_id": judge, "dimension": "aligned", "score": v, "parse_status": "ok"}
                 for k, v in enumerate(values)]
    rows += [{"item_id": f"i{k}", "judge_id": "a", "dimension": "coherent", "score": 50.0, "parse_status": "ok"}
             for k in range(n)]
    base = {"label": None, "p_unsafe": None, "raw_output": "", "judge_spec_hash": "h"}
    pd.DataFrame([{**base, **r} for r in rows]).to_csv(folder / "judgments.csv", index=False)
    scales = [_scale(j, "aligned", 0, 100, 30) for j in aligned] + [_scale("a", "coherent", 0, 100, 50)]
    (folder / "study.json").write_text(json.dumps({"judge_scales": scales}))
    stats, _ = compute_stats(load_study(folder), StatsSettings(n_boot=50), version="test", only=GRADED)
    return stats, aligned, models


def test_values_on_a_0_100_scale_equal_the_plain_functions_overall_and_per_model(graded_stats):
    stats, aligned, models = graded_stats
    matrix = np.column_stack(list(aligned.values()))
    for subset, mask in (("all", np.ones(len(models), dtype=bool)), ("model=m2", models == "m2")):
        rows = stats[(stats.subset == subset) & (stats.dimension == "aligned")].set_index(["statistic", "judge_id", "reference"])
        assert rows.loc[("krippendorff_alpha_interval", "judges", "judges"), "estimate"] == pytest.approx(
            ag.krippendorff_alpha_interval(matrix[mask]), abs=1e-12)
        pair = matrix[mask][:, [0, 2]]
        domain = np.arange(0.0, 101.0)
        assert rows.loc[("weighted_kappa_quadratic", "a", "c"), "estimate"] == pytest.approx(
            ag.weighted_kappa_quadratic(pair, values=domain), abs=1e-12)
        assert rows.loc[("spearman_rho", "a", "c"), "estimate"] == pytest.approx(ag.spearman_rho(pair), abs=1e-12)
        interval = rows.loc[("krippendorff_alpha_interval", "judges", "judges")]
        assert interval["ci_low"] < interval["estimate"] < interval["ci_high"]
    model_rows = stats[stats.subset_kind == "model"]
    assert set(model_rows["model"]) == {"m1", "m2"} and (model_rows["subset"] == "model=" + model_rows["model"]).all()


def test_what_cannot_be_computed_is_a_row_saying_why(graded_stats):
    stats, _, _ = graded_stats
    ordinal = stats[(stats.statistic == "krippendorff_alpha_ordinal") & (stats.dimension == "aligned")]
    assert len(ordinal) == 1 and ordinal["estimate"].isna().all()
    assert ordinal["method"].str.contains("101 levels").all()
    lone = stats[stats.dimension == "coherent"]
    assert set(lone["statistic"]) == set(GRADED) and lone["estimate"].isna().all()
    assert lone["method"].str.contains("only one judge").all()
