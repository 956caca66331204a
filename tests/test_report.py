"""Responses are adversarial: the report escapes them and can run nothing."""

from __future__ import annotations

from pathlib import Path

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
    assert "script" not in parser.tags and "a" not in parser.tags
    assert not any(name.startswith("on") for name, _ in parser.attrs)
    assert not any(value and "javascript:" in value for _, value in parser.attrs)
    srcs = [value for name, value in parser.attrs if name == "src"]
    assert srcs and all(v.startswith("data:image/png;base64,") for v in srcs)
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in html
    assert "default-src 'none'" in html
