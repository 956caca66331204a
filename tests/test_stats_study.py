"""The study-level driver: numbers equal the pure functions on the same items, exclusions are counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from judgekit.errors import InputError
from judgekit.stats import agreement as ag
from judgekit.stats.calibration import expected_calibration_error
from judgekit.stats.classification import classification_metrics
from judgekit.stats.study import StatsSettings, compute_stats, human_majority
from judgekit.study import load_study

N_PROMPTS = 40


def build_study(tmp_path: Path, *, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows, annotations, judgments, flags = [], [], [], []
    for model, base, goal, harm in (("base", "base", None, 0.2), ("ft", "base", "coding", 0.45)):
        for k in range(N_PROMPTS):
            item = f"{model}-{k}"
            truth = rng.random() < harm
            rows.append({"item_id": item, "prompt": f"prompt {k}", "response": f"response {k} " * (1 + k % 5),
                         "model": model, "base_model": base, "finetune_goal": goal, "benchmark": "b1" if k < 20 else "b2",
                         "behavior_id": f"beh-{k // 2}"})
            labels = [truth ^ (rng.random() < 0.1) for _ in range(3)]
            if k == 0:  # two annotators only, disagreeing: no majority
                labels = [True, False]
            for a, label in enumerate(labels):
                annotations.append({"item_id": item, "annotator_id": f"h{a}", "label": "unsafe" if label else "safe"})
            incoherent = k % 7 == 0
            flags.append({"item_id": item, "detector": "incoherent", "flagged": incoherent, "score": float(incoherent), "reason": ""})
            flags.append({"item_id": item, "detector": "repetition", "flagged": incoherent, "score": 0.9 if incoherent else 0.1, "reason": ""})
            for judge, noise in (("j-good", 0.1), ("j-bad", 0.35)):
                p = float(np.clip(truth * 0.8 + 0.1 + rng.normal(0, noise), 0, 1))
                failed = judge == "j-bad" and k % 9 == 4
                judgments.append({
                    "item_id": item, "judge_id": judge, "label": None if failed else ("unsafe" if p >= 0.5 else "safe"),
                    "p_unsafe": None if failed else p, "parse_status": "unparseable" if failed else "ok",
                    "raw_output": "", "judge_spec_hash": judge,
                })
    study = tmp_path / "study"
    study.mkdir()
    for name, frame in (("responses", rows), ("annotations", annotations), ("judgments", judgments), ("flags", flags)):
        pd.DataFrame(frame).to_csv(study / f"{name}.csv", index=False)
    return study


@pytest.fixture
def study_and_stats(tmp_path: Path):
    study = load_study(build_study(tmp_path))
    stats, reliability = compute_stats(study, StatsSettings(n_boot=200, seed=1), version="test")
    return study, stats, reliability


def pick(stats: pd.DataFrame, statistic: str, judge_id: str, reference: str = "human_majority", subset: str = "all") -> pd.Series:
    rows = stats[(stats.statistic == statistic) & (stats.judge_id == judge_id) & (stats.reference == reference) & (stats.subset == subset)]
    assert len(rows) == 1, (statistic, judge_id, reference, subset, len(rows))
    return rows.iloc[0]


def codes(study, judge: str) -> np.ndarray:
    j = study.judgments[study.judgments.judge_id == judge].set_index("item_id")["label"].reindex(study.responses.item_id)
    return j.map({"unsafe": 1.0, "safe": 0.0}).to_numpy(dtype=float)


def test_judge_metrics_equal_the_pure_functions_and_count_exclusions(study_and_stats) -> None:
    study, stats, _ = study_and_stats
    reference = human_majority(study).to_numpy()
    assert np.isnan(reference[0]) and np.isnan(reference[N_PROMPTS])  # the 1-1 ties
    verdicts = codes(study, "j-bad")
    expected = classification_metrics(reference, verdicts)
    usable = ~(np.isnan(reference) | np.isnan(verdicts))
    for name in ("accuracy", "recall", "fpr", "mcc"):
        row = pick(stats, name, "j-bad")
        assert row.estimate == pytest.approx(expected[name])
        assert row.n_items == usable.sum() and row.n_excluded == len(reference) - usable.sum()
        assert row.ci_low <= row.estimate <= row.ci_high
    kappa = pick(stats, "cohen_kappa", "j-bad")
    assert kappa.estimate == pytest.approx(ag.cohen_kappa(np.column_stack([verdicts, reference])))


def test_failures_are_excluded_never_counted_as_safe(study_and_stats) -> None:
    study, stats, _ = study_and_stats
    failed = int((study.judgments.parse_status != "ok").sum())
    assert failed > 0
    rate = pick(stats, "harmful_rate", "j-bad", "none")
    verdicts = codes(study, "j-bad")
    assert rate.n_items == len(verdicts) - failed and rate.n_excluded == failed
    assert rate.estimate == pytest.approx(np.nanmean(verdicts))


def test_inter_human_statistics_and_ceiling(study_and_stats) -> None:
    study, stats, _ = study_and_stats
    humans = study.annotations.pivot(index="item_id", columns="annotator_id", values="label").reindex(study.responses.item_id)
    ratings = humans.apply(lambda c: c.map({"unsafe": 1.0, "safe": 0.0})).to_numpy(dtype=float)
    assert pick(stats, "fleiss_kappa", "humans", "humans").estimate == pytest.approx(ag.fleiss_kappa(ratings))
    assert pick(stats, "krippendorff_alpha", "humans", "humans").estimate == pytest.approx(ag.krippendorff_alpha(ratings))
    assert pick(stats, "gwet_ac1", "humans", "humans").estimate == pytest.approx(ag.gwet_ac1(ratings, labels=[0, 1]))
    # h0 against the majority of h1 and h2 (ties between two others give no reference).
    others = ratings[:, 1:]
    majority = np.where(np.nansum(others, 1) * 2 > (~np.isnan(others)).sum(1), 1.0,
                        np.where(np.nansum(others, 1) * 2 < (~np.isnan(others)).sum(1), 0.0, np.nan))
    both = ~(np.isnan(majority) | np.isnan(ratings[:, 0]))
    h0 = pick(stats, "accuracy", "h0", "majority_of_others")
    assert h0.estimate == pytest.approx(np.mean(ratings[both, 0] == majority[both])) and h0.n_items == both.sum()
    assert pick(stats, "accuracy", "human_ceiling", "majority_of_others").n_items > h0.n_items


def test_subsets_and_exclusion_policy(tmp_path: Path) -> None:
    study = load_study(build_study(tmp_path))
    combined = study.flags[study.flags.detector == "incoherent"]
    incoherent = combined.set_index("item_id")["flagged"].reindex(study.responses.item_id).to_numpy()
    stats, _ = compute_stats(study, StatsSettings(n_boot=50), version="t")
    inc = pick(stats, "harmful_rate", "j-good", "none", "incoherent")
    assert inc.n_items + inc.n_excluded == incoherent.sum()
    excluded, _ = compute_stats(study, StatsSettings(n_boot=50, incoherent="exclude"), version="t")
    row = pick(excluded, "harmful_rate", "j-good", "none", "all")
    assert row.n_excluded == incoherent.sum() and row.estimate == pytest.approx(pick(stats, "harmful_rate", "j-good", "none", "coherent").estimate)
    assert "incoherent:exclude" in row.signature
    only, _ = compute_stats(study, StatsSettings(n_boot=50, incoherent="only"), version="t")
    assert pick(only, "harmful_rate", "j-good", "none", "all").n_items == incoherent.sum()


def test_exclusion_policy_needs_flags(tmp_path: Path) -> None:
    path = build_study(tmp_path)
    (path / "flags.csv").unlink()
    with pytest.raises(InputError, match="needs the flags table"):
        compute_stats(load_study(path), StatsSettings(n_boot=10, incoherent="exclude"), version="t")


def test_finetune_effect_is_the_rate_difference(study_and_stats) -> None:
    study, stats, _ = study_and_stats
    subset = "comparison=ft vs base|goal=coding|benchmark=all"
    verdicts = codes(study, "j-good")
    model = study.responses.model.to_numpy()
    effect = pick(stats, "finetune_effect", "j-good", "base_model", subset)
    assert effect.estimate == pytest.approx(np.nanmean(verdicts[model == "ft"]) - np.nanmean(verdicts[model == "base"]))
    flip = pick(stats, "finetune_effect_sign_flip_probability", "j-good", "base_model", subset)
    p_value = pick(stats, "finetune_effect_p_value", "j-good", "base_model", subset)
    assert 0 <= flip.estimate <= 0.5 and 0 <= p_value.estimate <= 1
    for benchmark in ("b1", "b2"):
        pick(stats, "finetune_effect", "human_majority", "base_model", f"comparison=ft vs base|goal=coding|benchmark={benchmark}")


def test_calibration_rows_and_reliability_table(study_and_stats) -> None:
    study, stats, reliability = study_and_stats
    reference = human_majority(study).to_numpy()
    p = study.judgments[study.judgments.judge_id == "j-good"].set_index("item_id")["p_unsafe"].reindex(study.responses.item_id).to_numpy()
    assert pick(stats, "ece", "j-good").estimate == pytest.approx(expected_calibration_error(reference, p, n_bins=10))
    for name in ("brier", "log_loss", "auroc", "auprc", "mce", "ece_equal_mass", "brier_reliability"):
        pick(stats, name, "j-good")
    for method in ("platt", "temperature", "isotonic"):
        pick(stats, "ece", "j-good", subset=f"recalibrated={method}")
    curve = reliability[(reliability.judge_id == "j-good") & (reliability.subset == "all")]
    assert len(curve) == 10 and curve["count"].sum() == pick(stats, "ece", "j-good").n_items


def test_bias_audit_and_variance_rows(study_and_stats) -> None:
    _, stats, _ = study_and_stats
    assert set(stats[stats.statistic == "error_odds_ratio"]["subset"]) >= {"term=incoherent", "term=log_length"}
    mcnemar = pick(stats, "mcnemar_p_value", "j-bad", "j-good")  # pairs follow the sorted judge ids
    assert 0 <= mcnemar.estimate <= 1 and "McNemar" in mcnemar.method
    shares = stats[stats.statistic == "variance_share"]
    assert shares["estimate"].sum() == pytest.approx(1.0)
    assert "factor=residual" in set(shares["subset"])
    assert {"length=Q1", "refusal_marker=no", "model=ft"} <= set(stats[stats.statistic == "accuracy"]["subset"])


def test_every_row_has_a_signature_and_a_method(study_and_stats) -> None:
    _, stats, _ = study_and_stats
    assert stats["signature"].str.contains("seed:1").all() and stats["signature"].str.contains("boot:200").all()
    assert (stats["method"] != "").all()
    assert ((stats["ci_low"] <= stats["estimate"] + 1e-9) | stats["ci_low"].isna()).all()
