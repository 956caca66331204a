"""Figures, tables and captions at 14 and 30 judges (tests/scale_study.py): judges sorted by the statistic shown,
at most ROWS_PER_PANEL judges per panel with shared axes, no colour used for two series, undefined kappa shown
as undefined (never 0), captions written from the rows."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from judgekit.analysis import StatsSettings, compute_stats
from judgekit.outputs.figures import FIGURES, draw_figures
from judgekit.outputs.style import ROWS_PER_PANEL, FigureInputs
from judgekit.outputs.tables import study_tables
from judgekit.store.study import load_study
from scale_study import build_scale_study, judge_ids

OURS = {"agreement_heatmap", "reliability_diagrams", "error_by_coherence", "bias_error_odds_ratios", "variance_decomposition",
        "confusion_matrices", "incoherence_scores", "harmful_rate_by_model"}
CONSTANT_JUDGE = judge_ids(2)[1]  # always says "safe" (scale_study.py)


@pytest.fixture(scope="module", params=[14, 30])
def scaled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, FigureInputs, dict]:
    study = load_study(build_scale_study(tmp_path_factory.mktemp("scale"), request.param, n_prompts=12))
    stats, reliability = compute_stats(study, StatsSettings(n_boot=30, seed=0, variance_resamples=30), version="t")
    data = FigureInputs(stats, reliability, study.flags, study.responses)
    figures = draw_figures(data)
    yield request.param, data, figures
    for fig in figures.values():
        plt.close(fig)


def rows(stats: pd.DataFrame, statistic: str, subset: str = "all", reference: str = "human_majority") -> pd.Series:
    part = stats[(stats["statistic"] == statistic) & (stats["subset"] == subset) & (stats["reference"] == reference)]
    return part.set_index("judge_id")["estimate"]


def tick_labels(ax: plt.Axes) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels() if t.get_text()]


def test_every_figure_is_drawn(scaled) -> None:
    _, _, figures = scaled
    assert OURS <= set(figures)
    assert {name.split("__")[0] for name in figures} <= set(FIGURES)  # NAME__COMPARISON: one per comparison


def test_no_colour_stands_for_two_series(scaled) -> None:
    _, _, figures = scaled
    for name, fig in figures.items():
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        colours = []
        for legend in legends:
            for handle in legend.legend_handles:
                colour = handle.get_color() if hasattr(handle, "get_color") else handle.get_facecolor()
                colours.append(matplotlib.colors.to_hex(colour if not isinstance(colour, np.ndarray) or colour.ndim == 1 else colour[0]))
        assert len(colours) == len(set(colours)), (name, colours)


def test_forest_panels_hold_at_most_twelve_sorted_judges_on_shared_axes(scaled) -> None:
    n, data, figures = scaled
    gap = rows(data.stats, "accuracy_gap", subset="coherent-incoherent")
    for name in ("error_by_coherence", "bias_error_odds_ratios"):
        axes = [ax for ax in figures[name].axes if tick_labels(ax)]
        labels = [label for ax in axes for label in tick_labels(ax)]
        assert all(len(tick_labels(ax)) <= ROWS_PER_PANEL for ax in axes) and len(axes) >= 2
        assert sorted(labels) == sorted(judge_ids(n))
        columns = {}
        for ax in figures[name].axes:
            columns.setdefault(round(ax.get_position().x0, 2), set()).add(ax.get_xlim())
        assert all(len(limits) == 1 for limits in columns.values()), (name, columns)  # shared x per column
        if name == "error_by_coherence":
            assert labels == sorted(gap.index, key=lambda j: (np.isnan(gap[j]), -gap[j], j))


def test_heatmap_sorted_by_kappa_with_undefined_kappa_hatched(scaled) -> None:
    n, data, figures = scaled
    ax = figures["agreement_heatmap"].axes[0]
    kappa = rows(data.stats, "cohen_kappa").drop(CONSTANT_JUDGE)  # its kappa is undefined: listed last
    assert tick_labels(ax) == ["human_majority", *kappa.sort_values(ascending=False, kind="stable").index, CONSTANT_JUDGE]
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 2 * n  # the constant judge against every other rater, both halves of the matrix
    cells = [t.get_text() for t in ax.texts]
    if n > 20:
        assert cells == []  # colour only; the intervals are in the judge_agreement table
    else:
        assert cells and not any("[" in c for c in cells) and cells.count("undef.") == 2 * n


def test_grids_sorted_by_the_statistic_shown(scaled) -> None:
    _, data, figures = scaled
    accuracy = rows(data.stats, "accuracy")
    titles = [ax.get_title() for ax in figures["confusion_matrices"].axes if ax.get_title()]
    assert titles == sorted(accuracy.index, key=lambda j: (-accuracy[j], j))
    ece = rows(data.stats, "ece")
    tops = [ax.get_title().split("\n")[0] for ax in figures["reliability_diagrams"].axes if "ECE" in ax.get_title()]
    assert tops == sorted(ece.index, key=lambda j: (ece[j], j))


def test_harmful_rates_facet_by_model_and_colour_by_benchmark(scaled) -> None:
    n, _, figures = scaled
    axes = [ax for ax in figures["harmful_rate_by_model"].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["base-7b", "base-7b-ft-chat", "base-7b-ft-coding"]
    assert len(tick_labels(axes[0])) == n + 1 and tick_labels(axes[0])[0] == "human_majority"
    assert len({ax.get_xlim() for ax in axes}) == 1


def test_tables_say_undefined_and_name_their_intervals(scaled) -> None:
    _, data, _ = scaled
    tables = study_tables(data.stats)
    frame, caption = tables["judge_vs_human"]
    row = frame.set_index("judge_id").loc[CONSTANT_JUDGE]
    assert row["cohen_kappa"] == f"undefined ({CONSTANT_JUDGE} always says safe)"
    assert "95% intervals: clustered Wilson (Korn–Graubard)" in caption and "BCa cluster bootstrap" in caption
    gap, gap_caption = tables["accuracy_by_coherence"]
    assert gap["gap (coherent − incoherent)"].str.match(r"^-?\d\.\d{3} \[").all()
    for name in ("bias_error_odds_ratios", "bias_accuracy_by_attribute", "judge_accuracy_tests", "variance_components"):
        assert name in tables
    more = set(tables["more_statistics"][0]["statistic"])  # what no other table or figure shows
    assert {"scott_pi", "pabak", "brier_resolution", "ranking_kendall_tau"} <= more and not more & {"cohen_kappa", "accuracy"}


def test_saved_png_grows_with_the_judges(scaled, tmp_path: Path) -> None:
    """The PNG is tall enough for every judge's row (at least 0.2 in per judge)."""
    n, _, figures = scaled
    from PIL import Image

    fig = figures["error_by_coherence"]
    path = tmp_path / "error_by_coherence.png"
    fig.savefig(path, dpi=100)
    width, height = Image.open(path).size
    assert height >= 0.2 * 100 * n  # at least 0.2 in per judge row
