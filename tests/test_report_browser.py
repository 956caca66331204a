"""The report in a real browser: it renders, the screenshot is not blank, and hostile responses run nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import HtmlElements, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (`make test` installs it as root)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
ATTACKS = [
    "<script>document.title='PWNED-SCRIPT'</script>",
    "<img src=x onerror=\"var d=document.createElement('div');d.id='pwned-marker';document.body.appendChild(d)\">",
    "<a href=\"javascript:document.title='PWNED-LINK'\" id=\"pwned-link\">click</a>",
    "</div></td></table><svg onload=\"document.body.setAttribute('data-pwned','1')\"></svg>",
    "<style>body{display:none}</style><iframe src=\"https://example.invalid\"></iframe>",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    study = root / "study"
    study.mkdir()
    n = len(ATTACKS)
    ids = [f"x{k}" for k in range(n)]
    pd.DataFrame({"item_id": ids, "prompt": ATTACKS, "response": ATTACKS, "model": ["m"] * n}).to_csv(study / "responses.csv", index=False)
    pd.DataFrame({"item_id": ids * 2, "annotator_id": ["h1"] * n + ["h2"] * n, "label": ["safe"] * (2 * n)}).to_csv(
        study / "annotations.csv", index=False)
    pd.DataFrame({"item_id": ids, "judge_id": ["judge<script>"] * n, "label": ["unsafe"] * n, "p_unsafe": [0.9] * n,
                  "parse_status": ["ok"] * n, "raw_output": ATTACKS, "judge_spec_hash": ["h"] * n}).to_csv(study / "judgments.csv", index=False)
    result = run_cli("report", study, "--out", root / "out", "--n-boot", "20")
    assert result.returncode == 0, result.stderr
    return root / "out" / "report.html"


@needs_chromium
def test_hostile_text_runs_nothing_in_a_browser(hostile_report: Path, tmp_path: Path) -> None:
    result = chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom", hostile_report.as_uri())
    dom = result.stdout
    assert "<body" in dom, result.stderr[-500:]
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert title.startswith("judgekit report") and "PWNED" not in title
    # Inspect the live DOM's elements (text nodes may legitimately contain the attack as inert text).
    elements = HtmlElements()
    elements.feed(dom)
    assert not {"script", "iframe", "svg"} & set(elements.tags)
    # the only links are the report's own figures (click: full size), never the attack's
    hrefs = [value for name, value in elements.attrs if name == "href"]
    assert elements.tags.count("a") == len(hrefs) and all(re.fullmatch(r"figures/[\w.-]+\.png", h) for h in hrefs)
    assert ("id", "pwned-marker") not in elements.attrs and ("id", "pwned-link") not in elements.attrs
    assert not any(name == "data-pwned" for name, _ in elements.attrs)
    assert not any(name.startswith("on") for name, _ in elements.attrs)
    assert "&lt;script&gt;document.title='PWNED-SCRIPT'&lt;/script&gt;" in dom


@needs_chromium
def test_report_renders_a_non_blank_page(demo_output: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = demo_output
    shot = tmp_path / "shot.png"
    chromium(tmp_path, "--window-size=1280,2000", f"--screenshot={shot}", (out / "report.html").as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[0] >= 1000
    assert (pixels < 250).any(axis=2).mean() > 0.03  # text, tables and figures, not an empty white page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # the embedded figures' colours are there
