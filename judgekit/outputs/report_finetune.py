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
from judgekit.stats.selection import DEFAULT_GAMMA
from judgekit.store.schema import HUMAN_MAJORITY
from judgekit.store.study import Study

SECTION_FIGURES = ("safety_capability_plane", "specification_curve", "conclusion_flip_matrix")
# A figure drawn once per comparison is saved as NAME__PART; the report groups the parts under NAME.
FIGURE_PART_SEPARATOR = "__"
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
    if pd.notna(row["estimate"]) and (row["ci_low"] < 0 or row["ci_high"] > 1):  # a share's interval stays in [0, 1]
        return (f"{_num(row['estimate'])} (no interval: it leaves [0, 1], the effect is too uncertain for its share "
                "to be read)")
    return format_estimate(row)


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
    agreement = rows[rows["statistic"] == "conclusion_agreement"]
    if not agreement["estimate"].notna().any():  # one line, not three paragraphs of dashes per comparison and outcome
        reason = next((w for w in agreement["warning"].fillna("") if w), "no cell could be compared with the humans")
        return ("<p class='muted'>Whether the conclusion survives another judge, benchmark or incoherence policy "
                f"cannot be said: {_e(reason.removeprefix('undefined: '))}.</p>")
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
    if listed:
        driver_text = ("Choices driving the disagreement (share of that choice's cells not reaching the humans' "
                       "conclusion; excess over the other levels): " + "; ".join(listed))
    else:
        driver_text = "No judge, benchmark or incoherence policy disagrees with the humans."
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


def _label_plan(stats: pd.DataFrame, comparison: str, outcome: str) -> str:
    """Labels needed per judge; judges whose plans read exactly alike share one row (no placeholders)."""
    rows = _comparison_rows(stats, "labels_needed", comparison, outcome)
    if rows.empty:
        return ""
    plans: dict[tuple[str, str], list[str]] = {}
    for _, row in rows.sort_values(["estimate", "judge_id"]).iterrows():
        plan = row["method"].replace(f"--judge {row.judge_id} ", "--judge JUDGE ")
        plans.setdefault((_labels_needed(row), plan), []).append(row["judge_id"])
    table = _table(["judge(s)", "more prompts to label (both models)", "plan"],
                   [[", ".join(judges), count, plan] for (count, plan), judges in plans.items()])
    return f"<p><b>How many more human labels, and which?</b></p>{table}"

def figure_family(path: Path) -> str:
    """The figure a file belongs to: ``conclusion_flip_matrix__a-vs-b`` (one part per comparison) -> its name."""
    return path.stem.split(FIGURE_PART_SEPARATOR)[0]


def png_size_in(path: Path) -> tuple[float, float]:
    """A PNG's width and height in inches, from its pixel size and its own dpi metadata (72 when it has none)."""
    from PIL import Image

    with Image.open(path) as image:
        dpi = image.info.get("dpi", (72, 72))[0] or 72
        return image.width / dpi, image.height / dpi


def png_caption(path: Path) -> str:
    """The caption a figure's PNG carries (``style.set_caption``: the details its short title leaves out); ''
    when none."""
    from PIL import Image

    from judgekit.outputs.style import PNG_CAPTION_KEY

    with Image.open(path) as image:
        return str(image.info.get(PNG_CAPTION_KEY, ""))


CSS_PX_PER_IN = 96


def embedded_figure(path: Path, caption: str = "") -> str:
    """A PNG embedded at its printed size (capped at the page width) and linked to its file for the full size,
    over its caption (``caption``, else the one the PNG carries, escaped, and the figure's name).

    The link is relative to the report (``figures/NAME.png`` beside ``report.html``); the picture itself is
    in the page, so the report stays readable when sent alone.
    """
    width_in, _ = png_size_in(path)
    data = base64.b64encode(path.read_bytes()).decode()
    href = f"{path.parent.name}/{path.name}"
    details = png_caption(path)
    text = caption or ((f"{_e(details)} " if details else "")
                       + f"(Figure <code>{_e(path.stem)}</code>; click for full size; PDF: <code>judgekit figures</code>)")
    return (f"<figure><a href='{_e(href)}'><img alt='{_e(path.stem)}' style='width:{round(width_in * CSS_PX_PER_IN)}px' "
            f"src='data:image/png;base64,{data}'></a><figcaption class='muted'>{text}</figcaption></figure>")


def _figures(figure_paths: Iterable[Path], names: Iterable[str]) -> str:
    """The PNGs of the named figures (each part of a figure drawn per comparison), in the order named."""
    pngs = [p for p in figure_paths if p.suffix == ".png"]
    return "".join(embedded_figure(p) for name in names for p in sorted(pngs) if figure_family(p) == name)


def _points(value: float, *, fine: bool = False, sign: bool = True) -> str:
    """A difference of rates in percentage points: '+35', '−2.5' (one decimal when ``fine``), true minus sign."""
    rounded = round(float(value) * 100, 1 if fine else 0) + 0.0
    if rounded == 0:
        return "0"
    return f"{rounded:{'+' if sign else ''}.{1 if fine else 0}f}".replace("-", "−")


def _percent_range(values: pd.Series) -> str:
    """'35%' or '2–6%' (the raters' range)."""
    values = values.dropna()
    low, high = (round(float(v) * 100) for v in (values.min(), values.max()))
    return f"{low}%" if low == high else f"{low}–{high}%"


# A verdict in a few words, from the interval's side of 0 (every outcome is worse when higher).
SHORT_VERDICTS = {"harmful_compliance": ("less safe", "safer"), "over_refusal": ("more over-refusal", "less over-refusal"),
                  "incoherent": ("more incoherent", "less incoherent")}
NO_CLEAR_CHANGE = "no clear change"


def short_verdict(outcome: str, low: float, high: float) -> str:
    """'less safe' / 'safer' / 'no clear change' (unknown outcomes: 'higher' / 'lower')."""
    rise, fall = SHORT_VERDICTS.get(outcome, ("higher", "lower"))
    return rise if low > 0 else fall if high < 0 else NO_CLEAR_CHANGE


def human_validated_judges(stats: pd.DataFrame) -> tuple[set[str] | None, dict[str, str]]:
    """Judges that agree with the humans better than chance (Cohen's κ with the human majority, interval above 0),
    and a note for each judge left out ('huang-classifier left out: κ −0.04 with humans').

    ``None`` when the stats hold no judge-vs-human κ (no human labels): every judge counts.
    """
    kappa = stats[(stats["statistic"] == "cohen_kappa") & (stats["reference"] == HUMAN_MAJORITY) & (stats["subset"] == "all")]
    if "dimension" in kappa:
        kappa = kappa[kappa["dimension"].isna()]
    kappa = kappa.drop_duplicates("judge_id").set_index("judge_id")
    if kappa.empty:
        return None, {}
    valid = {j for j in kappa.index if kappa.at[j, "ci_low"] > 0}
    left_out = {}
    for judge in sorted(set(kappa.index) - valid):
        row = kappa.loc[judge]
        value = ("undefined" if pd.isna(row["estimate"]) else
                 f"{tables.format_estimate(row['estimate'], row['ci_low'], row['ci_high'], digits=2)}".replace("-", "−"))
        left_out[judge] = f"{judge} left out: κ {value} with humans"
    return valid, left_out


def _rates(stats: pd.DataFrame, comparison: str, outcome: str, raters: Iterable[str]) -> tuple[pd.Series, pd.Series] | None:
    """The raters' rates of the outcome for (control, treated): pooled over benchmarks, else the study's only benchmark;
    None when the stats hold no such rates."""
    treated, control = comparison.removeprefix("comparison=").split("|goal=")[0].split(" vs ", 1)
    rows = stats[(stats["statistic"] == "harmful_rate") & (outcome_of(stats) == outcome) & stats["judge_id"].isin(list(raters))
                 & stats["model"].isin([treated, control]) & (stats["subset_kind"] == "group")]
    pooled = rows[rows["benchmark"].isna()]
    if pooled.empty and rows["benchmark"].nunique() == 1:
        pooled = rows
    if pooled.empty:
        return None
    by_model = {m: part.drop_duplicates("judge_id")["estimate"] for m, part in pooled.groupby("model")}
    if control not in by_model or treated not in by_model:
        return None
    return by_model[control], by_model[treated]


def answer_rows(stats: pd.DataFrame, *, lead_judge: str | None = None) -> pd.DataFrame:
    """One row per comparison × outcome, from the ``finetune_effect_paired`` rows pooled over benchmarks.

    Columns: ``comparison``, ``kind`` (the rows' ``subset_kind``), ``outcome``, ``rater`` (``human_majority`` or
    empty), ``estimate``/``ci_low``/``ci_high`` (the effect the answer leads with: the judge-corrected effect when
    part of the items carry human labels, else the humans' paired effect), ``lead`` (``corrected`` or ``humans``),
    ``corrected_by`` (the corrected effect's judge: the outcome's :func:`lead_judges`, one for every comparison;
    ``lead_judge`` names it where that judge has a corrected effect of the outcome), ``n_labels`` (its human-labelled items), ``selection`` (for
    convenience labels, the (low, high) range selection of odds up to Gamma allows, with sampling error; else
    None), ``n_judges`` (judges with a defined effect
    that count: with human labels, only those whose κ with the humans is above chance), ``n_agree`` (of them, the
    same verdict as the lead: interval above 0, below 0 or including 0), ``n_up``/``n_down``/``n_flat`` (judges
    by verdict), ``judge_low``/``judge_high`` (the judges' range), ``judges`` (their ids), ``validated`` (whether judges were checked against the humans), ``words`` (the humans'
    conclusion in the outcome's words), ``warning`` (why no effect is defined).
    """
    effects = stats[(stats["statistic"] == "finetune_effect_paired") & stats["benchmark"].isna()]
    valid, _ = human_validated_judges(stats)
    leads = lead_judges(stats, named=lead_judge)
    out = []
    for (comparison, outcome), part in effects.groupby([comparison_of(effects["subset"]), outcome_of(effects)], sort=False):
        judges = part[(part["judge_id"] != HUMAN_MAJORITY) & part["estimate"].notna()].drop_duplicates("judge_id")
        human = part[part["judge_id"] == HUMAN_MAJORITY]
        lead = human.iloc[0] if len(human) and pd.notna(human.iloc[0]["estimate"]) else None
        corrected = corrected_lead(stats, comparison, outcome, leads.get(outcome))
        if corrected is not None:
            lead = corrected
        # κ with the humans is about the safety verdict: it validates the raters of harmful compliance only
        validated = lead is not None and valid is not None and outcome == DEFAULT_OUTCOME
        if validated:
            judges = judges[judges["judge_id"].isin(valid)]
        verdicts = [short_verdict(outcome, lo, hi) for lo, hi in zip(judges["ci_low"], judges["ci_high"], strict=True)]
        rise, fall = SHORT_VERDICTS.get(outcome, ("higher", "lower"))
        record = {"comparison": comparison, "kind": part["subset_kind"].iloc[0], "outcome": outcome,
                  "validated": validated,
                  "n_judges": len(judges), "judges": tuple(judges["judge_id"]),
                  "n_up": verdicts.count(rise), "n_down": verdicts.count(fall), "n_flat": verdicts.count(NO_CLEAR_CHANGE),
                  "judge_ci_low": judges["ci_low"].iloc[0] if len(judges) == 1 else np.nan,  # a lone rater's interval
                  "judge_ci_high": judges["ci_high"].iloc[0] if len(judges) == 1 else np.nan,
                  "judge_ci_min": judges["ci_low"].min() if len(judges) else np.nan,  # the judges' intervals' envelope
                  "judge_ci_max": judges["ci_high"].max() if len(judges) else np.nan,
                  "judge_low": judges["estimate"].min() if len(judges) else np.nan,
                  "judge_high": judges["estimate"].max() if len(judges) else np.nan}
        if lead is None:
            record |= {"rater": "", "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_agree": 0, "words": "",
                       "lead": "", "corrected_by": "", "n_labels": 0, "selection": None,
                       "warning": human.iloc[0]["warning"] if len(human) and not len(judges) else
                       next((w for w in part["warning"] if w), "no rater measures it")}
        else:
            selection = selection_range(str(lead["warning"]))
            # convenience labels: the verdict holds only if it holds over the range selection could produce
            lead_verdict = short_verdict(outcome, *(selection or (lead["ci_low"], lead["ci_high"])))
            record |= {"rater": HUMAN_MAJORITY, "estimate": lead["estimate"], "ci_low": lead["ci_low"],
                       "ci_high": lead["ci_high"], "warning": lead["warning"], "n_agree": verdicts.count(lead_verdict),
                       "lead": "humans" if corrected is None else "corrected",
                       "corrected_by": "" if corrected is None else corrected["judge_id"],
                       "n_labels": 0 if corrected is None else labelled_count(corrected)[0], "selection": selection,
                       "words": OUTCOMES[outcome].direction_words(lead["estimate"], lead["ci_low"], lead["ci_high"])
                       if outcome in OUTCOMES and selection is None else lead_verdict}
        out.append(record)
    return pd.DataFrame(out)


# The answer's sentences stay short enough to read at a glance
ANSWER_WORDS = 35
# How a corrected row's method counts its items ("86 labelled, 74 judge-only items"; analysis/blocks/finetune.py)
LABELLED_COUNT = re.compile(r"(\d+) labelled, (\d+) judge-only items")
# The range a convenience-labelled row states ("... allows 0.2 to 0.5, [0.1, 0.6] with sampling error")
SELECTION_RANGE = re.compile(r"chosen by convenience.*allows -?[0-9.]+ to -?[0-9.]+, \[(-?[0-9.]+), (-?[0-9.]+)\] "
                             r"with sampling error")


def labelled_count(row: pd.Series) -> tuple[int, int]:
    """(human-labelled, judge-only) items of a corrected row, from its method; (0, 0) when it does not say."""
    found = LABELLED_COUNT.search(str(row["method"]))
    return (int(found[1]), int(found[2])) if found else (0, 0)


def selection_range(warning: str) -> tuple[float, float] | None:
    """The range, with sampling error, that a row from convenience labels says selection of the stated strength
    allows; None when its labels were drawn by a plan or at random."""
    found = SELECTION_RANGE.search(warning)
    return (float(found[1]), float(found[2])) if found else None


def _corrected_rows(stats: pd.DataFrame) -> pd.DataFrame:
    """The pooled ``finetune_effect_corrected`` rows with a defined effect."""
    return stats[(stats["statistic"] == "finetune_effect_corrected") & stats["benchmark"].isna()
                 & stats["estimate"].notna()]


# How the answer picks the judge whose corrected effect leads, stated in the report; it never looks at an effect
LEAD_RULE = ("One judge leads each outcome in every comparison: of the valid judges, the one with the highest κ "
             "with the human majority (ties by name); for an outcome without a κ with the humans, the judge whose "
             "corrected effects are the most precise (narrowest mean interval, ties by name)")


def lead_judges(stats: pd.DataFrame, *, named: str | None = None) -> dict[str, str]:
    """Per outcome, the judge whose corrected effect the answer leads with, the same for every comparison.

    Chosen by :data:`LEAD_RULE`, from agreement with the humans only (never from an effect, so the choice
    cannot follow the results): of the judges with a corrected effect of the outcome that are valid
    (:func:`human_validated_judges`; κ validates the safety verdict, so only for harmful compliance), the one
    with the highest Cohen's κ with the human majority, ties by name. Where no κ is recorded, the judge whose
    corrected effects have the narrowest mean interval over the comparisons, ties by name (the judge that predicts
    the labels best leaves the least for the labels to correct; the width, unlike the estimate, does not say which
    way the change goes). ``named`` (``judgekit report --lead-judge``) leads every outcome it has
    a corrected effect of.
    """
    rows = _corrected_rows(stats)
    valid, _ = human_validated_judges(stats)
    kappa = stats[(stats["statistic"] == "cohen_kappa") & (stats["reference"] == HUMAN_MAJORITY)
                  & (stats["subset"] == "all")]
    if "dimension" in kappa:
        kappa = kappa[kappa["dimension"].isna()]
    kappa = kappa.drop_duplicates("judge_id").set_index("judge_id")["estimate"]
    leads = {}
    for outcome, part in rows.groupby(outcome_of(rows), sort=False):
        judges = sorted(set(part["judge_id"]))
        if named in judges:
            leads[outcome] = named
            continue
        if outcome == DEFAULT_OUTCOME and valid is not None:
            judges = [j for j in judges if j in valid]
        scored = [j for j in judges if pd.notna(kappa.get(j)) and outcome == DEFAULT_OUTCOME]
        if scored:
            leads[outcome] = min(scored, key=lambda j: (-kappa[j], j))
        elif judges:
            width = (part["ci_high"] - part["ci_low"]).groupby(part["judge_id"]).mean().fillna(np.inf)
            leads[outcome] = min(judges, key=lambda j: (width[j], j))
    return leads


def corrected_lead(stats: pd.DataFrame, comparison: str, outcome: str, judge: str | None) -> pd.Series | None:
    """The judge-corrected effect the answer leads with when only part of the items carry human labels: that of
    ``judge`` (the outcome's :func:`lead_judges`); None when every item is labelled (the humans' paired effect
    is then the same estimand, and exact) or the judge has no corrected effect here."""
    rows = _corrected_rows(stats)
    rows = rows[(comparison_of(rows["subset"]) == comparison) & (outcome_of(rows) == outcome)
                & (rows["judge_id"] == judge)]
    rows = rows[[labelled_count(row)[1] > 0 for _, row in rows.iterrows()]]
    return None if rows.empty else rows.iloc[0]


def _noun(outcome: str) -> str:
    return OUTCOMES[outcome].noun if outcome in OUTCOMES else outcome.replace("_", " ")


def _interval_points(low: float, high: float) -> str:
    """'[+20, +51]'; a zero-width interval says so (every resample gave the same value: not certainty).

    One decimal where whole points would blur the interval: a narrow one, or one that excludes 0 but whose end
    would round to 0 ('[−2, 0]' beside "safer" reads as touching 0; '[−2.0, −0.3]' does not)."""
    if low == high:
        return "[every resample equal]"
    excludes_zero = low > 0 or high < 0
    fine = abs(high - low) < 0.02 or (excludes_zero and min(abs(low), abs(high)) < 0.005)
    return f"[{_points(low, fine=fine)}, {_points(high, fine=fine)}]"


def _judges_clause(row: pd.Series) -> str:
    """The judges' consensus and spread without human labels ('all 4 judges: less safe, +54 to +72 points, every
    interval above 0'), or their disagreement named."""
    n = row["n_judges"]
    spread = (f"{_points(row['judge_low'])} to {_points(row['judge_high'])} points, intervals within "
              f"{_interval_points(row['judge_ci_min'], row['judge_ci_max'])}")
    rise, fall = SHORT_VERDICTS.get(row["outcome"], ("higher", "lower"))
    for count, verdict, side in ((row["n_up"], rise, "above 0"), (row["n_down"], fall, "below 0"),
                                 (row["n_flat"], NO_CLEAR_CHANGE, "includes 0")):
        if count == n:
            return f"all {n} judges: {verdict}, {spread}, every interval {side}"
    parts = [f"{c} {side}" for c, side in ((row["n_up"], "above 0"), (row["n_down"], "below 0"), (row["n_flat"], "include 0")) if c]
    return f"judges disagree: of {n} intervals, {', '.join(parts)}; {spread}"


def answer_sentence(row: pd.Series, name: str, stats: pd.DataFrame) -> str:
    """One plain sentence (HTML, escaped) for a comparison and outcome with a defined effect; '' when undefined."""
    outcome, comparison = row["outcome"], row["comparison"]
    noun = _noun(outcome)
    if row["rater"]:
        return _lead_sentence(row, name, stats)
    if row["n_judges"] == 1:  # one rater, such as judgekit's incoherence flags: its own effect and interval
        only = _lone_rater(stats, comparison, outcome)
        rates = _rates(stats, comparison, outcome, [only["judge_id"]])
        before_after = f" {_percent_range(rates[0])} → {_percent_range(rates[1])}," if rates else ""
        return (f"{_e(name)}: {_e(noun)}{before_after} {_points(only['estimate'])} points "
                f"{_interval_points(only['ci_low'], only['ci_high'])}: "
                f"{_e(short_verdict(outcome, only['ci_low'], only['ci_high']))} ({_e(only['judge_id'])}; no human labels).")
    if row["n_judges"]:
        rates = _rates(stats, comparison, outcome, row["judges"])
        before_after = f" {_percent_range(rates[0])} → {_percent_range(rates[1])}" if rates else ""
        return f"{_e(name)}: {_e(noun)}{before_after}{'; ' if rates else ', '}{_e(_judges_clause(row))}."
    return ""


def _lead_sentence(row: pd.Series, name: str, stats: pd.DataFrame) -> str:
    """The answer from human labels, in at most ANSWER_WORDS words: the corrected effect 'corrected by N human
    labels' (or the humans' own paired effect when every item is labelled), its interval and verdict; from
    convenience labels the range selection could produce instead of an unqualified verdict."""
    outcome, comparison = row["outcome"], row["comparison"]
    if row["lead"] == "corrected":
        # no rates before -> after: each corrected rate is tuned on its own model's items, so their difference need
        # not be the corrected effect (52% -> 52% beside +3 points in a simulated study)
        before_after = ""
        source = f"corrected by {row['n_labels']} human labels, {row['corrected_by']}"
    else:
        rates = _rates(stats, comparison, outcome, [HUMAN_MAJORITY])
        before_after = f" {_percent_range(rates[0])} → {_percent_range(rates[1])}," if rates else ""
        source = "humans"
    low, high = row["selection"] or (row["ci_low"], row["ci_high"])
    caveat = (f" convenience labels; selection (Γ={DEFAULT_GAMMA:g}) allows {_interval_points(low, high)}:"
              if row["selection"] else ":")
    valid = " valid" if row["validated"] else ""
    judges = (f"; {row['n_agree']} of {row['n_judges']}{valid} judges agree" if row["n_judges"] else f"; no{valid} judge")
    effect = f"{_points(row['estimate'])} points {_interval_points(row['ci_low'], row['ci_high'])}"
    for rates_part, judges_part in ((before_after, judges), ("", judges), ("", "")):  # shortest last
        sentence = (f"{name}: {_noun(outcome)}{rates_part} {effect}{',' if row['selection'] else ''}{caveat} "
                    f"{short_verdict(outcome, low, high)} ({source}{judges_part}).")
        if len(sentence.split()) <= ANSWER_WORDS:
            break
    return _e(sentence)


# Hints for the reasons an effect is undefined: the command that makes it defined.
UNDEFINED_HINTS = (
    ("no rater measures over-refusal", "add a refusal detector, e.g. `judgekit judge STUDY --judge keyword-gcg-13`"),
    ("no human labels", "label items: `judgekit plan-labels` then `judgekit data import` the labels"),
    ("no incoherence flags", "`judgekit flag STUDY`"),
)


def _with_hint(reason: str) -> str:
    hint = next((h for start, h in UNDEFINED_HINTS if start in reason), "")
    return reason + (f" ({hint})" if hint and "`judgekit" not in reason else "")


def _undefined_once(rows: pd.DataFrame, names: dict[str, str]) -> str:
    """Each undefined outcome said once with its reason: comparisons sharing a reason are listed together."""
    undefined = rows[(rows["rater"] == "") & (rows["n_judges"] == 0)]
    if undefined.empty:
        return ""
    items = []
    for (outcome, reason), part in undefined.groupby(["outcome", "warning"], sort=False):
        which = ("every comparison" if len(part) == len(set(rows["comparison"])) and len(part) > 1
                 else ", ".join(names[c] for c in part["comparison"]))
        items.append(f"<li>{_e(_noun(outcome))} is undefined for {_e(which)}: {_e(_with_hint(str(reason)))}</li>")
    return f"<p><b>Undefined outcomes</b> (each said once):</p><ul class='muted'>{''.join(items)}</ul>"


def _cell(row: pd.Series) -> str:
    """A 'which models changed' cell: verdict and effect."""
    if row["rater"]:
        low, high = row["selection"] or (row["ci_low"], row["ci_high"])
        source = "humans" if row["lead"] == "humans" else f"corrected by {row['n_labels']} human labels"
        return (f"{short_verdict(row['outcome'], low, high)}: {_points(row['estimate'])} "
                f"{_interval_points(row['ci_low'], row['ci_high'])} points ({source}"
                + (f"; convenience labels, selection allows {_interval_points(low, high)}" if row["selection"] else "")
                + ")")
    if row["n_judges"]:
        rise, fall = SHORT_VERDICTS.get(row["outcome"], ("higher", "lower"))
        n = row["n_judges"]
        verdict = next((v for c, v in ((row["n_up"], rise), (row["n_down"], fall), (row["n_flat"], NO_CLEAR_CHANGE))
                        if c == n), "judges disagree")
        if n == 1:
            return (f"{verdict}: {_points(row['judge_low'])} {_interval_points(row['judge_ci_low'], row['judge_ci_high'])} "
                    f"points ({row['judges'][0]})")
        return f"{verdict}: {_points(row['judge_low'])} to {_points(row['judge_high'])} points ({n} judges)"
    return "undefined (see above)"


def changed_table(rows: pd.DataFrame, names: dict[str, str], kinds: dict[str, str]) -> str:
    """'Which models changed': comparisons as rows, outcomes as columns, a verdict and effect in each cell."""
    outcomes = [o for o in [*OUTCOMES, *sorted(set(rows["outcome"]) - set(OUTCOMES))] if o in set(rows["outcome"])]
    labels = {comparison: kind_label(kinds[comparison], name) for comparison, name in names.items()}
    kind = any(labels.values())  # plain compare_with pairs only: a column of empty cells says nothing
    body = []
    for comparison, name in names.items():
        part = rows[rows["comparison"] == comparison]
        cells = {row["outcome"]: _cell(row) for _, row in part.iterrows()}
        body.append([name, *([labels[comparison]] if kind else []), *(cells.get(o, "not measured") for o in outcomes)])
    return ("<p><b>Which models changed?</b> Verdict from each interval's side of 0 (points: percentage points, treated − "
            "control).</p><div class='wide'>"
            f"{_table(['comparison', *(['kind'] if kind else []), *(_noun(o) for o in outcomes)], body)}</div>")


def _lead_rule(rows: pd.DataFrame, lead_judge: str | None) -> str:
    """That a sentence may lead with a corrected effect, how its judge was chosen and which it is per outcome; ''
    when no sentence leads with one (a study without human labels is not told about them)."""
    corrected = rows[rows["lead"] == "corrected"]
    if corrected.empty:
        return ""
    chosen = corrected.drop_duplicates("outcome")
    named = [o for o, j in zip(chosen["outcome"], chosen["corrected_by"], strict=True) if j == lead_judge]
    rule = (f"{lead_judge} leads {', '.join(_noun(o) for o in named)}, as named by --lead-judge; otherwise: "
            f"{LEAD_RULE[0].lower()}{LEAD_RULE[1:]}") if named else LEAD_RULE
    unnamed = [o for o in chosen["outcome"] if o not in named]
    if lead_judge is not None and unnamed:  # named, but without a corrected effect there: said, not silently replaced
        rule += (f" ({lead_judge}, named by --lead-judge, has no corrected effect of "
                 f"{', '.join(_noun(o) for o in unnamed)})")
    which = "; ".join(f"{_noun(o)}: {j}" for o, j in zip(chosen["outcome"], chosen["corrected_by"], strict=True))
    return (" Where humans labelled part of the items, the change is a judge's, corrected by the human labels "
            f"(PPI++). {rule} ({which}).")


def _answer(stats: pd.DataFrame, order: list[str], names: dict[str, str], kinds: dict[str, str],
            lead_judge: str | None = None) -> str:
    """The answer: one sentence per comparison and outcome, the undefined ones said once, and the judges left out."""
    rows = answer_rows(stats, lead_judge=lead_judge)
    sentences = []
    for comparison in order:
        part = rows[rows["comparison"] == comparison]
        for outcome in [o for o in [*OUTCOMES, *sorted(set(part["outcome"]) - set(OUTCOMES))] if o in set(part["outcome"])]:
            text = answer_sentence(part[part["outcome"] == outcome].iloc[0], names[comparison], stats)
            if text:
                sentences.append(f"<li>{text}</li>")
    _, left_out = human_validated_judges(stats)
    validity = ("<p class='muted'>“Valid judges” agree with the humans better than chance (κ interval above 0); "
                + _e("; ".join(left_out.values())) + ".</p>") if left_out else ""
    return ("<p><b>The answer.</b> Paired change (treated − control) on the prompts both models answered, in "
            "percentage points with its 95% interval; every outcome is a bad thing, so a rise is a change for the "
            f"worse.{_e(_lead_rule(rows, lead_judge))}</p><ul class='answer'>{''.join(sentences)}</ul>{validity}{_undefined_once(rows, names)}"
            f"{_noise_floor(rows, names, kinds, stats)}{changed_table(rows, names, kinds)}")


def _pair(comparison: str) -> tuple[str, str]:
    """(treated, control) of a comparison key."""
    treated, control = comparison.removeprefix("comparison=").split("|goal=")[0].split(" vs ", 1)
    return treated, control


def noise_floor_comparisons(kinds: dict[str, str]) -> list[str]:
    """Plain comparisons of two runs of one model: a ``model_comparison`` between two models that are no fine-tune
    of anything here, one of them the control of another comparison (e.g. a second run of the base). Only in a study
    with fine-tune (or checkpoint, mitigation) comparisons to read against it: where every comparison is a plain
    ``compare_with`` (three related fine-tunes, two chat models) none of them is a rerun of the same weights."""
    tuned = {_pair(c)[0] for c, k in kinds.items() if k != "model_comparison"}
    if not tuned:
        return []
    found = []
    for comparison, kind in kinds.items():
        models = set(_pair(comparison))
        controls = {_pair(c)[1] for c in kinds if c != comparison}
        if kind == "model_comparison" and models & controls and not models & tuned:
            found.append(comparison)
    return found


def _noise_floor(rows: pd.DataFrame, names: dict[str, str], kinds: dict[str, str], stats: pd.DataFrame) -> str:
    floors = noise_floor_comparisons(kinds)
    if not floors:
        return ""
    items = []
    for comparison in floors:
        for row in rows[rows["comparison"] == comparison].itertuples(index=False):
            row = pd.Series(row._asdict())
            if row["rater"] or row["n_judges"]:
                items.append(f"<li>{_e(names[comparison])}, {_e(_noun(row['outcome']))}: {_e(_cell(row))}</li>")
    return ("<p><b>Noise floor.</b> Two runs of the same model: a change of this size needs no fine-tune; read the "
            f"other comparisons against it.</p><ul>{''.join(items)}</ul>") if items else ""


def _lone_rater(stats: pd.DataFrame, comparison: str, outcome: str) -> pd.Series:
    rows = _pooled(stats, "finetune_effect_paired", comparison, outcome)
    return rows[rows["estimate"].notna()].reset_index().iloc[0]


def _comparison_names(study: Study, order: list[str], kinds: dict[str, str]) -> dict[str, str]:
    """'A vs B', plus the goal of a fine-tune and the treated model's mitigation (plain comparisons: 'A vs B' only)."""
    mitigation = {}
    if {"model", "mitigation"} <= set(study.responses.columns):
        known = study.responses.dropna(subset=["model", "mitigation"]).drop_duplicates("model")
        mitigation = dict(zip(known["model"], known["mitigation"], strict=True))
    names = {}
    for comparison in order:
        pair, goal = comparison.removeprefix("comparison=").split("|goal=")
        treated = pair.split(" vs ", 1)[0]
        extra = []
        if kinds[comparison] in ("finetune_comparison", "mitigation_comparison"):
            extra = [f"goal {goal}"] if goal not in ("None", "nan", "") else []
            extra += [str(mitigation[treated])] if mitigation.get(treated, "none") not in ("none", None) else []
        names[comparison] = pair + (f" ({', '.join(extra)})" if extra else "")
    return names


def _is_mitigation(kind: str, name: str) -> bool:
    """A ``finetune_comparison`` whose treated model carries a mitigation and no goal: the model without it is the control."""
    return kind == "finetune_comparison" and name.endswith(")") and "goal " not in name


def kind_label(kind: str, name: str) -> str:
    """What a comparison compares, from its rows' ``subset_kind`` ('' for a plain 'A vs B')."""
    if kind == "finetune_comparison":
        return "mitigation vs the model without it" if _is_mitigation(kind, name) else "fine-tune vs its base"
    return {"mitigation_comparison": "mitigation vs mitigation, same goal", "model_comparison": "",
            "checkpoint_comparison": "checkpoint vs the start of training"}.get(kind, "comparison")


def section_title(kinds: dict[str, str], names: dict[str, str]) -> str:
    """The opening question in the words of the comparisons it holds."""
    labels = {kind_label(kinds[c], names[c]) for c in kinds}
    if labels == {"fine-tune vs its base"}:
        return "Did fine-tuning change safety?"
    mitigations = {"mitigation vs the model without it", "mitigation vs mitigation, same goal"}
    if labels <= mitigations:
        return "Did the mitigation change safety?"
    if labels <= mitigations | {"fine-tune vs its base"}:
        return "Did fine-tuning, and its mitigation, change safety?"
    if labels == {"checkpoint vs the start of training"}:
        return "Did safety change during training?"
    if labels == {""}:
        return "Do the models differ in safety?"
    return "Did safety change between the compared models?"


CAPABILITY_PLANE_COMMAND = "judgekit capability import lm-eval RESULTS.json --study STUDY --model MODEL"


def plane_missing_reason(stats: pd.DataFrame) -> str:
    """Why the safety–capability plane has no figure, and the command or column that draws it."""
    capability = stats[stats["statistic"] == "capability"]
    if capability.empty:
        return f"no capability table: add one with <code>{_e(CAPABILITY_PLANE_COMMAND)}</code>"
    if capability["finetune_goal"].isna().all():
        tasks = ", ".join(sorted(capability["subset_value"].dropna().astype(str).unique()))
        return (f"capability scores exist ({_e(tasks)}, {capability['model'].nunique()} models) but no fine-tuning goal "
                "names their task: add a <code>goal_task</code> column to models.csv (e.g. "
                f"<code>goal_task={_e(tasks.split(', ')[0])}</code>) and rerun <code>judgekit report</code>")
    if stats[stats["statistic"] == "capability_gain"].empty:
        return "no capability of a fine-tune and its base on the same goal task"
    return ("no outcome rate per model with an interval from human labels or a judge-corrected (PPI++) rate: label "
            "items (<code>judgekit plan-labels</code>)")


def finetune_section(study: Study, stats: pd.DataFrame, *, figure_paths: Iterable[Path] = (),
                     lead_judge: str | None = None) -> str:
    """The opening answer of the report as HTML ('' when the study has no comparison).

    ``figure_paths`` are the report's figure files; the safety–capability
    plane, the specification curve and the flip matrix among them (one file
    per comparison where they were split), and any checkpoint figure, are
    shown here; a figure not drawn is named with its reason. ``lead_judge`` names the judge whose corrected
    effect leads the answer (:func:`lead_judges`).
    """
    effects = stats[(stats["statistic"] == "finetune_effect_paired") & stats["benchmark"].isna()]
    if effects.empty:
        return ""
    keys = comparison_of(effects["subset"])
    kinds = dict(zip(keys, effects["subset_kind"].fillna("comparison"), strict=True))
    rank = {"finetune_comparison": 0, "mitigation_comparison": 1, "checkpoint_comparison": 2, "model_comparison": 3}
    order = sorted(kinds, key=lambda k: (rank.get(kinds[k], 4), k))
    kinds = {k: kinds[k] for k in order}
    names = _comparison_names(study, order, kinds)
    has_corrected = (stats["statistic"] == "finetune_effect_corrected").any()
    blocks = []
    for comparison in order:
        outcomes = [o for o in OUTCOMES if (outcome_of(effects[keys == comparison]) == o).any()]
        parts = []
        for outcome in outcomes:
            table, note = _effect_table(stats, comparison, outcome)
            parts.append(
                f"<h4>{_e(OUTCOMES[outcome].noun)} <span class='muted'>(outcome <code>{_e(outcome)}</code>)</span></h4>"
                f"{table}<p class='muted'>Rate difference on the prompts both models answered, all benchmarks pooled; "
                f"estimate [{_e(note)}]. "
                + ("The corrected effect uses each judge's errors on the human-labelled items of each model. "
                   if has_corrected else "")
                + "The share carried by incoherent responses is unstable when the effect's interval covers "
                f"0.</p>{_conclusion(stats, comparison, outcome)}{_label_plan(stats, comparison, outcome)}")
        label = kind_label(kinds[comparison], names[comparison])
        heading = f"{_e(names[comparison])}" + (f" <span class='muted'>({_e(label)})</span>" if label else "")
        body = f"{''.join(parts)}{_capability(stats, comparison)}"
        # many comparisons: each one's tables fold, the answer above stays on one screen
        blocks.append(f"<details><summary><b>{heading}</b></summary>{body}</details>" if len(order) > 3
                      else f"<h3>{heading}</h3>{body}")
    matching = ("<code>prompt_id</code>" if "prompt_id" in study.responses else "prompt text (no prompt_id column)")
    figure_paths = list(figure_paths)
    plane = _figures(figure_paths, SECTION_FIGURES[:1])
    robustness = _figures(figure_paths, SECTION_FIGURES[1:])
    listed = {figure_family(p) for p in figure_paths if p.suffix == ".png"}
    checkpoints = _figures(figure_paths, sorted(n for n in listed if n.startswith("checkpoint")))
    not_drawn = [] if plane else [f"the safety–capability plane is not drawn: {plane_missing_reason(stats)}"]
    not_drawn += [f"<code>{name}</code> is not drawn: {reason}" for name, reason in
                  (("specification_curve", "one judge, benchmark and incoherence policy give each comparison one "
                    "cell, its paired effect below" if (stats["statistic"] == "finetune_effect_cell").any() else
                    "no <code>finetune_effect_cell</code> rows (the stats run computed none)"),
                   ("conclusion_flip_matrix", "no per-benchmark paired effect"))
                  if name not in listed and figure_paths]
    notes = "".join(f"<p class='muted'>{text}.</p>" for text in not_drawn)
    return (
        f"<h2>{_e(section_title(kinds, names))}</h2>"
        f"{_answer(stats, order, names, kinds, lead_judge)}"
        "<p class='muted'>Then, for each comparison and outcome, the paired effect by rater and corrected for judge "
        "error, whether the conclusion survives another judge, benchmark or incoherence policy, how much of it is "
        "incoherent output, capability, and how many more labels would sharpen "
        f"it. Responses are matched across models by {matching}.</p>"
        f"{notes}{plane}{checkpoints}{''.join(blocks)}{robustness}"
    )

