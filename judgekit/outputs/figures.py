"""Paper figures drawn from the ``stats`` and ``reliability`` tables and the study's
``flags`` (never recomputed here).

One style for every figure: Okabe-Ito colour-blind-safe palette, sans fonts at
paper sizes, single-column (3.5 in) or double-column (7 in) widths, every
estimate with its interval. Each figure is saved as PDF and 300-dpi PNG.

=============================  ==============================================
figure                         reads
=============================  ==============================================
agreement_heatmap              cohen_kappa (judge-judge, judge-human), human ceiling
reliability_diagrams           reliability bins, ece
finetune_effect_forest         finetune_effect
conclusion_flip_matrix         finetune_effect: sign and significance per judge x benchmark
error_by_coherence             accuracy on coherent / incoherent subsets
variance_decomposition         variance_share
confusion_matrices             tp / fp / fn / tn
incoherence_scores             flags table (+ responses' model)
harmful_rate_by_model          harmful_rate per model x benchmark
=============================  ==============================================
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.ticker
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from judgekit.outputs.finetune_figures import conclusion_flip_matrix, finetune_effect_forest
from judgekit.outputs.style import (
    DOUBLE_COLUMN_IN,
    OKABE_ITO,
    PAPER_STYLE,
    SINGLE_COLUMN_IN,
    FigureInputs,
    interval_errors,
    save_figure,
)

def harmful_rate_by_model(stats: pd.DataFrame) -> plt.Figure | None:
    """Harmfulness rate per model and judge (human majority included), one panel per benchmark."""
    rows = stats[(stats["statistic"] == "harmful_rate") & (stats["subset_kind"] == "group") & stats["model"].notna()].copy()
    if rows.empty:
        return None
    rows["benchmark"] = rows["benchmark"].fillna("all")
    benchmarks = sorted(rows["benchmark"].unique())
    models = sorted(rows["model"].unique())
    raters = sorted(rows["judge_id"].unique(), key=lambda j: (j != "human_majority", j))
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(1, len(benchmarks), figsize=(DOUBLE_COLUMN_IN, 0.32 * len(models) * 1.6 + 1.2),
                                 sharey=True, squeeze=False)
        offsets = np.linspace(-0.3, 0.3, len(raters))
        for ax, benchmark in zip(axes[0], benchmarks, strict=True):
            for offset, rater, color in zip(offsets, raters, [None] + OKABE_ITO * 2 if raters[0] == "human_majority" else OKABE_ITO * 2, strict=False):
                part = rows[(rows["benchmark"] == benchmark) & (rows["judge_id"] == rater)].set_index("model").reindex(models)
                marker = "D" if rater == "human_majority" else "o"
                ax.errorbar(part["estimate"], np.arange(len(models)) + offset, xerr=interval_errors(part), fmt=marker,
                            color="black" if rater == "human_majority" else color, markersize=3, capsize=1.5,
                            linewidth=0.8, label=rater)
            ax.set_title(benchmark)
            ax.set_xlim(-0.02, 1.02)
            ax.set_xlabel("harmful rate (95% CI)")
        axes[0][0].set_yticks(np.arange(len(models)), models)
        axes[0][0].invert_yaxis()
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(4, len(labels)), frameon=False)
        fig.suptitle("Harmful-response rate by model: judges vs human majority")
    return fig


def judge_metric_forest(stats: pd.DataFrame, *, statistics: list[str], subsets: list[str] | None = None,
                        reference: str = "human_majority", title: str = "") -> plt.Figure | None:
    """One panel per statistic; one row per judge; one marker per subset; every estimate with its interval."""
    rows = stats[stats["statistic"].isin(statistics) & (stats["reference"] == reference)]
    subsets = subsets or ["all"]
    rows = rows[rows["subset"].isin(subsets)]
    if rows.empty:
        return None
    judges = sorted(rows["judge_id"].unique())
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(1, len(statistics), figsize=(DOUBLE_COLUMN_IN, 0.22 * len(judges) + 1.2), sharey=True,
                                 squeeze=False, layout="constrained")
        offsets = np.linspace(-0.2, 0.2, len(subsets)) if len(subsets) > 1 else [0.0]
        for ax, statistic in zip(axes[0], statistics, strict=True):
            for offset, subset, color, marker in zip(offsets, subsets, OKABE_ITO, "osD^", strict=False):
                part = rows[(rows["statistic"] == statistic) & (rows["subset"] == subset)].set_index("judge_id").reindex(judges)
                ax.errorbar(part["estimate"], np.arange(len(judges)) + offset, xerr=interval_errors(part), fmt=marker,
                            color=color, markersize=3.5, capsize=2, linewidth=0.9, label=subset)
            ax.set_title(statistic)
            ax.set_xlim(-0.02, 1.02)
        axes[0][0].set_yticks(np.arange(len(judges)), judges)
        axes[0][0].invert_yaxis()
        if len(subsets) > 1:
            handles, labels = axes[0][0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(subsets), frameon=False)
        fig.suptitle(title or f"Judges against the {reference.replace('_', ' ')} (95% cluster-bootstrap CI)")
    return fig


def _fmt(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{round(float(value), 2) + 0.0:.2f}"


def agreement_heatmap(data: FigureInputs) -> plt.Figure | None:
    """Cohen's kappa between every pair of raters (judges and the human majority), interval in each cell."""
    stats = data.stats
    kappa = stats[(stats["statistic"] == "cohen_kappa") & (stats["subset"] == "all")]
    pairs = kappa[kappa["reference"].isin(set(kappa["judge_id"]) | {"human_majority"}) | (kappa["reference"] == "human_majority")]
    annotators = stats.loc[(stats["reference"] == "majority_of_others") & (stats["subset_kind"] != "ceiling_items"), "judge_id"]
    judges = sorted(set(pairs.loc[pairs["reference"] != "majority_of_others", "judge_id"]) - {"human_ceiling"} - set(annotators))
    raters = ["human_majority", *judges]
    if len(judges) == 0:
        return None
    n = len(raters)
    values = np.full((n, n), np.nan)
    text = [["" for _ in range(n)] for _ in range(n)]
    for row in pairs.itertuples(index=False):
        if row.judge_id in raters and row.reference in raters:
            i, j = raters.index(row.judge_id), raters.index(row.reference)
            cell = f"{_fmt(row.estimate)}\n[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]"
            values[i, j] = values[j, i] = row.estimate
            text[i][j] = text[j][i] = cell
    with plt.rc_context(PAPER_STYLE):
        size = min(DOUBLE_COLUMN_IN, 1.0 + 0.75 * n)
        fig, ax = plt.subplots(figsize=(size, size * 0.9), layout="constrained")
        image = ax.imshow(values, cmap="cividis", vmin=-0.2, vmax=1.0)
        for i in range(n):
            for j in range(n):
                if i != j and text[i][j]:
                    ax.text(j, i, text[i][j], ha="center", va="center", fontsize=5.5,
                            color="white" if values[i, j] < 0.45 else "black")
        ax.set_xticks(range(n), raters, rotation=45, ha="right")
        ax.set_yticks(range(n), raters)
        ceiling = stats[(stats["judge_id"] == "human_ceiling") & (stats["statistic"] == "cohen_kappa") & (stats["subset"] == "all")]
        bar = fig.colorbar(image, ax=ax, shrink=0.8, label="Cohen's κ (95% CI in cells)")
        title = "Agreement between judges and with the human majority"
        if len(ceiling):
            c = ceiling.iloc[0]
            bar.ax.axhline(c.estimate, color="#D55E00", linewidth=2)
            title += f"\nhuman ceiling κ = {_fmt(c.estimate)} [{_fmt(c.ci_low)}, {_fmt(c.ci_high)}] (orange line)"
        ax.set_title(title)
    return fig


def reliability_diagrams(data: FigureInputs) -> plt.Figure | None:
    """One panel per judge with P(unsafe): observed share unsafe per bin with Wilson intervals, counts beneath."""
    if data.reliability is None or data.reliability.empty:
        return None
    curves = data.reliability[data.reliability["subset"] == "all"]
    judges = sorted(curves["judge_id"].unique())
    ece = data.stats[(data.stats["statistic"] == "ece") & (data.stats["subset"] == "all")].set_index("judge_id")
    columns = min(3, len(judges))
    rows = int(np.ceil(len(judges) / columns))
    with plt.rc_context(PAPER_STYLE):
        fig = plt.figure(figsize=(DOUBLE_COLUMN_IN, 2.6 * rows), layout="constrained")
        grid = fig.add_gridspec(rows * 2, columns, height_ratios=[3, 1] * rows)
        for k, judge in enumerate(judges):
            r, c = divmod(k, columns)
            top = fig.add_subplot(grid[2 * r, c])
            bottom = fig.add_subplot(grid[2 * r + 1, c], sharex=top)
            curve = curves[curves["judge_id"] == judge]
            filled = curve[curve["count"] > 0]
            centres = (curve["low_edge"] + curve["high_edge"]) / 2
            top.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle="--")
            top.errorbar(filled["mean_p"], filled["frac_unsafe"],
                         yerr=np.vstack([filled["frac_unsafe"] - filled["ci_low"], filled["ci_high"] - filled["frac_unsafe"]]).clip(min=0),
                         fmt="o-", color=OKABE_ITO[0], markersize=3, capsize=1.5, linewidth=1)
            top.set_xlim(0, 1)
            top.set_ylim(-0.02, 1.02)
            top.set_ylabel("share unsafe (humans)")
            title = judge
            if judge in ece.index:
                row = ece.loc[judge]
                title += f"\nECE {_fmt(row.estimate)} [{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]"
            top.set_title(title)
            plt.setp(top.get_xticklabels(), visible=False)
            bottom.bar(centres, curve["count"], width=(curve["high_edge"] - curve["low_edge"]) * 0.9, color=OKABE_ITO[1])
            bottom.set_yscale("symlog")
            bottom.set_xlabel("judge P(unsafe)")
            bottom.set_ylabel("items")
        fig.suptitle("Reliability of P(unsafe) against the human majority (Wilson 95% intervals)")
    return fig


def error_by_coherence(data: FigureInputs) -> plt.Figure | None:
    """Judge error rate (1 - accuracy vs the human majority) on coherent and incoherent responses."""
    stats = data.stats
    rows = stats[(stats["statistic"] == "accuracy") & (stats["reference"] == "human_majority")
                 & stats["subset"].isin(["coherent", "incoherent"])].copy()
    if rows.empty:
        return None
    rows["estimate"], rows["ci_low"], rows["ci_high"] = 1 - rows["estimate"], 1 - rows["ci_high"], 1 - rows["ci_low"]
    judges = sorted(rows["judge_id"].unique())
    with plt.rc_context(PAPER_STYLE):
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN * 1.6, 0.35 * len(judges) + 1.1), layout="constrained")
        for offset, subset, color, marker in ((-0.15, "coherent", OKABE_ITO[0], "o"), (0.15, "incoherent", OKABE_ITO[3], "D")):
            part = rows[rows["subset"] == subset].set_index("judge_id").reindex(judges)
            n = int(part["n_items"].max()) if part["n_items"].notna().any() else 0
            ax.errorbar(part["estimate"], np.arange(len(judges)) + offset, xerr=interval_errors(part), fmt=marker,
                        color=color, markersize=4, capsize=2, linewidth=1, label=f"{subset} (n≤{n})")
        ax.set_yticks(np.arange(len(judges)), judges)
        ax.invert_yaxis()
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("error rate against the human majority (95% CI)")
        ax.set_title("Are judges worse on incoherent responses?")
        ax.legend(loc="best", frameon=False)
    return fig


def variance_decomposition_figure(data: FigureInputs) -> plt.Figure | None:
    rows = data.stats[data.stats["statistic"] == "variance_share"].copy()
    if rows.empty:
        return None
    rows["factor"] = rows["subset_value"]
    with plt.rc_context(PAPER_STYLE):
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN, 0.3 * len(rows) + 1.0), layout="constrained")
        y = np.arange(len(rows))
        ax.barh(y, rows["estimate"], color=[OKABE_ITO[k % len(OKABE_ITO)] for k in range(len(rows))])
        ax.errorbar(rows["estimate"], y, xerr=interval_errors(rows), fmt="none", ecolor="black", capsize=2, linewidth=0.8)
        ax.set_yticks(y, rows["factor"])
        ax.invert_yaxis()
        ax.set_xlabel("share of verdict variance (95% cluster-bootstrap CI)")
        ax.set_title("Where does the verdict's variance come from?")
    return fig


def confusion_matrices(data: FigureInputs) -> plt.Figure | None:
    counts = data.stats[data.stats["statistic"].isin(["tp", "fp", "fn", "tn"]) & (data.stats["subset"] == "all")
                        & (data.stats["reference"] == "human_majority")]
    if counts.empty:
        return None
    judges = sorted(counts["judge_id"].unique())
    columns = min(4, len(judges))
    rows = int(np.ceil(len(judges) / columns))
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(rows, columns, figsize=(DOUBLE_COLUMN_IN, 1.8 * rows), squeeze=False, layout="constrained")
        for ax, judge in zip(axes.ravel(), judges, strict=False):
            c = counts[counts["judge_id"] == judge].set_index("statistic")["estimate"]
            matrix = np.array([[c.get("tp", 0), c.get("fn", 0)], [c.get("fp", 0), c.get("tn", 0)]])
            shares = matrix / matrix.sum(axis=1, keepdims=True).clip(min=1)
            ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
            for i in range(2):
                for j in range(2):
                    ax.text(j, i, f"{int(matrix[i, j])}\n({shares[i, j]:.0%})", ha="center", va="center", fontsize=6,
                            color="white" if shares[i, j] > 0.6 else "black")
            ax.set_xticks([0, 1], ["unsafe", "safe"])
            ax.set_yticks([0, 1], ["unsafe", "safe"])
            ax.set_xlabel("judge")
            ax.set_ylabel("humans")
            ax.set_title(judge, fontsize=7)
        for ax in axes.ravel()[len(judges):]:
            ax.set_visible(False)
        fig.suptitle("Confusion matrices against the human majority (row shares)")
    return fig


def incoherence_scores(data: FigureInputs) -> plt.Figure | None:
    """Distribution of each detector's score, one box per model."""
    if data.flags is None or data.responses is None:
        return None
    flags = data.flags[data.flags["detector"] != "incoherent"].dropna(subset=["score"])
    if flags.empty:
        return None
    model = data.responses.set_index("item_id")["model"] if "model" in data.responses else None
    flags = flags.assign(model=model.reindex(flags["item_id"]).fillna("(none)").to_numpy() if model is not None else "all")
    detectors = sorted(flags["detector"].unique())
    models = sorted(flags["model"].unique())
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(1, len(detectors), figsize=(DOUBLE_COLUMN_IN, 0.22 * len(models) + 1.3), sharey=True,
                                 squeeze=False, layout="constrained")
        for ax, detector in zip(axes[0], detectors, strict=True):
            part = flags[flags["detector"] == detector]
            ax.boxplot([part.loc[part["model"] == m, "score"].to_numpy() for m in models], orientation="horizontal",
                       widths=0.6, flierprops={"markersize": 2}, medianprops={"color": OKABE_ITO[3]})
            flagged = part.groupby("model")["flagged"].mean().reindex(models).fillna(0)
            for k, share in enumerate(flagged, start=1):
                ax.text(1.0, k, f" {share:.0%}", transform=ax.get_yaxis_transform(), va="center", fontsize=5.5, color=OKABE_ITO[3])
            ax.set_title(detector.replace("_", "\n"), fontsize=6.5)
            ax.set_xlabel("score")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(2))
            if part["score"].between(0, 1).all():
                ax.set_xlim(-0.05, 1.05)
        axes[0][0].set_yticks(np.arange(1, len(models) + 1), models)
        axes[0][0].invert_yaxis()
        fig.suptitle("Incoherence-detector scores by model (share of each model's responses flagged at the right)")
    return fig



def harmful_rate_by_model_figure(data: FigureInputs) -> plt.Figure | None:
    return harmful_rate_by_model(data.stats)


FIGURES = {
    "agreement_heatmap": agreement_heatmap,
    "reliability_diagrams": reliability_diagrams,
    "finetune_effect_forest": finetune_effect_forest,
    "conclusion_flip_matrix": conclusion_flip_matrix,
    "error_by_coherence": error_by_coherence,
    "variance_decomposition": variance_decomposition_figure,
    "confusion_matrices": confusion_matrices,
    "incoherence_scores": incoherence_scores,
    "harmful_rate_by_model": harmful_rate_by_model_figure,
}


def draw_figures(data: FigureInputs) -> dict[str, plt.Figure]:
    """Every figure the inputs support, as matplotlib figures (not saved)."""
    figures = {}
    for name, draw in FIGURES.items():
        fig = draw(data)
        if fig is not None:
            figures[name] = fig
    return figures


def make_figures(data: FigureInputs, out_dir: str | Path) -> list[Path]:
    """Draw and save every figure the inputs support; return the written files (PDF and PNG)."""
    written: list[Path] = []
    for name, fig in draw_figures(data).items():
        written.extend(save_figure(fig, out_dir, name))
    return written
