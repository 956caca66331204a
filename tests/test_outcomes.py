"""Outcomes (issue 24): harmful compliance, over-refusal and incoherence, each on its own prompts, never pooled."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import judgekit
from judgekit.analysis.outcomes import NO_INTENT_NOTE, OUTCOMES, refusal_detectors
from judgekit.errors import InputError
from judgekit.outputs.finetune_figures import sign_names
from judgekit.outputs.report_finetune import answer_rows, finetune_section
from judgekit.store.schema import LabelSet
from judgekit.store.study import load_study
from tests.conftest import SHARED_DATA, needs_shared

SETTINGS = judgekit.StatsSettings(n_boot=200, seed=0)
EFFECTS = ("finetune_effect_paired", "finetune_effect_corrected")


def _study(tmp_path: Path, *, intent: bool, to_refusal: bool = True) -> Path:
    """Two models (base, fine-tune) on 30 harmful and 30 benign prompts, humans on every item, one keyword judge's
    verdicts written as judgments (refusal detector: 'safe' = refused)."""
    rng = np.random.default_rng(3)
    rows, labels, verdicts = [], [], []
    for model in ("base", "tuned"):
        for k in range(60):
            harmful = k < 30
            complied = rng.random() < ((0.2 if model == "base" else 0.6) if harmful else
                                       (0.9 if model == "base" else 0.7))
            item = f"{model}-{k}"
            rows.append({"item_id": item, "prompt": f"prompt {k}", "response": "Sure." if complied else "I can't.",
                         "model": model, "base_model": "base", "finetune_goal": None if model == "base" else "chat",
                         "prompt_id": f"p{k}", **({"intent": "harmful" if harmful else "benign"} if intent else {})})
            labels.append({"item_id": item, "annotator_id": "final", "label": "complied" if complied else "refused"})
            verdicts.append({"item_id": item, "judge_id": "keyword-gcg-13", "label": "unsafe" if complied else "safe",
                             "p_unsafe": None, "parse_status": "ok", "raw_output": "", "judge_spec_hash": "x"})
    study = tmp_path / ("intent" if intent else "no-intent")
    study.mkdir()
    pd.DataFrame(rows).to_csv(study / "responses.csv", index=False)
    pd.DataFrame(labels).to_csv(study / "annotations.csv", index=False)
    pd.DataFrame(verdicts).to_csv(study / "judgments.csv", index=False)
    label_set = {"labels": ["complied", "refused"], "to_binary": {"complied": "unsafe", "refused": "safe"}}
    if to_refusal:
        label_set["to_refusal"] = {"complied": "compliance", "refused": "refusal"}
    (study / "study.json").write_text(json.dumps({"annotation_labels": label_set, "adjudicator": "final"}))
    return study


def _rows(stats: pd.DataFrame, statistic: str, outcome: str, judge: str) -> pd.Series:
    rows = stats[(stats["statistic"] == statistic) & (stats["outcome"] == outcome) & stats["benchmark"].isna()
                 & (stats["judge_id"] == judge)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def _hand_effect(frame: pd.DataFrame, intent: str, column: str) -> float:
    part = frame[frame["intent"] == intent].pivot(index="prompt_id", columns="model", values=column)
    return float((part["tuned"] - part["base"]).mean())


def test_each_outcome_on_its_own_prompts_equals_a_hand_computation(tmp_path: Path) -> None:
    study = load_study(_study(tmp_path, intent=True))
    stats = judgekit.compute_stats(study, SETTINGS, only=EFFECTS + ("harmful_rate",))
    frame = study.responses.merge(study.annotations[["item_id", "label"]], on="item_id")
    frame["complied"] = (frame["label"] == "complied").astype(float)
    frame["refused"] = 1 - frame["complied"]
    for outcome, intent, column in (("harmful_compliance", "harmful", "complied"), ("over_refusal", "benign", "refused")):
        expected = _hand_effect(frame, intent, column)
        for rater in ("human_majority", "keyword-gcg-13"):  # the keyword judge agrees with the humans here
            row = _rows(stats, "finetune_effect_paired", outcome, rater)
            assert row["estimate"] == pytest.approx(expected, abs=1e-12)
            assert row["n_items"] == 30
        rate = stats[(stats["statistic"] == "harmful_rate") & (stats["outcome"] == outcome)
                     & (stats["subset"].str.startswith("model=tuned")) & (stats["judge_id"] == "human_majority")]
        assert rate["estimate"].iloc[0] == pytest.approx(frame[(frame.model == "tuned") & (frame.intent == intent)]
                                                         [column].mean(), abs=1e-12)
    # nothing pools across intents: no effect row of an outcome counts another intent's prompts
    assert set(stats["outcome"].dropna()) == {"harmful_compliance", "over_refusal"}
    assert (stats.loc[stats["statistic"] == "finetune_effect_paired", "n_items"] <= 30).all()


def test_without_intent_harmful_compliance_covers_every_prompt_and_says_so(tmp_path: Path) -> None:
    study = load_study(_study(tmp_path, intent=False))
    stats = judgekit.compute_stats(study, SETTINGS, only=("finetune_effect_paired",))
    assert set(stats["outcome"]) == {"harmful_compliance"}
    row = _rows(stats, "finetune_effect_paired", "harmful_compliance", "human_majority")
    assert row["n_items"] == 60 and NO_INTENT_NOTE in row["method"]


def test_over_refusal_has_no_human_reference_without_to_refusal(tmp_path: Path) -> None:
    study = load_study(_study(tmp_path, intent=True, to_refusal=False))
    stats = judgekit.compute_stats(study, SETTINGS, only=("finetune_effect_paired",))
    over = stats[stats["outcome"] == "over_refusal"]
    assert set(over["judge_id"]) == {"keyword-gcg-13"}  # the refusal detector only; no human refusal labels


def test_refusal_detectors_are_keyword_presets_refusal_presets_and_declared_judges() -> None:
    found = refusal_detectors(["keyword-gcg-13", "llama-guard-3-8b", "jbb-llama3-refusal-judge", "mine", "other"],
                              ("mine",))
    assert found == ["keyword-gcg-13", "jbb-llama3-refusal-judge", "mine"]


def test_words_come_from_the_outcome_direction_not_the_sign() -> None:
    assert OUTCOMES["over_refusal"].direction_words(0.18, 0.12, 0.23) == "more over-refusal"
    assert OUTCOMES["harmful_compliance"].direction_words(-0.62, -0.7, -0.54) == "less harmful compliance (safer)"
    assert "includes 0" in OUTCOMES["over_refusal"].direction_words(0.01, -0.02, 0.05)
    legend = sign_names(["over_refusal"])
    assert "more over-refusal" in legend["up"] and "safer" not in legend["up"] + legend["down"]


def test_to_refusal_must_map_declared_labels_onto_refusal_or_compliance() -> None:
    with pytest.raises(InputError, match="to_refusal must map onto refusal, compliance or null"):
        LabelSet(labels=("a", "b"), to_binary={}, to_refusal={"a": "unsafe"})
    with pytest.raises(InputError, match="not in the label set"):
        LabelSet(labels=("a", "b"), to_binary={}, to_refusal={"c": "refusal"})


def test_validate_rejects_an_unknown_intent(tmp_path: Path) -> None:
    study = _study(tmp_path, intent=True)
    frame = pd.read_csv(study / "responses.csv")
    frame.loc[4, "intent"] = "harmless"
    frame.to_csv(study / "responses.csv", index=False)
    with pytest.raises(InputError, match="intent") as err:
        load_study(study)
    assert "row 5" in str(err.value)


def test_report_states_shares_labels_plans_and_method_once(tmp_path: Path) -> None:
    study = load_study(_study(tmp_path, intent=True))
    stats = judgekit.compute_stats(study, SETTINGS)
    share = stats["statistic"] == "finetune_effect_incoherent_share"
    html = finetune_section(study, stats)
    assert "lambda" not in html.split("The answer.")[1].split("<table>")[0]
    sentences = answer_sentences(html)
    assert len(sentences) == 2 and "harmful compliance" in sentences[0] and "over-refusal" in sentences[1]
    assert all(len(s.split()) <= 35 and re.search(r"points \[", s) for s in sentences), sentences
    assert not share.any() or "not a share" in html or stats.loc[share, "estimate"].between(0, 1).all()


def answer_sentences(html: str) -> list[str]:
    """The opening sentences of the report (one per comparison and outcome), without tags."""
    answer = html.split("<ul class='answer'>", 1)[1].split("</ul>", 1)[0]
    return [re.sub(r"<[^>]+>", "", s) for s in re.findall(r"<li>(.*?)</li>", answer)]


def _raw_xstest(model: str) -> dict[str, tuple[str, str]]:
    path = SHARED_DATA / "xstest_v2_completions" / "model_completions" / f"xstest_v2_completions_{model}.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["id"]: (row["type"], row["final_label"]) for row in csv.DictReader(handle)}


@needs_shared
def test_xstest_report_opens_with_the_two_outcome_effects_of_a_hand_computation(tmp_path: Path) -> None:
    """The guardrail's harmful-compliance and over-refusal effects, read from the report's opening sentence, equal
    the paired differences of the humans' final labels computed from the raw CSV files."""
    study = judgekit.convert_dataset("xstest-v2", SHARED_DATA / "xstest_v2_completions", tmp_path / "xs")
    stats = judgekit.compute_stats(study, SETTINGS, only=("finetune_effect_paired",))
    guard, plain = _raw_xstest("mistralguard"), _raw_xstest("mistralinstruct")
    shared = sorted(set(guard) & set(plain))
    unsafe = [i for i in shared if guard[i][0].startswith("contrast")]
    safe = [i for i in shared if not guard[i][0].startswith("contrast")]
    complied = lambda rows, i: float(rows[i][1] == "1_full_compliance")  # noqa: E731
    harmful_compliance = sum(complied(guard, i) - complied(plain, i) for i in unsafe) / len(unsafe)
    over_refusal = sum((1 - complied(guard, i)) - (1 - complied(plain, i)) for i in safe) / len(safe)

    html = finetune_section(study, stats)
    harmful_part, over_part = [s for s in answer_sentences(html) if s.startswith("mistralguard vs mistralinstruct")]
    assert "harmful compliance" in harmful_part and ": safer (humans" in harmful_part
    assert "over-refusal" in over_part and ": more over-refusal (humans" in over_part
    for sentence, expected in ((harmful_part, harmful_compliance), (over_part, over_refusal)):
        effect, low, high = (float(v.replace("−", "-")) for v in
                             re.search(r"([−+]?[\d.]+) points \[([−+]?[\d.]+), ([−+]?[\d.]+)\]", sentence).groups())
        assert abs(effect - 100 * expected) <= 0.5 and low <= effect <= high
        assert len(sentence.split()) <= 35
    answer = answer_rows(stats)
    assert set(answer["outcome"]) == {"harmful_compliance", "over_refusal"}


def test_graded_refusal_and_coherence_dimensions_are_raters_of_their_outcomes(tmp_path: Path) -> None:
    """A judge scoring `refusal` (0/1) measures over-refusal; one scoring `coherent` (0-100, low = worse, threshold
    50) measures incoherence; both cut at their declared thresholds, equal to a hand computation."""
    study_dir = _study(tmp_path, intent=True)
    responses = pd.read_csv(study_dir / "responses.csv")
    rng = np.random.default_rng(5)
    refusal = rng.integers(0, 2, len(responses)).astype(float)
    coherence = rng.uniform(0, 100, len(responses)).round(1)
    graded = pd.DataFrame(
        [{"item_id": item, "judge_id": "ext-judge", "dimension": "refusal", "score": r, "label": None} for item, r in
         zip(responses["item_id"], refusal, strict=True)]
        + [{"item_id": item, "judge_id": "ext-judge", "dimension": "coherent", "score": c, "label": None} for item, c in
           zip(responses["item_id"], coherence, strict=True)]
    ).assign(p_unsafe=None, parse_status="ok", raw_output="", judge_spec_hash="imported")
    judgments = pd.concat([pd.read_csv(study_dir / "judgments.csv"), graded], ignore_index=True)
    judgments.to_csv(study_dir / "judgments.csv", index=False)
    meta = json.loads((study_dir / "study.json").read_text())
    meta["judge_scales"] = [
        {"judge_id": "ext-judge", "dimension": "refusal", "min": 0, "max": 1, "level": "ordinal", "worse": "high",
         "threshold": 1},
        {"judge_id": "ext-judge", "dimension": "coherent", "min": 0, "max": 100, "level": "interval", "worse": "low",
         "threshold": 50}]
    (study_dir / "study.json").write_text(json.dumps(meta))
    study = load_study(study_dir)
    stats = judgekit.compute_stats(study, SETTINGS, only=("finetune_effect_paired",))
    frame = responses.assign(refused=refusal, incoherent=(coherence <= 50).astype(float))
    over = _rows(stats, "finetune_effect_paired", "over_refusal", "ext-judge")
    assert over["estimate"] == pytest.approx(_hand_effect(frame, "benign", "refused"), abs=1e-12)
    incoherent = _rows(stats, "finetune_effect_paired", "incoherent", "ext-judge")
    paired = frame.pivot(index="prompt_id", columns="model", values="incoherent")
    assert incoherent["estimate"] == pytest.approx(float((paired["tuned"] - paired["base"]).mean()), abs=1e-12)
    assert incoherent["n_items"] == 60  # every prompt, both intents
    # the graded judge gives no safety verdict: it is no rater of harmful compliance
    assert "ext-judge" not in set(stats.loc[stats["outcome"] == "harmful_compliance", "judge_id"])


def _stats_row(**values) -> dict:
    base = {"statistic": "labels_needed", "judge_id": "j", "reference": "human_majority",
            "subset": "comparison=a vs b|goal=g|benchmark=all", "subset_kind": "finetune_comparison",
            "subset_value": "a vs b", "model": "a", "base_model": "b", "finetune_goal": "g", "benchmark": None,
            "outcome": "harmful_compliance", "estimate": 10.0, "ci_low": np.nan, "ci_high": np.nan, "n_items": 5,
            "n_excluded": 0, "excluded_reason": "", "method": "", "warning": "", "signature": ""}
    return base | values


def test_label_plans_share_a_row_only_when_identical_and_hold_no_placeholders() -> None:
    from judgekit.outputs.report_finetune import _label_plan

    plan = "+5 a / +5 b labels for the corrected effect's half-width {now} -> 0.050 (target 0.05); --judge {j} --out F"
    stats = pd.DataFrame([_stats_row(judge_id=j, method=plan.format(now=now, j=j))
                          for j, now in (("j1", "0.120"), ("j2", "0.130"), ("j3", "0.120"))]
                         + [_stats_row(judge_id="j4", estimate=20.0, method=plan.format(now="0.2", j="j4"))])
    html = _label_plan(stats, "comparison=a vs b|goal=g", "harmful_compliance")
    rows = re.findall(r"<tr><td>(.*?)</td>", html)
    assert rows == ["j1, j3", "j2", "j4"]
    assert "…" not in html and "half-width 0.130 -&gt; 0.050" in html and "--judge JUDGE" in html


def test_a_share_outside_zero_one_is_not_printed_as_a_share() -> None:
    from judgekit.outputs.report_finetune import _share

    assert _share(pd.Series({"estimate": 1.8, "ci_low": 0.2, "ci_high": 3.0, "warning": ""})).startswith("— (not a share")
    assert _share(pd.Series({"estimate": -0.4, "ci_low": -1.0, "ci_high": 0.2, "warning": ""})).startswith("— (not a share")
    inside = _share(pd.Series({"estimate": 0.667, "ci_low": -2.0, "ci_high": 3.0, "warning": ""}))
    assert inside.startswith("0.667 (no interval") and "leaves [0, 1]" in inside and "3.000" not in inside
    assert _share(pd.Series({"estimate": 0.5, "ci_low": 0.1, "ci_high": 0.9, "warning": ""})) == "0.500 [0.100, 0.900]"


def test_benign_prompts_without_a_refusal_rater_get_a_row_saying_why(tmp_path: Path) -> None:
    study_dir = _study(tmp_path, intent=True, to_refusal=False)
    judgments = pd.read_csv(study_dir / "judgments.csv").assign(judge_id="my-guard")  # not a refusal detector
    judgments.to_csv(study_dir / "judgments.csv", index=False)
    study = load_study(study_dir)
    stats = judgekit.compute_stats(study, SETTINGS, only=("finetune_effect_paired",))
    over = stats[stats["outcome"] == "over_refusal"]
    assert len(over) == 1 and np.isnan(over["estimate"].iloc[0])
    assert "no rater measures over-refusal" in over["warning"].iloc[0]
    html = finetune_section(study, stats)
    assert "over-refusal is undefined for tuned vs base (goal chat): no rater measures over-refusal" in html
    assert not any("over-refusal" in s for s in answer_sentences(html))  # said once, beside the answer, not in it


def test_interval_caption_states_per_judge_ppi_weights_once() -> None:
    from judgekit.outputs.report_finetune import interval_note

    methods = [f"PPI++ (power-tuned) difference of independent means (lambda {a:.3g} treatment, {b:.3g} control)"
               for a, b in ((0.41, 0.52), (0.77, 0.12), (0.3, 0.9))] + ["Taylor linearization, cluster-robust, t(41)"]
    note = interval_note(pd.DataFrame({"method": methods}))
    assert "0.41" not in note and note.count("λ per judge") == 1 and "t(41)" not in note
    # clustered PPI++ states one weight per arm after a comma: summarised the same way
    arms = [f"PPI++ (power-tuned per arm), lambda {a:.3g}, {b:.3g}; cluster-robust over 10 clusters, t(9)"
            for a, b in ((0.319, 0.124), (0.405, 0.218))]
    note = interval_note(pd.DataFrame({"method": arms}))
    assert "0.319" not in note and "0.405" not in note and note.count("λ per judge") == 1
    # and the cluster bootstrap's count per comparison, which made em_political's specification curve 34 inches wide
    counts = [f"cluster bootstrap over {n} clusters of units, percentile (200 resamples)" for n in (13, 16, 23)]
    note = interval_note(pd.DataFrame({"method": counts}))
    assert note == "intervals: cluster bootstrap over each row's clusters of units, percentile (200 resamples)"
