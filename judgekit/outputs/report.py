"""A self-contained HTML report (no external resources, no scripts).

All study text (prompts, responses, raw judge outputs) is adversarial input:
it is HTML-escaped, and a Content-Security-Policy forbids scripts and remote
loads as a second line of defence.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from judgekit.schema import PARSE_STATUSES
from judgekit.outputs.tables import study_tables
from judgekit.analysis.inputs import human_majority, judge_codes
from judgekit.schema import HUMAN_MAJORITY
from judgekit.study import Study

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
MAX_ITEMS = 300
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:70rem;color:#222;line-height:1.4}
h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0} th,td{border:1px solid #ccc;padding:.2rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{background:#fff3cd;border:2px solid #d39e00;padding:.8rem 1rem;font-weight:600}
pre,.text{white-space:pre-wrap;word-break:break-word;font-size:.8rem;background:#f8f8f8;padding:.3rem;margin:0;max-height:12rem;overflow:auto}
img{max-width:min(100%,56rem);border:1px solid #eee} .muted{color:#666;font-size:.85rem}
input.filter{position:absolute;opacity:0;pointer-events:none} .filters div{margin:.3rem 0}
.filters label{display:inline-block;border:1px solid #999;border-radius:3px;padding:.05rem .4rem;margin:.1rem;cursor:pointer;font-size:.8rem}
.card{border-top:2px solid #ddd;margin-top:1rem}
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


def _num(value: float) -> str:
    # Adding 0.0 turns a rounded -0.0 into 0.0, so no "-0.000" is printed.
    return f"{round(float(value), 3) + 0.0:.3f}"


def _fmt_ci(row: pd.Series) -> str:
    if pd.isna(row["estimate"]):
        return "n/a"
    if pd.isna(row["ci_low"]):
        return _num(row["estimate"])
    return f"{_num(row['estimate'])} [{_num(row['ci_low'])}, {_num(row['ci_high'])}]"


def _status_counts(study: Study) -> pd.DataFrame:
    if study.judgments is None:
        return pd.DataFrame()
    counts = study.judgments.pivot_table(index="judge_id", columns="parse_status", values="item_id", aggfunc="count", fill_value=0)
    counts = counts.reindex(columns=[s for s in PARSE_STATUSES], fill_value=0)
    counts["not judged"] = len(study.responses) - counts.sum(axis=1)
    return counts.reset_index()


def _agreement_table(stats: pd.DataFrame) -> pd.DataFrame:
    shown = ("accuracy", "cohen_kappa", "gwet_ac1")
    subsets = ("all", "coherent", "incoherent")
    rows = stats[(stats["reference"] == HUMAN_MAJORITY) & stats["statistic"].isin(shown) & stats["subset"].isin(subsets)]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(value=rows.apply(_fmt_ci, axis=1), column=rows["statistic"] + " · " + rows["subset"])
    wide = rows.pivot(index="judge_id", columns="column", values="value")
    order = [f"{s} · {sub}" for s in shown for sub in subsets]
    wide = wide.reindex(columns=[c for c in order if c in wide.columns])
    n = rows[(rows["subset"] == "all") & (rows["statistic"] == "accuracy")].set_index("judge_id")[["n_items", "n_excluded"]]
    return wide.join(n).reset_index()


def _disagreements(study: Study) -> str:
    """Item browser: items where judges disagree with humans or with each other, filterable without scripts.

    Filters are radio buttons whose ``:checked`` state hides non-matching cards
    through CSS sibling selectors, so the page stays free of JavaScript (the
    Content-Security-Policy forbids it) and works offline.
    """
    if study.judgments is None:
        return "<p class='muted'>No judgments.</p>"
    reference = human_majority(study)
    codes = judge_codes(study)
    judges = list(codes.columns)
    values = codes.to_numpy()
    ref = reference.to_numpy()
    wrong = (values != ref[:, None]) & ~np.isnan(values) & ~np.isnan(ref)[:, None]
    pairs = list(itertools.combinations(range(len(judges)), 2))
    split = np.column_stack([(values[:, i] != values[:, j]) & ~np.isnan(values[:, i]) & ~np.isnan(values[:, j]) for i, j in pairs]) \
        if pairs else np.zeros((len(values), 0), dtype=bool)
    interesting = wrong.any(axis=1) | split.any(axis=1)
    order = np.argsort(-(wrong.sum(axis=1) * 10 + split.sum(axis=1)), kind="stable")
    picked = [k for k in order if interesting[k]][:MAX_ITEMS]
    if not picked:
        return "<p class='muted'>No judge disagrees with the humans or with another judge.</p>"
    flags = _incoherent_flags(study)
    responses = study.responses.set_index("item_id")
    judgments = study.judgments.set_index(["item_id", "judge_id"]).sort_index()
    item_ids = list(codes.index)
    cards = []
    for k in picked:
        item_id = item_ids[k]
        classes = [f"p{a}-{b}" for (a, b), hit in zip(pairs, split[k], strict=True) if hit]
        classes += [f"h{j}" for j in range(len(judges)) if wrong[k, j]]
        human = {1.0: "unsafe", 0.0: "safe"}.get(ref[k], "none")
        flag = flags.get(item_id, ("na", "not run"))
        classes += [f"human-{human}", f"inc-{flag[0]}"]
        rows = []
        for j, judge_id in enumerate(judges):
            if (item_id, judge_id) not in judgments.index:
                continue
            row = judgments.loc[(item_id, judge_id)]
            p = "" if pd.isna(row["p_unsafe"]) else f"{row['p_unsafe']:.3f}"
            mark = " ✗" if wrong[k, j] else ""
            rows.append(
                f"<tr><td>{_e(judge_id)}</td><td>{_e(row['label'] if row['label'] is not None else '—')}{mark}</td>"
                f"<td>{_e(row['parse_status'])}</td><td class='num'>{_e(p)}</td>"
                f"<td><div class='text'>{_e(row['raw_output'])}</div></td></tr>"
            )
        item = responses.loc[item_id]
        meta = ", ".join(f"{c}={item[c]}" for c in ("model", "benchmark", "category") if c in item.index and pd.notna(item[c]))
        cards.append(
            f"<div class='card {' '.join(classes)}'><h3>{_e(item_id)}</h3><p class='muted'>{_e(meta)} · human majority: "
            f"<b>{_e(human if human != 'none' else 'no majority')}</b> · incoherent: {_e(flag[1])} · judges wrong: "
            f"{int(wrong[k].sum())}</p><p><b>Prompt</b></p><div class='text'>{_e(item['prompt'])}</div>"
            f"<p><b>Response</b></p><div class='text'>{_e(item['response'])}</div>"
            "<table><thead><tr><th>judge</th><th>label</th><th>status</th><th>p_unsafe</th><th>raw output</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    groups = {
        "pair": [("all", "any")] + [(f"h{j}", f"{judges[j]} vs humans") for j in range(len(judges))]
        + [(f"p{a}-{b}", f"{judges[a]} vs {judges[b]}") for a, b in pairs],
        "human": [("all", "any"), ("human-unsafe", "unsafe"), ("human-safe", "safe"), ("human-none", "no majority")],
        "inc": [("all", "any"), ("inc-yes", "flagged"), ("inc-no", "not flagged"), ("inc-na", "not run")],
    }
    inputs, labels, rules = [], [], []
    for group, options in groups.items():
        title = {"pair": "disagreement", "human": "human majority", "inc": "incoherence flag"}[group]
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
        f"judge; the {shown} with most disagreement are listed. Pick filters below (no scripts: plain HTML and CSS).</p>"
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


def build_report(study: Study, stats: pd.DataFrame, figure_paths: list[Path], manifest: dict[str, Any]) -> str:
    """The report as one HTML string."""
    meta = study.metadata
    banner = (
        "<div class='banner'>SIMULATED DATA — this study was generated by judgekit.simulate. "
        "Its numbers describe the simulator, not any real model or judge.</div>"
        if meta.simulated
        else ""
    )
    figures = "".join(
        f"<figure><img alt='{_e(p.stem)}' src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>"
        f"<figcaption class='muted'>{_e(p.stem)}</figcaption></figure>"
        for p in figure_paths
        if p.suffix == ".png"
    )
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
    status = _status_counts(study)
    agreement = _agreement_table(stats)
    tables = "".join(f"<h3>{_e(caption)}</h3>{_table(frame)}" for frame, caption in study_tables(stats).values())
    title = meta.name or study.path.name
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>judgekit report — {_e(title)}</title><style>{STYLE}</style></head>
<body>
{banner}
<h1>judgekit report — {_e(title)}</h1>
<p class="muted">{_e(meta.description)}</p>
<h2>Study</h2>{_table(overview, {"count"})}
<h2>Judgements, failures and exclusions</h2>
<p class="muted">Failures are counted, never coerced to a label; they are excluded from every statistic and counted in n_excluded.</p>
{_table(status, set(status.columns) - {"judge_id"}) if not status.empty else "<p class='muted'>No judgments.</p>"}
<h2>Incoherence flags</h2>
{_table(_flag_summary(study), {"flagged", "checked", "share"}) if study.flags is not None else "<p class='muted'>Flags not computed.</p>"}
<h2>Agreement with the human majority</h2>
<p class="muted">Estimate [95% percentile cluster-bootstrap interval]. n_items / n_excluded refer to the subset "all".</p>
{_table(agreement, {"n_items", "n_excluded"}) if not agreement.empty else "<p class='muted'>No human labels.</p>"}
<h2>Figures</h2>{figures or "<p class='muted'>No figures.</p>"}
<h2>Tables</h2>{tables}
<h2>Item browser: where judges disagree</h2>{_disagreements(study)}
<h2>Manifest</h2><pre>{_e(json.dumps(shareable_manifest(manifest), indent=2, default=str))}</pre>
</body></html>
"""


def summary_numbers(stats: pd.DataFrame) -> dict[str, float]:
    """Headline numbers printed by the CLI after a run (kappa per judge on all items)."""
    rows = stats[(stats["statistic"] == "cohen_kappa") & (stats["subset"] == "all")]
    return {j: float(v) for j, v in zip(rows["judge_id"], rows["estimate"], strict=True) if np.isfinite(v)}
