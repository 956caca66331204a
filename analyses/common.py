"""Shared plumbing of the reproduction scripts: convert a shared dataset, compute statistics, write outputs."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from judgekit import __version__
from judgekit.engine.steps import convert_dataset_step, judge_step
from judgekit.analysis import StatsSettings, compute_stats
from judgekit.store.study import Study, load_study
from judgekit.outputs.tables import to_latex, to_markdown

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "analyses" / "results"


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the dataset folders (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.exit(2, f"error: dataset folder {args.data} not found (pass --data)\n")
    return args


def converted(name: str, folder: Path, workdir: Path, *, judges: tuple[str, ...] = (), **kwargs) -> Study:
    """Convert ``folder`` with adapter ``name`` into ``workdir/name`` and optionally run judgekit judges on it."""
    out = workdir / name
    convert_dataset_step(name, folder, out, table_format=".parquet", **kwargs)
    if judges:
        judge_step(out, list(judges), progress=False)
    return load_study(out)


def statistics(study: Study, args: argparse.Namespace) -> pd.DataFrame:
    stats, _ = compute_stats(study, StatsSettings(n_boot=args.n_boot, seed=args.seed), version=__version__)
    return stats


def workdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="judgekit-analysis-")


def save_figure(fig, path: Path) -> None:
    """``path`` (PNG, 150 dpi) and a PDF beside it; the figure is closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=150)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


def write_outputs(out_dir: Path, name: str, table: pd.DataFrame, *, caption: str, preface: str = "") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / f"{name}.md"
    markdown.write_text((f"{preface}\n\n" if preface else "") + to_markdown(table), encoding="utf-8")
    latex = out_dir / f"{name}.tex"
    latex.write_text(to_latex(table, caption=caption, label=f"tab:{name}"), encoding="utf-8")
    return [markdown, latex]
