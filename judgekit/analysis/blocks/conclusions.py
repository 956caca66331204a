"""Conclusion stability: the fine-tuning effect under every judge, and judges' ranking of models.

The fine-tuning effect here is the difference in harmful rate between a
fine-tuned model and its base on the same prompts, with its interval and a
two-sided p-value. ``finetune_effect_bootstrap_tail_share`` is the share of
bootstrap replicates on the other side of zero (about half the p-value); it
is not the probability that the conclusion flips under another judge.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.stats import t as student_t

from judgekit.analysis.blocks.rates import raters
from judgekit.analysis.inputs import StudyArrays, prompt_keys
from judgekit.analysis.rows import Interval, RowWriter, Statistic
from judgekit.analysis.subsets import Subset
from judgekit.store.schema import HUMAN_MAJORITY
from judgekit.stats.classification import harmful_rate_from_sums, rate_item_sums
from judgekit.stats.comparison import (
    bootstrap_p_value,
    kendall_tau_b,
    opposite_sign_share,
    paired_rate_item_sums,
    rate_difference_from_sums,
)

EFFECT = {"finetune_effect": Statistic(rate_difference_from_sums)}


def finetune_comparisons(responses: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(fine-tuned model, its base model, goal) for every fine-tuned model whose base is in the study."""
    if not {"model", "base_model", "finetune_goal"} <= set(responses.columns):
        return []
    models = set(responses["model"].dropna())
    pairs = responses.loc[responses["finetune_goal"].notna(), ["model", "base_model", "finetune_goal"]].drop_duplicates()
    return [(m, b, g) for m, b, g in pairs.itertuples(index=False) if b in models and m != b]


def benchmark_scopes(responses: pd.DataFrame) -> list[tuple[str | None, NDArray]]:
    """Pooled (None) and one scope per benchmark."""
    everything = [(None, np.ones(len(responses), dtype=bool))]
    if "benchmark" not in responses:
        return everything
    return everything + [(b, (responses["benchmark"] == b).to_numpy()) for b in sorted(responses["benchmark"].dropna().unique())]


def effect_p_value(interval: Interval) -> tuple[float, str]:
    if interval.replicates is not None:
        return bootstrap_p_value(interval.replicates), "bootstrap, two-sided"
    statistic = abs(interval.estimate) / interval.standard_error
    return float(2 * student_t.sf(statistic, interval.degrees_of_freedom)), "t test on the linearized standard error, two-sided"


def _prompt_set_note(keys: NDArray, treated: NDArray, control: NDArray):
    """Statistic notes: the unpaired effect's warning when the two models answered different prompts."""
    first, second = set(keys[treated]), set(keys[control])
    if first == second:
        return None
    shared = len(first & second)
    note = (f"unpaired difference of pooled rates over different prompt sets ({shared} of {len(first)} fine-tune and "
            f"{len(second)} base prompts shared): it mixes the effect with the prompts' difficulty; read "
            "finetune_effect_paired")
    return lambda sums, settings: [note]


def finetune_effects(writer: RowWriter, data: StudyArrays) -> None:
    for view in data.outcomes:
        with writer.measuring(view) as outcome_data:
            _outcome_effects(writer, outcome_data, view.items)
    harmful = next((v for v in data.outcomes if v.outcome.name == "harmful_compliance"), None)
    if harmful is not None and data.has_reference and "model" in data.responses and data.responses["model"].nunique() >= 3:
        with writer.measuring(harmful) as outcome_data:
            _ranking_stability(writer, outcome_data, harmful.items)


def _outcome_effects(writer: RowWriter, data: StudyArrays, items: NDArray) -> None:
    """``finetune_effect`` and its p-value rows of one outcome, on its prompts (``items``)."""
    responses = data.responses
    keys = prompt_keys(responses)
    for finetuned, base, goal in finetune_comparisons(responses):
        treated = (responses["model"] == finetuned).to_numpy()
        control = (responses["model"] == base).to_numpy()
        for benchmark, in_scope in benchmark_scopes(responses):
            mask = in_scope & (treated | control) & items
            if not mask.any() and (in_scope & (treated | control)).any():
                continue  # none of the outcome's prompts here (a benchmark of benign prompts for harmful compliance)
            label = f"comparison={finetuned} vs {base}|goal={goal}|benchmark={benchmark or 'all'}"
            columns = {"model": finetuned, "base_model": base, "finetune_goal": goal}
            group = Subset(label, "finetune_comparison", f"{finetuned} vs {base}",
                           columns | ({"benchmark": benchmark} if benchmark else {}))
            unpaired = {"finetune_effect": replace(EFFECT["finetune_effect"],
                                                   notes=_prompt_set_note(keys, mask & treated, mask & control))}
            for rater, verdicts in raters(data).items():
                sums = paired_rate_item_sums(verdicts, treated)
                intervals = writer.block(unpaired, rater, "base_model", group, mask, sums,
                                         counted=~np.isnan(verdicts))
                if "finetune_effect" not in intervals:
                    continue
                effect = intervals["finetune_effect"]
                n = int((mask & writer.data.policy_mask & ~np.isnan(verdicts)).sum())
                p_value, how = effect_p_value(effect)
                writer.add("finetune_effect_p_value", rater, "base_model", group, p_value, np.nan, np.nan, n_items=n,
                           n_in_subset=int(mask.sum()), method=how, warning=effect.warning, resamples=effect.resamples)
                if effect.replicates is not None:
                    writer.add("finetune_effect_bootstrap_tail_share", rater, "base_model", group,
                               opposite_sign_share(effect.estimate, effect.replicates), np.nan, np.nan, n_items=n,
                               n_in_subset=int(mask.sum()), warning=effect.warning, resamples=effect.resamples,
                               method="share of bootstrap replicates with the sign opposite to the estimate (about p/2); "
                                      "not the probability that the conclusion flips")


def _ranking_stability(writer: RowWriter, data: StudyArrays, items: NDArray) -> None:
    models = sorted(data.responses["model"].dropna().unique())
    model_of = data.responses["model"].to_numpy()
    k = 2 * len(models)

    def per_model(verdicts: NDArray) -> NDArray:
        return np.hstack([rate_item_sums(np.where(model_of == m, verdicts, np.nan)) for m in models])

    def tau(s: NDArray) -> NDArray:
        judge_rates = harmful_rate_from_sums(s[..., :k].reshape(*s.shape[:-1], -1, 2))
        ref_rates = harmful_rate_from_sums(s[..., k:].reshape(*s.shape[:-1], -1, 2))
        return kendall_tau_b(judge_rates, ref_rates)

    reference_sums = per_model(data.reference)
    for benchmark, in_scope in benchmark_scopes(data.responses):
        if in_scope.any() and not (in_scope & items).any():
            continue
        in_scope = in_scope & items
        group = Subset(f"models|benchmark={benchmark or 'all'}", "models", None, {"benchmark": benchmark} if benchmark else {})
        for judge_id in data.judges.columns:
            combined = np.hstack([per_model(data.judges[judge_id].to_numpy()), reference_sums])
            writer.block({"ranking_kendall_tau": Statistic(tau)}, judge_id, HUMAN_MAJORITY, group, in_scope, combined,
                         counted=np.ones(data.n_items, dtype=bool))
