"""Figures of the fine-tuning question, drawn from the ``stats`` rows (never recomputed here).

=============================  ==============================================
figure                         reads
=============================  ==============================================
finetune_effect_forest         finetune_effect_paired (per judge x benchmark)
conclusion_flip_matrix         finetune_effect_paired: estimate, and sign x
                               significance of the same row's interval
specification_curve            finetune_effect_cell (judge x benchmark x
                               incoherence policy x threshold; humans as
                               reference)
safety_capability_plane        capability (goal task), harmful_rate_corrected
                               (else the humans' harmful_rate) per outcome
                               (harmful compliance, over-refusal), capability_gain
                               and mitigation_comparison rows for the arrows,
                               capability_goal_target for the target line
=============================  ==============================================

Every caption names the interval method read from the rows' ``method``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from judgekit.analysis.outcomes import DEFAULT_OUTCOME, OUTCOMES
from judgekit.analysis.blocks.finetune import NATIVE_VERDICT
from judgekit.outputs.report_finetune import comparison_of, interval_note, lead_judges, outcome_of
from judgekit.outputs.style import DOUBLE_COLUMN_IN, OKABE_ITO, PAPER_STYLE, FigureInputs, interval_errors, set_caption
from judgekit.store.schema import HUMAN_MAJORITY


# Every outcome is worse when higher: a rise is vermillion, a fall blue, whatever the outcome.
SIGN_COLOURS = {"up": "#D55E00", "down": "#0072B2", "ns": "#BBBBBB"}


def sign_names(outcomes: Iterable[str]) -> dict[str, str]:
    """Legend entries in the outcomes' own words ('more over-refusal'), never 'safer' for a rise of over-refusal."""
    present = [OUTCOMES[o] for o in dict.fromkeys(outcomes)] or [OUTCOMES[DEFAULT_OUTCOME]]
    return {"up": "interval > 0: " + " / ".join(o.rise for o in present),
            "down": "interval < 0: " + " / ".join(o.fall for o in present), "ns": "interval includes 0"}


def panel_key(rows: pd.DataFrame) -> pd.Series:
    """Comparison and outcome of each row: one panel each (outcomes are never pooled)."""
    outcome = outcome_of(rows)
    return comparison_of(rows["subset"]) + np.where(outcome == DEFAULT_OUTCOME, "", "|outcome=" + outcome)


def comparison_title(comparison: str) -> str:
    """'A vs B (goal G)\noutcome' from a panel key (comparison, and outcome when not harmful compliance)."""
    key, _, outcome = comparison.partition("|outcome=")
    pair, goal = key.removeprefix("comparison=").split("|goal=")
    treated, control = pair.split(" vs ", 1)
    goal_line = "" if goal == "None" else f"(goal: {goal})\n"  # a mitigation of the same model has no goal
    return f"{treated}\nvs {control}\n{goal_line}{OUTCOMES[outcome or DEFAULT_OUTCOME].noun}"


def sign_significance_key(row: pd.Series) -> str:
    """'up' / 'down' where the row's interval excludes 0, 'ns' where it includes 0 (NaN: undefined)."""
    if row["ci_low"] > 0:
        return "up"
    if row["ci_high"] < 0:
        return "down"
    return "ns"


def _effects(stats: pd.DataFrame, only: Iterable[str] | None = None,
             statistic: str = "finetune_effect_paired") -> tuple[pd.DataFrame, list[str]]:
    """The effect rows to draw (of the comparisons in ``only``, when given) and a note per panel left out.

    A panel (comparison × outcome) where no rater has a defined effect is not drawn: its reason goes in the
    caption. With one benchmark its pooled "all" rows repeat it and are dropped.
    """
    rows = stats[stats["statistic"] == statistic].copy()
    if only is not None:
        rows = rows[comparison_of(rows["subset"]).isin(list(only))]
    if rows.empty:
        return rows, []
    rows["comparison"] = panel_key(rows)
    rows["benchmark"] = rows["benchmark"].fillna("all")
    defined = rows.groupby("comparison")["estimate"].transform(lambda e: e.notna().any())
    notes = [f"{OUTCOMES[outcome_of(part).iloc[0]].noun} undefined ({_first_reason(part)})"
             for _, part in rows[~defined].groupby("comparison")]
    rows = rows[defined]
    named = set(rows["benchmark"]) - {"all"}
    if len(named) == 1:
        rows = rows[rows["benchmark"] != "all"]
    return rows, notes


def _first_reason(rows: pd.DataFrame) -> str:
    """The first clause of the rows' first warning ('no rater measures over-refusal'): the report has the rest."""
    reasons = [_first_clause(w) for w in rows["warning"].fillna("") if w]
    return reasons[0] if reasons else "no rater has a defined effect"


def _first_clause(text: str) -> str:
    """``text`` up to its first ';' or ':' outside parentheses (a clause's own '(need 10, or 2: ...)' stays whole)."""
    depth = 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char in ";:" and depth <= 0:
            return text[:position]
    return text


def _caption_notes(notes: list[str]) -> str:
    """Undefined panels, named in the caption instead of drawn empty (the first two, then a count)."""
    if not notes:
        return ""
    shown = list(dict.fromkeys(notes))
    shown = shown[:2] + ([f"and {len(shown) - 2} more (see the report)"] if len(shown) > 2 else [])
    return " Not drawn: " + "; ".join(shown) + "."


def comparison_keys(stats: pd.DataFrame, statistic: str = "finetune_effect_paired") -> list[str]:
    """The comparisons with at least one defined effect of ``statistic``, sorted."""
    rows = stats[(stats["statistic"] == statistic) & stats["estimate"].notna()]
    return sorted(comparison_of(rows["subset"]).unique())


def panel_count(stats: pd.DataFrame, statistic: str = "finetune_effect_paired") -> int:
    """How many comparison × outcome panels have a defined effect of ``statistic``: a figure's width grows with them."""
    rows = stats[(stats["statistic"] == statistic) & stats["estimate"].notna()]
    return int(panel_key(rows).nunique()) if len(rows) else 0


def _judge_order(rows: pd.DataFrame) -> list[str]:
    """Humans first, then judges by their mean effect (largest first), undefined last."""
    means = rows[rows["judge_id"] != HUMAN_MAJORITY].groupby("judge_id")["estimate"].mean()
    judges = sorted(means.index, key=lambda j: (np.isnan(means[j]), -np.nan_to_num(means[j]), j))
    return ([HUMAN_MAJORITY] if (rows["judge_id"] == HUMAN_MAJORITY).any() else []) + judges


def finetune_effect_forest(data: FigureInputs, *, only: Iterable[str] | None = None) -> plt.Figure | None:
    """Paired effect (treated − control): one column of panels per comparison and outcome, one row per benchmark,
    one line per rater of that outcome (humans first, then by effect); every panel shares the x axis so effects
    compare across the grid. A benchmark where an outcome has no defined effect (harmful compliance on benign
    prompts) leaves no empty panel: it is named in the caption.

    ``only`` draws those comparisons alone (the figures step draws one figure per comparison when there are many).
    """
    rows, notes = _effects(data.stats, only)
    if rows.empty:
        return None
    comparisons = sorted(rows["comparison"].unique())
    raters = {c: _judge_order(rows[rows["comparison"] == c]) for c in comparisons}  # each outcome's own raters
    benchmarks = sorted(rows["benchmark"].unique(), key=lambda b: (b != "all", b))
    longest = max(len(r) for r in raters.values())
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(len(benchmarks), len(comparisons), squeeze=False, sharex=True, sharey="col",
                                 figsize=(max(DOUBLE_COLUMN_IN, 2.3 * len(comparisons) + 0.6),
                                          (0.16 * longest + 0.6) * len(benchmarks) + 0.9),
                                 layout="constrained")
        for (i, benchmark), (k, comparison) in itertools.product(enumerate(benchmarks), enumerate(comparisons)):
            ax, judges = axes[i][k], raters[comparison]
            part = rows[(rows["comparison"] == comparison) & (rows["benchmark"] == benchmark)]
            if part["estimate"].isna().all():
                ax.set_visible(False)
                noun = comparison_title(comparison).splitlines()[-1]
                notes.append(f"{noun} on {benchmark}: {undefined_cause(part, noun)}")
                continue
            y = np.arange(len(judges))
            human = np.array([j == HUMAN_MAJORITY for j in judges])
            rated_judges = set(part["judge_id"])
            part = part.drop_duplicates("judge_id").set_index("judge_id").reindex(judges)
            errors = interval_errors(part.reset_index())
            for mask, color in ((human, "black"), (~human, OKABE_ITO[0])):
                ax.errorbar(part["estimate"].to_numpy()[mask], y[mask], xerr=errors[:, mask], fmt="o", color=color,
                            markersize=2.5, capsize=1.5, linewidth=0.8)
            for j in np.flatnonzero(part["estimate"].isna().to_numpy()):
                if judges[j] in rated_judges:
                    ax.text(0, y[j], "— undefined", fontsize=6.5, va="center", color="0.35")
            ax.axvline(0, color="0.5", linewidth=0.6)
            ax.set_yticks(y, judges)
            ax.set_ylim(len(judges) - 0.5, -0.5)
            ax.tick_params(axis="y", labelsize=7)
            ax.tick_params(axis="x", labelbottom=True)  # the panel below may be left out
            ax.set_title(f"{comparison_title(comparison)}\nbenchmark: {benchmark}" if i == 0 or not axes[i - 1][k].get_visible()
                         else f"benchmark: {benchmark}", fontsize=7)
        fig.supxlabel("paired Δ rate of the panel's outcome (treated − control, same prompts)", fontsize=7)
        fig.suptitle("Effect under every judge and benchmark", fontsize=8)
        set_caption(fig, f"Black: the humans; {interval_note(rows)}.{_caption_notes(notes)}")
    return fig


def undefined_cause(rows: pd.DataFrame, outcome_noun: str) -> str:
    """Why a panel has no defined effect: no rows at all means the stats measure the outcome on none of the
    benchmark's prompts (harmful compliance on benign prompts); otherwise the rows' own reason."""
    return f"{outcome_noun} is not measured on these prompts" if rows.empty else _first_reason(rows)


def conclusion_flip_matrix(data: FigureInputs, *, only: Iterable[str] | None = None) -> plt.Figure | None:
    """Judge x benchmark grid per comparison. Number: the row's estimate; colour: sign x significance of that row's
    interval (one quantity, one row); undefined cells are grey and say so; a panel with no defined cell is named in
    the caption instead."""
    rows, notes = _effects(data.stats, only)
    if rows.empty:
        return None
    rows = rows[rows["benchmark"] != "all"] if (rows["benchmark"] != "all").any() else rows
    comparisons = sorted(rows["comparison"].unique())
    judges = _judge_order(rows)
    # Each panel shows the benchmarks its outcome is measured on (harmful compliance has no benign benchmark).
    panel_benchmarks = {c: sorted(rows.loc[rows["comparison"] == c, "benchmark"].unique()) for c in comparisons}
    widths = [max(len(panel_benchmarks[c]), 2) for c in comparisons]  # room for the title of a one-benchmark panel
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(1, len(comparisons), figsize=(max(DOUBLE_COLUMN_IN, 0.9 * sum(widths) + 0.8),
                                 0.24 * len(judges) + 2.0), sharey=True, squeeze=False, layout="constrained",
                                 gridspec_kw={"width_ratios": widths})
        for ax, comparison in zip(axes[0], comparisons, strict=True):
            benchmarks = panel_benchmarks[comparison]
            part = rows[rows["comparison"] == comparison].set_index(["judge_id", "benchmark"])
            for i, judge in enumerate(judges):
                for j, benchmark in enumerate(benchmarks):
                    if (judge, benchmark) not in part.index:
                        continue
                    cell = part.loc[(judge, benchmark)]
                    if np.isnan(cell["estimate"]):
                        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="white", edgecolor="0.6",
                                                   hatch="///", linewidth=0.3))
                        ax.text(j, i, "undefined", ha="center", va="center", fontsize=6, color="0.3")
                        continue
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color=SIGN_COLOURS[sign_significance_key(cell)]))
                    ax.text(j, i, f"{cell['estimate']:+.2f}".replace("-", "−"), ha="center", va="center", fontsize=7,
                            fontweight="bold" if judge == HUMAN_MAJORITY else "normal")
            ax.set_xlim(-0.5, len(benchmarks) - 0.5)
            ax.set_ylim(len(judges) - 0.5, -0.5)
            ax.set_xticks(range(len(benchmarks)), benchmarks, rotation=30, ha="right", fontsize=7)
            ax.set_title(comparison_title(comparison), fontsize=7)
        axes[0][0].set_yticks(range(len(judges)), judges, fontsize=7)
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in SIGN_COLOURS.values()]
        fig.legend(handles, list(sign_names(outcome_of(rows)).values()), loc="outside lower center", ncol=1, frameon=False,
                   title="number: the row's paired estimate; colour: sign × significance of the same row's interval")
        fig.suptitle("Does the conclusion flip with the judge or benchmark?", fontsize=8)
        set_caption(fig, f"Humans on top; judges by mean effect; {interval_note(rows)}.{_caption_notes(notes)}")
    return fig


SPEC_FACTORS = (("judge_id", "judge"), ("benchmark", "benchmark"), ("subset_value", "incoherent"),
                ("threshold", "threshold"))


def _level_order(level: str) -> tuple[int, float | str]:
    """Numbers (thresholds) in numeric order, before any text."""
    try:
        return 0, float(level)
    except ValueError:
        return 1, level


def specification_curve(data: FigureInputs, *, only: Iterable[str] | None = None) -> plt.Figure | None:
    """Every judge x benchmark x incoherence-policy (x threshold, for judges cut from a graded score) cell of each
    comparison, sorted by effect, with its interval and the humans' effect in the same benchmark and policy beside it;
    an indicator panel shows each cell's choices. ``only``: those comparisons alone."""
    rows, notes = _effects(data.stats, only, "finetune_effect_cell")
    if rows.empty:
        return None
    judged = rows[rows["judge_id"] != HUMAN_MAJORITY]
    if judged.groupby("comparison").size().max() < 2:  # one judge, benchmark and policy: a curve of one point each
        return None
    # a judge cut from a graded score has one cell per threshold (``|threshold=T`` in the subset); when a study has
    # such judges, the other judges' cells read "binary verdict" on that axis
    rows["threshold"] = rows["subset"].str.extract(r"\|threshold=([^|]+)", expand=False)
    if rows["threshold"].notna().any():
        rows.loc[rows["threshold"].isna() & (rows["judge_id"] != HUMAN_MAJORITY), "threshold"] = NATIVE_VERDICT
    comparisons = sorted(rows["comparison"].unique())
    names = sign_names(outcome_of(rows))
    judges_all = rows.loc[rows["judge_id"] != HUMAN_MAJORITY, "judge_id"]
    levels = {factor: sorted(judges_all.unique()) if factor == "judge_id" else
              sorted(rows[factor].dropna().unique(), key=_level_order) for factor, _ in SPEC_FACTORS}
    n_indicators = sum(len(v) for v in levels.values())
    with plt.rc_context(PAPER_STYLE):
        # + 1 inch for the title (up to four lines with a panel left out) and the legend: without it the indicator
        # rows were squeezed until their 7-pt labels overlapped
        fig, axes = plt.subplots(2 * len(comparisons), 1,
                                 figsize=(DOUBLE_COLUMN_IN, len(comparisons) * (1.9 + 0.13 * n_indicators) + 1.0),
                                 gridspec_kw={"height_ratios": [1.9, 0.13 * n_indicators] * len(comparisons)},
                                 layout="constrained", squeeze=False)
        for k, comparison in enumerate(comparisons):
            curve, indicator = axes[2 * k][0], axes[2 * k + 1][0]
            part = rows[rows["comparison"] == comparison]
            humans = part[part["judge_id"] == HUMAN_MAJORITY].set_index(["benchmark", "subset_value"])
            cells = part[part["judge_id"] != HUMAN_MAJORITY].sort_values(["estimate", "judge_id"])
            undefined = cells[cells["estimate"].isna()]
            cells = cells[cells["estimate"].notna()]
            x = np.arange(len(cells))
            keys = [sign_significance_key(r) if np.isfinite(r["estimate"]) else "ns" for _, r in cells.iterrows()]
            errors = interval_errors(cells)
            for key in SIGN_COLOURS:
                mask = np.array([c == key for c in keys])
                if mask.any():
                    curve.errorbar(x[mask], cells["estimate"].to_numpy()[mask], yerr=errors[:, mask], fmt="o",
                                   color=SIGN_COLOURS[key], markersize=2.5, capsize=1, linewidth=0.7, label=names[key])
            reference = humans.reindex(list(zip(cells["benchmark"], cells["subset_value"], strict=True)))
            if not humans.empty:
                curve.plot(x, reference["estimate"].to_numpy(), "D", color="black", markersize=2.2,
                           label="humans, same benchmark and policy", zorder=3)
            curve.axhline(0, color="0.5", linewidth=0.6)
            curve.set_xlim(-0.7, len(cells) - 0.3)
            curve.set_xticks([])
            curve.set_ylabel("paired Δ rate", fontsize=7)
            missing = ""
            if len(undefined):
                # the reason with the choices that caused it (e.g. the "only incoherent" policy leaves no unit)
                reasons = sorted({f"{_first_reason(cell)} (benchmark {benchmark}, incoherent: {policy})"
                                  for (benchmark, policy), cell in undefined.groupby(["benchmark", "subset_value"])})
                # the panel says how many; the caption says why (a reason is too long for a panel's title)
                missing = f" ({len(undefined)} cells not drawn)"
                notes.append(f"{len(undefined)} cells of {comparison_title(comparison).replace(chr(10), ' ')} are "
                             f"undefined: {reasons[0]}" + (" …" if len(reasons) > 1 else ""))
            curve.set_title(comparison_title(comparison).replace("\n", " ") + missing, fontsize=7)
            ticks, tick_labels, y = [], [], 0
            for factor, name in SPEC_FACTORS:
                for level in levels[factor]:
                    used = (cells[factor] == level).to_numpy()
                    indicator.plot(x[used], np.full(used.sum(), y), "s", color="0.2", markersize=2.2)
                    indicator.plot(x[~used], np.full((~used).sum(), y), "s", color="0.88", markersize=2.2)
                    ticks.append(y)
                    tick_labels.append(f"{name}: {level}")
                    y += 1
            indicator.set_yticks(ticks, tick_labels, fontsize=7 if n_indicators <= 24 else max(4.5, 7.0 - 0.05 * n_indicators))
            indicator.set_ylim(y - 0.5, -0.5)
            indicator.set_xlim(curve.get_xlim())
            indicator.set_xticks([])
            indicator.spines[["left", "bottom"]].set_visible(False)
        legend = {}
        for ax in axes[::2, 0]:  # every curve's series once, below the figure (inside, it hides points)
            legend.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
        fig.legend(list(legend.values()), list(legend), loc="outside lower center", fontsize=6.5, frameon=False, ncol=1)
        thresholds = " × threshold" if levels["threshold"] else ""
        fig.suptitle("Specification curve: the effect under every analysis", fontsize=8)
        set_caption(fig, f"The effect under every judge × benchmark × incoherence policy{thresholds}, sorted; dark "
                         f"squares: the choices of each cell; {interval_note(rows)}.{_caption_notes(notes)}")
    return fig


def _plane_rates(stats: pd.DataFrame, outcome: str, judge: str | None) -> tuple[pd.DataFrame, str]:
    """The outcome's rate per model on all benchmarks: the judge-corrected rate of ``judge`` (the answer's lead
    judge, :func:`lead_judges`: the plane and the answer agree), else the humans' rate on the labelled items."""
    stats = stats[outcome_of(stats) == outcome]
    noun = OUTCOMES[outcome].noun
    corrected = stats[(stats["statistic"] == "harmful_rate_corrected") & stats["benchmark"].isna()
                      & stats["estimate"].notna() & (stats["judge_id"] == judge)]
    if not corrected.empty:
        return (corrected.drop_duplicates("model").set_index("model"),
                f"{noun} rate corrected by {judge}'s errors on the labelled items (PPI++; the answer's lead judge)")
    human = stats[(stats["statistic"] == "harmful_rate") & (stats["judge_id"] == HUMAN_MAJORITY)
                  & stats["benchmark"].isna() & stats["model"].notna()].drop_duplicates("model")
    return human.set_index("model"), f"humans' {noun} rate on the labelled items"


def safety_capability_plane(data: FigureInputs) -> plt.Figure | None:
    """Per goal (columns) and outcome (rows: harmful compliance, over-refusal): capability on the goal's task (x)
    against the outcome's rate (y), both with intervals; solid arrows base → fine-tune, dashed arrows from the
    unmitigated fine-tune to its mitigated twin. A mitigation's trade-off reads down a column: harm removed above,
    over-refusal added below, capability on x."""
    stats = data.stats
    capability = stats[(stats["statistic"] == "capability") & stats["finetune_goal"].notna()]
    gains = stats[stats["statistic"] == "capability_gain"]
    if capability.empty or gains.empty:
        return None
    outcomes = [o for o in OUTCOMES if o != "incoherent"]
    leads = lead_judges(stats, named=data.lead_judge)
    planes = {o: _plane_rates(stats, o, leads.get(o)) for o in outcomes}
    planes = {o: (rates, note) for o, (rates, note) in planes.items() if not rates.empty}
    if not planes:
        return None
    mitigations = stats[(stats["statistic"] == "finetune_effect_paired") & (stats["subset_kind"] == "mitigation_comparison")]
    mitigation_pairs = {tuple(key.removeprefix("comparison=").split("|goal=")[0].split(" vs "))
                        for key in comparison_of(mitigations["subset"]).unique()}
    targets = stats[stats["statistic"] == "capability_goal_target"]
    goals = sorted(capability["finetune_goal"].unique())
    with plt.rc_context(PAPER_STYLE):
        fig, axes = plt.subplots(len(planes), len(goals), figsize=(max(DOUBLE_COLUMN_IN, 3.4 * len(goals)),
                                 0.4 + 3.0 * len(planes)), sharex="col", squeeze=False, layout="constrained")
        for row_axes, (outcome, (rates, _)) in zip(axes, planes.items(), strict=True):
            for ax, goal in zip(row_axes, goals, strict=True):
                _plane_panel(ax, capability, gains, rates, targets, mitigation_pairs, goal)
                ax.set_title(f"goal: {goal} — {OUTCOMES[outcome].noun}", fontsize=7.5)
            row_axes[0].set_ylabel(f"{OUTCOMES[outcome].noun} rate (its prompts)", fontsize=7)
        rate_notes = "; ".join(f"y ({OUTCOMES[o].noun}): {note}, {interval_note(rates)}"
                               for o, (rates, note) in planes.items())
        fig.suptitle("Safety–capability plane: goal reached, at what cost?", fontsize=8)
        set_caption(fig, "Did the fine-tune reach its goal, and at what cost in harm and over-refusal? "
                         f"{rate_notes}; x: capability, {interval_note(capability)}; ◆ base, solid arrow: fine-tune, "
                         "dashed arrow: mitigation.")
    return fig


def _plane_panel(ax: plt.Axes, capability: pd.DataFrame, gains: pd.DataFrame, rates: pd.DataFrame,
                 targets: pd.DataFrame, mitigation_pairs: set, goal: str) -> None:
    """One goal's models on one outcome's plane."""
    level = capability[capability["finetune_goal"] == goal].drop_duplicates("model").set_index("model")
    task = level["subset_value"].iloc[0]
    finetunes = gains[gains["finetune_goal"] == goal].drop_duplicates("model")
    models = list(dict.fromkeys(list(finetunes["base_model"]) + list(finetunes["model"])))
    models = [m for m in models if m in level.index and m in rates.index]
    points = pd.DataFrame({"x": level.loc[models, "estimate"], "y": rates.loc[models, "estimate"]})
    x_err = interval_errors(level.loc[models].reset_index())
    y_err = interval_errors(rates.loc[models].reset_index())
    base_models = set(finetunes["base_model"])
    for i, model in enumerate(models):
        colour = "black" if model in base_models else OKABE_ITO[i % len(OKABE_ITO)]
        ax.errorbar(points.at[model, "x"], points.at[model, "y"], xerr=x_err[:, [i]], yerr=y_err[:, [i]],
                    fmt="D" if model in base_models else "o", color=colour, markersize=4, capsize=1.5,
                    linewidth=0.8)
        ax.annotate(model, (points.at[model, "x"], points.at[model, "y"]), xytext=(4, 4),
                    textcoords="offset points", fontsize=7, color=colour)
    arrows = [(b, m, "-") for b, m in zip(finetunes["base_model"], finetunes["model"], strict=True)]
    arrows += [(control, treated, "--") for treated, control in mitigation_pairs]
    for start, end, style in arrows:
        if start in points.index and end in points.index:
            ax.annotate("", xy=tuple(points.loc[end]), xytext=tuple(points.loc[start]),
                        arrowprops={"arrowstyle": "->", "linestyle": style, "color": "0.35", "linewidth": 0.8,
                                    "shrinkA": 4, "shrinkB": 4})
    target = targets[(targets["finetune_goal"] == goal) & (targets["subset_value"] == task)]["estimate"]
    if len(target):
        ax.axvline(float(target.iloc[0]), color="0.5", linestyle=":", linewidth=0.9)
        ax.annotate(f"goal target {float(target.iloc[0]):g}", (float(target.iloc[0]), 1), xytext=(2, -8),
                    xycoords=("data", "axes fraction"), textcoords="offset points", fontsize=7, color="0.35")
    ax.set_xlabel(f"capability on {task} (mean score)", fontsize=7)
