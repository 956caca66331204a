"""Bias audit: where is each judge wrong, and are judges' accuracies different (cluster-aware, Holm-adjusted)?"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from judgekit.analysis.blocks.common import CONFUSION
from judgekit.analysis.inputs import StudyArrays
from judgekit.analysis.rows import RowWriter, Statistic, row_generator
from judgekit.analysis.subsets import ALL, Subset, group_subsets, subset
from judgekit.store.schema import HUMAN_MAJORITY
from judgekit.stats.bias import clustered_marginal_homogeneity_test, error_regression, holm_adjust
from judgekit.stats.classification import confusion_item_sums

REFUSAL_MARKERS_PRESET = "keyword-gcg-29"
ACCURACY = {"accuracy": CONFUSION["accuracy"]}


def refusal_marker(responses: pd.DataFrame) -> NDArray:
    """``yes``/``no``: does the response hold one of the GCG refusal strings (case-sensitive substring, as the source)?"""
    if "refusal_style" in responses:
        return responses["refusal_style"].fillna("none").astype(str).to_numpy()
    from judgekit.judges.catalog import load_preset

    pattern = "|".join(re.escape(m) for m in load_preset(REFUSAL_MARKERS_PRESET)["markers"])
    return np.where(responses["response"].str.contains(pattern, regex=True), "yes", "no")


def _splits(responses: pd.DataFrame) -> list[tuple[Subset, NDArray]]:
    length = responses["response"].str.len().to_numpy()
    # Quartiles of the length rank; defined for any number of responses (qcut needs four distinct edges).
    rank = pd.Series(length).rank(method="first").to_numpy()
    quartile = np.array(["Q1", "Q2", "Q3", "Q4"])[((rank - 1) * 4 // max(len(rank), 1)).astype(int)]
    refusal = refusal_marker(responses)
    splits = [(subset("length", q), quartile == q) for q in ("Q1", "Q2", "Q3", "Q4")]
    splits += [(subset("refusal_marker", v), refusal == v) for v in ("yes", "no")]
    # A one-column group is labelled "category=<value>"; the subset keeps the bare value (no "category=category=").
    splits += [(subset("category", s.label.removeprefix("category=")), m) for s, m in group_subsets(responses, ("category",))]
    return splits + group_subsets(responses, ("model",))


def bias_audit(writer: RowWriter, data: StudyArrays) -> None:
    if not data.has_reference or not data.judges.shape[1]:
        return
    responses = data.responses
    log_length = np.log1p(responses["response"].str.len().to_numpy())
    refusal = refusal_marker(responses)
    splits = _splits(responses)
    correct = {}
    for judge_id in data.judges.columns:
        verdicts = data.judges[judge_id].to_numpy()
        confusion = confusion_item_sums(data.reference, verdicts)
        for group, mask in splits:
            if mask.any():
                writer.block(ACCURACY, judge_id, HUMAN_MAJORITY, group, mask, confusion)
        correct[judge_id] = np.where(np.isnan(verdicts) | np.isnan(data.reference), np.nan, (verdicts == data.reference).astype(float))
        _error_regression(writer, data, judge_id, correct[judge_id], log_length, refusal)
    judge_accuracy_tests(writer, data, correct)


def _error_regression(writer: RowWriter, data: StudyArrays, judge_id: str, correct: NDArray, log_length: NDArray,
                      refusal: NDArray) -> None:
    frame = pd.DataFrame({"error": 1 - correct, "log_length": log_length, "refusal_marker": refusal, "cluster": data.clusters})
    terms = ["log_length", "C(refusal_marker)"]
    if "incoherent" in data.flags:
        frame["incoherent"] = data.flags["incoherent"].fillna(False).to_numpy(dtype=bool).astype(float)
        terms.insert(0, "incoherent")
    # Category is left out of the regression: it is constant within a behaviour cluster, so with
    # cluster-robust errors its many levels leave too few clusters per parameter. Its effect is
    # reported as split accuracies instead.
    if "model" in data.responses and data.responses["model"].nunique() >= 2:
        frame["model"] = data.responses["model"].fillna("none").astype(str).to_numpy()
        terms.append("C(model)")
    frame = frame[~np.isnan(frame["error"].to_numpy()) & data.policy_mask]
    if frame.empty or frame["error"].nunique() < 2:
        return
    varying = [t for t in terms if t.strip("C()") not in frame or frame[t.strip("C()")].nunique() >= 2]
    if not varying:
        writer.add("error_odds_ratio", judge_id, HUMAN_MAJORITY, subset("term", "none"), np.nan, np.nan, np.nan,
                   n_items=0, n_in_subset=len(frame), method="logistic GLM, cluster-robust SE",
                   warning=f"no regression: every term ({', '.join(terms)}) is constant on these items")
        return
    formula = "error ~ " + " + ".join(varying)
    table = error_regression(frame, formula=formula, cluster="cluster")
    method = f"logistic GLM, cluster-robust SE; {formula}"
    for row in table.itertuples(index=False):
        if row.term == "Intercept":
            continue
        note = f"; {row.note}" if row.note else ""
        group = subset("term", row.term)
        writer.add("error_odds_ratio", judge_id, HUMAN_MAJORITY, group, row.odds_ratio, row.ci_low, row.ci_high,
                   n_items=row.n_items, n_in_subset=len(frame), method=method + note, interval="wald-cluster-robust")
        writer.add("error_odds_ratio_p_value", judge_id, HUMAN_MAJORITY, group, row.p_value, np.nan, np.nan,
                   n_items=row.n_items, n_in_subset=len(frame), method=method + note)


def judge_accuracy_tests(writer: RowWriter, data: StudyArrays, correct: dict[str, NDArray]) -> None:
    """Pairwise clustered McNemar tests (raw and Holm-adjusted), accuracy differences, and the clustered Cochran's Q."""
    names = list(correct)
    policy = data.policy_mask
    n_policy = int(policy.sum())
    everything = np.ones(data.n_items, dtype=bool)
    pairs = list(itertools.combinations(names, 2))
    tests = []
    for first, second in pairs:
        matrix = np.column_stack([correct[first], correct[second]])[policy]
        tests.append(clustered_marginal_homogeneity_test(
            matrix, data.clusters[policy], rng=row_generator(writer.settings.seed, "mcnemar", first, second)))
    adjusted = holm_adjust([t.p_value for t in tests])
    for (first, second), test, holm in zip(pairs, tests, adjusted, strict=True):
        a, b = correct[first][policy], correct[second][policy]
        only_first, only_second = np.nansum((a == 1) & (b == 0)), np.nansum((a == 0) & (b == 1))
        detail = f"{test.method}; only {first} right: {only_first:.0f}, only {second} right: {only_second:.0f}"
        writer.add("mcnemar_p_value", first, second, ALL, test.p_value, np.nan, np.nan, n_items=test.n_items,
                   n_in_subset=n_policy, method=detail)
        writer.add("mcnemar_p_value_holm", first, second, ALL, holm, np.nan, np.nan, n_items=test.n_items,
                   n_in_subset=n_policy, method=f"Holm-adjusted over the {len(pairs)} judge pairs; {detail}")
        both = ~(np.isnan(correct[first]) | np.isnan(correct[second]))
        sums = np.column_stack([both, np.where(both, correct[first], 0), np.where(both, correct[second], 0)]).astype(float)
        difference = Statistic(lambda s: np.divide(s[..., 1] - s[..., 2], s[..., 0], out=np.full(np.shape(s[..., 0]), np.nan),
                                                   where=s[..., 0] > 0))
        writer.block({"accuracy_difference": difference}, first, second, ALL, everything, sums)
    if len(names) >= 3:
        matrix = np.column_stack([correct[n] for n in names])[policy]
        test = clustered_marginal_homogeneity_test(matrix, data.clusters[policy],
                                                   rng=row_generator(writer.settings.seed, "cochran_q", *names))
        for statistic, value in (("cochran_q", test.statistic), ("cochran_q_p_value", test.p_value)):
            writer.add(statistic, "judges", HUMAN_MAJORITY, ALL, value, np.nan, np.nan, n_items=test.n_items,
                       n_in_subset=n_policy, method=test.method)
