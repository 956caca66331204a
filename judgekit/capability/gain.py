"""Did each fine-tune reach its goal? Capability per model and task, and the gain over the base model.

Per-item scores give a mean with a normal interval and, when the fine-tune and
its base were scored on the same items, a paired gain with a cluster
bootstrap over items (:func:`judgekit.stats.paired.paired_mean_difference`).
Aggregate rows (no per-item scores) give the gain as a difference of two
independent estimates (:func:`judgekit.stats.paired.summary_difference`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from judgekit.stats.paired import paired_mean_difference, summary_difference

Z95 = 1.959963984540054
SUMMARY_COLUMNS = ["model", "task", "estimate", "ci_low", "ci_high", "n", "method"]
GAIN_COLUMNS = ["model", "base_model", "finetune_goal", "mitigation", "task", "estimate", "ci_low", "ci_high",
                "n_items", "method", "warning", "reason"]


def capability_summary(capability: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, task): the score with its 95% interval and how it was obtained."""
    rows = []
    for (model, task), group in capability.groupby(["model", "task"], sort=True):
        per_item = group[group["item_id"].notna()]
        if len(per_item):
            scores = per_item["score"].to_numpy(dtype=float)
            mean = float(scores.mean())
            half = Z95 * float(scores.std(ddof=1)) / np.sqrt(len(scores)) if len(scores) > 1 else float("nan")
            rows.append([model, task, mean, max(0.0, mean - half), min(1.0, mean + half), len(scores),
                         "mean of per-item scores, normal interval"])
        else:
            row = group.iloc[0]
            rows.append([model, task, float(row["estimate"]), float(row["ci_low"]), float(row["ci_high"]),
                         int(row["n"]), "aggregate as imported"])
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def capability_gain(capability: pd.DataFrame, pairs: list[dict], *, n_boot: int = 1000,
                    rng: np.random.Generator | int | None = None) -> pd.DataFrame:
    """Fine-tuned minus base capability per pair and task both were scored on.

    Parameters
    ----------
    capability : DataFrame
        The validated ``capability`` table.
    pairs : list of dict
        ``model``, ``base_model``, ``finetune_goal``, ``mitigation`` per
        fine-tune (from :func:`judgekit.store.lineage.finetune_pairs`).
    n_boot : int
        Bootstrap resamples for paired per-item gains.
    rng : numpy Generator, int or None
    """
    summary = capability_summary(capability).set_index(["model", "task"])
    generator = np.random.default_rng(rng)
    rows = []
    for pair in pairs:
        tasks = sorted(set(capability.loc[capability["model"] == pair["model"], "task"])
                       & set(capability.loc[capability["model"] == pair["base_model"], "task"]))
        for task in tasks:
            rows.append({**pair, "task": task,
                         **_gain(capability, summary, pair["model"], pair["base_model"], task, n_boot, generator)})
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)


def _gain(capability: pd.DataFrame, summary: pd.DataFrame, model: str, base: str, task: str, n_boot: int,
          rng: np.random.Generator) -> dict:
    items = capability[(capability["task"] == task) & capability["model"].isin([model, base])
                       & capability["item_id"].notna()]
    if set(items["model"]) == {model, base}:
        result = paired_mean_difference(items["score"].to_numpy(dtype=float), (items["model"] == model).to_numpy(),
                                        items["item_id"].to_numpy(), n_boot=n_boot, rng=rng)
        if not result.reason:
            return {"estimate": result.estimate, "ci_low": result.ci_low, "ci_high": result.ci_high,
                    "n_items": result.n_pairs, "method": f"paired by item_id, {result.method}",
                    "warning": result.warning, "reason": ""}
    treated, control = summary.loc[(model, task)], summary.loc[(base, task)]
    estimate, low, high = summary_difference(tuple(treated[["estimate", "ci_low", "ci_high"]]),
                                             tuple(control[["estimate", "ci_low", "ci_high"]]))
    return {"estimate": estimate, "ci_low": low, "ci_high": high, "n_items": int(treated["n"] + control["n"]),
            "method": "difference of independent estimates (normal)",
            "warning": "items not matched: unpaired difference" if len(items) else "", "reason": ""}
