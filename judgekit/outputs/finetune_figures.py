"""Figures of the fine-tuning question: the fine-tune effect under every judge and benchmark,
and whether the conclusion flips."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from judgekit.outputs.style import DOUBLE_COLUMN_IN, OKABE_ITO, PAPER_STYLE, FigureInputs, interval_errors


def _effects(stats: pd.DataFrame) -> pd.DataFrame:
    rows = stats[stats["statistic"] == "finetune_effect"].copy()
    if rows.empty:
        return rows
    rows["goal"] = rows["finetune_goal"].fillna("")
    # One fine-tuned model may serve several goals: each (model, base, goal) is its own comparison.
    rows["comparison"] = rows["model"] + " vs " + rows["base_model"] + "\x1f" + rows["goal"]
    rows["benchmark"] = rows["benchmark"].fillna("all")
    return rows


def _comparison_title(rows: pd.DataFrame, comparison: str) -> str:
    row = rows.loc[rows["comparison"] == comparison].iloc[0]
    return f"goal: {row['goal']}\n{row['model']}\nvs {row['base_model']}"


def finetune_effect_forest(data: FigureInputs) -> plt.Figure | None:
    """Fine-tuned minus base harmful rate, one panel per comparison, one row per judge x benchmark."""
    rows = _effects(data.stats)
    if rows.empty:
        return None
    comparisons = sorted(rows["comparison"].unique())
    labels = sorted({(b, j) for b, j in zip(rows["benchmark"], rows["judge_id"], strict=True)},
                    key=lambda bj: (bj[0], bj[1] != "human_majority", bj[1]))
    columns = min(3, len(comparisons))
    panel_rows = int(np.ceil(len(comparisons) / columns))
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(panel_rows, columns, figsize=(DOUBLE_COLUMN_IN, (0.14 * len(labels) + 0.9) * panel_rows),
                                 sharey=True, squeeze=False, layout="constrained")
        for ax, comparison in zip(axes.ravel(), comparisons, strict=False):
            part = rows[rows["comparison"] == comparison].set_index(["benchmark", "judge_id"]).reindex(labels)
            y = np.arange(len(labels))
            human = np.array([j == "human_majority" for _, j in labels])
            errors = interval_errors(part.reset_index())
            for mask, color in ((human, "black"), (~human, OKABE_ITO[0])):
                ax.errorbar(part["estimate"].to_numpy()[mask], y[mask], xerr=errors[:, mask], fmt="o", color=color,
                            markersize=2.5, capsize=1.5, linewidth=0.8)
            ax.axvline(0, color="0.5", linewidth=0.6)
            ax.set_title(_comparison_title(rows, comparison), fontsize=6.5)
        for ax in axes.ravel()[len(comparisons):]:
            ax.set_visible(False)
        axes[0][0].set_yticks(np.arange(len(labels)), [f"{j} · {b}" for b, j in labels])
        axes[0][0].invert_yaxis()
        for ax in axes.ravel():
            ax.tick_params(axis="y", labelsize=5.5)
        fig.supxlabel("Δ harmful rate (fine-tuned − base)", fontsize=7)
        fig.suptitle("Did fine-tuning make the model less safe? Effect under every judge and benchmark (95% CI; black = humans)")
    return fig


def conclusion_flip_matrix(data: FigureInputs) -> plt.Figure | None:
    """Judge x benchmark grid per comparison: sign and significance of the fine-tuning effect."""
    rows = _effects(data.stats)
    if rows.empty:
        return None
    rows = rows[rows["benchmark"] != "all"] if (rows["benchmark"] != "all").any() else rows
    comparisons = sorted(rows["comparison"].unique())
    judges = sorted(rows["judge_id"].unique(), key=lambda j: (j != "human_majority", j))
    benchmarks = sorted(rows["benchmark"].unique())
    palette = {"up": "#D55E00", "down": "#0072B2", "ns": "#E8E8E8"}
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(1, len(comparisons), figsize=(DOUBLE_COLUMN_IN * max(1, len(comparisons) / 4),
                                 0.25 * len(judges) + 1.4), sharey=True, squeeze=False, layout="constrained")
        for ax, comparison in zip(axes[0], comparisons, strict=True):
            part = rows[rows["comparison"] == comparison].set_index(["judge_id", "benchmark"])
            for i, judge in enumerate(judges):
                for j, benchmark in enumerate(benchmarks):
                    if (judge, benchmark) not in part.index:
                        continue
                    cell = part.loc[(judge, benchmark)]
                    significant = cell.ci_low > 0 or cell.ci_high < 0
                    key = ("up" if cell.estimate > 0 else "down") if significant else "ns"
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color=palette[key]))
                    sign = "+" if cell.estimate > 0 else "−" if cell.estimate < 0 else ""
                    ax.text(j, i, f"{sign}{abs(cell.estimate):.2f}", ha="center", va="center", fontsize=5)
            ax.set_xlim(-0.5, len(benchmarks) - 0.5)
            ax.set_ylim(len(judges) - 0.5, -0.5)
            ax.set_xticks(range(len(benchmarks)), benchmarks, rotation=30, ha="right", fontsize=6)
            ax.set_title(_comparison_title(rows, comparison), fontsize=6)
        axes[0][0].set_yticks(range(len(judges)), judges)
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in palette.values()]
        fig.legend(handles, ["significant increase", "significant decrease", "CI includes 0"], loc="outside lower center", ncol=3, frameon=False)
        fig.suptitle("Does the conclusion flip with the judge or the benchmark? (Δ harmful rate; colour: sign where the 95% CI excludes 0)")
    return fig
