"""The study-level driver: numbers equal the pure functions on the same items, exclusions are counted and
explained, each row's interval reproduces from its own key, and the human ceiling is comparable with judges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from judgekit.analysis import StatsSettings, compute_stats, human_majority
from judgekit.errors import InputError
from judgekit.stats import agreement as ag
from judgekit.stats.calibration import expected_calibration_error
from judgekit.stats.classification import classification_metrics
from judgekit.store.study import load_study

N_PROMPTS = 40


def build_study(tmp_path: Path, *, seed: int = 0, judges: tuple[str, ...] = ("j-good", "j-bad")) -> Path:
    rng = np.random.default_rng(seed)
    rows, annotations, judgments, flags = [], [], [], []
    noise = {"j-good": 0.1, "j-bad": 0.35, "j-other": 0.2}
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
            for judge in ("j-good", "j-bad", "j-other"):
                p = float(np.clip(truth * 0.8 + 0.1 + rng.normal(0, noise[judge]), 0, 1))  # drawn for every judge: same data
                if judge not in judges:
                    continue
                failed = judge == "j-bad" and k % 9 == 4
                judgments.append({
                    "item_id": item, "judge_id": judge, "label": None if failed else ("unsafe" if p >= 0.5 else "safe"),
                    "p_unsafe": None if failed else p, "parse_status": "unparseable" if failed else "ok",
                    "raw_output": "", "judge_spec_hash": judge,
                })
    study = tmp_path / "study"
    study.mkdir(parents=True)
    for name, frame in (("responses", rows), ("annotations", annotations), ("judgments", judgments), ("flags", flags)):
        pd.DataFrame(frame).to_csv(study / f"{name}.csv", index=False)
    return study


@pytest.fixture(scope="module")
def study_and_stats(tmp_path_factory: pytest.TempPathFactory):
    study = load_study(build_study(tmp_path_factory.mktemp("study")))
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


def test_human_majority_ties_are_named_in_excluded_reason(study_and_stats) -> None:
    study, stats, _ = study_and_stats
    failed = int(np.isnan(codes(study, "j-bad")).sum())
    assert pick(stats, "accuracy", "j-good").excluded_reason == "human-majority tie: 2"
    # j-bad's failures on tied items count once, as ties; the rest as missing verdicts.
    reason = pick(stats, "accuracy", "j-bad").excluded_reason
    assert reason.startswith("human-majority tie: 2") and "no verdict or no reference" in reason
    assert pick(stats, "accuracy", "j-bad").n_excluded == 2 + failed
    # Calibration rows of the same judge count the same exclusions (they reported 0 with failed verdicts).
    for statistic in ("ece", "brier", "log_loss", "ece_equal_mass", "auroc"):
        row = pick(stats, statistic, "j-bad")
        assert row.n_excluded == 2 + failed and "no verdict or no reference" in row.excluded_reason, statistic


def test_failures_are_excluded_never_counted_as_safe(study_and_stats) -> None:
    study, stats, _ = study_and_stats
    failed = int((study.judgments.parse_status != "ok").sum())
    assert failed > 0
    rate = pick(stats, "harmful_rate", "j-bad", "none")
    verdicts = codes(study, "j-bad")
    assert rate.n_items == len(verdicts) - failed and rate.n_excluded == failed
    assert rate.estimate == pytest.approx(np.nanmean(verdicts))


def test_rates_get_the_clustered_wilson_interval_and_others_the_bootstrap(study_and_stats) -> None:
    _, stats, _ = study_and_stats
    for name in ("accuracy", "fpr", "fnr", "precision", "recall"):
        assert pick(stats, name, "j-good").method.startswith("clustered Wilson")
    assert pick(stats, "harmful_rate", "j-good", "none").method.startswith("clustered Wilson")
    assert pick(stats, "cohen_kappa", "j-good").method == "cluster bootstrap, bca"


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


def test_judges_are_scored_on_the_ceiling_items_against_the_same_references(study_and_stats) -> None:
    """The ceiling scores annotator k against the others' majority; the judge takes annotator k's place."""
    study, stats, _ = study_and_stats
    humans = study.annotations.pivot(index="item_id", columns="annotator_id", values="label").reindex(study.responses.item_id)
    ratings = humans.apply(lambda c: c.map({"unsafe": 1.0, "safe": 0.0})).to_numpy(dtype=float)
    verdicts = codes(study, "j-good")
    hits, pairs = 0, 0
    for k in range(3):
        others = np.delete(ratings, k, axis=1)
        count, unsafe = (~np.isnan(others)).sum(1), np.nansum(others, 1)
        majority = np.where(unsafe * 2 > count, 1.0, np.where(unsafe * 2 < count, 0.0, np.nan))
        scored = ~np.isnan(ratings[:, k]) & ~np.isnan(majority)
        hits += int((verdicts[scored] == majority[scored]).sum())
        pairs += int(scored.sum())
    row = pick(stats, "accuracy", "j-good", "majority_of_others", "ceiling_items")
    assert row.estimate == pytest.approx(hits / pairs) and row.n_items == pairs
    assert row.n_items == pick(stats, "accuracy", "human_ceiling", "majority_of_others").n_items
    assert row.subset_kind == "ceiling_items"


def test_adjudicated_labels_are_the_reference_not_a_rater(tmp_path: Path) -> None:
    path = build_study(tmp_path)
    annotations = pd.read_csv(path / "annotations.csv")
    final = annotations[annotations.annotator_id == "h0"].assign(annotator_id="final")
    pd.concat([annotations, final]).to_csv(path / "annotations.csv", index=False)
    (path / "study.json").write_text(json.dumps({"adjudicator": "final"}))
    study = load_study(path)
    stats, _ = compute_stats(study, StatsSettings(n_boot=20), version="t", only=("fleiss_kappa", "accuracy"))
    # The copy of h0 named "final" would inflate inter-annotator agreement if it were a rater.
    ratings = annotations.pivot(index="item_id", columns="annotator_id", values="label").reindex(study.responses.item_id)
    ratings = ratings.apply(lambda c: c.map({"unsafe": 1.0, "safe": 0.0})).to_numpy(dtype=float)
    assert pick(stats, "fleiss_kappa", "humans", "humans").estimate == pytest.approx(ag.fleiss_kappa(ratings))
    assert "final" not in set(stats.judge_id) and "final" not in set(stats.reference)
    reference = human_majority(study).to_numpy()
    np.testing.assert_array_equal(reference, ratings[:, 0])  # h0's labels, now adjudicated
    assert pick(stats, "accuracy", "j-good").excluded_reason == ""  # the adjudicator breaks the ties


def test_subsets_are_columns_and_exclusion_policy(tmp_path: Path, study_and_stats) -> None:
    study, stats, _ = study_and_stats
    combined = study.flags[study.flags.detector == "incoherent"]
    incoherent = combined.set_index("item_id")["flagged"].reindex(study.responses.item_id).to_numpy()
    inc = pick(stats, "harmful_rate", "j-good", "none", "incoherent")
    assert inc.n_items + inc.n_excluded == incoherent.sum() and inc.subset_kind == "coherence"
    by_group = pick(stats, "harmful_rate", "j-good", "none", "model=ft|benchmark=b1")
    assert (by_group.subset_kind, by_group.model, by_group.benchmark) == ("group", "ft", "b1")
    excluded, _ = compute_stats(study, StatsSettings(n_boot=50, incoherent="exclude"), version="t", only=("harmful_rate",))
    row = pick(excluded, "harmful_rate", "j-good", "none", "all")
    assert row.n_excluded == incoherent.sum() and row.estimate == pytest.approx(pick(stats, "harmful_rate", "j-good", "none", "coherent").estimate)
    assert "incoherent:exclude" in row.signature and row.excluded_reason == f"--incoherent exclude: {incoherent.sum()}"
    only, _ = compute_stats(study, StatsSettings(n_boot=50, incoherent="only"), version="t", only=("harmful_rate",))
    assert pick(only, "harmful_rate", "j-good", "none", "all").n_items == incoherent.sum()


def test_exclusion_policy_needs_flags(tmp_path: Path) -> None:
    path = build_study(tmp_path)
    (path / "flags.csv").unlink()
    with pytest.raises(InputError, match="needs the flags table"):
        compute_stats(load_study(path), StatsSettings(n_boot=10, incoherent="exclude"), version="t")


def test_finetune_effect_and_its_bootstrap_tail_share(study_and_stats) -> None:
    study, stats, _ = study_and_stats
    subset = "comparison=ft vs base|goal=coding|benchmark=all"
    verdicts = codes(study, "j-good")
    model = study.responses.model.to_numpy()
    effect = pick(stats, "finetune_effect", "j-good", "base_model", subset)
    assert effect.estimate == pytest.approx(np.nanmean(verdicts[model == "ft"]) - np.nanmean(verdicts[model == "base"]))
    assert (effect.model, effect.base_model, effect.finetune_goal) == ("ft", "base", "coding") and pd.isna(effect.benchmark)
    tail = pick(stats, "finetune_effect_bootstrap_tail_share", "j-good", "base_model", subset)
    p_value = pick(stats, "finetune_effect_p_value", "j-good", "base_model", subset)
    assert 0 <= tail.estimate <= 0.5 and 0 <= p_value.estimate <= 1
    assert tail.estimate == pytest.approx(p_value.estimate / 2, abs=0.01)  # what it is: half the p-value
    assert not stats.statistic.str.contains("sign_flip").any()
    for benchmark in ("b1", "b2"):
        assert pick(stats, "finetune_effect", "human_majority", "base_model",
                    f"comparison=ft vs base|goal=coding|benchmark={benchmark}").benchmark == benchmark


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


def test_ece_noise_floor_is_two_point_values_not_an_interval(study_and_stats) -> None:
    _, stats, _ = study_and_stats
    mean, p95 = pick(stats, "ece_noise_floor", "j-good"), pick(stats, "ece_noise_floor_p95", "j-good")
    assert np.isnan(mean.ci_low) and np.isnan(mean.ci_high) and np.isnan(p95.ci_high)
    assert 0 < mean.estimate < p95.estimate and "boot:200" in mean.signature


def test_bias_audit_tests_and_variance_components(study_and_stats) -> None:
    _, stats, _ = study_and_stats
    assert set(stats[stats.statistic == "error_odds_ratio"]["subset"]) >= {"term=incoherent", "term=log_length"}
    mcnemar = pick(stats, "mcnemar_p_value", "j-bad", "j-good")  # pairs follow the sorted judge ids
    assert 0 <= mcnemar.estimate <= 1 and "clustered McNemar" in mcnemar.method
    holm = pick(stats, "mcnemar_p_value_holm", "j-bad", "j-good")
    assert holm.estimate == pytest.approx(mcnemar.estimate)  # a family of one pair
    shares = stats[stats.statistic == "variance_share"]
    components = stats[stats.statistic == "variance_component"]
    assert shares["estimate"].sum() == pytest.approx(1.0)
    assert set(shares.subset_value) == set(components.subset_value) >= {"judge_id", "finetune_goal", "prompt", "residual"}
    assert "model (same partition of the verdicts as finetune_goal)" in components["method"].iloc[0]
    assert (components["estimate"] >= 0).all() and "Henderson" in components["method"].iloc[0]
    # The resamples the variance rows used, not n_boot.
    assert components["signature"].str.contains("boot:200").all()
    assert {"length=Q1", "refusal_marker=no", "model=ft"} <= set(stats[stats.statistic == "accuracy"]["subset"])


def test_every_row_has_a_signature_and_a_method(study_and_stats) -> None:
    _, stats, _ = study_and_stats
    assert stats["signature"].str.contains("seed:1").all()
    bootstrapped = stats["method"].str.startswith("cluster bootstrap")
    assert stats.loc[bootstrapped, "signature"].str.contains("boot:200").all()
    assert stats.loc[stats["method"].str.startswith("clustered Wilson"), "signature"].str.contains("boot:0").all()
    assert (stats["method"] != "").all()
    assert ((stats["ci_low"] <= stats["estimate"] + 1e-9) | stats["ci_low"].isna()).all()


def test_small_subsets_warn(study_and_stats) -> None:
    _, stats, _ = study_and_stats
    # 20 behaviours: the bootstrap rows warn, the clustered Wilson rows (which hold their level there) do not.
    assert pick(stats, "cohen_kappa", "j-good").warning == "few clusters (n=20)"
    assert pick(stats, "accuracy", "j-good").warning == ""
    assert pick(stats, "mcc", "j-good", subset="humans=split").warning.startswith("few clusters (n=")
    assert "few positives" in pick(stats, "fnr", "j-good", subset="incoherent").warning


def test_each_interval_reproduces_from_its_own_row(tmp_path: Path) -> None:
    """Adding an unrelated judge changes no interval of a row that does not involve it."""
    settings = StatsSettings(n_boot=100, seed=3)
    two, _ = compute_stats(load_study(build_study(tmp_path / "a")), settings, version="t")
    three, _ = compute_stats(load_study(build_study(tmp_path / "b", judges=("j-good", "j-bad", "j-other"))), settings, version="t")
    key = ["statistic", "judge_id", "reference", "subset"]
    joined = two.merge(three, on=key, suffixes=("_two", "_three"))
    pooled = joined.judge_id.isin(["judges", "all"]) | joined.statistic.str.contains("mcnemar|cochran")
    unchanged = joined[~pooled]
    assert len(unchanged) > 300
    for column in ("estimate", "ci_low", "ci_high"):
        np.testing.assert_array_equal(unchanged[f"{column}_two"], unchanged[f"{column}_three"])


def test_only_computes_the_named_statistics(study_and_stats) -> None:
    study, _, _ = study_and_stats
    stats, _ = compute_stats(study, StatsSettings(n_boot=20), version="t", only=("fnr", "variance_share"))
    assert set(stats.statistic) == {"fnr", "variance_share"}
    with pytest.raises(InputError, match="unknown statistic 'kappa'"):
        compute_stats(study, StatsSettings(n_boot=20), version="t", only=("kappa",))


def test_cli_only_and_progress(tmp_path: Path) -> None:
    path = build_study(tmp_path)
    result = run_cli("stats", path, "--out", tmp_path / "out", "--only", "accuracy,harmful_rate", "--n-boot", "20")
    assert result.returncode == 0, result.stderr
    stats = pd.read_parquet(tmp_path / "out" / "stats.parquet")
    assert set(stats.statistic) == {"accuracy", "harmful_rate"}
    bad = run_cli("stats", path, "--out", tmp_path / "bad", "--only", "nope")
    assert bad.returncode == 2 and "unknown statistic 'nope'" in bad.stderr


def test_accuracy_gap_is_coherent_minus_incoherent_accuracy_with_one_interval(study_and_stats) -> None:
    study, stats, _ = study_and_stats
    reference, verdicts = human_majority(study).to_numpy(), codes(study, "j-good")
    flags = study.flags[study.flags.detector == "incoherent"].set_index("item_id")["flagged"].reindex(study.responses.item_id)
    incoherent = flags.to_numpy(dtype=bool)
    scored = ~np.isnan(reference) & ~np.isnan(verdicts)
    right = verdicts == reference
    by_hand = right[scored & ~incoherent].mean() - right[scored & incoherent].mean()
    gap = pick(stats, "accuracy_gap", "j-good", subset="coherent-incoherent")
    assert gap.estimate == pytest.approx(by_hand)
    assert gap.subset_kind == "coherence_gap" and pd.isna(gap.subset_value)
    assert gap.ci_low < gap.estimate < gap.ci_high and gap.method.startswith("cluster bootstrap")
    assert gap.n_items == int(scored.sum())
    # 12 incoherent items (k % 7 == 0) in 40 behaviours: the warning names the small side.
    assert "few incoherent items (n=" in gap.warning and "few clusters with incoherent items" in gap.warning
    excluded, _ = compute_stats(study, StatsSettings(n_boot=20, incoherent="exclude"), version="t", only=("accuracy_gap",))
    assert excluded.empty  # one side is empty under --incoherent exclude: no row rather than NaN


def test_brier_terms_are_rows_that_add_up_to_the_brier_score(study_and_stats) -> None:
    from judgekit.stats.calibration import brier_decomposition

    study, stats, _ = study_and_stats
    reference = human_majority(study).to_numpy()
    p = study.judgments[study.judgments.judge_id == "j-bad"].set_index("item_id")["p_unsafe"].reindex(study.responses.item_id).to_numpy()
    rows = {name: pick(stats, f"brier_{name}", "j-bad").estimate
            for name in ("reliability", "resolution", "uncertainty", "within_bin_variance", "within_bin_covariance")}
    assert rows == pytest.approx({k: v for k, v in brier_decomposition(reference, p, n_bins=10).items() if k != "brier"}, abs=1e-12)
    rebuilt = (rows["reliability"] - rows["resolution"] + rows["uncertainty"] + rows["within_bin_variance"]
               - 2 * rows["within_bin_covariance"])
    assert rebuilt == pytest.approx(pick(stats, "brier", "j-bad").estimate, abs=1e-12)
    assert rows["within_bin_variance"] > 0  # continuous probabilities: the two terms are not zero here


def test_progress_bar_with_eta_on_a_terminal(study_and_stats, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    study, _, _ = study_and_stats
    for progress, expect_bar in ((True, True), (False, False)):
        terminal = Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        compute_stats(study, StatsSettings(n_boot=20, progress=progress), version="t", only=("accuracy", "variance_share"))
        shown = terminal.getvalue()
        # "stats: 100%|...| 2/2 [00:01<00:00, 1.52block/s, variance]": elapsed<remaining, and the block running.
        assert ("stats: 100%" in shown and "<" in shown and "variance]" in shown) is expect_bar, shown


def test_auroc_of_a_subset_equals_sklearn_on_its_items(study_and_stats) -> None:
    """Scores outside the subset are not among its levels; they once switched every item to rounded levels,
    which put 0.12345-like scores on the wrong level."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    study, stats, _ = study_and_stats
    reference = human_majority(study).to_numpy()
    p = study.judgments[study.judgments.judge_id == "j-good"].set_index("item_id")["p_unsafe"].reindex(study.responses.item_id).to_numpy()
    incoherent = study.flags[study.flags.detector == "incoherent"].set_index("item_id")["flagged"].reindex(
        study.responses.item_id).to_numpy(dtype=bool)
    for subset, mask in (("all", np.ones(len(p), dtype=bool)), ("coherent", ~incoherent), ("incoherent", incoherent)):
        used = mask & ~np.isnan(p) & ~np.isnan(reference)
        assert pick(stats, "auroc", "j-good", subset=subset).estimate == pytest.approx(roc_auc_score(reference[used], p[used]))
        assert pick(stats, "auprc", "j-good", subset=subset).estimate == pytest.approx(
            average_precision_score(reference[used], p[used]))


def test_degenerate_rows_say_why(tmp_path: Path) -> None:
    """A judge that calls everything safe: kappa 0 [0, 0] and AUROC 0.5 [0.5, 0.5] were silent and precision NaN had
    an empty warning; every such row now says why, at the stats layer."""
    path = build_study(tmp_path, judges=("j-good",))
    judgments = pd.read_csv(path / "judgments.csv")
    constant = judgments.assign(judge_id="j-const", label="safe", p_unsafe=0.1, parse_status="ok", judge_spec_hash="c")
    pd.concat([judgments, constant]).to_csv(path / "judgments.csv", index=False)
    stats, _ = compute_stats(load_study(path), StatsSettings(n_boot=50, seed=0), version="t",
                             only=("cohen_kappa", "auroc", "precision"))
    kappa, auroc, precision = (pick(stats, name, "j-const") for name in ("cohen_kappa", "auroc", "precision"))
    assert kappa.estimate == 0 and kappa.ci_low == kappa.ci_high and "zero-width interval" in kappa.warning
    assert auroc.estimate == 0.5 and "zero-width interval" in auroc.warning
    assert np.isnan(precision.estimate) and "undefined: the judge called no item unsafe" in precision.warning
    assert "zero-width" not in pick(stats, "cohen_kappa", "j-good").warning


def test_bias_regression_with_every_term_constant_writes_a_row(tmp_path: Path) -> None:
    """One model, responses of one length, no refusal marker, no flags: the regression has no term left. `stats`
    exited 1 (PatsyError on 'error ~ '); now a row says why."""
    path = build_study(tmp_path, judges=("j-good",))
    responses = pd.read_csv(path / "responses.csv")
    responses = responses.assign(response="same text", model="base", base_model=None, finetune_goal=None)
    responses.to_csv(path / "responses.csv", index=False)
    (path / "flags.csv").unlink()
    stats, _ = compute_stats(load_study(path), StatsSettings(n_boot=50, seed=0), version="t", only=("error_odds_ratio",))
    row = stats[stats.statistic == "error_odds_ratio"].iloc[0]
    assert np.isnan(row.estimate) and "constant" in row.warning


def test_unpaired_finetune_effect_warns_when_prompt_sets_differ(tmp_path: Path) -> None:
    path = build_study(tmp_path, judges=("j-good",))
    dropped = [f"base-{k}" for k in range(10)]
    for name in ("responses", "annotations", "judgments", "flags"):
        table = pd.read_csv(path / f"{name}.csv")
        table[~table.item_id.isin(dropped)].to_csv(path / f"{name}.csv", index=False)
    stats, _ = compute_stats(load_study(path), StatsSettings(n_boot=50, seed=0), version="t", only=("finetune_effect",))
    row = stats[(stats.statistic == "finetune_effect") & (stats.judge_id == "j-good") & stats.subset.str.endswith("all")]
    assert "different prompt sets (30 of 40 fine-tune and 30 base prompts shared)" in row.iloc[0].warning
    same, _ = compute_stats(load_study(build_study(tmp_path / "same", judges=("j-good",))),
                            StatsSettings(n_boot=50, seed=0), version="t", only=("finetune_effect",))
    assert not same.warning.str.contains("different prompt sets").any()
