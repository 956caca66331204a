"""Paper figures drawn from the ``stats`` table (never recomputed here).

One style for every figure: Okabe-Ito colour-blind-safe palette, serif-free
sans fonts at paper sizes, every estimate with its interval. Each figure is
saved as PDF and 300-dpi PNG.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# Okabe & Ito (2008) colour-blind-safe palette; yellow last (weak on white), black kept for human references.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442"]
SINGLE_COLUMN_IN = 3.5
DOUBLE_COLUMN_IN = 7.0
PAPER_STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "pdf.fonttype": 42,
}


def _save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.pdf", out_dir / f"{name}.png"]
    fig.savefig(paths[0], bbox_inches="tight")
    fig.savefig(paths[1], dpi=300, bbox_inches="tight")
    plt.close(fig)
    return paths


def _interval_errors(frame: pd.DataFrame) -> np.ndarray:
    low = (frame["estimate"] - frame["ci_low"]).clip(lower=0).fillna(0)
    high = (frame["ci_high"] - frame["estimate"]).clip(lower=0).fillna(0)
    return np.vstack([low.to_numpy(), high.to_numpy()])


def agreement_by_coherence(stats: pd.DataFrame, *, statistic: str = "cohen_kappa") -> plt.Figure | None:
    """Judge vs human-majority agreement, one row per judge, split by the incoherence flag."""
    rows = stats[(stats["statistic"] == statistic) & (stats["reference"] == "human_majority")]
    if rows.empty:
        return None
    subsets = [s for s in ("all", "coherent", "incoherent") if s in set(rows["subset"])]
    judges = sorted(rows["judge_id"].unique())
    with plt.rc_context(PAPER_STYLE):
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN * 1.4, 0.45 * len(judges) + 1.0))
        offsets = np.linspace(-0.25, 0.25, len(subsets)) if len(subsets) > 1 else [0.0]
        for offset, subset, color, marker in zip(offsets, subsets, OKABE_ITO, "osD", strict=False):
            part = rows[rows["subset"] == subset].set_index("judge_id").reindex(judges)
            y = np.arange(len(judges)) + offset
            ax.errorbar(part["estimate"], y, xerr=_interval_errors(part), fmt=marker, color=color,
                        markersize=4, capsize=2, linewidth=1, label=f"{subset} (n≈{int(part['n_items'].median())})")
        ax.set_yticks(np.arange(len(judges)), judges)
        ax.invert_yaxis()
        ax.axvline(0, color="0.6", linewidth=0.6, zorder=0)
        label = {"cohen_kappa": "Cohen's κ", "percent_agreement": "percent agreement"}.get(statistic, statistic)
        ax.set_xlabel(f"{label} with the human majority (95% cluster-bootstrap CI)")
        ax.set_title("Judge agreement with humans, coherent vs incoherent responses")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(subsets), frameon=False)
    return fig


def harmful_rate_by_model(stats: pd.DataFrame) -> plt.Figure | None:
    """Harmfulness rate per model and judge (human majority included), one panel per benchmark."""
    rows = stats[(stats["statistic"] == "harmful_rate") & stats["subset"].str.startswith("model=")].copy()
    if rows.empty:
        return None
    parts = rows["subset"].str.split("|", expand=True)
    rows["model"] = parts[0].str.removeprefix("model=")
    rows["benchmark"] = parts[1].str.removeprefix("benchmark=") if parts.shape[1] > 1 else "all"
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
                ax.errorbar(part["estimate"], np.arange(len(models)) + offset, xerr=_interval_errors(part), fmt=marker,
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
                ax.errorbar(part["estimate"], np.arange(len(judges)) + offset, xerr=_interval_errors(part), fmt=marker,
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


def save_figure(fig: plt.Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Save as PDF and 300-dpi PNG."""
    return _save(fig, Path(out_dir), name)


FIGURES = {
    "agreement_by_coherence": agreement_by_coherence,
    "harmful_rate_by_model": harmful_rate_by_model,
}


def make_figures(stats: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Draw every figure the stats support; return the written files (PDF and PNG)."""
    written: list[Path] = []
    for name, draw in FIGURES.items():
        fig = draw(stats)
        if fig is not None:
            written.extend(_save(fig, Path(out_dir), name))
    return written
