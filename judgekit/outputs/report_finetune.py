"""The report's opening section: did fine-tuning change safety? (issue 14)

Per comparison (a fine-tune against its base, a mitigated fine-tune against
another at the same goal) it shows, from the ``stats`` rows only: the paired
effect with its interval by rater and the judge-error-corrected (PPI) effect,
the effect on coherent responses and the share carried by incoherent ones,
whether the conclusion holds across judges, benchmarks and incoherence
policies and which choices drive disagreement, the capability gain (did the
fine-tune reach its goal), and how many more human labels the corrected effect
needs. It opens with one sentence per comparison giving each outcome's effect
(harmful compliance, over-refusal, incoherence: never pooled), the direction
in the outcome's own words and how many judges agree in sign; the tables
follow, one per outcome. An undefined number is shown as "—" with the row's
reason, never as 0; interval captions quote the rows' ``method`` (per-judge
numbers such as PPI weights are left to the rows). All study text is escaped.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from judgekit.analysis.outcomes import DEFAULT_OUTCOME, OUTCOMES
from judgekit.outputs import tables
from judgekit.store.schema import HUMAN_MAJORITY
from judgekit.store.study import Study

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
    parts = methods.str.findall(r"cluster bootstrap[^;]*|Taylor linearization[^;]*|PPI[^;]*|normal interval|Newcombe[^;]*")
    # Per-judge numbers (PPI weights, t degrees of freedom) would list one variant per judge: summarised once.
    found = sorted({_summarised(", ".join(p)) for p in parts if p})
    return "intervals: " + ("; ".join(found) if found else "as stated in each row's method")


# "(lambda 0.3)" and ", lambda 0.319, 0.124" (one weight per arm) alike
_PER_ROW_NUMBERS = ((re.compile(r"\s*\(lambda[^)]*\)|,? lambda -?[0-9.]+(?:e-?[0-9]+)?(?:, -?[0-9.]+(?:e-?[0-9]+)?)*"),
                     " (λ per judge and model: in each row's method)"),
                    (re.compile(r"\bt\(\d+\)"), "t(clusters − 1)"),
                    # one cluster count per comparison and outcome (em_political: nine variants in one title)
                    (re.compile(r"\bover \d+ clusters\b"), "over each row's clusters"))


def _summarised(method: str) -> str:
    for pattern, replacement in _PER_ROW_NUMBERS:
        method = pattern.sub(replacement, method)
    return method


def outcome_of(stats: pd.DataFrame) -> pd.Series:
    """Each row's outcome; stats written before outcomes existed count harmful compliance."""
    if "outcome" not in stats:
        return pd.Series(DEFAULT_OUTCOME, index=stats.index)
    return stats["outcome"].fillna(DEFAULT_OUTCOME)


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


def _pooled(stats: pd.DataFrame, statistic: str, comparison: str, outcome: str) -> pd.DataFrame:
    """Rows of ``statistic`` for ``comparison`` and ``outcome`` over all benchmarks (one per rater)."""
    rows = _comparison_rows(stats, statistic, comparison, outcome)
    return rows[rows["benchmark"].isna()].drop_duplicates("judge_id").set_index("judge_id")


def _share(row: pd.Series) -> str:
    """A share with its interval; "—" with why when the number is not a share (outside [0, 1]), and a note when
    only its interval leaves [0, 1]."""
    if pd.notna(row["estimate"]) and not 0 <= row["estimate"] <= 1:
        return (f"— (not a share: the incoherent part is {_num(row['estimate'])} times the effect, so the effect and "
                "its incoherent part differ in sign or the effect is near 0)")
    text = format_estimate(row)
    if pd.notna(row["estimate"]) and (row["ci_low"] < 0 or row["ci_high"] > 1):
        text += " (the interval leaves [0, 1]: the effect is too uncertain for its share to be read)"
    return text


def _missing_reason(statistic: str, rater: str, paired: pd.DataFrame, outcome: str) -> str:
    """Why a rater has no row of ``statistic`` in a comparison's table (the stats writer skipped it, for this reason)."""
    if statistic == "finetune_effect_corrected":
        return ("humans are the reference" if rater == HUMAN_MAJORITY
                else "no human labels of this outcome to correct the judge with")
    if statistic in ("finetune_effect_coherent_only", "finetune_effect_incoherent_share"):
        if outcome == "incoherent":
            return "not split by coherence: the outcome is incoherence itself"
        if rater in paired.index and pd.isna(paired.at[rater, "estimate"]):
            return "the paired effect is undefined"
        return "no incoherence flags for these responses (judgekit flag STUDY)"
    return "no capability of both models on the goal's task"


def _effect_table(stats: pd.DataFrame, comparison: str, outcome: str) -> tuple[str, str]:
    columns = {name: _pooled(stats, name, comparison, outcome) for name, _ in EFFECT_COLUMNS}
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
                cells.append(f"— ({_missing_reason(name, rater, paired, outcome)})")
                continue
            row = frame.loc[rater]
            text = _share(row) if name == "finetune_effect_incoherent_share" else format_estimate(row)
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


def _conclusion(stats: pd.DataFrame, comparison: str, outcome: str) -> str:
    rows = pd.concat([_comparison_rows(stats, name, comparison, outcome)
                      for name in ("conclusion_agreement", "conclusion_reversal", "conclusion_disagreement")])
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


def _comparison_rows(stats: pd.DataFrame, statistic: str, comparison: str, outcome: str | None = None) -> pd.DataFrame:
    """Rows of ``statistic`` for ``comparison`` (and ``outcome``, when given)."""
    rows = stats[stats["statistic"] == statistic]
    rows = rows[comparison_of(rows["subset"]) == comparison]
    return rows if outcome is None else rows[outcome_of(rows) == outcome]


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


_NUMBER = re.compile(r"\d+\.\d+")


def _label_plan(stats: pd.DataFrame, comparison: str, outcome: str) -> str:
    """Labels needed per judge. Judges whose plans read the same but for some numbers (half-widths) share one row:
    the numbers they share are written in, the others shown as "…" and listed once per judge."""
    rows = _comparison_rows(stats, "labels_needed", comparison, outcome)
    if rows.empty:
        return ""
    plans: dict[str, list[tuple[str, list[str]]]] = {}
    for _, row in rows.sort_values(["estimate", "judge_id"]).iterrows():
        text = f"{_labels_needed(row)}\x1f{row['method'].replace(f'--judge {row.judge_id} ', '--judge JUDGE ')}"
        plans.setdefault(_NUMBER.sub("\x1e", text), []).append((row["judge_id"], _NUMBER.findall(text)))
    table_rows = []
    for template, judges in plans.items():
        columns = list(zip(*(numbers for _, numbers in judges), strict=True))
        differing = [k for k, values in enumerate(columns) if len(set(values)) > 1]
        pieces = template.split("\x1e")
        text = pieces[0] + "".join(("…" if k in differing else columns[k][0]) + piece
                                   for k, piece in enumerate(pieces[1:]))
        count, plan = text.split("\x1f")
        if differing:
            plan += " — the numbers shown as … per judge: " + "; ".join(
                f"{judge}: {', '.join(numbers[k] for k in differing)}" for judge, numbers in judges)
        table_rows.append([", ".join(judge for judge, _ in judges), count, plan])
    table = _table(["judge(s)", "more prompts to label (both models)", "plan"], table_rows)
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


def _signed(value: float) -> str:
    """'+0.176' / '−0.620' (a true minus sign), with the exact value kept in a <data> element for readers."""
    text = f"{round(float(value), 3) + 0.0:+.3f}".replace("-", "−")
    return f"<data value='{float(value)!r}'>{text}</data>"


def answer_rows(stats: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison × outcome: the lead estimate (the humans' paired effect, else none) and the judges.

    Columns: ``comparison``, ``outcome``, ``rater`` (``human_majority`` or
    empty), ``estimate``, ``ci_low``, ``ci_high``, ``n_judges`` (judges with a
    defined effect), ``n_agree`` (of them, same sign as the humans),
    ``judge_low``/``judge_high`` (the judges' range), ``words`` (the
    conclusion in the outcome's words), ``warning``.
    """
    effects = stats[(stats["statistic"] == "finetune_effect_paired") & stats["benchmark"].isna()]
    out = []
    for (comparison, outcome), part in effects.groupby([comparison_of(effects["subset"]), outcome_of(effects)], sort=False):
        judges = part[(part["judge_id"] != HUMAN_MAJORITY) & part["estimate"].notna()]
        human = part[part["judge_id"] == HUMAN_MAJORITY]
        lead = human.iloc[0] if len(human) and pd.notna(human.iloc[0]["estimate"]) else None
        record = {"comparison": comparison, "outcome": outcome, "n_judges": len(judges),
                  "judge_low": judges["estimate"].min() if len(judges) else np.nan,
                  "judge_high": judges["estimate"].max() if len(judges) else np.nan}
        if lead is None:
            record |= {"rater": "", "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_agree": 0,
                       "words": "", "warning": human.iloc[0]["warning"] if len(human) else
                       next((w for w in part["warning"] if w), "no human labels")}
        else:
            record |= {"rater": HUMAN_MAJORITY, "estimate": lead["estimate"], "ci_low": lead["ci_low"],
                       "ci_high": lead["ci_high"], "warning": lead["warning"],
                       "n_agree": int((np.sign(judges["estimate"]) == np.sign(lead["estimate"])).sum()),
                       "words": OUTCOMES[outcome].direction_words(lead["estimate"], lead["ci_low"], lead["ci_high"])}
        out.append(record)
    return pd.DataFrame(out)


def _answer(stats: pd.DataFrame, order: list[str], names: dict[str, str]) -> str:
    """One sentence per comparison: each outcome's effect, from the humans, with how many judges agree in sign."""
    rows = answer_rows(stats)
    sentences = []
    for comparison in order:
        parts = []
        part = rows[rows["comparison"] == comparison]
        for outcome in [o for o in OUTCOMES if o in set(part["outcome"])]:
            row = part[part["outcome"] == outcome].iloc[0]
            noun = _e(OUTCOMES[outcome].noun)
            judges = (f"{row['n_agree']} of {row['n_judges']} judges agree in sign" if row["n_judges"] else "no judge")
            if row["rater"] and row["estimate"] == 0 and row["n_judges"]:  # no sign to agree with
                judges = f"the judges' effects range from {row['judge_low']:+.3f} to {row['judge_high']:+.3f}".replace("-", "−")
            if row["rater"]:
                interval = (" (degenerate interval: every resample gave this value)" if row["ci_low"] == row["ci_high"]
                            else f" [{_signed(row['ci_low'])}, {_signed(row['ci_high'])}]")
                parts.append(f"{noun} {_signed(row['estimate'])}{interval} (humans; {_e(judges)}: {_e(row['words'])})")
            elif row["n_judges"] == 1:  # one rater, such as judgekit's incoherence flags: its own effect
                only = _lone_rater(stats, comparison, outcome)
                parts.append(f"{noun} {_signed(only['estimate'])} [{_signed(only['ci_low'])}, {_signed(only['ci_high'])}] "
                             f"({_e(only['judge_id'])}; no human labels of it: "
                             f"{_e(OUTCOMES[outcome].direction_words(only['estimate'], only['ci_low'], only['ci_high']))})")
            elif row["n_judges"]:
                parts.append(f"{noun}: no human effect ({_e(row['warning'])}); the {row['n_judges']} judges' effects "
                             f"range from {_signed(row['judge_low'])} to {_signed(row['judge_high'])}")
            else:
                parts.append(f"{noun}: undefined ({_e(row['warning'] or 'no rater measures it')})")
        capability = _capability_levels(stats, comparison)
        sentences.append(f"<li><b>{_e(names[comparison])}</b>: {'; '.join(parts)}{capability}.</li>")
    return ("<p><b>The answer.</b> Paired effect (treated − control) on the prompts both models answered, per outcome "
            "on its own prompts (harmful compliance on harmful prompts, over-refusal on benign prompts), with its 95% "
            f"interval; every outcome is a bad thing, so a positive effect is a change for the worse.</p>"
            f"<ul class='answer'>{''.join(sentences)}</ul>")


def _capability_levels(stats: pd.DataFrame, comparison: str) -> str:
    """'; capability on TASK: A 0.48 [..] vs B 0.31 [..]' for the comparison's goal task, '' without capability rows:
    with the outcomes it shows a mitigation's trade-off (harm removed, over-refusal added, capability kept?)."""
    pair, goal = comparison.removeprefix("comparison=").split("|goal=")
    models = pair.split(" vs ", 1)
    rows = stats[(stats["statistic"] == "capability") & (stats["finetune_goal"] == goal) & stats["model"].isin(models)]
    rows = rows.drop_duplicates("model").set_index("model")
    if len(rows) < 2:
        return ""
    levels = " vs ".join(f"{_e(m)} {_e(tables.format_estimate(rows.at[m, 'estimate'], rows.at[m, 'ci_low'], rows.at[m, 'ci_high']))}"
                         for m in models)
    return f"; capability on {_e(rows['subset_value'].iloc[0])}: {levels}"


def _lone_rater(stats: pd.DataFrame, comparison: str, outcome: str) -> pd.Series:
    rows = _pooled(stats, "finetune_effect_paired", comparison, outcome)
    return rows[rows["estimate"].notna()].reset_index().iloc[0]


def _comparison_names(study: Study, order: list[str]) -> dict[str, str]:
    """'A vs B' plus the treated model's mitigation when the responses name one."""
    mitigation = {}
    if {"model", "mitigation"} <= set(study.responses.columns):
        known = study.responses.dropna(subset=["model", "mitigation"]).drop_duplicates("model")
        mitigation = dict(zip(known["model"], known["mitigation"], strict=True))
    names = {}
    for comparison in order:
        pair, goal = comparison.removeprefix("comparison=").split("|goal=")
        treated = pair.split(" vs ", 1)[0]
        extra = [f"goal {goal}"] if goal != "None" else []
        extra += [str(mitigation[treated])] if mitigation.get(treated, "none") != "none" else []
        names[comparison] = pair + (f" ({', '.join(extra)})" if extra else "")
    return names


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
    names = _comparison_names(study, order)
    blocks = []
    for comparison in order:
        goal = comparison.split("|goal=")[1]
        kind = ("mitigation vs mitigation, same goal" if kinds[comparison] != "finetune_comparison" else
                "fine-tune vs its base" if goal != "None" or not names[comparison].endswith(")")
                else "mitigation vs the model without it")
        outcomes = [o for o in OUTCOMES if (outcome_of(effects[keys == comparison]) == o).any()]
        parts = []
        for outcome in outcomes:
            table, note = _effect_table(stats, comparison, outcome)
            parts.append(
                f"<h4>{_e(OUTCOMES[outcome].noun)} <span class='muted'>(outcome <code>{_e(outcome)}</code>)</span></h4>"
                f"{table}<p class='muted'>Rate difference on the prompts both models answered, all benchmarks pooled; "
                f"estimate [{_e(note)}]. The corrected effect uses each judge's errors on the human-labelled items of "
                "each model; the share carried by incoherent responses is unstable when the effect's interval covers "
                f"0.</p>{_conclusion(stats, comparison, outcome)}{_label_plan(stats, comparison, outcome)}")
        blocks.append(f"<h3>{_e(names[comparison])} <span class='muted'>({_e(kind)})</span></h3>"
                      f"{''.join(parts)}{_capability(stats, comparison)}")
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
        f"{_answer(stats, order, names)}"
        "<p class='muted'>Then, for each comparison and outcome, the paired effect by rater and corrected for judge "
        "error, whether the conclusion survives another judge, benchmark or incoherence policy, how much of it is "
        "incoherent output, whether the fine-tune reached its capability goal, and how many more labels would sharpen "
        f"it. Responses are matched across models by {matching}. The safety–capability plane (figure "
        "<code>safety_capability_plane</code>) places every model.</p>"
        f"{plane_note}{plane}{reference}{''.join(blocks)}{robustness}"
    )
