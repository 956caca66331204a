"""Paper figures drawn from the ``stats`` and ``reliability`` tables and the study's
``flags`` (never recomputed here).

One style for every figure: Okabe-Ito colour-blind-safe palette (never one colour
for two series in a figure: more series are split into panels), sans fonts at
paper sizes, single-column (3.5 in) or double-column (7 in) widths, every
estimate with its interval, the interval named from the rows' own method and
signature. Judges are sorted by the statistic shown; more than
``ROWS_PER_PANEL`` judges are split into panels with shared axes. Each figure
is saved as PDF and PNG (300 dpi; less above 40 megapixels).

=============================  ==============================================
figure                         reads
=============================  ==============================================
agreement_heatmap              cohen_kappa (judge-judge, judge-human), human ceiling
reliability_diagrams           reliability bins, ece
finetune_effect_forest         finetune_effect
conclusion_flip_matrix         finetune_effect: sign and significance per judge x benchmark
error_by_coherence             accuracy on coherent / incoherent subsets, accuracy_gap
bias_error_odds_ratios         error_odds_ratio per judge x response attribute
variance_decomposition         variance_share
confusion_matrices             tp / fp / fn / tn
incoherence_scores             flags table (+ responses' model)
harmful_rate_by_model          harmful_rate per model x benchmark
=============================  ==============================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib.ticker
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from judgekit.outputs.checkpoint_figure import checkpoint_effects
from judgekit.outputs.finetune_figures import (
    comparison_keys,
    conclusion_flip_matrix,
    finetune_effect_forest,
    panel_count,
    safety_capability_plane,
    specification_curve,
)
from judgekit.outputs.report_finetune import FIGURE_PART_SEPARATOR, outcome_of
from judgekit.outputs.style import (
    DOUBLE_COLUMN_IN,
    OKABE_ITO,
    PAPER_STYLE,
    PNG_DPI,
    ROWS_PER_PANEL,
    SINGLE_COLUMN_IN,
    FigureInputs,
    distinct_colors,
    interval_errors,
    panel_chunks,
    save_figure,
    set_caption,
)
from judgekit.outputs.tables import ACCURACY_GAP, NOT_JUDGES, annotator_ids, as_shown, interval_caption, judge_pairs, term_label

HUMAN = "human_majority"
UNDEFINED_COLOUR = "#BBBBBB"


def sorted_by(rows: pd.DataFrame, *, descending: bool = True, key: str = "judge_id") -> list[str]:
    """Values of ``key`` ordered by their estimate (undefined last, ties by name)."""
    means = rows.groupby(key)["estimate"].mean()
    return sorted(means.index, key=lambda j: (np.isnan(means[j]), -means[j] if descending else means[j], j))


def harmful_rate_by_model(stats: pd.DataFrame) -> plt.Figure | None:
    """Harmful-response rate per rater (human majority first), one panel per model, one colour per benchmark.

    Harmful compliance only (the ``outcome`` column; over-refusal and incoherence rates are the fine-tuning
    section's). Raters are rows, sorted by their mean rate; colours stand for benchmarks, never for raters, so 30 judges
    need no 30 colours. More benchmarks than distinguishable colours get one panel per model x benchmark.
    """
    rows = stats[(stats["statistic"] == "harmful_rate") & (stats["subset_kind"] == "group") & stats["model"].notna()
                 & (outcome_of(stats) == "harmful_compliance")].copy()  # other outcomes: the fine-tuning section
    if rows.empty:
        return None
    rows["benchmark"] = rows["benchmark"].fillna("all")
    benchmarks = sorted(rows["benchmark"].unique())
    models = sorted(rows["model"].unique())
    judges = sorted_by(rows[rows["judge_id"] != HUMAN])
    raters = ([HUMAN] if (rows["judge_id"] == HUMAN).any() else []) + judges
    split_benchmarks = len(benchmarks) > len(OKABE_ITO)
    panels = [(m, [b]) for m in models for b in benchmarks] if split_benchmarks else [(m, benchmarks) for m in models]
    colors = dict(zip(benchmarks, [OKABE_ITO[0]] * len(benchmarks) if split_benchmarks else distinct_colors(len(benchmarks)),
                      strict=True))
    columns = min(4, len(panels))
    panel_rows = -(-len(panels) // columns)
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(panel_rows, columns, figsize=(DOUBLE_COLUMN_IN, panel_rows * (0.12 * len(raters) * max(1, len(benchmarks) / 2) + 0.8) + 1.0),
                                 sharex=True, sharey=True, squeeze=False, layout="constrained")
        offsets = np.linspace(-0.25, 0.25, len(panels[0][1])) if len(panels[0][1]) > 1 else [0.0]
        for ax, (model, shown) in zip(axes.ravel(), panels, strict=False):
            for offset, benchmark in zip(offsets, shown, strict=True):
                part = rows[(rows["model"] == model) & (rows["benchmark"] == benchmark)].set_index("judge_id").reindex(raters)
                y = np.arange(len(raters)) + offset
                ax.errorbar(part["estimate"], y, xerr=interval_errors(part), fmt="o", color=colors[benchmark], markersize=2.5,
                            capsize=1, linewidth=0.7, label=benchmark)
                if raters and raters[0] == HUMAN:  # the human reference: a diamond edged in black, in its benchmark's colour
                    ax.plot(part["estimate"].iloc[:1], y[:1], "D", color=colors[benchmark], markeredgecolor="black", markersize=3.5)
            ax.set_title(model if len(shown) > 1 else f"{model}\n{shown[0]}", fontsize=6.5)
            ax.set_xlim(-0.02, 1.02)
        for ax in axes.ravel()[len(panels):]:
            ax.set_visible(False)
        axes[0][0].set_yticks(np.arange(len(raters)), raters)
        axes[0][0].invert_yaxis()
        for k, ax in enumerate(axes.ravel()[:len(panels)]):
            ax.tick_params(axis="y", labelsize=5.5 if len(raters) > ROWS_PER_PANEL else 7)
            if k + columns >= len(panels):  # the lowest panel of each column
                ax.set_xlabel("harmful-response rate")
        if not split_benchmarks and len(benchmarks) > 1:
            handles, labels = axes[0][0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="outside lower center", ncol=len(benchmarks), frameon=False, title="benchmark")
        fig.suptitle("Harmful-response rate by model: judges vs humans")
        set_caption(fig, "The human majority: ◆, top row; judges sorted by mean rate. "
                         f"{interval_caption(rows, short=True)}.")
    return fig


def judge_metric_forest(stats: pd.DataFrame, *, statistics: list[str], subsets: list[str] | None = None,
                        reference: str = HUMAN, title: str = "") -> plt.Figure | None:
    """One column of panels per statistic; one row per judge, sorted by the first statistic; one marker per subset.

    Every panel shares its x axis with the panels of the same statistic; more than ``ROWS_PER_PANEL`` judges
    are split into rows of panels.
    """
    rows = stats[stats["statistic"].isin(statistics) & (stats["reference"] == reference)]
    subsets = subsets or ["all"]
    rows = rows[rows["subset"].isin(subsets)]
    if rows.empty:
        return None
    judges = sorted_by(rows[(rows["statistic"] == statistics[0]) & (rows["subset"] == subsets[0])])
    judges += sorted(set(rows["judge_id"]) - set(judges))
    chunks = panel_chunks(judges)
    colors = distinct_colors(len(subsets))
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(len(chunks), len(statistics), figsize=(DOUBLE_COLUMN_IN, sum(0.2 * len(c) + 0.6 for c in chunks) + 0.6),
                                 sharex="col", squeeze=False, layout="constrained",
                                 gridspec_kw={"height_ratios": [len(c) for c in chunks]})
        offsets = np.linspace(-0.2, 0.2, len(subsets)) if len(subsets) > 1 else [0.0]
        for r, chunk in enumerate(chunks):
            for ax, statistic in zip(axes[r], statistics, strict=True):
                for offset, subset, color, marker in zip(offsets, subsets, colors, "osD^", strict=False):
                    part = rows[(rows["statistic"] == statistic) & (rows["subset"] == subset)].set_index("judge_id").reindex(chunk)
                    ax.errorbar(part["estimate"], np.arange(len(chunk)) + offset, xerr=interval_errors(part), fmt=marker,
                                color=color, markersize=3.5, capsize=2, linewidth=0.9, label=subset)
                ax.set_yticks(np.arange(len(chunk)), chunk if ax is axes[r][0] else [])
                ax.set_ylim(len(chunk) - 0.5, -0.5)
                if r == 0:
                    ax.set_title(statistic)
                ax.set_xlim(-0.02, 1.02)
        if len(subsets) > 1:
            handles, labels = axes[0][0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="outside lower center", ncol=len(subsets), frameon=False)
        fig.suptitle(f"{title or 'Judges against the ' + reference.replace('_', ' ')}\n{interval_caption(rows, short=True)}")
    return fig


def _fmt(value: float) -> str:
    return "undef." if pd.isna(value) else f"{round(float(value), 2) + 0.0:.2f}"


# Cells of a 7-inch map of n raters are about 5.4 / n inches wide: "0.73 [0.69, 0.77]" at 7 pt needs about 0.65 in,
# "-0.05" about 0.3 in.
HEATMAP_INTERVAL_RATERS = 8
HEATMAP_ESTIMATE_RATERS = 18


def agreement_heatmap(data: FigureInputs) -> plt.Figure | None:
    """Cohen's kappa between every pair of raters (judges and the human majority), sorted by kappa with the humans.

    Every cell text is 7 pt, the house's smallest readable size at the size the report shows the figure: up to
    ``HEATMAP_INTERVAL_RATERS`` raters a cell holds the estimate and its interval, up to ``HEATMAP_ESTIMATE_RATERS``
    the estimate only, beyond that the colour only (the ``judge_agreement`` table has every interval). Undefined
    kappas are grey and hatched.
    """
    stats = as_shown(data.stats)
    between = judge_pairs(stats)
    kappa = stats[(stats["statistic"] == "cohen_kappa") & (stats["subset"] == "all")]
    judges = set(between["judge_id"]) | set(between["reference"])
    with_humans = kappa[(kappa["reference"] == HUMAN) & ~kappa["judge_id"].isin(set(NOT_JUDGES) | annotator_ids(stats))]
    if "dimension" in with_humans:
        with_humans = with_humans[with_humans["dimension"].isna()]
    judges |= set(with_humans["judge_id"])
    if len(judges) == 0:
        return None
    ordered = sorted_by(with_humans) + sorted(judges - set(with_humans["judge_id"]))
    raters = ([HUMAN] if len(with_humans) else []) + ordered  # no empty human row and column without labels
    pairs = pd.concat([between, with_humans])
    n = len(raters)
    values = np.full((n, n), np.nan)
    known = np.zeros((n, n), dtype=bool)
    text = [["" for _ in range(n)] for _ in range(n)]
    shown = pairs[pairs["judge_id"].isin(raters) & pairs["reference"].isin(raters)]
    for row in shown.itertuples(index=False):
        i, j = raters.index(row.judge_id), raters.index(row.reference)
        values[i, j] = values[j, i] = row.estimate
        known[i, j] = known[j, i] = True
        text[i][j] = text[j][i] = (_fmt(row.estimate) if n > HEATMAP_INTERVAL_RATERS or pd.isna(row.estimate)
                                   else f"{_fmt(row.estimate)}\n[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]")
    with plt.rc_context(PAPER_STYLE):
        size = min(DOUBLE_COLUMN_IN, 1.6 + 0.8 * n)  # cells wide enough for "0.73 [0.69, 0.77]" at 7 pt
        fig, ax = plt.subplots(figsize=(size, size * 0.9), layout="constrained")
        image = ax.imshow(values, cmap="cividis", vmin=-0.2, vmax=1.0)
        undefined = known & np.isnan(values)
        for i, j in zip(*np.nonzero(undefined), strict=True):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=UNDEFINED_COLOUR, hatch="////", edgecolor="white", linewidth=0))
        if n <= HEATMAP_ESTIMATE_RATERS:
            for i in range(n):
                for j in range(n):
                    if i != j and text[i][j]:
                        ax.text(j, i, text[i][j], ha="center", va="center", fontsize=7,
                                color="white" if values[i, j] < 0.45 else "black")
        labelsize = 7 if n <= 40 else 5
        ax.set_xticks(range(n), raters, rotation=45 if n <= 12 else 90, ha="right" if n <= 12 else "center", fontsize=labelsize)
        ax.set_yticks(range(n), raters, fontsize=labelsize)
        cells = ("estimate and interval" if n <= HEATMAP_INTERVAL_RATERS else "estimate" if n <= HEATMAP_ESTIMATE_RATERS
                 else "colour only; intervals in the judge_agreement table")
        bar = fig.colorbar(image, ax=ax, shrink=0.8, label=f"Cohen's κ (cells: {cells})")
        fig.suptitle("Agreement between judges and with the humans" if len(with_humans)
                     else "Agreement between judges (no human labels)", fontsize=8)  # over the map and the colour bar
        caption = ["Judges sorted by κ with the human majority."] if len(with_humans) else []
        ceiling = stats[(stats["judge_id"] == "human_ceiling") & (stats["statistic"] == "cohen_kappa") & (stats["subset"] == "all")]
        if len(ceiling) and np.isfinite(ceiling.iloc[0].estimate):  # undefined: no item has two humans' labels
            c = ceiling.iloc[0]
            bar.ax.axhline(c.estimate, color="#D55E00", linewidth=2)
            caption.append(f"Human ceiling κ = {_fmt(c.estimate)} [{_fmt(c.ci_low)}, {_fmt(c.ci_high)}] (orange line).")
        if undefined.any():
            caption.append("Grey hatched: κ undefined (a judge gives one verdict only).")
        set_caption(fig, " ".join([*caption, f"{interval_caption(shown, short=True)}."]))
    return fig


def reliability_diagrams(data: FigureInputs) -> plt.Figure | None:
    """One panel per judge with P(unsafe), sorted by ECE: observed share unsafe per bin with Wilson intervals, counts beneath."""
    if data.reliability is None or data.reliability.empty:
        return None
    curves = data.reliability[data.reliability["subset"] == "all"]
    ece_rows = data.stats[(data.stats["statistic"] == "ece") & (data.stats["subset"] == "all")]
    ece = ece_rows.set_index("judge_id")
    judges = sorted_by(ece_rows[ece_rows["judge_id"].isin(set(curves["judge_id"]))], descending=False)
    judges += sorted(set(curves["judge_id"]) - set(judges))
    columns = 3 if len(judges) <= 6 else 4 if len(judges) <= ROWS_PER_PANEL else 5
    rows = int(np.ceil(len(judges) / columns))
    with plt.rc_context(PAPER_STYLE):
        fig = plt.figure(figsize=(DOUBLE_COLUMN_IN, (2.6 if columns == 3 else 2.0) * rows + 0.4), layout="constrained")
        grid = fig.add_gridspec(rows * 2, columns, height_ratios=[3, 1] * rows)
        first_top = first_bottom = None
        for k, judge in enumerate(judges):
            r, c = divmod(k, columns)
            top = fig.add_subplot(grid[2 * r, c], sharex=first_top, sharey=first_top)
            bottom = fig.add_subplot(grid[2 * r + 1, c], sharex=top, sharey=first_bottom)
            first_top, first_bottom = first_top or top, first_bottom or bottom
            curve = curves[curves["judge_id"] == judge]
            filled = curve[curve["count"] > 0]
            centres = (curve["low_edge"] + curve["high_edge"]) / 2
            top.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle="--")
            top.errorbar(filled["mean_p"], filled["frac_unsafe"],
                         yerr=np.vstack([filled["frac_unsafe"] - filled["ci_low"], filled["ci_high"] - filled["frac_unsafe"]]).clip(min=0),
                         fmt="o-", color=OKABE_ITO[0], markersize=3 if columns == 3 else 2, capsize=1.5, linewidth=1)
            top.set_xlim(0, 1)
            top.set_ylim(-0.02, 1.02)
            if c == 0:
                top.set_ylabel("share unsafe\n(humans)")
                bottom.set_ylabel("items")
            title = judge
            if judge in ece.index:
                row = ece.loc[judge]
                title += f"\nECE {_fmt(row.estimate)} [{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]"
            top.set_title(title, fontsize=7 if columns == 3 else 5.5)
            plt.setp(top.get_xticklabels(), visible=False)
            bottom.bar(centres, curve["count"], width=(curve["high_edge"] - curve["low_edge"]) * 0.9, color=OKABE_ITO[1])
            bottom.set_yscale("symlog")
            # Plain numbers: with math text off (user ids print as typed) the log formatter's "$10^{1}$" shows raw.
            bottom.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            if r == rows - 1 or k + columns >= len(judges):
                bottom.set_xlabel("judge P(unsafe)")
            if columns > 3:
                for ax in (top, bottom):
                    ax.tick_params(labelsize=5)
        fig.suptitle("Reliability of P(unsafe) against the human majority, judges sorted by ECE\n"
                     f"bins: Wilson intervals; ECE: {interval_caption(ece_rows, short=True)}")
    return fig


def error_by_coherence(data: FigureInputs) -> plt.Figure | None:
    """Judge error rate (1 - accuracy vs the human majority) on coherent and incoherent responses, and the gap.

    Left: both error rates; right: the accuracy gap (coherent - incoherent) with its own interval from the
    ``accuracy_gap`` rows, or a note that the stats run did not compute it. Judges sorted by the gap.
    """
    stats = data.stats
    rows = stats[(stats["statistic"] == "accuracy") & (stats["reference"] == HUMAN)
                 & stats["subset"].isin(["coherent", "incoherent"])].copy()
    if rows.empty:
        return None
    rows["estimate"], rows["ci_low"], rows["ci_high"] = 1 - rows["estimate"], 1 - rows["ci_high"], 1 - rows["ci_low"]
    gap = stats[(stats["statistic"] == ACCURACY_GAP[0]) & (stats["subset"] == ACCURACY_GAP[1]) & (stats["reference"] == HUMAN)]
    if not gap.empty:
        judges = sorted_by(gap)
    else:  # order by the difference of the two error rates shown
        wide = rows.pivot_table(index="judge_id", columns="subset", values="estimate")
        difference = (wide.get("incoherent") - wide.get("coherent")).rename("estimate").reset_index()
        judges = sorted_by(difference)
    judges += sorted(set(rows["judge_id"]) - set(judges))
    chunks = panel_chunks(judges)
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(len(chunks), 2, figsize=(DOUBLE_COLUMN_IN, sum(0.22 * len(c) + 0.5 for c in chunks) + 0.9),
                                 sharex="col", squeeze=False, layout="constrained", width_ratios=[3, 2],
                                 gridspec_kw={"height_ratios": [len(c) for c in chunks]})
        for r, chunk in enumerate(chunks):
            ax, gap_ax = axes[r]
            y = np.arange(len(chunk))
            for offset, subset, color, marker in ((-0.15, "coherent", OKABE_ITO[0], "o"), (0.15, "incoherent", OKABE_ITO[3], "D")):
                if not (rows["subset"] == subset).any():  # e.g. no response was flagged incoherent
                    continue
                part = rows[rows["subset"] == subset].set_index("judge_id").reindex(chunk)
                n = int(rows.loc[rows["subset"] == subset, "n_items"].max())
                ax.errorbar(part["estimate"], y + offset, xerr=interval_errors(part), fmt=marker,
                            color=color, markersize=3.5, capsize=1.5, linewidth=0.9, label=f"{subset} (n≤{n})")
            ax.set_yticks(y, chunk)
            ax.set_ylim(len(chunk) - 0.5, -0.5)
            ax.set_xlim(-0.02, 1.02)
            gap_ax.axvline(0, color="0.5", linewidth=0.6)
            gap_ax.set_yticks(y, [])
            gap_ax.set_ylim(len(chunk) - 0.5, -0.5)
            if gap.empty:
                gap_ax.text(0.5, 0.5, "gap not computed\n(no accuracy_gap rows\nin this stats run)", transform=gap_ax.transAxes,
                            ha="center", va="center", fontsize=6, color="0.3")
                gap_ax.set_xticks([])
            else:
                part = gap.set_index("judge_id").reindex(chunk)
                gap_ax.errorbar(part["estimate"], y, xerr=interval_errors(part), fmt="s", color="black", markersize=3,
                                capsize=1.5, linewidth=0.9)
                for k in np.flatnonzero(part["estimate"].isna().to_numpy() & part.index.isin(gap["judge_id"])):
                    gap_ax.text(0, y[k], "undefined", fontsize=5, va="center", ha="center", color="0.3")
        axes[-1][0].set_xlabel("error rate against the human majority")
        axes[-1][1].set_xlabel("accuracy gap: coherent − incoherent\n(> 0: worse on incoherent responses)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)
        caption = interval_caption(pd.concat([rows, gap]), short=True)
        fig.suptitle(f"Are judges worse on incoherent responses? (judges sorted by the gap)\n{caption}")
    return fig


def bias_error_odds_ratios(data: FigureInputs) -> plt.Figure | None:
    """Odds ratio of a judge error for each response attribute (log scale, 1 = no effect), one column per attribute.

    Model terms are left to the ``bias_error_odds_ratios`` table (one column per model would not fit).
    Judges sorted by the odds ratio of the first attribute; every panel of an attribute shares its x axis.
    """
    rows = data.stats[data.stats["statistic"] == "error_odds_ratio"].copy()
    rows = rows[~rows["subset_value"].str.startswith("C(model)")]
    if rows.empty:
        return None
    rows["term"] = rows["subset_value"].map(term_label)
    preferred = ["incoherent", "log length (×e)", "refusal_marker=yes"]
    terms = [t for t in preferred if t in set(rows["term"])] + sorted(set(rows["term"]) - set(preferred))
    judges = sorted_by(rows[rows["term"] == terms[0]])
    judges += sorted(set(rows["judge_id"]) - set(judges))
    chunks = panel_chunks(judges)
    estimates = rows["estimate"].to_numpy()
    estimates = estimates[np.isfinite(estimates) & (estimates > 0)]
    # The axis covers the estimates (at least 0.1-10); intervals and separated fits beyond it end in arrows.
    low, high = (min(0.1, np.percentile(estimates, 5) / 1.5), max(10, np.percentile(estimates, 95) * 1.5)) if estimates.size else (0.1, 10)
    low, high = max(low, 1e-3), min(high, 1e3)
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(len(chunks), len(terms), figsize=(DOUBLE_COLUMN_IN, sum(0.2 * len(c) + 0.5 for c in chunks) + 0.9),
                                 sharex=True, squeeze=False, layout="constrained",
                                 gridspec_kw={"height_ratios": [len(c) for c in chunks]})
        for r, chunk in enumerate(chunks):
            y = np.arange(len(chunk))
            for ax, term in zip(axes[r], terms, strict=True):
                part = rows[rows["term"] == term].set_index("judge_id").reindex(chunk)
                estimate = part["estimate"].clip(low, high)
                errors = np.vstack([(estimate - part["ci_low"].clip(low, high)).clip(lower=0).fillna(0),
                                    (part["ci_high"].clip(low, high) - estimate).clip(lower=0).fillna(0)])
                inside = part["estimate"].between(low, high).to_numpy()
                ax.errorbar(estimate[inside], y[inside], xerr=errors[:, inside], fmt="o", color=OKABE_ITO[0], markersize=3,
                            capsize=1.5, linewidth=0.8)
                for marker, beyond in ((">", part["estimate"].to_numpy() > high), ("<", part["estimate"].to_numpy() < low)):
                    ax.plot(estimate[beyond], y[beyond], marker, color=OKABE_ITO[3], markersize=3.5, linestyle="none")
                for side, cut in ((">", part["ci_high"].to_numpy() > high), ("<", part["ci_low"].to_numpy() < low)):
                    ax.plot(np.full(int((cut & inside).sum()), high if side == ">" else low), y[cut & inside], side,
                            color=OKABE_ITO[0], markersize=2.5, linestyle="none")
                ax.axvline(1, color="0.5", linewidth=0.6)
                ax.set_xscale("log")
                ax.set_xlim(low / 1.3, high * 1.3)
                ax.set_yticks(y, chunk if ax is axes[r][0] else [])
                ax.set_ylim(len(chunk) - 0.5, -0.5)
                if r == 0:
                    ax.set_title(term)
        fig.supxlabel("odds ratio of a judge error (log scale; > 1: more errors); arrow: interval goes on, "
                      "orange arrow: estimate off the axis (see the table)", fontsize=7)
        fig.suptitle("Bias audit: when are judges wrong? Logistic regression of judge error on response attributes\n"
                     f"{interval_caption(rows, short=True)}")
    return fig


def variance_decomposition_figure(data: FigureInputs) -> plt.Figure | None:
    """Share of verdict variance per factor, largest first (residual last), with its interval."""
    rows = data.stats[data.stats["statistic"] == "variance_share"].copy()
    if rows.empty:
        return None
    rows["factor"] = rows["subset_value"]
    residual = rows["factor"] == "residual"
    rows = pd.concat([rows[~residual].sort_values("estimate", ascending=False), rows[residual]])
    with plt.rc_context(PAPER_STYLE):
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN * 1.4, 0.3 * len(rows) + 1.2), layout="constrained")
        y = np.arange(len(rows))
        ax.barh(y, rows["estimate"], color=OKABE_ITO[0])  # one series: one colour (factors are named on the axis)
        ax.errorbar(rows["estimate"], y, xerr=interval_errors(rows), fmt="none", ecolor="black", capsize=2, linewidth=0.8)
        ax.set_yticks(y, rows["factor"])
        ax.invert_yaxis()
        ax.set_xlabel("share of verdict variance")
        ax.set_title(f"Where does the verdict's variance come from?\n{interval_caption(rows, short=True)}", fontsize=7)
    return fig


def confusion_matrices(data: FigureInputs) -> plt.Figure | None:
    """One 2 x 2 matrix per judge against the human majority, sorted by accuracy; colour and % are row shares."""
    stats = data.stats
    counts = stats[stats["statistic"].isin(["tp", "fp", "fn", "tn"]) & (stats["subset"] == "all") & (stats["reference"] == HUMAN)]
    if counts.empty:
        return None
    accuracy = stats[(stats["statistic"] == "accuracy") & (stats["subset"] == "all") & (stats["reference"] == HUMAN)]
    judges = sorted_by(accuracy[accuracy["judge_id"].isin(set(counts["judge_id"]))])
    judges += sorted(set(counts["judge_id"]) - set(judges))
    # at most 4 matrices a row: every text stays at 7 pt where the report shows the figure (6 a row needed 5 pt)
    columns = min(4, len(judges))
    rows = int(np.ceil(len(judges) / columns))
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(rows, columns, figsize=(DOUBLE_COLUMN_IN, 1.8 * rows + 0.4), squeeze=False,
                                 layout="constrained")
        for ax, judge in zip(axes.ravel(), judges, strict=False):
            c = counts[counts["judge_id"] == judge].set_index("statistic")["estimate"]
            matrix = np.array([[c.get("tp", 0), c.get("fn", 0)], [c.get("fp", 0), c.get("tn", 0)]])
            shares = matrix / matrix.sum(axis=1, keepdims=True).clip(min=1)
            image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
            for i in range(2):
                for j in range(2):
                    ax.text(j, i, f"{int(matrix[i, j])}\n({shares[i, j]:.0%})", ha="center", va="center", fontsize=7,
                            color="white" if shares[i, j] > 0.6 else "black")
            ax.set_xticks([0, 1], ["unsafe", "safe"], fontsize=7)
            ax.set_yticks([0, 1], ["unsafe", "safe"], fontsize=7)
            ax.set_xlabel("judge", fontsize=7)
            ax.set_ylabel("humans", fontsize=7)
            ax.set_title(judge, fontsize=7)
        for ax in axes.ravel()[len(judges):]:
            ax.set_visible(False)
        fig.colorbar(image, ax=axes, shrink=0.5, label="share of the humans' row (colour and %)")
        fig.suptitle("Confusion matrices against the human majority (counts; judges sorted by accuracy)")
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
    "specification_curve": specification_curve,
    "safety_capability_plane": safety_capability_plane,
    "checkpoint_effects": checkpoint_effects,
    "error_by_coherence": error_by_coherence,
    "bias_error_odds_ratios": bias_error_odds_ratios,
    "variance_decomposition": variance_decomposition_figure,
    "confusion_matrices": confusion_matrices,
    "incoherence_scores": incoherence_scores,
    "harmful_rate_by_model": harmful_rate_by_model_figure,
}


# Beyond this many panels (comparison x outcome: three comparisons with two outcomes each are six) a figure with
# one panel per comparison and outcome is too wide (or tall) to read where shown: it is drawn once per comparison
# instead, saved as NAME__COMPARISON.
MAX_PANELS_PER_FIGURE = 3
PER_COMPARISON = {"finetune_effect_forest": "finetune_effect_paired", "conclusion_flip_matrix": "finetune_effect_paired",
                  "specification_curve": "finetune_effect_cell"}


def part_name(name: str, comparison: str, taken: set[str]) -> str:
    """``NAME__A-vs-B`` for one comparison's figure (file-name safe; the goal added when the pair repeats).

    >>> part_name("conclusion_flip_matrix", "comparison=ft 1 vs base|goal=code", set())
    'conclusion_flip_matrix__ft-1-vs-base'
    """
    pair, goal = comparison.removeprefix("comparison=").split("|goal=")
    for text in (pair, f"{pair}-{goal}"):
        candidate = f"{name}{FIGURE_PART_SEPARATOR}{re.sub(r'[^A-Za-z0-9._]+', '-', text).strip('-')}"
        if candidate not in taken:
            return candidate
    return f"{candidate}-{len(taken)}"


def figure_families(data: FigureInputs) -> Iterator[list[tuple[str, plt.Figure]]]:
    """For each entry of :data:`FIGURES`, the figures it draws as (file name, figure): none when the inputs do not
    support it, one, or one per comparison when it would have more than :data:`MAX_PANELS_PER_FIGURE` panels."""
    taken: set[str] = set()
    for name, draw in FIGURES.items():
        comparisons = comparison_keys(data.stats, PER_COMPARISON[name]) if name in PER_COMPARISON else []
        if len(comparisons) > 1 and panel_count(data.stats, PER_COMPARISON[name]) > MAX_PANELS_PER_FIGURE:
            drawn = []
            for comparison in comparisons:
                fig = draw(data, only=[comparison])
                if fig is not None:
                    drawn.append((part_name(name, comparison, taken), fig))
                    taken.add(drawn[-1][0])
        else:
            fig = draw(data)
            drawn = [(name, fig)] if fig is not None else []
        yield drawn


def draw_figures(data: FigureInputs) -> dict[str, plt.Figure]:
    """Every figure the inputs support, as matplotlib figures (not saved)."""
    return {name: fig for family in figure_families(data) for name, fig in family}


def make_figures(data: FigureInputs, out_dir: str | Path, *, formats: tuple[str, ...] = ("pdf", "png"),
                 dpi: int = PNG_DPI, progress: Callable[[], None] | None = None) -> list[Path]:
    """Draw and save every figure the inputs support in ``formats``; return the written files.

    The report embeds PNGs only (at a lower ``dpi``) and asks for nothing else; ``judgekit figures`` writes PDFs
    for papers too.
    ``progress`` is called once per entry of :data:`FIGURES`, drawn or not.
    """
    written: list[Path] = []
    for family in figure_families(data):
        for name, fig in family:
            written.extend(save_figure(fig, out_dir, name, formats=formats, dpi=dpi))
        if progress is not None:
            progress()
    return written
