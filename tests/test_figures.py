"""Every figure is drawn from the stats tables with the promised axes, panels and labels (checked on the
matplotlib objects), and the paper tables carry intervals."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from judgekit.outputs.figures import FIGURES, draw_figures
from judgekit.outputs.style import FigureInputs, figure_caption
from judgekit.store.io import read_table
from judgekit.store.schema import SCHEMAS
from judgekit.analysis import StatsSettings, compute_stats
from judgekit.store.study import load_study
from judgekit.outputs.tables import study_tables, to_latex

from test_stats_study import build_study


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> FigureInputs:
    path = build_study(tmp_path_factory.mktemp("fig"))
    study = load_study(path)
    stats, reliability = compute_stats(study, StatsSettings(n_boot=100, seed=0), version="t")
    return FigureInputs(stats, reliability, study.flags, study.responses)


@pytest.fixture(scope="module")
def figures(inputs: FigureInputs) -> dict[str, plt.Figure]:
    return draw_figures(inputs)


def visible_axes(fig: plt.Figure) -> list[plt.Axes]:
    return [ax for ax in fig.axes if ax.get_visible()]


# Figures this study cannot support: the safety-capability plane needs a capability table, the checkpoint figure a
# series of checkpoints (tests/test_small_studies.py draws it).
NOT_DRAWN_HERE = {"safety_capability_plane", "checkpoint_effects"}


def test_every_figure_is_drawn(figures) -> None:
    assert set(figures) == set(FIGURES) - NOT_DRAWN_HERE


def test_agreement_heatmap_cells_hold_intervals(figures) -> None:
    ax = figures["agreement_heatmap"].axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["human_majority", "j-good", "j-bad"]  # judges sorted by kappa with the humans
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == 6 and all("[" in c and "]" in c for c in cells)
    assert "Human ceiling" in figure_caption(figures["agreement_heatmap"])  # in the caption under the figure


def test_reliability_diagrams_one_panel_per_judge_with_counts(figures, inputs) -> None:
    axes = visible_axes(figures["reliability_diagrams"])
    judges = inputs.reliability["judge_id"].nunique()
    assert len(axes) == 2 * judges  # curve + count histogram per judge
    titles = [ax.get_title() for ax in axes if ax.get_title()]
    assert len(titles) == judges and all("ECE" in t and "[" in t for t in titles)
    assert axes[1].get_ylabel() == "items"  # the first column's count panel names the axis


def test_effect_forest_and_flip_matrix(figures) -> None:
    # One row of panels per benchmark (all first), one column per comparison x outcome (the flags give an
    # incoherence column beside harmful compliance), each column with its outcome's raters, humans on top.
    forest = visible_axes(figures["finetune_effect_forest"])
    benchmarks = [ax.get_title().splitlines()[-1] for ax in forest]
    assert benchmarks == ["benchmark: all"] * 2 + ["benchmark: b1"] * 2 + ["benchmark: b2"] * 2
    assert "harmful compliance" in forest[0].get_title() and "incoherence" in forest[1].get_title()
    assert "goal: coding" in forest[0].get_title()
    ticks = [t.get_text() for t in forest[0].get_yticklabels()]
    assert ticks[0] == "human_majority" and "j-good" in ticks
    assert [t.get_text() for t in forest[1].get_yticklabels()] == ["flags"]  # no phantom rows of the other outcome
    assert len({ax.get_xlim() for ax in forest}) == 1
    flip = visible_axes(figures["conclusion_flip_matrix"])
    assert len(flip) == 2  # harmful compliance, incoherence
    assert [t.get_text() for t in flip[0].get_xticklabels()] == ["b1", "b2"]
    # Cells show the effect only: the bootstrap tail share is not a probability that the conclusion flips.
    assert flip[0].texts and not any("flip" in t.get_text() for t in flip[0].texts)


def test_error_by_coherence_has_both_groups(figures) -> None:
    ax = figures["error_by_coherence"].axes[0]
    legend = [t.get_text() for t in figures["error_by_coherence"].legends[0].get_texts()]
    assert any(t.startswith("coherent") for t in legend) and any(t.startswith("incoherent") for t in legend)
    assert "error rate" in ax.get_xlabel()


def test_variance_confusion_incoherence_and_rates(figures, inputs) -> None:
    variance = figures["variance_decomposition"].axes[0]
    assert [t.get_text() for t in variance.get_yticklabels()][-1] == "residual"
    confusion = [ax for ax in visible_axes(figures["confusion_matrices"]) if ax.get_title()]
    assert len(confusion) == 2 and all(len(ax.texts) == 4 for ax in confusion)
    scores = visible_axes(figures["incoherence_scores"])
    assert [ax.get_title() for ax in scores] == ["repetition"]
    assert [t.get_text() for t in scores[0].get_yticklabels()] == ["base", "ft"]
    rates = visible_axes(figures["harmful_rate_by_model"])
    assert [ax.get_title() for ax in rates] == ["base", "ft"]  # one panel per model, benchmarks b1/b2 as colours
    assert [t.get_text() for t in figures["harmful_rate_by_model"].legends[0].get_texts()] == ["b1", "b2"]


def test_figures_need_no_flags_to_draw_the_rest(inputs) -> None:
    bare = draw_figures(FigureInputs(inputs.stats))
    assert "incoherence_scores" not in bare and "reliability_diagrams" not in bare and "agreement_heatmap" in bare


def test_tables_show_intervals_and_never_bold(inputs) -> None:
    tables = study_tables(inputs.stats)
    assert {"judge_vs_human", "judge_agreement", "rater_agreement", "calibration", "conclusion_stability"} <= set(tables)
    frame, caption = tables["judge_vs_human"]
    assert frame["accuracy"].str.match(r"^\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]$").all()
    latex = to_latex(frame, caption=caption, label="tab:x")
    assert "\\toprule" in latex and "\\textbf" not in latex and "judge\\_id &" in latex and "j-good" in latex


def test_cli_writes_pdf_png_and_tables(tmp_path: Path, full_resolution_figures) -> None:
    from conftest import run_cli

    study = build_study(tmp_path)
    assert run_cli("stats", study, "--out", tmp_path / "st", "--n-boot", "50").returncode == 0
    result = run_cli("figures", tmp_path / "st", "--out", tmp_path / "fig", "--study", study)
    assert result.returncode == 0, result.stderr
    for name in set(FIGURES) - NOT_DRAWN_HERE:
        assert (tmp_path / "fig" / f"{name}.pdf").stat().st_size > 1000
        assert (tmp_path / "fig" / f"{name}.png").stat().st_size > 10_000
    assert (tmp_path / "fig" / "tables" / "judge_vs_human.tex").exists()
    assert read_table(tmp_path / "st" / "reliability.parquet", SCHEMAS["reliability"])["count"].sum() > 0


def test_figures_format_png_writes_no_pdf(tmp_path: Path) -> None:
    from conftest import run_cli

    study = build_study(tmp_path)
    assert run_cli("stats", study, "--out", tmp_path / "st", "--n-boot", "20").returncode == 0
    result = run_cli("figures", tmp_path / "st", "--out", tmp_path / "fig", "--format", "png")
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "fig").glob("*.png")) and not list((tmp_path / "fig").glob("*.pdf"))
    assert run_cli("figures", tmp_path / "st", "--out", tmp_path / "f2", "--format", "svg").returncode == 2


def test_captions_and_titles_come_from_the_rows(inputs) -> None:
    """Relabel every row's interval level as 90%: no figure title or table caption may still say 95%."""
    stats = inputs.stats.assign(signature=inputs.stats["signature"].str.replace("-95%", "-90%", regex=False))
    relabelled = FigureInputs(stats, inputs.reliability, inputs.flags, inputs.responses)
    figures = draw_figures(relabelled)
    for name in ("agreement_heatmap", "error_by_coherence", "harmful_rate_by_model", "variance_decomposition",
                 "bias_error_odds_ratios", "reliability_diagrams"):
        fig = figures[name]
        texts = [fig._suptitle.get_text() if fig._suptitle else "", figure_caption(fig)] + [ax.get_title() for ax in fig.axes]
        assert any("90% intervals" in t for t in texts) and not any("95%" in t for t in texts), name
        plt.close(fig)
    for name, (_, caption) in study_tables(stats).items():
        assert "95%" not in caption, name
    assert "90% intervals" in study_tables(stats)["judge_vs_human"][1]


def test_a_very_large_figure_gets_a_png_image_viewers_open_and_a_normal_one_keeps_300_dpi(tmp_path,
                                                                                              full_resolution_figures) -> None:
    """em_political's specification curve was a 240-megapixel PNG (PIL refuses it as a decompression bomb)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from judgekit.outputs.style import PNG_MAX_PIXELS, save_figure

    for name, size in (("tall", (7.0, 120.0)), ("normal", (7.0, 4.0))):
        fig, ax = plt.subplots(figsize=size)
        ax.plot([0, 1], [0, 1])
        png = save_figure(fig, tmp_path, name)[1]
        with Image.open(png) as image:
            width, height = image.size
        assert width * height <= PNG_MAX_PIXELS * 1.05, (name, image.size)
        if name == "normal":  # 300 dpi of a 7 x 4 in figure, up to the tight box's trim
            assert width >= 0.8 * 7 * 300 and height >= 0.8 * 4 * 300
        else:
            assert height >= 10_000  # still readable: far above screen resolution
