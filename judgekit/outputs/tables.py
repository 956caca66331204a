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


def _markdown_cell(value: object) -> str:
    """A pipe or a line break in user text (a judge id, a model name) would end the cell or the row."""
    return " ".join(str(value).replace("|", "\\|").split("\n")).replace("\r", " ")


def to_markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(_markdown_cell, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(_markdown_cell, row)) + " |" for row in frame.itertuples(index=False)]
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
    return wide.fillna("—").reset_index()  # a cell with no number says so, not "nan"


def _pick(stats: pd.DataFrame, statistics: list[str], **equal: str) -> pd.DataFrame:
    rows = stats[stats["statistic"].isin(statistics)]
    for column, value in equal.items():
        rows = rows[rows[column] == value]
    return rows


def study_tables(stats: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, str]]:
    """The paper tables a stats table supports: name -> (table, caption)."""
    tables: dict[str, tuple[pd.DataFrame, str]] = {}
    metrics = ["accuracy", "precision", "recall", "f1", "fpr", "fnr", "mcc", "cohen_kappa"]
    rows = _pick(stats, metrics, reference="human_majority", subset="all")
    if not rows.empty:
        tables["judge_vs_human"] = (estimate_table(rows, rows="judge_id", columns="statistic", statistics=metrics),
                                    "Judges against the human majority (95% cluster-bootstrap intervals)")
    rows = stats[(stats["statistic"] == "cohen_kappa") & (stats["subset"] == "all") & ~stats["reference"].isin(
        ["human_majority", "majority_of_others", "humans", "human_soft"]) & (stats["judge_id"] != "judges")]
    rows = rows[rows["reference"].isin(set(rows["judge_id"]) | set(stats.loc[stats["reference"] == "human_majority", "judge_id"]))]
    if not rows.empty:
        tables["judge_agreement"] = (estimate_table(rows, rows="judge_id", columns="reference"),
                                     "Cohen's kappa between judges (row vs column)")
    rows = stats[stats["judge_id"].isin(["humans", "judges", "human_ceiling"]) & (stats["subset"] == "all")]
    if not rows.empty:
        tables["rater_agreement"] = (estimate_table(rows, rows="judge_id", columns="statistic"),
                                     "Agreement among annotators, among judges, and the human ceiling")
    calibration = ["ece", "ece_equal_mass", "mce", "brier", "log_loss", "auroc", "auprc"]
    rows = _pick(stats, calibration, reference="human_majority", subset="all")
    if not rows.empty:
        tables["calibration"] = (estimate_table(rows, rows="judge_id", columns="statistic", statistics=calibration),
                                 "Calibration of P(unsafe) against the human majority")
    effects = stats[stats["statistic"] == "finetune_effect"]
    if not effects.empty:
        p_values = stats[stats["statistic"] == "finetune_effect_p_value"].set_index(["judge_id", "subset"])["estimate"]
        frame = pd.DataFrame({
            "comparison": effects["model"] + " vs " + effects["base_model"],
            "goal": effects["finetune_goal"],
            "benchmark": effects["benchmark"].fillna("all"),
            "judge": effects["judge_id"],
            "effect": [format_estimate(e, lo, hi) for e, lo, hi in zip(effects["estimate"], effects["ci_low"], effects["ci_high"], strict=True)],
            "p": [format_estimate(p_values.get((j, s), float("nan")), float("nan"), float("nan"), digits=3)
                  for j, s in zip(effects["judge_id"], effects["subset"], strict=True)],
        })
        tables["conclusion_stability"] = (frame, "Fine-tuned minus base harmful rate under each judge (95% CI) and its two-sided p-value")
    return tables
