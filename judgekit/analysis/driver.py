"""``compute_stats``: run the blocks that apply to a study and collect the long ``stats`` table."""

from __future__ import annotations

import shutil
import sys

import pandas as pd

from judgekit.analysis.blocks import BLOCKS, STATISTIC_NAMES
from judgekit.analysis.inputs import study_arrays
from judgekit.analysis.rows import RowWriter
from judgekit.analysis.settings import StatsSettings
from judgekit.errors import InputError
from judgekit.store.study import Study


def compute_stats(study: Study, settings: StatsSettings, *, version: str,
                  only: tuple[str, ...] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All statistics that apply to the tables present: (stats table, reliability-curve table).

    ``only`` names statistics (see ``STATISTIC_NAMES``): just the blocks that
    write them run, and just their rows are kept.
    """
    if only is not None:
        unknown = sorted(set(only) - set(STATISTIC_NAMES))
        if unknown:
            raise InputError(f"--only: unknown statistic {unknown[0]!r}; known: {', '.join(STATISTIC_NAMES)}")
    blocks = [b for b in BLOCKS if only is None or set(b.statistics) & set(only)]
    writer = RowWriter(study_arrays(study, settings.incoherent), settings, version)
    reliability = pd.DataFrame()
    progress = _progress(blocks, settings.progress)
    for block in progress:
        progress.set_postfix_str(block.name)  # the blocks differ in cost: name the one running
        result = block.run(writer, writer.data)
        if isinstance(result, pd.DataFrame):
            reliability = result
    stats = pd.DataFrame(writer.rows)
    if only is not None and len(stats):
        stats = stats[stats["statistic"].isin(only)].reset_index(drop=True)
    return stats, reliability


def undefined_lines(stats: pd.DataFrame, only: tuple[str, ...] | None = None) -> list[str]:
    """One line per statistic with rows that came out undefined (NaN estimate), with their commonest reasons;
    and one per statistic named in ``only`` that has no row at all."""
    lines = [f"{name}: no row (nothing in this study it applies to)" for name in only or ()
             if stats.empty or name not in set(stats["statistic"])]
    if stats.empty:
        return lines
    for name, rows in stats.groupby("statistic", sort=False):
        undefined = rows[rows["estimate"].isna()]
        if undefined.empty:
            continue
        reasons = undefined["warning"].fillna("").str.removeprefix("undefined: ").replace("", "no reason recorded")
        reasons = reasons.value_counts()
        shown = "; ".join(f"{reason} ({count})" if len(reasons) > 1 else reason
                          for reason, count in reasons.head(2).items())
        more = f"; {len(reasons) - 2} other reasons" if len(reasons) > 2 else ""
        lines.append(f"{name}: undefined in {len(undefined)} of {len(rows)} rows: {shown}{more}")
    return lines


def _progress(blocks: list, enabled: bool):
    """The blocks, behind a progress bar with an ETA on stderr when asked for and stderr is a terminal."""
    from tqdm import tqdm

    # A pseudo-terminal of unknown size (0 x 0: `script`, CI runners, a pty in tests) makes tqdm read -1 rows and hide
    # the bar as "below the screen"; shutil falls back to 80 x 24 there.
    size = shutil.get_terminal_size()
    return tqdm(blocks, desc="stats", unit="block", file=sys.stderr, disable=None if enabled else True,
                ncols=size.columns, nrows=size.lines)
