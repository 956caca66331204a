"""Tables for papers: Markdown and LaTeX (booktabs), estimates always with their intervals.

No cell is ever bolded as "best": with overlapping intervals a point-estimate
ranking is not a finding.
"""

from __future__ import annotations

import math

import pandas as pd

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def format_estimate(estimate: float, low: float, high: float, *, digits: int = 3) -> str:
    """``0.904 [0.862, 0.936]``; ``n/a`` for a missing estimate; no interval when it is missing."""
    if estimate is None or (isinstance(estimate, float) and math.isnan(estimate)):
        return "n/a"
    fmt = lambda v: f"{round(float(v), digits) + 0.0:.{digits}f}"  # noqa: E731 - +0.0 avoids "-0.000"
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return fmt(estimate)
    return f"{fmt(estimate)} [{fmt(low)}, {fmt(high)}]"


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def to_latex(frame: pd.DataFrame, *, caption: str, label: str) -> str:
    columns = "l" + "r" * (len(frame.columns) - 1)
    lines = [
        r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{columns}}}", r"\toprule",
        " & ".join(latex_escape(c) for c in frame.columns) + r" \\", r"\midrule",
        *(" & ".join(latex_escape(v) for v in row) + r" \\" for row in frame.itertuples(index=False)),
        r"\bottomrule", r"\end{tabular}", rf"\caption{{{latex_escape(caption)}}}", rf"\label{{{label}}}", r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def estimate_table(stats: pd.DataFrame, *, rows: str, columns: str, statistics: list[str] | None = None,
                   digits: int = 3) -> pd.DataFrame:
    """Pivot long ``stats`` rows into a table of "estimate [low, high]" strings."""
    subset = stats if statistics is None else stats[stats["statistic"].isin(statistics)]
    cells = subset.assign(cell=[format_estimate(e, lo, hi, digits=digits) for e, lo, hi in
                                zip(subset["estimate"], subset["ci_low"], subset["ci_high"], strict=True)])
    wide = cells.pivot(index=rows, columns=columns, values="cell")
    if statistics is not None and columns == "statistic":
        wide = wide.reindex(columns=[s for s in statistics if s in wide.columns])
    return wide.reset_index()
