"""Responses are adversarial: the report escapes them and can run nothing. The item browser lists the most
informative items first and marks likely annotation errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import HtmlElements, run_cli

ATTACKS = [
    "<script>alert('xss')</script>",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(2)">click me</a>',
    "</div></td></table><script>document.title='pwned'</script>",
]


def test_hostile_text_is_escaped_everywhere(tmp_path: Path) -> None:
    study = tmp_path / "study"
    study.mkdir()
    n = len(ATTACKS)
    pd.DataFrame({"item_id": [f"x{k}" for k in range(n)], "prompt": ATTACKS, "response": ATTACKS, "model": ATTACKS}).to_csv(
        study / "responses.csv", index=False
    )
    pd.DataFrame({"item_id": [f"x{k}" for k in range(n)], "annotator_id": ["h"] * n, "label": ["safe"] * n}).to_csv(
        study / "annotations.csv", index=False
    )
    pd.DataFrame(
        {
            "item_id": [f"x{k}" for k in range(n)], "judge_id": ["<b>judge</b>"] * n, "label": ["unsafe"] * n,
            "p_unsafe": [0.9] * n, "parse_status": ["ok"] * n, "raw_output": ATTACKS, "judge_spec_hash": ["h"] * n,
        }
    ).to_csv(study / "judgments.csv", index=False)
    result = run_cli("report", study, "--out", tmp_path / "out", "--n-boot", "20")
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "out" / "report.html").read_text()

    parser = HtmlElements()
    parser.feed(html)
    assert "script" not in parser.tags
    # the only links are the figures' own files, beside the report (click: full size)
    hrefs = [value for name, value in parser.attrs if name == "href"]
    assert parser.tags.count("a") == len(hrefs) == html.count("<img ")
    assert all(re.fullmatch(r"figures/[A-Za-z0-9_.-]+\.png", h) and (tmp_path / "out" / h).is_file() for h in hrefs)
    assert not any(name.startswith("on") for name, _ in parser.attrs)
    assert not any(value and "javascript:" in value for _, value in parser.attrs)
    srcs = [value for name, value in parser.attrs if name == "src"]
    assert srcs and all(v.startswith("data:image/png;base64,") for v in srcs)
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in html
    assert "default-src 'none'" in html


def evidence(verdicts: list[list[float]], humans: list[list[float]], refusal: list[bool], incoherent: list[bool] | None = None):
    from judgekit.outputs.report import ItemEvidence

    n = len(verdicts)
    human_frame = pd.DataFrame(humans, columns=[f"h{k}" for k in range(len(humans[0]))], dtype=float)
    reference = np.array([1.0 if np.nansum(h) * 2 > np.sum(~np.isnan(h)) else 0.0 if np.nansum(h) * 2 < np.sum(~np.isnan(h))
                          else np.nan for h in np.asarray(humans, dtype=float)])
    return ItemEvidence(item_ids=[f"i{k}" for k in range(n)], judges=[f"j{k}" for k in range(len(verdicts[0]))],
                        verdicts=np.asarray(verdicts, dtype=float), reference=reference, humans=human_frame,
                        incoherent=np.asarray(incoherent or [False] * n), refusal=np.asarray(refusal))


NAN = float("nan")


def test_likely_annotation_errors_need_every_judge_the_text_and_a_lone_annotator() -> None:
    from judgekit.outputs.report import likely_annotation_errors

    marked = likely_annotation_errors(evidence(
        verdicts=[[0, 0, 0], [0, 0, 0], [0, 0, 1], [1, 1, NAN], [1, 1, 1], [0, NAN, NAN]],
        humans=[[1, NAN, NAN], [1, NAN, NAN], [1, NAN, NAN], [0, 1, 1], [0, 0, 1], [1, NAN, NAN]],
        refusal=[True, False, True, False, False, True],
    ))
    # 0: all judges say safe, the response refuses, one annotator says unsafe -> marked (the reference itself).
    # 1: the text has no refusal marker, so it does not back the judges. 2: judges disagree. 4: two annotators
    # dissent. 5: only one judge gave a verdict.
    assert sorted(marked) == [0, 3]
    assert marked[0].startswith("likely annotation error: h0 says unsafe, all 3 judges say safe and the response holds a refusal")
    assert marked[0].endswith("so the reference is probably wrong")
    assert marked[3].startswith("likely annotation error: h0 says safe, all 2 judges say unsafe") and "other annotators agree" in marked[3]


def test_informativeness_adds_judge_split_human_split_incoherence_and_judges_against_humans() -> None:
    from judgekit.outputs.report import informativeness

    score = informativeness(evidence(
        verdicts=[[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]],
        humans=[[1, 1, 1], [1, 0, 1], [0, 0, 0], [1, 1, 1]],
        refusal=[False] * 4, incoherent=[False, False, False, True],
    ))
    # item 1: even split (1) + humans split (1) + 2 of 4 judges against "unsafe" (0.5) = 2.5
    # item 2: 1 of 4 vs 3 -> split 2*1/4 = 0.5; humans agree; 1 of 4 against "safe" -> 0.25
    np.testing.assert_allclose(score, [0.0, 2.5, 0.75, 1.0])


def test_browser_lists_informative_items_first_and_suspects_last(tmp_path: Path) -> None:
    from judgekit.outputs.report import _disagreements
    from judgekit.store.study import load_study

    study = tmp_path / "study"
    study.mkdir()
    responses = {"calm": "I'm sorry, I cannot help.", "split": "Sure: [PLACEHOLDER].", "lone": "I'm sorry, I cannot help."}
    pd.DataFrame({"item_id": list(responses), "prompt": "p", "response": list(responses.values())}).to_csv(
        study / "responses.csv", index=False)
    labels = {"calm": ["safe", "safe", "unsafe"], "split": ["unsafe", "safe", "unsafe"], "lone": ["unsafe"]}
    pd.DataFrame([(i, f"h{k}", label) for i, ls in labels.items() for k, label in enumerate(ls)],
                 columns=["item_id", "annotator_id", "label"]).to_csv(study / "annotations.csv", index=False)
    verdicts = {"calm": ["safe", "safe"], "split": ["unsafe", "safe"], "lone": ["safe", "safe"]}
    pd.DataFrame([{"item_id": i, "judge_id": f"j{k}", "label": v, "p_unsafe": None, "parse_status": "ok", "raw_output": "", "judge_spec_hash": "h"}
                  for i, vs in verdicts.items() for k, v in enumerate(vs)]).to_csv(study / "judgments.csv", index=False)
    html = _disagreements(load_study(study))
    cards = re.findall(r"<h3>(\w+)</h3>", html)
    # split: judges split (1) + humans split (1) + one judge against (0.5); calm: humans split (1) and h2 the
    # lone dissenter against both judges and the refusal text -> a suspect, listed last like "lone".
    assert cards == ["split", "calm", "lone"]
    assert html.count("<p class='suspect'>likely annotation error") == 2


def test_judge_table_shows_each_presets_deviations_and_vocabulary_check() -> None:
    from judgekit.judges.catalog import load_preset
    from judgekit.outputs.report import judge_descriptions

    specs = {name: load_preset(name) for name in ("llama-guard-3-8b", "shieldgemma-2b", "keyword-gcg-13")}
    manifest = {"runs": [{"judge_specs": [{"judge_id": k, "spec_hash": "h", "spec": v} for k, v in specs.items()]}]}
    table = judge_descriptions([*specs, "imported-judge"], manifest).set_index("judge")
    # Llama Guard 3 8B departs from its card on purpose (forced "\n\n", no space before the BOS): both are listed.
    assert "space before '<|begin_of_text|>'" in table.loc["llama-guard-3-8b", "deviations from upstream"]
    assert table.loc["llama-guard-3-8b", "vocabulary verified"] == "yes"
    assert table.loc["shieldgemma-2b", "vocabulary verified"].startswith("no")
    assert table.loc["shieldgemma-2b", "deviations from upstream"] == "none recorded"
    assert table.loc["keyword-gcg-13", "vocabulary verified"].startswith("n/a")
    assert table.loc["imported-judge", "family"] == "—"


def test_kappa_of_a_judge_constant_on_one_subset_reads_undefined_there_only() -> None:
    """The demo's keyword judges say "unsafe" on every incoherent response: κ there is 0 by construction with a
    [0, 0] interval, which the agreement table showed as a certain-looking 0.000 [0.000, 0.000]."""
    from judgekit.outputs.tables import as_shown, format_estimate

    rows = []
    for subset, counts in (("all", (30.0, 10.0, 5.0, 75.0)), ("incoherent", (6.0, 4.0, 0.0, 0.0))):
        rows += [{"statistic": s, "judge_id": "kw", "reference": "human_majority", "subset": subset, "estimate": v,
                  "ci_low": float("nan"), "ci_high": float("nan"), "warning": ""} for s, v in zip(("tp", "fp", "fn", "tn"), counts)]
        rows.append({"statistic": "cohen_kappa", "judge_id": "kw", "reference": "human_majority", "subset": subset,
                     "estimate": 0.0 if subset == "incoherent" else 0.7, "ci_low": 0.0 if subset == "incoherent" else 0.6,
                     "ci_high": 0.0 if subset == "incoherent" else 0.8, "warning": ""})
    shown = as_shown(pd.DataFrame(rows)).set_index(["statistic", "subset"])
    row = shown.loc[("cohen_kappa", "incoherent")]
    assert format_estimate(row["estimate"], row["ci_low"], row["ci_high"], warning=row["warning"]) == \
        "undefined (kw always says unsafe)"
    assert np.isnan(shown.loc[("cohen_kappa", "incoherent"), "estimate"])
    assert shown.loc[("cohen_kappa", "incoherent"), "warning"] == "kw always says unsafe"
    assert shown.loc[("cohen_kappa", "all"), "estimate"] == 0.7


def test_imported_judges_say_where_their_verdicts_came_from_without_empty_columns() -> None:
    """harmbench_cls_val's 11 imported judges: eleven rows of the same sentence and four empty columns."""
    from judgekit.outputs.report import judge_descriptions

    table = judge_descriptions(["gpt4", "pair"], None, provenance={"gpt4": "imported: val.json:gpt-4-0613"})
    assert list(table.columns) == ["judge", "family", "what it is"]
    assert "imported: val.json:gpt-4-0613" in table.set_index("judge").loc["gpt4", "what it is"]
    assert "no judge spec" in table.set_index("judge").loc["pair", "what it is"]
