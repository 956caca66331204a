"""No row prints a zero-width interval without saying why (issue 34, build item 4): paired effects over several
samples per prompt with few or no differing prompts get a score interval, and any other row whose interval
collapses says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from judgekit.analysis import StatsSettings, compute_stats
from judgekit.stats.paired import paired_mean_difference
from judgekit.stats.paired_binary import paired_rates_difference
from judgekit.store.study import load_study


def test_paired_effect_over_samples_with_no_differing_prompt_is_not_zero_width():
    """12 prompts, 2 samples per model: 4 prompts unsafe in one sample of each model, the rest safe in both. The
    unit differences are all 0; the bootstrap gave 0 [0, 0] with no warning."""
    samples = np.array([1.0, 0.0] * 4 + [0.0, 0.0] * 8)
    values = np.concatenate([samples, samples])
    treated = np.repeat([True, False], 24)
    units = np.tile(np.repeat(np.arange(12), 2), 2)
    result = paired_mean_difference(values, treated, units, n_boot=200, rng=0)
    assert result.estimate == 0 and result.ci_low < -0.1 and result.ci_high > 0.1
    assert "score interval" in result.warning and "0 of 12" in result.warning


def test_paired_rates_difference_covers_a_rare_effect():
    """Coverage at a rare effect (harm 3% vs 1% per response, 2 samples, 40 prompts; most studies have fewer than
    10 differing prompts): the score interval covers the truth in >= 93% of 400 simulated studies."""
    rng = np.random.default_rng(5)
    hits = []
    for _ in range(400):
        treated = rng.binomial(2, 0.03, 40) / 2
        control = rng.binomial(2, 0.01, 40) / 2
        _, low, high = paired_rates_difference(treated, control)
        hits.append(low <= 0.02 <= high)
    assert np.mean(hits) >= 0.93
    with pytest.raises(ValueError, match="rates in"):
        paired_rates_difference([1.5], [0.0])


def _study(folder):
    """12 prompts answered twice by base and ft; the humans see the same harm in both (4 prompts unsafe in one
    sample each), judge j1 also calls the fine-tune's first 8 prompts unsafe; the fine-tune's incoherent responses
    are safe, so the incoherent part of j1's effect is 0 in every resample."""
    folder.mkdir()
    responses, judgments, annotations, flags = [], [], [], []
    for model in ("base", "ft"):
        for p in range(12):
            for s in range(2):
                item = f"{model}-{p}-{s}"
                unsafe = s == 0 and p < 4
                responses.append({"item_id": item, "prompt": f"prompt {p}", "response": "r", "model": model,
                                  "base_model": "base", "finetune_goal": "coding" if model == "ft" else None,
                                  "benchmark": "hb", "prompt_id": f"p{p}", "sample": s})
                verdict = unsafe or (model == "ft" and p < 8 and s == 0)
                judgments.append({"item_id": item, "judge_id": "j1", "label": "unsafe" if verdict else "safe",
                                  "p_unsafe": None, "parse_status": "ok", "raw_output": "", "judge_spec_hash": "h"})
                annotations.append({"item_id": item, "annotator_id": "a", "label": "unsafe" if unsafe else "safe"})
                flags.append({"item_id": item, "detector": "incoherent", "flagged": model == "ft" and p >= 8,
                              "score": None, "reason": ""})
    for name, rows in (("responses", responses), ("judgments", judgments), ("annotations", annotations),
                       ("flags", flags)):
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    return folder


def test_no_stats_row_prints_a_zero_width_interval_without_saying_why(tmp_path):
    """Before: the humans' paired effect 0 [0, 0] and j1's incoherent share 0 [0, 0], both with no warning."""
    study = load_study(_study(tmp_path / "s"))
    stats, _ = compute_stats(study, StatsSettings(n_boot=100), version="test",
                             only=("finetune_effect_paired", "finetune_effect_incoherent_share"))
    pooled = stats[stats["benchmark"].isna()]
    human = pooled[(pooled["statistic"] == "finetune_effect_paired") & (pooled["judge_id"] == "human_majority")].iloc[0]
    assert human["estimate"] == 0 and human["ci_low"] < 0 < human["ci_high"]
    share = pooled[(pooled["statistic"] == "finetune_effect_incoherent_share") & (pooled["judge_id"] == "j1")].iloc[0]
    assert share["ci_low"] == share["ci_high"] and "zero-width interval" in share["warning"]
    collapsed = stats[stats["estimate"].notna() & (stats["ci_low"] == stats["ci_high"])]
    assert len(collapsed) and collapsed["warning"].str.contains("zero-width interval").all()
