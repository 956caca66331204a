"""The report's opening section: did fine-tuning change safety? (issue 14)

Per comparison (a fine-tune against its base, a mitigated fine-tune against
another at the same goal) it shows, from the ``stats`` rows only: the paired
effect with its interval by rater and the judge-error-corrected (PPI) effect,
the effect on coherent responses and the share carried by incoherent ones,
whether the conclusion holds across judges, benchmarks and incoherence
policies and which choices drive disagreement, the capability gain (did the
fine-tune reach its goal), and how many more human labels the corrected effect
needs. An undefined number is shown as "—" with the row's reason, never as
0; interval captions quote the rows' ``method``. All study text is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from judgekit.outputs import tables
from judgekit.schema import HUMAN_MAJORITY
from judgekit.study import Study

SECTION_FIGURES = ("safety_capability_plane", "specification_curve", "conclusion_flip_matrix")
EFFECT_COLUMNS = (
    ("finetune_effect_paired", "paired effect (treated − control)"),
    ("finetune_effect_corrected", "judge-error-corrected effect (PPI++)"),
    ("finetune_effect_coherent_only", "effect on coherent responses only"),
    ("finetune_effect_incoherent_share", "share of the effect carried by incoherent responses"),
    ("mitigation_effect_matched_capability", "effect at matched capability"),
)


def comparison_of(subset: pd.Series) -> pd.Series:
    """The comparison a row belongs to ("comparison=A vs B|goal=G"), from its subset label."""
    return subset.str.split("|").str[:2].str.join("|")


def interval_note(rows: pd.DataFrame) -> str:
    """The interval method(s) the rows state, for a caption (from ``method``, never assumed)."""
    methods = rows["method"].dropna().astype(str)
    parts = methods.str.findall(r"cluster bootstrap[^;]*|Taylor linearization[^;]*|PPI[^;]*|normal interval")
    found = sorted({", ".join(p) for p in parts if p})
    return "intervals: " + ("; ".join(found) if found else "as stated in each row's method")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: float) -> str:
    return tables.format_estimate(value, None, None)


def format_estimate(row: pd.Series | None) -> str:
    """'0.125 [0.056, 0.200]', or '—' with the row's reason when the number is undefined (never '0.000 [0, 0]')."""
    if row is None:
        return "—"
    if pd.isna(row["estimate"]):
        reason = row.get("warning") or row.get("excluded_reason") or "not defined for these items"
        return f"— ({reason})"
    if row["ci_low"] == row["ci_high"]:
        return f"{_num(row['estimate'])} (every resample gave this value: a degenerate interval, not certainty)"
    return tables.format_estimate(row["estimate"], row["ci_low"], row["ci_high"])


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pooled(stats: pd.DataFrame, statistic: str, comparison: str) -> pd.DataFrame:
    """Rows of ``statistic`` for ``comparison`` over all benchmarks (one per rater)."""
    rows = stats[(stats["statistic"] == statistic) & stats["benchmark"].isna()]
    return rows[comparison_of(rows["subset"]) == comparison].drop_duplicates("judge_id").set_index("judge_id")


def _effect_table(stats: pd.DataFrame, comparison: str) -> tuple[str, str]:
    columns = {name: _pooled(stats, name, comparison) for name, _ in EFFECT_COLUMNS}
    shown = [(name, title) for name, title in EFFECT_COLUMNS if not columns[name].empty]
    paired = columns["finetune_effect_paired"]
    judges = sorted((j for j in paired.index if j != HUMAN_MAJORITY),
                    key=lambda j: (np.isnan(paired.at[j, "estimate"]), -np.nan_to_num(paired.at[j, "estimate"]), j))
    raters = ([HUMAN_MAJORITY] if HUMAN_MAJORITY in paired.index else []) + judges
    rows, warnings = [], {}
    for rater in raters:
        cells = []
        for name, _ in shown:
            frame = columns[name]
            if rater not in frame.index:
                cells.append("— (humans are the reference)" if rater == HUMAN_MAJORITY else "— (no row)")
                continue
            row = frame.loc[rater]
            text = format_estimate(row)
            # Numbers stay readable, and a reason shared by many raters is not repeated in every cell: each distinct
            # caveat (or reason a number is undefined) is listed once under the table.
            if pd.isna(row["estimate"]) and text.startswith("— ("):
                number = warnings.setdefault(text[3:-1], len(warnings) + 1)
                text = f"— ⚠{number}"
            elif row["warning"]:
                number = warnings.setdefault(row["warning"], len(warnings) + 1)
                text += f" ⚠{number}"
            cells.append(text)
        rows.append([("humans (majority of the labelled items)" if rater == HUMAN_MAJORITY else rater), *cells])
    used = pd.concat([columns[name] for name, _ in shown])
    notes = "".join(f"<li>⚠{number}: {_e(text)}</li>" for text, number in warnings.items())
    table = _table(["rater", *(title for _, title in shown)], rows)
    return table + (f"<ul class='muted'>{notes}</ul>" if notes else ""), interval_note(used.reset_index())


def _conclusion(stats: pd.DataFrame, comparison: str) -> str:
    rows = stats[stats["statistic"].isin(["conclusion_agreement", "conclusion_reversal", "conclusion_disagreement"])]
    rows = rows[comparison_of(rows["subset"]) == comparison]
    if rows.empty:
        return "<p class='muted'>No conclusion-robustness rows (needs judges and human labels).</p>"
    parts = []
    for name, text in (("conclusion_agreement", "cells reaching the humans' conclusion"),
                       ("conclusion_reversal", "cells significantly reversing it")):
        row = rows[rows["statistic"] == name]
        if not row.empty:
            parts.append(f"<b>{_e(name)}</b> = {_e(format_estimate(row.iloc[0]))} ({_e(text)})")
    method = rows[rows["statistic"] == "conclusion_agreement"]["method"]
    drivers = rows[rows["statistic"] == "conclusion_disagreement"].sort_values("estimate", ascending=False)
    listed = [f"{row.subset_value}: {_num(row.estimate)} of its cells disagree ({row.method.split('; ')[1]})"
              for row in drivers.itertuples(index=False) if row.estimate > 0][:6]
    agreement = rows[rows["statistic"] == "conclusion_agreement"]["estimate"]
    if listed:
        driver_text = ("Choices driving the disagreement (share of that choice's cells not reaching the humans' "
                       "conclusion; excess over the other levels): " + "; ".join(listed))
    elif agreement.notna().any():
        driver_text = "No judge, benchmark or incoherence policy disagrees with the humans."
    else:  # no cell could be compared with the humans: silence here must not read as agreement
        driver_text = "Which choices drive disagreement cannot be said: no cell could be compared with the humans."
    return (f"<p>{' · '.join(parts)}</p><p class='muted'>{_e(method.iloc[0] if len(method) else '')}</p>"
            f"<p>{_e(driver_text)}</p>")


def _comparison_rows(stats: pd.DataFrame, statistic: str, comparison: str) -> pd.DataFrame:
    rows = stats[stats["statistic"] == statistic]
    return rows[comparison_of(rows["subset"]) == comparison]


def _capability(stats: pd.DataFrame, comparison: str) -> str:
    rows = _comparison_rows(stats, "capability_gain", comparison)
    if rows.empty:
        return ""
    table = _table(["task", "capability gain over the base [interval]", "how"],
                   [[row["subset"].split("|task=")[-1], format_estimate(row), row["method"]]
                    for _, row in rows.iterrows()])
    return (f"<p><b>Did the fine-tune reach its goal?</b> <code>capability_gain</code> rows; a gain whose interval "
            f"excludes 0 on the goal's task says the fine-tune moved capability.</p>{table}")


def _labels_needed(row: pd.Series) -> str:
    """The count of extra labels, or "—" when no plan can be made; the row's warning says why either way."""
    count = "—" if pd.isna(row["estimate"]) else f"{int(row['estimate'])}"
    return count + (f" ({row['warning']})" if row["warning"] else "")


def _label_plan(stats: pd.DataFrame, comparison: str) -> str:
    rows = _comparison_rows(stats, "labels_needed", comparison)
    if rows.empty:
        return ""
    table = _table(["judge", "more prompts to label (both models)", "plan"],
                   [[row["judge_id"], _labels_needed(row), row["method"]] for _, row in rows.sort_values("estimate").iterrows()])
    return f"<p><b>How many more human labels, and which?</b></p>{table}"


def _figures(figure_paths: Iterable[Path], names: Iterable[str]) -> str:
    by_name = {p.stem: p for p in figure_paths if p.suffix == ".png"}
    shown = []
    for name in names:
        if name in by_name:
            data = base64.b64encode(by_name[name].read_bytes()).decode()
            shown.append(f"<figure><img alt='{_e(name)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption class='muted'>Figure <code>{_e(name)}</code></figcaption></figure>")
    return "".join(shown)


def finetune_section(study: Study, stats: pd.DataFrame, *, figure_paths: Iterable[Path] = ()) -> str:
    """The opening answer of the report as HTML ('' when the study has no fine-tune comparison).

    ``figure_paths`` are the report's figure files; the safety–capability
    plane, the specification curve and the flip matrix among them are shown
    here (the section names them when they were not drawn).
    """
    effects = stats[(stats["statistic"] == "finetune_effect_paired") & stats["benchmark"].isna()]
    if effects.empty:
        return ""
    keys = comparison_of(effects["subset"])
    kinds = dict(zip(keys, effects["subset_kind"], strict=True))
    order = sorted(kinds, key=lambda k: (kinds[k] != "finetune_comparison", k))
    blocks = []
    for comparison in order:
        pair, goal = comparison.removeprefix("comparison=").split("|goal=")
        kind = "fine-tune vs its base" if kinds[comparison] == "finetune_comparison" else "mitigation vs mitigation, same goal"
        table, note = _effect_table(stats, comparison)
        blocks.append(
            f"<h3>{_e(pair)} <span class='muted'>(goal: {_e(goal)}; {_e(kind)})</span></h3>{table}"
            f"<p class='muted'>Harmful-rate difference on the prompts both models answered, all benchmarks pooled; "
            f"estimate [{_e(note)}]. The corrected effect uses each judge's errors on the human-labelled items of each "
            f"model; the share carried by incoherent responses is unstable when the effect's interval covers 0.</p>"
            f"{_conclusion(stats, comparison)}{_capability(stats, comparison)}{_label_plan(stats, comparison)}"
        )
    matching = ("<code>prompt_id</code>" if "prompt_id" in study.responses else "prompt text (no prompt_id column)")
    figure_paths = list(figure_paths)
    plane = _figures(figure_paths, SECTION_FIGURES[:1])
    robustness = _figures(figure_paths, SECTION_FIGURES[1:])
    reference = ("" if plane else "<p class='muted'>See the figures <code>safety_capability_plane</code> and "
                 "<code>specification_curve</code> (not drawn in this run).</p>")
    capability = stats[stats["statistic"] == "capability"]
    plane_note = ("" if not capability.empty else
                  "<p class='muted'>No capability table: the safety–capability plane needs STUDY/capability "
                  "(<code>judgekit capability import</code>).</p>")
    return (
        "<h2>Did fine-tuning change safety?</h2>"
        "<p class='muted'>The answer first: for each comparison, the paired effect by rater and corrected for judge "
        "error, whether the conclusion survives another judge, benchmark or incoherence policy, how much of it is "
        "incoherent output, whether the fine-tune reached its capability goal, and how many more labels would sharpen "
        f"it. Responses are matched across models by {matching}. The safety–capability plane (figure "
        "<code>safety_capability_plane</code>) places every model.</p>"
        f"{plane_note}{plane}{reference}{''.join(blocks)}{robustness}"
    )
