"""One look for every judgekit figure: the colour-blind-safe palette, paper sizes,
literal text, and saving as PDF plus 300-dpi PNG."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# Okabe & Ito (2008) colour-blind-safe palette; yellow last (weak on white), black kept for human references.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442"]
# Beyond about this many rows a panel's labels crowd: long lists of judges are split into panels with shared axes.
ROWS_PER_PANEL = 12
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
    # Judge ids, model names and categories are user text: "$x$" must print as typed, never as TeX math.
    "text.parse_math": False,
}


PNG_DPI = 300
# Set (to, say, 40) where nobody looks at the pixels: the test suite draws hundreds of figures (tests/conftest.py).
PNG_DPI_VARIABLE = "JUDGEKIT_FIGURE_DPI"
# A study with many comparisons makes figures of a metre or more (em_political's specification curve: 240
# megapixels at 300 dpi), which image viewers and PIL refuse to open; such a PNG gets fewer dots per inch.
PNG_MAX_PIXELS = 40_000_000


# The report shows figures at about 96 CSS px per inch (more on a high-density screen): 150 dpi stays sharp there and
# costs a quarter of the pixels of 300 dpi (PNG rendering dominated the report's CPU time; BENCHMARKS.md).
REPORT_PNG_DPI = 150


def png_dpi(width_in: float, height_in: float, *, dpi: int = PNG_DPI) -> int:
    """``dpi`` (``$JUDGEKIT_FIGURE_DPI`` when set: the tests draw at low dpi), or less where the PNG would exceed
    :data:`PNG_MAX_PIXELS` (the PDF keeps every detail)."""
    dpi = int(os.environ.get(PNG_DPI_VARIABLE) or dpi)
    return int(min(dpi, (PNG_MAX_PIXELS / max(width_in * height_in, 1e-9)) ** 0.5))


def _fit_suptitle(fig: plt.Figure) -> None:
    """Wrap the figure's title to the figure's width: a caption line wider than the figure (an interval method
    named in full) was cut off at both edges of the PNG."""
    title = fig._suptitle  # matplotlib keeps the suptitle Text here (no public setter for an existing one)
    if title is None:
        return
    width = max(int(fig.get_figwidth() * 72 / (title.get_fontsize() * 0.55)), 20)  # characters: about 0.55 em each
    title.set_text("\n".join(textwrap.fill(line, width) if len(line) > width else line
                             for line in title.get_text().split("\n")))


# A figure's title stays one short line; the method details (intervals, rules, legend, panels not drawn) are its
# caption, which travels in its files (the PNG's text chunk of this key, the PDF's Subject) and which the report
# prints under the figure.
PNG_CAPTION_KEY = "Description"


def set_caption(fig: plt.Figure, caption: str) -> None:
    """Give ``fig`` its caption: what its short title leaves out, in plain text (save_figure writes it)."""
    fig.judgekit_caption = caption


def figure_caption(fig: plt.Figure) -> str:
    """The caption set by :func:`set_caption`; '' when none."""
    return getattr(fig, "judgekit_caption", "")


def save_figure(fig: plt.Figure, out_dir: str | Path, name: str, *, formats: tuple[str, ...] = ("pdf", "png"),
                dpi: int = PNG_DPI) -> list[Path]:
    """Save in ``formats`` (PDF, and PNG at ``dpi``, less for a very large figure); return the paths.

    The PNG's dpi metadata is the dpi it was drawn at, so its pixel width over its dpi is its true width.
    """
    unknown = set(formats) - {"pdf", "png"}
    if unknown:
        raise ValueError(f"formats: unknown {sorted(unknown)}; known: pdf, png")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _fit_suptitle(fig)
    caption = figure_caption(fig)
    paths = []
    if "pdf" in formats:
        paths.append(out_dir / f"{name}.pdf")
        fig.savefig(paths[-1], bbox_inches="tight", metadata={"Subject": caption} if caption else None)
    if "png" in formats:
        # The tight box, not the figure size, is what the PNG holds (long titles and labels reach past the figure);
        # measured once and passed on, so savefig does not measure it again.
        fig.draw_without_rendering()  # the layout engine runs once here...
        box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(matplotlib.rcParams["savefig.pad_inches"])
        # ...and is then switched off, so that savefig neither lays the figure out again nor draws it twice
        fig.set_layout_engine("none")
        paths.append(out_dir / f"{name}.png")
        fig.savefig(paths[-1], dpi=png_dpi(box.width, box.height, dpi=dpi), bbox_inches=box,
                    metadata={PNG_CAPTION_KEY: caption} if caption else None)
    plt.close(fig)
    return paths


def distinct_colors(n: int) -> list[str]:
    """``n`` colours of the Okabe-Ito palette, never one twice: a figure with more series facets or labels directly.

    >>> distinct_colors(2)
    ['#0072B2', '#E69F00']
    """
    if n > len(OKABE_ITO):
        raise ValueError(f"{n} series but {len(OKABE_ITO)} distinguishable colours; split the figure into panels")
    return OKABE_ITO[:n]


def panel_chunks(items: list[str], *, size: int = ROWS_PER_PANEL) -> list[list[str]]:
    """``items`` (already sorted) in balanced consecutive panels of at most ``size``.

    >>> [len(c) for c in panel_chunks([str(k) for k in range(30)])]
    [10, 10, 10]
    """
    n_panels = max(1, -(-len(items) // size))
    per_panel = -(-len(items) // n_panels)
    return [items[k:k + per_panel] for k in range(0, len(items), per_panel)] or [[]]


def interval_errors(frame: pd.DataFrame) -> np.ndarray:
    low = (frame["estimate"] - frame["ci_low"]).clip(lower=0).fillna(0)
    high = (frame["ci_high"] - frame["estimate"]).clip(lower=0).fillna(0)
    return np.vstack([low.to_numpy(), high.to_numpy()])


@dataclass
class FigureInputs:
    """What figures read: the stats tables and the study's flags and responses (never recomputed), and the judge
    named to lead the answer (``report --lead-judge``; None: the report's rule)."""

    stats: pd.DataFrame
    reliability: pd.DataFrame | None = None
    flags: pd.DataFrame | None = None
    responses: pd.DataFrame | None = None
    lead_judge: str | None = None
