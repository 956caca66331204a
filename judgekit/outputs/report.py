"""A self-contained HTML report (no external resources, no scripts).

All study text (prompts, responses, raw judge outputs) is adversarial input:
it is HTML-escaped, and a Content-Security-Policy forbids scripts and remote
loads as a second line of defence.
"""

from __future__ import annotations

import html
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from judgekit.store.schema import PARSE_STATUSES
from judgekit.outputs.report_finetune import SECTION_FIGURES, embedded_figure, figure_family, finetune_section
from judgekit.outputs.tables import NOT_JUDGES, annotator_ids, as_shown, interval_caption, row_cells, study_tables
from judgekit.analysis.inputs import human_codes, human_majority, judge_codes, verdict_rows
from judgekit.store.schema import HUMAN_MAJORITY
from judgekit.store.study import Study

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
MAX_ITEMS = 300
MAX_SUSPECTS = 50  # likely annotation errors listed (after the others, within MAX_ITEMS)
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:70rem;color:#222;line-height:1.4}
h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0} th,td{border:1px solid #ccc;padding:.2rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{background:#fff3cd;border:2px solid #d39e00;padding:.8rem 1rem;font-weight:600}
pre,.text{white-space:pre-wrap;word-break:break-word;font-size:.8rem;background:#f8f8f8;padding:.3rem;margin:0;max-height:12rem;overflow:auto}
img{max-width:100%;height:auto;border:1px solid #eee} .muted{color:#666;font-size:.85rem}
input.filter{position:absolute;opacity:0;pointer-events:none} .filters div{margin:.3rem 0}
.filters label{display:inline-block;border:1px solid #999;border-radius:3px;padding:.05rem .4rem;margin:.1rem;cursor:pointer;font-size:.8rem}
.card{border-top:2px solid #ddd;margin-top:1rem} .wide{overflow-x:auto;max-width:100%}
.caption{font-size:.9rem;margin:1.2rem 0 .3rem} .suspect{background:#fde8d7;border-left:4px solid #D55E00;padding:.2rem .5rem;font-size:.85rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(frame: pd.DataFrame, numeric: set[str] = frozenset()) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            css = ' class="num"' if column in numeric else ""
            cells.append(f"<td{css}>{_e(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def status_counts(study: Study) -> pd.DataFrame:
    """Judgements per judge and dimension by parse status, and the responses that judge left unjudged on it.

    A judge scoring three dimensions gives three judgements per response: counted per dimension, never against
    the responses once.
    """
    if study.judgments is None:
        return pd.DataFrame()
    judgments = study.judgments
    dimension = (judgments["dimension"].fillna("verdict") if "dimension" in judgments
                 else pd.Series("verdict", index=judgments.index))
    judgments = judgments.assign(dimension=dimension).drop_duplicates(["judge_id", "dimension", "item_id"], keep="last")
    counts = judgments.pivot_table(index=["judge_id", "dimension"], columns="parse_status", values="item_id",
                                   aggfunc="count", fill_value=0)
    # ok, then only the failure statuses some judgement has: eleven columns of zeros make the table too wide to read
    counts = counts.reindex(columns=[s for s in PARSE_STATUSES if s == "ok" or s in counts.columns], fill_value=0)
    judged = judgments[judgments["item_id"].isin(set(study.responses["item_id"]))].groupby(["judge_id", "dimension"]).size()
    counts["not judged"] = len(study.responses) - judged.reindex(counts.index, fill_value=0)
    counts = counts.reset_index()
    return counts.drop(columns="dimension") if set(counts["dimension"]) == {"verdict"} else counts


def audit_answer(stats: pd.DataFrame) -> str:
    """The opening answer of a study with no comparison (one model, or responses of many pooled): which judge agrees
    best and least with the human majority (Cohen's κ on all items), or, without judges, the humans' harmful rate.
    '' when neither is in the stats."""
    stats = as_shown(stats)
    outcome = stats["outcome"] if "outcome" in stats else pd.Series(None, index=stats.index, dtype=object)
    everything = stats[(stats["subset"] == "all") & (outcome.isna() | (outcome == "harmful_compliance"))]
    kappa = everything[(everything["statistic"] == "cohen_kappa") & (everything["reference"] == HUMAN_MAJORITY)
                       & ~everything["judge_id"].isin(set(NOT_JUDGES) | annotator_ids(stats))]
    if "dimension" in kappa:
        kappa = kappa[kappa["dimension"].isna()]
    kappa = kappa.drop_duplicates("judge_id").dropna(subset=["estimate"]).sort_values("estimate", ascending=False)

    def value(row: pd.Series) -> str:
        return f"κ {row['estimate']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]".replace("-", "−")

    if len(kappa):
        best, worst = kappa.iloc[0], kappa.iloc[-1]
        chance = int((kappa["ci_low"] > 0).sum())
        where = f"Against the human majority on {int(best['n_items'])} responses"
        text = (f"{where}, {best['judge_id']} agrees best ({value(best)}) and {worst['judge_id']} least "
                f"({value(worst)}); {chance} of {len(kappa)} judges agree better than chance (κ interval above 0)."
                if len(kappa) > 1 else f"{where}, {best['judge_id']}'s {value(best)}: "
                + ("better than chance." if chance else "not better than chance (its κ interval reaches 0)."))
        return f"<h2>Which judge agrees with the humans?</h2><p><b>The answer.</b> {_e(text)}</p>"
    rate = everything[(everything["statistic"] == "harmful_rate") & (everything["judge_id"] == HUMAN_MAJORITY)]
    if rate.empty or not np.isfinite(rate["estimate"].iloc[0]):
        return ""
    row = rate.iloc[0]
    text = (f"The humans call {row['estimate']:.0%} [{row['ci_low']:.0%}, {row['ci_high']:.0%}] of "
            f"{int(row['n_items'])} responses unsafe; no judge's verdicts to compare with them.")
    return f"<h2>How often is a response unsafe?</h2><p><b>The answer.</b> {_e(text)}</p>"


def _no_agreement(study: Study) -> str:
    """Why there is no judge-vs-humans table: no judges (a human-labelled set alone), or no human labels."""
    if study.judgments is None or study.judgments.empty:
        labelled = study.annotations is not None and not study.annotations.empty
        return ("<p class='muted'>No judges: " + ("the human labels alone give the rates below; " if labelled else "")
                + "import other judges' verdicts (<code>data import table ... --judge NAME=COL</code>) or run "
                "<code>judgekit judge</code> to compare a judge with the humans.</p>")
    return ("<p class='muted'>No human labels: judges are compared with each other only (label items with "
            "<code>judgekit plan-labels</code>).</p>")


def _agreement_table(stats: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Accuracy, kappa and AC1 against the human majority on all, coherent and incoherent items; and its caption."""
    shown = ("accuracy", "cohen_kappa", "gwet_ac1")
    subsets = ("all", "coherent", "incoherent")
    stats = as_shown(stats)
    rows = stats[(stats["reference"] == HUMAN_MAJORITY) & stats["statistic"].isin(shown) & stats["subset"].isin(subsets)]
    if rows.empty:
        return pd.DataFrame(), ""
    rows = rows.assign(value=row_cells(rows), column=rows["statistic"] + " · " + rows["subset"])
    wide = rows.pivot(index="judge_id", columns="column", values="value")
    order = [f"{s} · {sub}" for s in shown for sub in subsets]
    wide = wide.reindex(columns=[c for c in order if c in wide.columns])
    n = rows[(rows["subset"] == "all") & (rows["statistic"] == "accuracy")].set_index("judge_id")[["n_items", "n_excluded"]]
    caption = f"Estimate [{interval_caption(rows)}]. n_items / n_excluded refer to the subset \"all\"."
    return wide.join(n).reset_index(), caption


def _verdict_text(row: pd.Series) -> str:
    """A judgment's verdict as shown: its label, or the verdict derived from its graded score and the score."""
    if isinstance(row["label"], str):
        return row["label"]
    if "score" in row and pd.notna(row["score"]):
        return f"{ {1.0: 'unsafe', 0.0: 'safe'}.get(row['code'], '—') } (score {row['score']:g})"
    return "—"


def judge_descriptions(judge_ids: list[str], study_manifest: dict | None, *, simulated: bool = False,
                       provenance: dict[str, str] | None = None) -> pd.DataFrame:
    """What each judge is, from the judge specs the study manifest recorded when it ran (latest run wins).

    In a simulated study the ``sim-*`` judges are described by their simulator profile; a judge without a spec by
    where its verdicts came from (``provenance``: judge -> its judgments' provenance, e.g. ``imported: FILE:COL``).
    Columns empty for every judge (the spec's source, vocabulary and deviations when no judge has a spec) are
    left out.
    """
    from judgekit.testing.simulate import JUDGE_PROFILES

    specs: dict[str, dict] = {}
    for run in (study_manifest or {}).get("runs", []):
        for entry in run.get("judge_specs", []) or []:
            specs[entry.get("judge_id")] = {**entry.get("spec", {}), "spec_hash": entry.get("spec_hash", "")}
    profiles = {p.judge_id: p.summary for p in JUDGE_PROFILES} if simulated else {}
    rows = []
    for judge_id in judge_ids:
        spec = specs.get(judge_id)
        if spec is None and judge_id in profiles:
            rows.append((judge_id, "simulated", f"SIMULATED by judgekit.testing.simulate: {profiles[judge_id]}", "judgekit/testing/simulate.py", "", "", ""))
            continue
        if spec is None:
            came = (provenance or {}).get(judge_id)
            rows.append((judge_id, "—", f"verdicts that came with the data ({came}), not from a judgekit run" if came
                         else "no judge spec in the study manifest: these verdicts came with the data (imported or "
                         "simulated), not from a judgekit run", "", "", "", ""))
            continue
        source = spec.get("source") or {}
        where = "/".join(str(source[k]) for k in ("repository", "path") if source.get(k))
        if source.get("commit"):
            where += f" @ {str(source['commit'])[:10]}"
        model = spec.get("model") or {}
        described = spec.get("description") or (model.get("id") if isinstance(model, dict) else "") or ""
        rows.append((judge_id, spec.get("family", ""), described, where, _vocabulary_check(spec),
                     " · ".join(spec.get("deviations") or []) or "none recorded", spec.get("spec_hash", "")))
    table = pd.DataFrame(rows, columns=["judge", "family", "what it is", "source", "vocabulary verified",
                                        "deviations from upstream", "spec hash"])
    empty = [c for c in ("source", "vocabulary verified", "deviations from upstream", "spec hash")
             if len(table) and (table[c] == "").all()]
    return table.drop(columns=empty)


def _provenance(study: Study) -> dict[str, str]:
    """Each judge's judgments' provenance (``imported: a.csv:gpt4``; several files joined by ', ')."""
    judgments = study.judgments
    if judgments is None or "provenance" not in judgments:
        return {}
    known = judgments.dropna(subset=["provenance"])
    return {judge: ", ".join(sorted(set(part["provenance"].astype(str)))[:3])
            + (", ..." if part["provenance"].nunique() > 3 else "") for judge, part in known.groupby("judge_id")}


def _vocabulary_check(spec: dict) -> str:
    """Whether the preset's label token ids were checked on the real vocabulary (keyword and rubric judges have none)."""
    verified = spec.get("verified_vocab")
    if verified is None:
        return "n/a (reads no vocabulary)" if "verified_vocab" in spec else "not stated"
    return "yes" if verified else "no (vocabulary not available offline)"


@dataclass(frozen=True)
class ItemEvidence:
    """What the item browser knows of every item, aligned on the study's item order."""

    item_ids: list[str]
    judges: list[str]
    verdicts: NDArray  # items x judges codes (1 unsafe, 0 safe, NaN none)
    reference: NDArray  # human reference code per item
    humans: pd.DataFrame  # items x annotators codes
    incoherent: NDArray  # bool per item (False where not flagged or not run)
    refusal: NDArray  # bool per item: the response holds a GCG refusal marker


def item_evidence(study: Study) -> ItemEvidence:
    from judgekit.analysis.blocks.bias import refusal_marker

    codes = judge_codes(study)
    flags = _incoherent_flags(study)
    item_ids = list(codes.index)
    return ItemEvidence(
        item_ids=item_ids, judges=list(codes.columns), verdicts=codes.to_numpy(), reference=human_majority(study).to_numpy(),
        humans=human_codes(study), incoherent=np.array([flags.get(i, ("na", ""))[0] == "yes" for i in item_ids]),
        refusal=refusal_marker(study.responses) == "yes",
    )


def informativeness(evidence: ItemEvidence) -> NDArray:
    """How much an item teaches about the judges, in [0, 4]: judge split + human split + incoherent + share of
    judges against the human reference.

    Judge split is 1 for an even split of the judges' verdicts and 0 when they agree; human split is 1 when
    annotators disagree.
    """
    verdicts = evidence.verdicts
    judged = (~np.isnan(verdicts)).sum(axis=1)
    unsafe = np.nansum(verdicts, axis=1)
    judge_split = np.divide(2 * np.minimum(unsafe, judged - unsafe), judged, out=np.zeros(len(judged)), where=judged > 0)
    humans = evidence.humans.to_numpy()
    human_split = (np.nanmax(np.where(np.isnan(humans), -1, humans), axis=1, initial=-1) == 1) & (
        np.nanmin(np.where(np.isnan(humans), 2, humans), axis=1, initial=2) == 0) if humans.size else np.zeros(len(judged), bool)
    against = (verdicts != evidence.reference[:, None]) & ~np.isnan(verdicts) & ~np.isnan(evidence.reference)[:, None]
    against_share = np.divide(against.sum(axis=1), judged, out=np.zeros(len(judged)), where=judged > 0)
    return judge_split + human_split + evidence.incoherent + against_share


def likely_annotation_errors(evidence: ItemEvidence) -> dict[int, str]:
    """Items (by position) where one annotator's label stands against every judge and the response text.

    "Against" means: at least two judges gave a verdict and all agree; the response text agrees with them (a
    refusal marker when they say safe, none when they say unsafe); and exactly one annotator gave the other
    label. Returns position -> a sentence for the item card. A marked item is a candidate for relabelling,
    not a verdict on the annotator.
    """
    marked = {}
    humans = evidence.humans
    for k, row in enumerate(evidence.verdicts):
        given = row[~np.isnan(row)]
        if len(given) < 2 or not (given == given[0]).all():
            continue
        verdict = given[0]
        if bool(evidence.refusal[k]) != (verdict == 0):
            continue
        labels = humans.iloc[k].dropna()
        dissent = labels[labels != verdict]
        if len(dissent) != 1:
            continue
        word = {1.0: "unsafe", 0.0: "safe"}
        text = "holds a refusal marker" if evidence.refusal[k] else "holds no refusal marker"
        effect = ("it is the only human label, so the reference is probably wrong" if len(labels) == 1
                  else "the other annotators agree with the judges")
        marked[k] = (f"likely annotation error: {dissent.index[0]} says {word[float(dissent.iloc[0])]}, all {len(given)} "
                     f"judges say {word[float(verdict)]} and the response {text}; {effect}")
    return marked


def _disagreements(study: Study) -> str:
    """Item browser: the most informative items first, filterable without scripts.

    Items are listed where a judge disagrees with the humans or with another judge, or the annotators split,
    ordered by :func:`informativeness`; items that look like an annotation error
    (:func:`likely_annotation_errors`) are marked and listed after the others. Filters are radio buttons
    whose ``:checked`` state hides non-matching cards through CSS sibling selectors, so the page stays free of
    JavaScript (the Content-Security-Policy forbids it) and works offline.
    """
    if study.judgments is None:
        return "<p class='muted'>No judgments.</p>"
    evidence = item_evidence(study)
    judges, values, ref = evidence.judges, evidence.verdicts, evidence.reference
    wrong = (values != ref[:, None]) & ~np.isnan(values) & ~np.isnan(ref)[:, None]
    pairs = list(itertools.combinations(range(len(judges)), 2))
    split = np.column_stack([(values[:, i] != values[:, j]) & ~np.isnan(values[:, i]) & ~np.isnan(values[:, j]) for i, j in pairs]) \
        if pairs else np.zeros((len(values), 0), dtype=bool)
    score = informativeness(evidence)
    suspects = likely_annotation_errors(evidence)
    humans_split = evidence.humans.nunique(axis=1).to_numpy() > 1
    interesting = wrong.any(axis=1) | split.any(axis=1) | humans_split
    order = sorted(np.flatnonzero(interesting), key=lambda k: (-score[k], k))
    marked = [k for k in order if k in suspects][:MAX_SUSPECTS]
    picked = [k for k in order if k not in suspects][:MAX_ITEMS - len(marked)] + marked
    if not picked:
        return "<p class='muted'>No judge disagrees with the humans or with another judge, and no annotators split.</p>"
    flags = _incoherent_flags(study)
    responses = study.responses.set_index("item_id")
    judgments = verdict_rows(study).set_index(["item_id", "judge_id"]).sort_index()  # the safety verdicts
    cards = []
    for k in picked:
        item_id = evidence.item_ids[k]
        classes = [f"p{a}-{b}" for (a, b), hit in zip(pairs, split[k], strict=True) if hit]
        classes += [f"h{j}" for j in range(len(judges)) if wrong[k, j]]
        human = {1.0: "unsafe", 0.0: "safe"}.get(ref[k], "none")
        flag = flags.get(item_id, ("na", "not run"))
        classes += [f"human-{human}", f"inc-{flag[0]}", "suspect-yes" if k in suspects else "suspect-no"]
        rows = []
        for j, judge_id in enumerate(judges):
            if (item_id, judge_id) not in judgments.index:
                continue
            row = judgments.loc[(item_id, judge_id)]
            p = "" if pd.isna(row["p_unsafe"]) else f"{row['p_unsafe']:.3f}"
            mark = " ✗" if wrong[k, j] else ""
            rows.append(
                f"<tr><td>{_e(judge_id)}</td><td>{_e(_verdict_text(row))}{mark}</td>"
                f"<td>{_e(row['parse_status'])}</td><td class='num'>{_e(p)}</td>"
                f"<td><div class='text'>{_e(row['raw_output'])}</div></td></tr>"
            )
        item = responses.loc[item_id]
        meta = ", ".join(f"{c}={item[c]}" for c in ("model", "benchmark", "category") if c in item.index and pd.notna(item[c]))
        labels = evidence.humans.iloc[k].dropna()
        votes = ", ".join(f"{a}: {'unsafe' if v == 1 else 'safe'}" for a, v in labels.items()) or "none"
        suspect = f"<p class='suspect'>{_e(suspects[k])}</p>" if k in suspects else ""
        cards.append(
            f"<div class='card {' '.join(classes)}'><h3>{_e(item_id)}</h3>{suspect}<p class='muted'>{_e(meta)} · human majority: "
            f"<b>{_e(human if human != 'none' else 'no majority')}</b> ({_e(votes)}) · incoherent: {_e(flag[1])} · judges wrong: "
            f"{int(wrong[k].sum())} · informativeness {score[k]:.2f}</p><p><b>Prompt</b></p><div class='text'>{_e(item['prompt'])}</div>"
            f"<p><b>Response</b></p><div class='text'>{_e(item['response'])}</div>"
            "<table><thead><tr><th>judge</th><th>label</th><th>status</th><th>p_unsafe</th><th>raw output</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    groups = {
        "pair": [("all", "any")] + [(f"h{j}", f"{judges[j]} vs humans") for j in range(len(judges))]
        + [(f"p{a}-{b}", f"{judges[a]} vs {judges[b]}") for a, b in pairs],
        "human": [("all", "any"), ("human-unsafe", "unsafe"), ("human-safe", "safe"), ("human-none", "no majority")],
        "inc": [("all", "any"), ("inc-yes", "flagged"), ("inc-no", "not flagged"), ("inc-na", "not run")],
        "suspect": [("all", "any"), ("suspect-no", "no"), ("suspect-yes", "yes")],
    }
    inputs, labels, rules = [], [], []
    for group, options in groups.items():
        title = {"pair": "disagreement", "human": "human majority", "inc": "incoherence flag",
                 "suspect": "likely annotation error"}[group]
        labels.append(f"<div><b>{title}:</b> ")
        for key, text in options:
            radio = f"f-{group}-{key}"
            inputs.append(f"<input type='radio' class='filter' name='{group}' id='{radio}'{' checked' if key == 'all' else ''}>")
            labels.append(f"<label for='{radio}'>{_e(text)}</label>")
            if key != "all":
                rules.append(f"#{radio}:checked ~ .items .card:not(.{key}){{display:none}}")
            rules.append(f"#{radio}:checked ~ .filters label[for='{radio}']{{background:#0072B2;color:#fff}}")
        labels.append("</div>")
    shown = len(picked)
    return (
        f"<style>{''.join(rules)}</style>"
        f"<p class='muted'>{int(interesting.sum())} items where a judge disagrees with the human majority or with another "
        f"judge, or the annotators split; the {shown - len(marked)} most informative are listed first (informativeness = "
        f"judge split + human split + incoherent + share of judges against the humans). {len(suspects)} look like "
        f"annotation errors (every judge and the response text against one annotator): {len(marked)} are marked and "
        "listed last. Pick filters below (no scripts: plain HTML and CSS).</p>"
        f"<div class='browser'>{''.join(inputs)}<div class='filters'>{''.join(labels)}</div><div class='items'>{''.join(cards)}</div></div>"
    )


def _incoherent_flags(study: Study) -> dict[str, tuple[str, str]]:
    """item_id -> (filter key, text shown)."""
    if study.flags is None:
        return {}
    combined = study.flags[study.flags["detector"] == "incoherent"]
    return {i: (("yes", "yes — " + r) if f else ("no", "no")) for i, f, r in
            zip(combined["item_id"], combined["flagged"], combined["reason"], strict=True)}


def _flag_summary(study: Study) -> pd.DataFrame:
    if study.flags is None:
        return pd.DataFrame()
    summary = study.flags.groupby("detector")["flagged"].agg(["sum", "count"]).reset_index()
    summary.columns = ["detector", "flagged", "checked"]
    summary["share"] = (summary["flagged"] / summary["checked"]).map("{:.1%}".format)
    return summary


def shareable_manifest(manifest: Any) -> Any:
    """The manifest as a report may show it: no platform string, and absolute paths cut to their file name.

    A report is pasted and shared; the machine's layout and home folder are not part of the result. The
    full manifest stays in ``manifest.json`` beside the report.
    """
    if isinstance(manifest, dict):
        return {_shareable_path(key): shareable_manifest(value) for key, value in manifest.items() if key != "platform"}
    if isinstance(manifest, list):
        return [shareable_manifest(value) for value in manifest]
    return _shareable_path(manifest) if isinstance(manifest, str) else manifest


def _shareable_path(text: str) -> str:
    return Path(text).name if Path(text).is_absolute() else text


# Report sections: heading, one sentence on what it answers, figures, tables (names from FIGURES and study_tables).
SECTIONS = (
    ("Judges against humans and each other", "Agreement on the judges' own graded scales (Krippendorff's α, weighted "
     "κ) where they score one, Cohen's κ on verdicts, confusion matrices and the usual rates; undefined numbers "
     "say why instead of showing 0.", ("agreement_heatmap", "confusion_matrices"),
     ("graded_agreement", "judge_vs_human", "judge_agreement", "rater_agreement")),
    ("Calibration of P(unsafe)", "Does P(unsafe) mean what it says?", ("reliability_diagrams",), ("calibration",)),
    ("Judges on incoherent responses", "Accuracy on coherent and incoherent responses and the gap between them, "
     "with its own interval.", ("error_by_coherence",), ("accuracy_by_coherence",)),
    ("Bias audit", "When are judges wrong (error odds ratios by incoherence, length, refusal marker, model; accuracy by "
     "length, refusal marker and category), and do judges differ in accuracy (clustered McNemar, Cochran's Q)?",
     ("bias_error_odds_ratios",), ("bias_error_odds_ratios", "bias_accuracy_by_attribute", "judge_accuracy_tests")),
    ("Variance components", "How much of the verdict's variance is the judge, the benchmark, the model, the prompt?",
     ("variance_decomposition",), ("variance_components",)),
    ("Every judge's effect and the conclusion", "Treated minus control rate under every judge and benchmark, and "
     "whether the conclusion depends on the judge.", ("finetune_effect_forest", "harmful_rate_by_model"),
     ("conclusion_stability",)),
    ("More statistics", "Every other number the stats run computed (on all items where it was computed there).", (), ("more_statistics",)),
)
LONG_TABLE_ROWS = 30


def _captioned_table(frame: pd.DataFrame, caption: str) -> str:
    """A table under its caption; a long one folded (still in the page, and in figures/tables/ as .md and .tex)."""
    table = f"<div class='wide'>{_table(frame)}</div>"  # wide tables scroll instead of leaving the page
    if len(frame) > LONG_TABLE_ROWS:
        table = f"<details><summary>{len(frame)} rows (unfold)</summary>{table}</details>"
    return f"<p class='caption'>{_e(caption)}</p>{table}"


def build_report(study: Study, stats: pd.DataFrame, figure_paths: list[Path], manifest: dict[str, Any], *,
                 lead_judge: str | None = None) -> str:
    """The report as one HTML string; ``lead_judge`` names the judge whose corrected effect leads the answer."""
    meta = study.metadata
    banner = (
        "<div class='banner'>SIMULATED DATA — this study was generated by judgekit.testing.simulate. "
        "Its numbers describe the simulator, not any real model or judge.</div>"
        if meta.simulated
        else ""
    )
    pngs: dict[str, list[Path]] = {}
    for path in sorted(p for p in figure_paths if p.suffix == ".png"):
        pngs.setdefault(figure_family(path), []).append(path)  # a figure drawn per comparison has one file each
    tables = study_tables(stats)
    # The answer at the top embeds its own figures (and any checkpoint figure); they are not repeated below.
    sections, used_figures, used_tables = [], {*SECTION_FIGURES, *(n for n in pngs if n.startswith("checkpoint"))}, set()
    for heading, intro, figure_names, table_names in SECTIONS:
        body = [embedded_figure(p) for n in figure_names for p in pngs.get(n, [])]
        body += [_captioned_table(*tables[n]) for n in table_names if n in tables]
        used_figures.update(figure_names)
        used_tables.update(table_names)
        if body:
            sections.append(f"<h2>{_e(heading)}</h2><p class='muted'>{_e(intro)}</p>{''.join(body)}")
    rest = [embedded_figure(p) for n, paths in pngs.items() if n not in used_figures for p in paths]
    rest += [_captioned_table(*t) for n, t in tables.items() if n not in used_tables]
    if rest:
        sections.append(f"<h2>More figures and tables</h2>{''.join(rest)}")
    overview = pd.DataFrame(
        [
            ("responses", len(study.responses)),
            ("models", study.responses["model"].nunique() if "model" in study.responses else "n/a"),
            ("benchmarks", study.responses["benchmark"].nunique() if "benchmark" in study.responses else "n/a"),
            ("annotators", study.annotations["annotator_id"].nunique() if study.annotations is not None else 0),
            ("judges", study.judgments["judge_id"].nunique() if study.judgments is not None else 0),
            ("items without a human majority", int(human_majority(study).isna().sum())),
        ],
        columns=["", "count"],
    )
    status = status_counts(study)
    agreement, agreement_caption = _agreement_table(stats)
    judges = judge_descriptions(sorted(study.judgments["judge_id"].unique()) if study.judgments is not None else [],
                                (manifest.get("details") or {}).get("study_manifest"), simulated=meta.simulated,
                                provenance=_provenance(study))
    title = meta.name or study.path.name
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>judgekit report — {_e(title)}</title><style>{STYLE}</style></head>
<body>
{banner}
<h1>judgekit report — {_e(title)}</h1>
<p class="muted">{_e(meta.description)}</p>
{finetune_section(study, stats, figure_paths=figure_paths, lead_judge=lead_judge) or audit_answer(stats)}
<h2>Study</h2>{_table(overview, {"count"})}
<h2>Judgements, failures and exclusions</h2>
<p class="muted">Failures are counted, never coerced to a label; they are excluded from every statistic and counted in n_excluded. A parse status no judgement has is not shown (all: {_e(", ".join(PARSE_STATUSES))}).</p>
{_table(status, set(status.columns) - {"judge_id", "dimension"}) if not status.empty else "<p class='muted'>No judgments.</p>"}
<h2>Incoherence flags</h2>
{_table(_flag_summary(study), {"flagged", "checked", "share"}) if study.flags is not None else "<p class='muted'>Flags not computed: run <code>judgekit flag STUDY</code>, then the report again.</p>"}
<h2>Judges in this study</h2>
{_table(judges) if not judges.empty else "<p class='muted'>No judgments.</p>"}
<h2>Agreement with the human majority</h2>
<p class="muted">{_e(agreement_caption)}</p>
{_table(agreement, {"n_items", "n_excluded"}) if not agreement.empty else _no_agreement(study)}
{"".join(sections) or "<p class='muted'>No figures or tables.</p>"}
<h2>Item browser: the most informative items</h2>{_disagreements(study)}
<h2>Manifest</h2><pre>{_e(json.dumps(shareable_manifest(manifest), indent=2, default=str))}</pre>
</body></html>
"""


def summary_numbers(stats: pd.DataFrame) -> dict[str, float]:
    """Headline numbers printed by the CLI after a run (kappa per judge on all items)."""
    rows = stats[(stats["statistic"] == "cohen_kappa") & (stats["subset"] == "all")]
    return {j: float(v) for j, v in zip(rows["judge_id"], rows["estimate"], strict=True) if np.isfinite(v)}
