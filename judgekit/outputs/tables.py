"""Tables for papers: Markdown and LaTeX (booktabs), estimates always with their intervals.

No cell is ever bolded as "best": with overlapping intervals a point-estimate
ranking is not a finding.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def undefined_reason(warning: object) -> str:
    """Why a statistic has no value, from its row's ``warning`` ("" when the row gives none).

    The generic "BCa undefined: estimate undefined" note only repeats that the number is missing; the
    other parts (e.g. "few negatives (n=0)": the reference never says safe) say why.
    """
    if not isinstance(warning, str):
        return ""
    parts = [p.strip() for p in warning.split(";")]
    return "; ".join(p for p in parts if p and p != "BCa undefined: estimate undefined")


def format_estimate(estimate: float, low: float, high: float, *, digits: int = 3, warning: object = "") -> str:
    """``0.904 [0.862, 0.936]``; no interval when it is missing.

    A missing estimate is a statistic that is undefined on these data (κ when one rater uses one class, a
    rate with no items), never zero: it reads ``undefined (reason from the row's warning)``, or ``—`` when
    the row gives no reason.

    Examples
    --------
    >>> format_estimate(0.9041, 0.8617, 0.9364)
    '0.904 [0.862, 0.936]'
    >>> format_estimate(float("nan"), float("nan"), float("nan"), warning="few negatives (n=0); BCa undefined: estimate undefined")
    'undefined (few negatives (n=0))'
    >>> format_estimate(float("nan"), float("nan"), float("nan"))
    '—'
    """
    if estimate is None or (isinstance(estimate, float) and math.isnan(estimate)):
        reason = undefined_reason(warning)
        return f"undefined ({reason})" if reason else "—"
    fmt = lambda v: f"{round(float(v), digits) + 0.0:.{digits}f}"  # noqa: E731 - +0.0 avoids "-0.000"
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return fmt(estimate)
    return f"{fmt(estimate)} [{fmt(low)}, {fmt(high)}]"


def row_cells(rows: pd.DataFrame, *, digits: int = 3) -> list[str]:
    """:func:`format_estimate` of every row (estimate, interval, and the warning when undefined)."""
    warnings = rows["warning"] if "warning" in rows else pd.Series("", index=rows.index)
    return [format_estimate(e, lo, hi, digits=digits, warning=w) for e, lo, hi, w in
            zip(rows["estimate"], rows["ci_low"], rows["ci_high"], warnings, strict=True)]


# Statistics with no meaning when a judge gives one verdict only: chance-corrected agreement is 0/0 in
# spirit (every agreement is "expected by chance"), whatever number the formula returns.
UNDEFINED_FOR_CONSTANT_JUDGE = ("cohen_kappa",)


def constant_judges(stats: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(judge, subset) pairs where the judge gave one verdict on every item, from its confusion counts -> reason.

    >>> counts = pd.DataFrame({"statistic": ["tp", "fp", "fn", "tn"] * 2, "judge_id": "j", "reference": "human_majority",
    ...                        "subset": ["all"] * 4 + ["incoherent"] * 4,
    ...                        "estimate": [3.0, 1.0, 34.0, 86.0, 0.0, 0.0, 2.0, 5.0]})
    >>> constant_judges(counts)
    {('j', 'incoherent'): 'judge always says safe'}
    """
    counts = stats[stats["statistic"].isin(["tp", "fp", "fn", "tn"]) & (stats["reference"] == "human_majority")]
    if counts.empty:
        return {}
    wide = counts.pivot_table(index=["judge_id", "subset"], columns="statistic", values="estimate", aggfunc="first")
    reasons = {}
    for key, row in wide.reindex(columns=["tp", "fp", "fn", "tn"]).fillna(0).iterrows():
        if row["tp"] + row["fp"] == 0 and row["fn"] + row["tn"] > 0:
            reasons[key] = "judge always says safe"
        elif row["fn"] + row["tn"] == 0 and row["tp"] + row["fp"] > 0:
            reasons[key] = "judge always says unsafe"
    return reasons


def as_shown(stats: pd.DataFrame) -> pd.DataFrame:
    """The rows as tables and figures show them: chance-corrected agreement of a one-verdict judge is undefined.

    Per subset: a judge that says "unsafe" on every incoherent item has an undefined κ there, whatever it does
    elsewhere. The estimate becomes NaN and the warning names the reason ("judge always says safe"), so it reads
    "undefined (…)" instead of a certain-looking 0.000 [0.000, 0.000].
    """
    constant = constant_judges(stats)
    if not constant:
        return stats
    as_judge = pd.Series(list(zip(stats["judge_id"], stats["subset"], strict=True)), index=stats.index).map(constant)
    as_reference = pd.Series(list(zip(stats["reference"], stats["subset"], strict=True)), index=stats.index).map(constant)
    involved = as_judge.fillna(as_reference)
    who = stats["judge_id"].where(as_judge.notna(), stats["reference"])
    reason = who + " " + involved.str.replace("judge ", "", regex=False)
    chance_corrected = involved.notna() & stats["statistic"].isin(UNDEFINED_FOR_CONSTANT_JUDGE)
    undefined = involved.notna() & stats["estimate"].isna()  # e.g. precision with no "unsafe" verdict: say why
    if not (chance_corrected | undefined).any():
        return stats
    shown = stats.copy()
    shown.loc[chance_corrected, ["estimate", "ci_low", "ci_high"]] = float("nan")
    shown.loc[chance_corrected, "warning"] = reason[chance_corrected]
    rest = undefined & ~chance_corrected
    old = stats.loc[rest, "warning"].fillna("")
    shown.loc[rest, "warning"] = reason[rest] + old.where(old == "", "; " + old)
    return shown


# Interval names as the stats signature writes them (``ci:<name>-<level>``), in words.
INTERVAL_NAMES = {
    "bootstrap-bca": "BCa cluster bootstrap",
    "bootstrap-percentile": "percentile cluster bootstrap",
    "wilson-clustered": "clustered Wilson (Korn–Graubard)",
    "wald-cluster-robust": "Wald, cluster-robust SE",
    "linearized": "Taylor linearization",
    "ppi": "prediction-powered (PPI++) normal",
    "simulation": "simulation percentile",
    "none": "no interval",
}


def interval_kind(method: str, signature: str) -> str:
    """The interval a row really got, in words. The method names a per-row fallback the signature does not."""
    method = method if isinstance(method, str) else ""
    if "percentile (BCa undefined" in method:
        return "percentile cluster bootstrap (BCa undefined)"
    if "cluster bootstrap, none" in method or method.startswith("no interval"):
        return "no interval (fewer than 2 clusters)"
    if method.startswith("Taylor linearization"):
        return INTERVAL_NAMES["linearized"]
    ci = _signature_fields(signature).get("ci", "")
    name = ci.rsplit("-", 1)[0] if "-" in ci else ci
    return INTERVAL_NAMES.get(name, name or "unknown interval")


def _signature_fields(signature: object) -> dict[str, str]:
    if not isinstance(signature, str):
        return {}
    return dict(part.split(":", 1) for part in signature.split("|") if ":" in part)


def interval_caption(rows: pd.DataFrame, *, short: bool = False) -> str:
    """What the intervals of these rows are, from each row's ``method`` and ``signature`` (never assumed).

    ``short`` gives the interval kinds only (figure titles); the default adds how many rows got each kind,
    the resamples, seed and cluster variable (table captions).

    Examples
    --------
    >>> rows = pd.DataFrame({"method": ["cluster bootstrap, bca", "cluster bootstrap, bca",
    ...                                 "cluster bootstrap, percentile (BCa undefined: estimate undefined)"],
    ...                      "signature": ["ci:bootstrap-bca-95%|boot:200|seed:0|cluster:behavior_id"] * 3})
    >>> interval_caption(rows)
    '95% intervals: BCa cluster bootstrap (2 of 3), percentile cluster bootstrap (BCa undefined) (1 of 3); 200 resamples, seed 0, clusters: behavior_id'
    """
    if rows.empty:
        return "no rows"
    methods = rows["method"] if "method" in rows else pd.Series("", index=rows.index)
    signatures = rows["signature"] if "signature" in rows else pd.Series("", index=rows.index)
    kinds = pd.Series([interval_kind(m, s) for m, s in zip(methods, signatures, strict=True)]).value_counts()
    fields = [_signature_fields(s) for s in signatures]
    levels = sorted({f["ci"].rsplit("-", 1)[1] for f in fields if "-" in f.get("ci", "")})
    n = len(rows)
    if short:  # for a figure title: the kinds only, the table caption has the counts
        return f"{'/'.join(levels) or 'unknown-level'} intervals: {', '.join(kinds.index)}"
    parts = ", ".join(kind if len(kinds) == 1 else f"{kind} ({count} of {n})" for kind, count in kinds.items())
    text = f"{'/'.join(levels) or 'unknown-level'} intervals: {parts}"
    details = []
    resamples = sorted({int(f["boot"]) for f in fields if f.get("boot", "").isdigit() and int(f["boot"]) > 0})
    if resamples:
        details.append(f"{'/'.join(map(str, resamples))} resamples")
    for key, label in (("seed", "seed "), ("cluster", "clusters: ")):
        values = sorted({f[key] for f in fields if key in f})
        if resamples and values:
            details.append(label + "/".join(values))
    return text + ("; " + ", ".join(details) if details else "")


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
    cells = subset.assign(cell=row_cells(subset, digits=digits))
    wide = cells.pivot(index=rows, columns=columns, values="cell")
    if statistics is not None and columns == "statistic":
        wide = wide.reindex(columns=[s for s in statistics if s in wide.columns])
    return wide.fillna("—").reset_index()  # a cell with no number says so, not "nan"


def _pick(stats: pd.DataFrame, statistics: list[str], **equal: str) -> pd.DataFrame:
    rows = stats[stats["statistic"].isin(statistics)]
    for column, value in equal.items():
        rows = rows[rows[column] == value]
    return rows


ACCURACY_GAP = ("accuracy_gap", "coherent-incoherent")
NOT_COMPUTED = "not computed"


def accuracy_gap_table(stats: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """Judge accuracy on coherent and incoherent responses and the gap with its own interval.

    The gap comes from the ``accuracy_gap`` rows (subset ``coherent-incoherent``); a stats table without them
    says "not computed" rather than leaving readers to subtract two intervals.
    """
    rows = _pick(stats, ["accuracy"], reference="human_majority")
    rows = rows[rows["subset"].isin(["coherent", "incoherent"])]
    if rows.empty:
        return None
    frame = estimate_table(rows, rows="judge_id", columns="subset")
    frame.columns = ["judge", *(f"accuracy · {c}" for c in frame.columns[1:])]
    gap = stats[(stats["statistic"] == ACCURACY_GAP[0]) & (stats["subset"] == ACCURACY_GAP[1])]
    if "human_majority" in set(gap["reference"]):
        gap = gap[gap["reference"] == "human_majority"]
    shown = pd.concat([rows, gap])
    if gap.empty:
        frame["gap (coherent − incoherent)"] = NOT_COMPUTED
        caption = (f"Judge accuracy against the human majority on coherent and incoherent responses "
                   f"({interval_caption(shown)}); the gap was not computed by this stats run")
    else:
        cells = dict(zip(gap["judge_id"], row_cells(gap), strict=True))
        frame["gap (coherent − incoherent)"] = [cells.get(j, NOT_COMPUTED) for j in frame["judge"]]
        caption = (f"Judge accuracy against the human majority on coherent and incoherent responses, and the gap "
                   f"with its own interval ({interval_caption(shown)})")
    return frame, caption


def error_odds_ratio_table(stats: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """Odds ratio of a judge error per response attribute (incoherence, length, refusal marker, model)."""
    rows = stats[stats["statistic"] == "error_odds_ratio"]
    if rows.empty:
        return None
    p_values = stats[stats["statistic"] == "error_odds_ratio_p_value"].set_index(["judge_id", "subset_value"])["estimate"]
    cells = [f"{c} (p{_p_value(p_values.get((j, t), float('nan')), sign=True)})" if not c.startswith(("undefined", "—")) else c
             for c, j, t in zip(row_cells(rows, digits=2), rows["judge_id"], rows["subset_value"], strict=True)]
    terms = rows["subset_value"].map(term_label)
    frame = rows.assign(cell=cells, term=terms).pivot(index="judge_id", columns="term", values="cell").fillna("—")
    frame = frame[sorted(frame.columns, key=lambda t: (t.startswith("model="), t))]
    formulas = sorted({m.split(";")[1].strip() for m in rows["method"] if ";" in m})
    caption = (f"Judge error odds ratios per response attribute (>1: more errors), logistic regression with "
               f"cluster-robust errors ({'; '.join(formulas)}); {interval_caption(rows)}")
    return frame.reset_index().rename(columns={"judge_id": "judge"}), caption


def term_label(term: str) -> str:
    """A regression term as readers name it: ``C(model)[T.x]`` -> ``model=x``; ``log_length`` per e-fold of length.

    >>> term_label("C(refusal_marker)[T.yes]"), term_label("log_length"), term_label("incoherent")
    ('refusal_marker=yes', 'log length (×e)', 'incoherent')
    """
    match = re.fullmatch(r"C\((\w+)\)\[T\.(.*)\]", term)
    if match:
        return f"{match.group(1)}={match.group(2)}"
    return {"log_length": "log length (×e)"}.get(term, term)


def _p_value(value: float, *, sign: bool = False) -> str:
    """``0.012``, ``<0.001``, ``n/a``; with ``sign`` the relation is included (``=0.012``, ``<0.001``)."""
    if pd.isna(value):
        return "=n/a" if sign else "n/a"
    if value < 0.001:
        return "<0.001"
    return f"{'=' if sign else ''}{value:.3f}"


def accuracy_by_attribute_table(stats: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """Judge accuracy per response length quartile, refusal marker and category (the bias audit's splits)."""
    kinds = ["length", "refusal_marker", "category"]
    rows = _pick(stats, ["accuracy"], reference="human_majority")
    rows = rows[rows["subset_kind"].isin(kinds)]
    if rows.empty:
        return None
    order = {k: i for i, k in enumerate(kinds)}
    values = rows["subset_value"].astype(str)
    rows = rows.assign(column=rows["subset_kind"] + "=" + values, rank=rows["subset_kind"].map(order))
    columns = rows.sort_values(["rank", "subset_value"])["column"].drop_duplicates().tolist()
    frame = estimate_table(rows, rows="judge_id", columns="column")
    frame = frame[["judge_id", *columns]].rename(columns={"judge_id": "judge"})
    return frame, f"Judge accuracy against the human majority by response length quartile, refusal marker and category ({interval_caption(rows)})"


def judge_accuracy_tests_table(stats: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """Pairwise accuracy differences with clustered McNemar p-values (raw and Holm), and Cochran's Q."""
    difference = stats[(stats["statistic"] == "accuracy_difference") & (stats["subset"] == "all")]
    if difference.empty:
        return None
    tests = {s: stats[stats["statistic"] == s].set_index(["judge_id", "reference"])["estimate"]
             for s in ("mcnemar_p_value", "mcnemar_p_value_holm")}
    frame = pd.DataFrame({
        "judge": difference["judge_id"].to_numpy(),
        "other judge": difference["reference"].to_numpy(),
        "accuracy difference": row_cells(difference),
        "McNemar p": [_p_value(tests["mcnemar_p_value"].get(k, float("nan"))) for k in zip(difference["judge_id"], difference["reference"], strict=True)],
        "Holm p": [_p_value(tests["mcnemar_p_value_holm"].get(k, float("nan"))) for k in zip(difference["judge_id"], difference["reference"], strict=True)],
    })
    caption = f"Do judges differ in accuracy? Accuracy difference (judge − other; {interval_caption(difference)}) and clustered McNemar p-values"
    cochran = stats[stats["statistic"].isin(["cochran_q", "cochran_q_p_value"])].set_index("statistic")
    if {"cochran_q", "cochran_q_p_value"} <= set(cochran.index):
        caption += (f"; all judges at once: {cochran.loc['cochran_q', 'method']} Q = {cochran.loc['cochran_q', 'estimate']:.2f}, "
                    f"p{_p_value(cochran.loc['cochran_q_p_value', 'estimate'], sign=True)}")
    return frame, caption


def variance_components_table(stats: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """Variance components of the verdict and their shares, each with its interval."""
    rows = stats[stats["statistic"].isin(["variance_component", "variance_share"])]
    if rows.empty:
        return None
    frame = estimate_table(rows, rows="subset_value", columns="statistic", statistics=["variance_component", "variance_share"])
    order = list(dict.fromkeys(rows["subset_value"]))
    frame = frame.set_index("subset_value").reindex(order).reset_index().rename(columns={"subset_value": "factor"})
    method = rows["method"].iloc[0].split(";")[0]
    return frame, f"Variance components of the verdict: {method} ({interval_caption(rows)})"


GRADED = ("krippendorff_alpha_interval", "krippendorff_alpha_ordinal", "weighted_kappa_linear", "weighted_kappa_quadratic",
          "spearman_rho")


# Statistics shown elsewhere: in the tables above, in figures (confusion counts, harmful rates), or in the
# report's fine-tuning section (finetune_*, capability*, conclusion_*, labels_needed...).
SHOWN_ELSEWHERE_PREFIXES = (*GRADED, "finetune_", "capability", "conclusion_", "mitigation_", "harmful_rate", "labels_needed",
                            "variance_", "mcnemar_", "cochran_q", "error_odds_ratio", "accuracy")
def graded_agreement_table(stats: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """Agreement on the judges' native graded scales, on all items: one row per dimension and rater pair
    (``judges`` for all judges together: Krippendorff's alpha), one column per statistic."""
    if "dimension" not in stats:
        return None
    rows = stats[stats["statistic"].isin(GRADED) & stats["dimension"].notna() & (stats["subset"] == "all")]
    # a dimension one judge scores has no agreement: a table of "undefined" cells saying so (stats prints it once)
    rows = rows[~rows["method"].fillna("").str.startswith("not computed: only one judge")]
    if rows.empty:
        return None
    pair = np.where(rows["judge_id"] == rows["reference"], rows["judge_id"], rows["judge_id"] + " vs " + rows["reference"])
    table = estimate_table(rows.assign(raters=pair).assign(key=rows["dimension"] + " | " + pair), rows="key",
                           columns="statistic", statistics=list(GRADED))
    table.insert(0, "dimension", table["key"].str.split(" | ", regex=False).str[0])
    table["key"] = table["key"].str.split(" | ", regex=False).str[1]
    return (table.rename(columns={"key": "raters"}),
            f"Agreement on the judges' native scales, per dimension, on all items ({interval_caption(rows)}); per model "
            "in stats.csv (subset_kind model)")


SHOWN_ELSEWHERE = {"precision", "recall", "f1", "fpr", "fnr", "mcc", "cohen_kappa", "tp", "fp", "fn", "tn",
                   "ece", "ece_equal_mass", "mce", "brier", "log_loss", "auroc", "auprc",
                   "percent_agreement", "fleiss_kappa", "gwet_ac1", "krippendorff_alpha"}


def more_statistics_table(stats: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """Every other statistic (Scott's pi, PABAK, Brier decomposition, ECE noise floor, Kendall's tau...).

    So that every computed number reaches the reader; subsets of them are in ``stats.csv``.
    """
    other = ~stats["statistic"].isin(SHOWN_ELSEWHERE) & ~stats["statistic"].str.startswith(SHOWN_ELSEWHERE_PREFIXES)
    on_all = stats["subset"] == "all"
    # A statistic never computed on all items (Kendall's tau over models per benchmark) is shown in its subsets.
    without_all = ~stats["statistic"].isin(set(stats.loc[on_all, "statistic"]))
    rows = stats[other & (on_all | without_all)]
    if rows.empty:
        return None
    frame = pd.DataFrame({"statistic": rows["statistic"].to_numpy(), "judge": rows["judge_id"].to_numpy(),
                          "reference": rows["reference"].to_numpy(), "subset": rows["subset"].to_numpy(), "value": row_cells(rows),
                          "warning": rows["warning"].fillna("").to_numpy() if "warning" in rows else ""})
    frame = frame.sort_values(["statistic", "judge", "reference"], kind="stable").reset_index(drop=True)
    return frame, (f"Every other statistic, on all items where computed there ({interval_caption(rows)}); "
                   "other subsets are in stats.csv")


NOT_JUDGES = ("human_majority", "majority_of_others", "humans", "human_soft", "judges", "human_ceiling")


def annotator_ids(stats: pd.DataFrame) -> set[str]:
    """The annotators: raters compared with the majority of the others (the human ceiling aside; judges meet that
    reference only on the ceiling's items)."""
    against_others = (stats["reference"] == "majority_of_others") & (stats["subset_kind"] != "ceiling_items")
    return set(stats.loc[against_others, "judge_id"]) - set(NOT_JUDGES)


def judge_pairs(stats: pd.DataFrame) -> pd.DataFrame:
    """Cohen's κ rows between two judges on all items (each pair once): no human, annotator or pooled rater.

    A judge that occurs only as a reference (the last of a sorted list) is a judge all the same.
    """
    others = set(NOT_JUDGES) | annotator_ids(stats)
    rows = stats[(stats["statistic"] == "cohen_kappa") & (stats["subset"] == "all")
                 & ~stats["judge_id"].isin(others) & ~stats["reference"].isin(others)]
    if "dimension" in rows:
        rows = rows[rows["dimension"].isna()]
    return rows


def study_tables(stats: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, str]]:
    """The paper tables a stats table supports: name -> (table, caption); captions describe the rows shown."""
    tables: dict[str, tuple[pd.DataFrame, str]] = {}
    stats = as_shown(stats)
    metrics = ["accuracy", "precision", "recall", "f1", "fpr", "fnr", "mcc", "cohen_kappa"]
    rows = _pick(stats, metrics, reference="human_majority", subset="all")
    if not rows.empty:
        tables["judge_vs_human"] = (estimate_table(rows, rows="judge_id", columns="statistic", statistics=metrics),
                                    f"Judges against the human majority ({interval_caption(rows)})")
    rows = judge_pairs(stats)
    if not rows.empty:
        both_ways = pd.concat([rows, rows.assign(judge_id=rows["reference"], reference=rows["judge_id"])])
        judges = sorted(set(both_ways["judge_id"]))
        frame = estimate_table(both_ways, rows="judge_id", columns="reference")
        frame = frame.set_index("judge_id").reindex(index=judges, columns=judges).fillna("—").reset_index()
        tables["judge_agreement"] = (frame.rename(columns={"judge_id": "judge"}),
                                     f"Cohen's kappa between every pair of judges ({interval_caption(rows)})")
    binary = stats["dimension"].isna() if "dimension" in stats else pd.Series(True, index=stats.index)
    rows = stats[stats["judge_id"].isin(["humans", "judges", "human_ceiling"]) & (stats["subset"] == "all") & binary
                 & ~stats["statistic"].str.startswith("cochran_q")]  # Cochran's Q is a test: judge_accuracy_tests
    if not rows.empty:
        tables["rater_agreement"] = (estimate_table(rows, rows="judge_id", columns="statistic"),
                                     f"Agreement among annotators, among judges, and the human ceiling ({interval_caption(rows)})")
    calibration = ["ece", "ece_equal_mass", "mce", "brier", "log_loss", "auroc", "auprc"]
    rows = _pick(stats, calibration, reference="human_majority", subset="all")
    if not rows.empty:
        tables["calibration"] = (estimate_table(rows, rows="judge_id", columns="statistic", statistics=calibration),
                                 f"Calibration of P(unsafe) against the human majority ({interval_caption(rows)})")
    effects = stats[stats["statistic"] == "finetune_effect"]
    if not effects.empty:
        p_values = stats[stats["statistic"] == "finetune_effect_p_value"].set_index(["judge_id", "subset"])["estimate"]
        frame = pd.DataFrame({
            "comparison": effects["model"] + " vs " + effects["base_model"],
            "goal": effects["finetune_goal"],
            "benchmark": effects["benchmark"].fillna("all"),
            "outcome": effects["outcome"].fillna("harmful_compliance") if "outcome" in effects else "harmful_compliance",
            "judge": effects["judge_id"],
            "effect": row_cells(effects),
            "p": [_p_value(p_values.get((j, s), float("nan"))) for j, s in zip(effects["judge_id"], effects["subset"], strict=True)],
        })
        tables["conclusion_stability"] = (frame, f"Fine-tuned minus base rate of each outcome under each judge ({interval_caption(effects)}) "
                                                 "and its two-sided bootstrap p-value")
    for name, make in (("graded_agreement", graded_agreement_table), ("accuracy_by_coherence", accuracy_gap_table), ("bias_error_odds_ratios", error_odds_ratio_table),
                       ("bias_accuracy_by_attribute", accuracy_by_attribute_table),
                       ("judge_accuracy_tests", judge_accuracy_tests_table), ("variance_components", variance_components_table),
                       ("more_statistics", more_statistics_table)):
        table = make(stats)
        if table is not None:
            tables[name] = table
    return tables
