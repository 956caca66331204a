"""Safety across a training run: each checkpoint's paired effect against the base, by step, with intervals.

Reads only ``stats`` rows: ``checkpoint_step`` (the step the models table states for each checkpoint),
``finetune_effect_paired`` of the ``checkpoint_comparison`` rows (all benchmarks pooled) and ``checkpoint_trend``
(the clustered logistic slope across steps, in each rater's legend entry). One panel per run and outcome.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from judgekit.analysis.outcomes import DEFAULT_OUTCOME, OUTCOMES
from judgekit.outputs.report_finetune import comparison_of, interval_note, outcome_of
from judgekit.outputs.style import DOUBLE_COLUMN_IN, OKABE_ITO, PAPER_STYLE, FigureInputs, interval_errors
from judgekit.store.schema import HUMAN_MAJORITY


def _checkpoint_effects(stats: pd.DataFrame) -> pd.DataFrame:
    """Pooled paired effects of every checkpoint, with its step and run (base) and outcome."""
    steps = stats[stats["statistic"] == "checkpoint_step"]
    effects = stats[(stats["statistic"] == "finetune_effect_paired") & (stats["subset_kind"] == "checkpoint_comparison")
                    & stats["benchmark"].isna()].copy()
    if steps.empty or effects.empty:
        return effects.iloc[0:0]
    step_of = dict(zip(comparison_of(steps["subset"]), steps["estimate"], strict=True))
    effects["step"] = comparison_of(effects["subset"]).map(step_of)
    effects["outcome_name"] = outcome_of(effects)
    return effects.dropna(subset=["step"])


def _trend_label(stats: pd.DataFrame, base: str, outcome: str, rater: str) -> str:
    rows = stats[(stats["statistic"] == "checkpoint_trend") & (stats["base_model"] == base)
                 & (stats["judge_id"] == rater)]
    rows = rows[outcome_of(rows) == outcome] if len(rows) else rows
    if rows.empty or np.isnan(rows["estimate"].iloc[0]):
        return f"{rater} (no trend)"
    row = rows.iloc[0]
    return f"{rater}: trend {row['estimate']:+.2g} [{row['ci_low']:+.2g}, {row['ci_high']:+.2g}] log-odds/step"


def checkpoint_effects(data: FigureInputs) -> plt.Figure | None:
    """Each checkpoint minus the base (paired, same prompts) against its training step; the base is 0 at step 0."""
    rows = _checkpoint_effects(data.stats)
    if rows.empty:
        return None
    panels = sorted({(b, o) for b, o in zip(rows["base_model"], rows["outcome_name"], strict=True)},
                    key=lambda p: (p[0], p[1] != DEFAULT_OUTCOME, p[1]))
    raters = sorted(rows["judge_id"].unique(), key=lambda r: (r != HUMAN_MAJORITY, r))
    colours = {r: "black" if r == HUMAN_MAJORITY else OKABE_ITO[k % len(OKABE_ITO)] for k, r in enumerate(raters)}
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(max(DOUBLE_COLUMN_IN, 3.2 * len(panels)), 2.8),
                                 layout="constrained")
        for ax, (base, outcome) in zip(axes[0], panels, strict=True):
            part = rows[(rows["base_model"] == base) & (rows["outcome_name"] == outcome)]
            span = float(part["step"].max()) or 1.0
            for k, rater in enumerate(raters):
                line = part[part["judge_id"] == rater].sort_values("step")
                if line.empty:
                    continue
                offset = (k - (len(raters) - 1) / 2) * span * 0.008  # side by side, so intervals do not hide
                x = np.concatenate([[0.0], line["step"].to_numpy()]) + offset
                y = np.concatenate([[0.0], line["estimate"].to_numpy()])
                ax.plot(x, y, color=colours[rater], linewidth=0.8, marker="o", markersize=2.5,
                        label=_trend_label(data.stats, base, outcome, rater))
                ax.errorbar(line["step"].to_numpy() + offset, line["estimate"].to_numpy(), yerr=interval_errors(line),
                            fmt="none", ecolor=colours[rater], capsize=1.5, linewidth=0.7)
            ax.axhline(0, color="0.5", linewidth=0.6)
            ax.set_title(f"checkpoints of {base}\n{OUTCOMES[outcome].noun}", fontsize=7)
            ax.set_xlabel("training step (base at 0)", fontsize=7)
            ax.legend(fontsize=5, loc="best", frameon=False)
        axes[0][0].set_ylabel("paired Δ rate vs base (same prompts)", fontsize=7)
        fig.suptitle("Safety across training: each checkpoint minus the base, by step (black = humans)\n"
                     f"{interval_note(rows)}; trend: clustered logistic slope", fontsize=7.5)
    return fig
