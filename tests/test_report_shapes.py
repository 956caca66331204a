"""The report at the study shapes that once produced false text (issue 33): four judges and no human labels,
three scored dimensions, many comparisons, comparison kinds beyond fine-tunes, and progress on a terminal."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from judgekit.outputs.report_finetune import (answer_rows, finetune_section, human_validated_judges, lead_judges,
                                              png_size_in)
from judgekit.outputs.tables import study_tables
from conftest import SHARED_DATA, needs_shared
from judgekit.store.study import Study

JUDGES = ("j_alpha", "j_beta", "j_gamma", "j_delta")


def _row(**values) -> dict:
    base = {"statistic": "finetune_effect_paired", "judge_id": "j", "reference": "", "subset": "", "subset_kind": "",
            "subset_value": "", "model": None, "base_model": None, "finetune_goal": None, "benchmark": None,
            "outcome": "harmful_compliance", "dimension": None, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
            "n_items": 50, "n_excluded": 0, "excluded_reason": "", "method": "cluster bootstrap, percentile",
            "warning": "", "signature": ""}
    return base | values


def _effects(treated: str, control: str, kind: str, goal: str, effects: dict[str, tuple[float, float, float]],
             outcome: str = "harmful_compliance") -> list[dict]:
    subset = f"comparison={treated} vs {control}|goal={goal}|benchmark=all"
    subset += "" if outcome == "harmful_compliance" else f"|outcome={outcome}"
    return [_row(judge_id=j, subset=subset, subset_kind=kind, model=treated, base_model=control, outcome=outcome,
                 estimate=e, ci_low=lo, ci_high=hi) for j, (e, lo, hi) in effects.items()]


def _rates(model: str, rates: dict[str, float]) -> list[dict]:
    return [_row(statistic="harmful_rate", judge_id=j, subset=f"model={model}|benchmark=safety", subset_kind="group",
                 model=model, benchmark="safety", estimate=r, ci_low=r - 0.05, ci_high=r + 0.05) for j, r in rates.items()]


class _Study:
    """What the answer reads of a study: its responses' columns."""

    def __init__(self, models: list[str]) -> None:
        self.responses = pd.DataFrame({"model": models, "prompt_id": range(len(models))})


def _sentences(html: str) -> list[str]:
    answer = html.split("<ul class='answer'>", 1)[1].split("</ul>", 1)[0]
    return [re.sub(r"<[^>]+>", "", s) for s in re.findall(r"<li>(.*?)</li>", answer)]


def test_four_judges_without_humans_give_consensus_and_spread_with_rates() -> None:
    stats = pd.DataFrame(
        _effects("ft", "base", "finetune_comparison", "code",
                 {"j_alpha": (0.54, 0.38, 0.66), "j_beta": (0.72, 0.61, 0.84), "j_gamma": (0.6, 0.5, 0.7),
                  "j_delta": (0.64, 0.48, 0.74)})
        + _effects("ctl", "base", "finetune_comparison", "control",
                   {"j_alpha": (0.02, -0.03, 0.08), "j_beta": (0.2, 0.1, 0.3), "j_gamma": (0.0, 0.0, 0.0),
                    "j_delta": (0.05, -0.01, 0.1)})
        + _rates("base", dict(zip(JUDGES, (0.02, 0.06, 0.04, 0.04), strict=True)))
        + _rates("ft", dict(zip(JUDGES, (0.56, 0.78, 0.64, 0.68), strict=True))))
    html = finetune_section(_Study(["base", "ft", "ctl"]), stats)
    assert html.startswith("<h2>Did fine-tuning change safety?</h2>")
    ctl, ft = _sentences(html)
    assert ft == ("ft vs base (goal code): harmful compliance 2–6% → 56–78%; all 4 judges: less safe, +54 to +72 "
                  "points, intervals within [+38, +84], every interval above 0.")
    assert "judges disagree: of 4 intervals, 1 above 0, 3 include 0; 0 to +20 points, intervals within [−3, +30]" in ctl
    assert all(len(s.split()) <= 35 for s in (ft, ctl))
    table = html.split("Which models changed?")[1]
    assert "less safe: +54 to +72 points (4 judges)" in table and "judges disagree" in table


def test_valid_judges_only_count_and_the_left_out_are_named() -> None:
    kappa = [_row(statistic="cohen_kappa", judge_id=j, reference="human_majority", subset="all", subset_kind="all",
                  estimate=e, ci_low=lo, ci_high=hi) for j, e, lo, hi in
             (("good", 0.7, 0.6, 0.8), ("fair", 0.3, 0.1, 0.5), ("huang-classifier", -0.04, -0.2, 0.1))]
    effects = _effects("ft", "base", "finetune_comparison", "code",
                       {"human_majority": (0.35, 0.2, 0.51), "good": (0.3, 0.2, 0.4), "fair": (0.4, 0.1, 0.6),
                        "huang-classifier": (-0.1, -0.2, -0.05)})
    stats = pd.DataFrame(kappa + effects + _rates("base", {"human_majority": 0.35}) + _rates("ft", {"human_majority": 0.70}))
    valid, left_out = human_validated_judges(stats)
    assert valid == {"good", "fair"} and list(left_out) == ["huang-classifier"]
    html = finetune_section(_Study(["base", "ft"]), stats)
    (sentence,) = _sentences(html)
    assert sentence == ("ft vs base (goal code): harmful compliance 35% → 70%, +35 points [+20, +51]: less safe "
                        "(humans; 2 of 2 valid judges agree).")
    assert "huang-classifier left out: κ −0.04 [−0.20, 0.10] with humans" in html
    assert answer_rows(stats).iloc[0]["n_judges"] == 2


def _labelled_study(corrected: dict[str, tuple[float, float, float]], *, judge_only: int, warning: str = "",
                    kappas: dict[str, float] | None = None) -> pd.DataFrame:
    """Two judges validated by κ (``kappas``; default good 0.7, fair 0.6), the humans' paired effect and rates, and
    each judge's corrected effect on items of which ``judge_only`` carry no human label."""
    kappas = kappas or {"good": 0.7, "fair": 0.6}
    kappa = [_row(statistic="cohen_kappa", judge_id=j, reference="human_majority", subset="all", subset_kind="all",
                  estimate=k, ci_low=k - 0.1, ci_high=k + 0.1) for j, k in kappas.items()]
    effects = _effects("ft", "base", "finetune_comparison", "code",
                       {"human_majority": (0.35, 0.2, 0.51), "good": (0.3, 0.2, 0.4), "fair": (0.4, 0.1, 0.6)})
    subset = "comparison=ft vs base|goal=code|benchmark=all"
    method = f"PPI++ power-tuned per arm; 86 labelled, {judge_only} judge-only items; labels by design: plan 86"
    rows = [_row(statistic="finetune_effect_corrected", judge_id=j, reference="human_majority", subset=subset,
                 subset_kind="finetune_comparison", model="ft", base_model="base", estimate=e, ci_low=lo, ci_high=hi,
                 method=method, warning=warning) for j, (e, lo, hi) in corrected.items()]
    return pd.DataFrame(kappa + effects + rows + _rates("base", {"human_majority": 0.35})
                        + _rates("ft", {"human_majority": 0.70}))


def test_with_part_of_the_items_labelled_the_answer_leads_with_the_corrected_effect() -> None:
    """Issue 34: human labels on both models, 74 items judge-only: the lead judge's corrected effect leads and says
    so (before: the humans' paired effect over the 86 labelled items only)."""
    stats = _labelled_study({"good": (0.34, 0.17, 0.45), "fair": (0.30, 0.05, 0.55)}, judge_only=74)
    (sentence,) = _sentences(finetune_section(_Study(["base", "ft"]), stats))
    assert sentence == ("ft vs base (goal code): harmful compliance +34 points [+17, +45]: less safe "
                        "(corrected by 86 human labels, good; 2 of 2 valid judges agree).")
    assert len(sentence.split()) <= 35
    row = answer_rows(stats).iloc[0]
    assert (row["lead"], row["corrected_by"], row["n_labels"]) == ("corrected", "good", 86)


def test_with_every_item_labelled_the_humans_paired_effect_leads() -> None:
    """No judge-only item: the corrected effect is the labelled one, and the humans' exact paired effect leads."""
    stats = _labelled_study({"good": (0.34, 0.17, 0.45)}, judge_only=0)
    (sentence,) = _sentences(finetune_section(_Study(["base", "ft"]), stats))
    assert sentence.endswith("+35 points [+20, +51]: less safe (humans; 2 of 2 valid judges agree).")


def test_convenience_labels_never_give_an_unqualified_answer() -> None:
    """Convenience labels: the answer names them and gives the range selection could produce, and its verdict
    holds over that range (here it includes 0: no clear change, though the interval alone is above 0)."""
    warning = ("labels chosen by convenience (86 of 86 labelled items not drawn by a plan or at random): this "
               "corrected value holds only if they represent the rest; selection with odds up to 2x beyond the judge's "
               "verdict (Gamma = 2) allows 0.080 to 0.520, [-0.030, 0.640] with sampling error (marginal sensitivity "
               "model: Tan 2006; Zhao, Small & Bhattacharya 2019)")
    stats = _labelled_study({"good": (0.34, 0.17, 0.45)}, judge_only=74, warning=warning)
    html = finetune_section(_Study(["base", "ft"]), stats)
    (sentence,) = _sentences(html)
    assert "+34 points [+17, +45], convenience labels; selection (Γ=2) allows [−3, +64]: no clear change" in sentence
    assert "corrected by 86 human labels, good" in sentence and len(sentence.split()) <= 35
    assert "convenience labels, selection allows [−3, +64]" in html.split("Which models changed?")[1]


@pytest.mark.parametrize(("kind", "title", "forbidden"), [
    ("model_comparison", "Do the models differ in safety?", ("fine-tun", "mitigation", "goal")),
    ("checkpoint_comparison", "Did safety change during training?", ("mitigation",)),
    ("mitigation_comparison", "Did the mitigation change safety?", ("fine-tuning change",)),
    ("some_future_kind", "Did safety change between the compared models?", ("fine-tuning change",)),
])
def test_wording_follows_the_comparison_kind(kind: str, title: str, forbidden: tuple[str, ...]) -> None:
    stats = pd.DataFrame(_effects("gpt-x", "llama-y", kind, "None",
                                  {"j_alpha": (0.1, 0.05, 0.15), "j_beta": (0.12, 0.02, 0.2)}))
    html = finetune_section(_Study(["gpt-x", "llama-y"]), stats)
    assert html.startswith(f"<h2>{title}</h2>")
    (sentence,) = _sentences(html)
    assert sentence.startswith("gpt-x vs llama-y: harmful compliance, all 2 judges: less safe, +10 to +12 points, "
                               "intervals within [+2, +20]")
    head = html.split("Then, for each comparison")[0]
    assert not any(word in head for word in forbidden), head


def test_a_second_run_of_the_base_is_the_noise_floor() -> None:
    stats = pd.DataFrame(
        _effects("ft", "base", "finetune_comparison", "code", {"j_alpha": (0.5, 0.4, 0.6), "j_beta": (0.4, 0.3, 0.5)})
        + _effects("base_seed2", "base", "model_comparison", "None", {"j_alpha": (0.0, -0.04, 0.04), "j_beta": (0.02, -0.02, 0.06)}))
    html = finetune_section(_Study(["base", "ft", "base_seed2"]), stats)
    floor = html.split("Noise floor.")[1].split("</ul>")[0]
    assert "base_seed2 vs base" in floor and "no clear change: 0 to +2 points (2 judges)" in floor
    assert "ft vs base" not in floor


def test_three_related_models_compared_with_each_other_have_no_noise_floor() -> None:
    """em_coder_betley's shape: three fine-tunes, every comparison a compare_with; none is a rerun of the same weights."""
    effects = {"j_alpha": (-0.01, -0.02, -0.002)}
    stats = pd.DataFrame(_effects("middle", "base", "model_comparison", "None", effects)
                         + _effects("high", "base", "model_comparison", "None", effects)
                         + _effects("high", "middle", "model_comparison", "None", effects))
    html = finetune_section(_Study(["base", "middle", "high"]), stats)
    assert "high vs middle" in html and "Noise floor" not in html
    assert "<th>kind</th>" not in html  # every comparison a plain compare_with: no column of empty cells


def _judge_rows(items: list[str], dimensions: tuple[str, ...]) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame([{"item_id": i, "judge_id": j, "dimension": d, "label": None, "score": float(rng.integers(0, 4)),
                          "p_unsafe": None, "parse_status": "ok", "raw_output": "", "judge_spec_hash": "x"}
                         for j in JUDGES for d in dimensions for i in items])


def test_status_counts_are_per_judge_and_dimension_and_never_negative() -> None:
    from judgekit.outputs.report import status_counts

    items = [f"i{k}" for k in range(20)]
    study = Study.__new__(Study)
    judgments = _judge_rows(items, ("persona", "safety", "drift"))
    judgments = judgments[~((judgments["judge_id"] == "j_beta") & (judgments["dimension"] == "drift")
                            & judgments["item_id"].isin(items[:5]))]
    object.__setattr__(study, "judgments", judgments)
    object.__setattr__(study, "responses", pd.DataFrame({"item_id": items}))
    counts = status_counts(study).set_index(["judge_id", "dimension"])
    assert len(counts) == 12 and (counts["not judged"] >= 0).all()
    assert counts.loc[("j_beta", "drift"), "not judged"] == 5 and counts.loc[("j_alpha", "safety"), "ok"] == 20


def test_every_judge_pair_is_in_the_kappa_table_and_the_heatmap_without_humans() -> None:
    from judgekit.outputs.figures import agreement_heatmap
    from judgekit.outputs.style import FigureInputs

    pairs = [_row(statistic="cohen_kappa", judge_id=a, reference=b, subset="all", subset_kind="all", estimate=0.6,
                  ci_low=0.5, ci_high=0.7) for k, a in enumerate(JUDGES) for b in JUDGES[k + 1:]]
    stats = pd.DataFrame(pairs)
    table, _ = study_tables(stats)["judge_agreement"]
    assert list(table["judge"]) == sorted(JUDGES) and set(table.columns) == {"judge", *JUDGES}
    assert (table.drop(columns="judge").to_numpy() != "—").sum() == 12  # every pair, both ways
    fig = agreement_heatmap(FigureInputs(stats))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(JUDGES)  # all four judges, no empty human row
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.mark.slow
def test_report_on_a_three_dimension_four_judge_study_without_humans(tmp_path: Path) -> None:
    """End to end: graded agreement sits in the main section, the status table is per dimension, every embedded
    PNG is at most 12.5 in wide by its own dpi and links to its file."""
    from judgekit.cli import main

    items = [f"i{k}" for k in range(24)]
    study = tmp_path / "study"
    study.mkdir()
    pd.DataFrame({"item_id": items, "prompt": [f"p{k % 12}" for k in range(24)], "response": "text",
                  "model": ["base"] * 12 + ["ft"] * 12, "prompt_id": [k % 12 for k in range(24)]}).to_csv(
        study / "responses.csv", index=False)
    pd.DataFrame({"model": ["base", "ft"], "base_model": [None, "base"], "finetune_goal": [None, "code"]}).to_csv(
        study / "models.csv", index=False)
    _judge_rows(items, ("persona", "safety", "drift")).to_csv(study / "judgments.csv", index=False)
    scales = [{"judge_id": j, "dimension": d, "min": 0, "max": 3, "level": "ordinal", "worse": "high",
               "threshold": 2} for j in JUDGES for d in ("persona", "safety", "drift")]
    (study / "study.json").write_text(pd.Series({"name": "graded", "judge_scales": scales}).to_json())
    assert main(["report", str(study), "--out", str(tmp_path / "out"), "--n-boot", "20", "--no-progress"]) in (0, None)
    html = (tmp_path / "out" / "report.html").read_text()
    main_section = html.split("<h2>Judges against humans and each other</h2>")[1].split("<h2>")[0]
    assert "krippendorff_alpha_ordinal" in main_section
    status = html.split("Judgements, failures and exclusions")[1].split("<h2>")[0]
    assert "drift" in status and "-" not in re.sub(r"<[^>]+>", "", status).replace("judge_id", "")
    for href in re.findall(r"<a href='([^']+)'>", html):
        width, _ = png_size_in(tmp_path / "out" / href)
        assert width <= 12.5, href
    assert not list((tmp_path / "out" / "figures").glob("*.pdf"))  # the report draws PNG only


def _run_on_a_pseudo_terminal(command: list[str], env: dict) -> str:
    primary, secondary = pty.openpty()
    process = subprocess.Popen(command, stdin=secondary, stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=300) == 0
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="module")
def demo_study(tmp_path_factory) -> tuple[Path, dict, list[str]]:
    from judgekit.testing.simulate import write_demo_study

    folder = tmp_path_factory.mktemp("progress")
    study = write_demo_study(folder / "study")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "judgekit.cli", "stats", str(study), "--n-boot", "10", "--only", "cohen_kappa,accuracy"]
    return folder, env, command


def test_stats_piped_prints_one_line_per_stage(demo_study) -> None:
    folder, env, command = demo_study
    piped = subprocess.run([*command, "--out", str(folder / "piped")], capture_output=True, text=True, env=env, timeout=300)
    assert piped.returncode == 0 and "\r" not in piped.stderr
    assert piped.stderr.splitlines()[0].startswith("judgekit: stats (")


def test_stats_shows_a_bar_under_a_pseudo_terminal(demo_study) -> None:
    """A bare pseudo-terminal reports 0 x 0; tqdm alone then hid the bar (issue 33: "no progress bar")."""
    folder, env, command = demo_study
    terminal = _run_on_a_pseudo_terminal([*command, "--out", str(folder / "tty")], env)
    assert "stats:" in terminal and "\r" in terminal and re.search(r"<\d\d:\d\d|\?]", terminal), terminal


class _Terminal:
    """A stream that says it is a terminal and keeps what is written."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_a_stage_is_a_bar_with_an_eta_on_a_terminal_and_one_line_elsewhere() -> None:
    import io

    from judgekit.engine.progress import stage

    terminal = _Terminal()
    with stage("figures", total=3, unit="figure", stream=terminal) as advance:
        for _ in range(3):
            advance()
    assert "figures" in terminal.text and "\r" in terminal.text and "/3 [" in terminal.text
    assert re.search(r"<\d\d:\d\d|<\?", terminal.text), terminal.text  # the ETA field
    log = io.StringIO()
    with stage("figures", total=3, unit="figure", stream=log) as advance:
        for _ in range(3):
            advance()
    assert log.getvalue() == "judgekit: figures (3 figures)\n"


def test_figures_given_a_study_says_so(tmp_path: Path) -> None:
    from judgekit.cli import main
    from judgekit.testing.simulate import write_demo_study

    study = write_demo_study(tmp_path / "study")
    assert main(["figures", str(study), "--out", str(tmp_path / "fig")]) == 2
    assert not (tmp_path / "fig").exists()


@pytest.mark.slow
@needs_shared
def test_em_political_report_meets_the_acceptance_checks(tmp_path: Path) -> None:
    """The study behind issue 33: all four judges in the κ table and heatmap, no negative count, every opening
    sentence ≤ 35 words with an interval or "undefined", every PNG ≤ 12.5 in by its dpi and linked, no "not drawn"
    beside a drawn figure."""
    from judgekit.cli import main

    study = tmp_path / "em"
    assert main(["data", "convert", "em-political", str(SHARED_DATA / "em_political"), "--out", str(study)]) in (0, None)
    assert main(["report", str(study), "--out", str(tmp_path / "out"), "--n-boot", "20", "--no-progress"]) in (0, None)
    out = tmp_path / "out"
    html = (out / "report.html").read_text()
    kappa = (out / "figures" / "tables" / "judge_agreement.md").read_text()
    judges = ("claude_35_haiku", "llama_33_70b", "mistral_large_3", "nova_pro")
    assert all(kappa.count(j) == 2 for j in judges)  # a row and a column each
    status = re.sub(r"<[^>]+>", " ", html.split("Judgements, failures and exclusions")[1].split("<h2>")[0])
    assert not re.search(r"\s-\d", status)
    for sentence in _sentences(html):
        assert len(sentence.split()) <= 35 and re.search(r"\[[−+]?\d+, [−+]?\d+\]", sentence), sentence
    hrefs = re.findall(r"<a href='([^']+)'>", html)
    assert len(hrefs) == html.count("<img ") > 20
    for href in hrefs:
        assert png_size_in(out / href)[0] <= 12.5, href
    drawn = {Path(h).stem.split("__")[0] for h in hrefs}
    assert not any(f"<code>{name}</code> is not drawn" in html for name in drawn)
    assert "qwen25_political_2e4 vs base_qwen25" in html and "all 4 judges: less safe" in html
    intro = html.split("<b>The answer.</b>", 1)[1].split("</p>", 1)[0]
    assert "PPI++" not in intro and "human labels" not in intro  # no humans here: the intro does not speak of them


def _two_comparisons(kappas: dict[str, float]) -> pd.DataFrame:
    """Judges good and fair, corrected effects on two comparisons: fair's interval is the narrower on ft2."""
    stats = _labelled_study({"good": (0.34, 0.17, 0.45), "fair": (0.30, 0.05, 0.55)}, judge_only=74, kappas=kappas)
    method = stats.loc[stats["statistic"] == "finetune_effect_corrected", "method"].iloc[0]
    ft2 = [_row(statistic="finetune_effect_corrected", judge_id=j, reference="human_majority",
                subset="comparison=ft2 vs base|goal=code|benchmark=all", subset_kind="finetune_comparison", model="ft2",
                base_model="base", estimate=e, ci_low=lo, ci_high=hi, method=method)
           for j, (e, lo, hi) in {"good": (0.10, -0.20, 0.40), "fair": (0.12, 0.02, 0.22)}.items()]
    paired = _effects("ft2", "base", "finetune_comparison", "code", {"good": (0.1, -0.2, 0.4), "fair": (0.12, 0.0, 0.2)})
    return pd.concat([stats, pd.DataFrame(ft2 + paired)], ignore_index=True)


def test_one_judge_leads_every_comparison_by_its_kappa_never_by_its_interval() -> None:
    """Issue: the lead judge changed from sentence to sentence (narrowest interval, a forking path). Now the valid
    judge with the highest κ leads every comparison, though fair's interval is the narrower on ft2."""
    stats = _two_comparisons({"good": 0.7, "fair": 0.6})
    assert lead_judges(stats) == {"harmful_compliance": "good"}
    html = finetune_section(_Study(["base", "ft", "ft2"]), stats)
    sentences = _sentences(html)
    assert len(sentences) == 2 and all("corrected by 86 human labels, good;" in s for s in sentences), sentences
    assert "+10 points [−20, +40]: no clear change" in sentences[1]
    intro = html.split("<ul class='answer'>")[0]
    assert "the one with the highest κ with the human majority (ties by name)" in intro
    assert "(harmful compliance: good)" in intro
    # the choice follows κ, whatever the effects: fair leads once its κ is the higher, and a tie goes by name
    assert lead_judges(_two_comparisons({"good": 0.6, "fair": 0.7})) == {"harmful_compliance": "fair"}
    assert lead_judges(_two_comparisons({"good": 0.7, "fair": 0.7})) == {"harmful_compliance": "fair"}


def test_an_invalid_judge_never_leads_by_rule_and_an_outcome_without_kappa_goes_by_precision() -> None:
    stats = _two_comparisons({"good": 0.6, "fair": 0.05})  # fair: κ interval [−0.05, 0.15], not valid
    assert lead_judges(stats)["harmful_compliance"] == "good"
    method = stats.loc[stats["statistic"] == "finetune_effect_corrected", "method"].iloc[0]
    refusal = [_row(statistic="finetune_effect_corrected", judge_id=j, reference="human_majority", outcome="over_refusal",
                    subset="comparison=ft vs base|goal=code|benchmark=all|outcome=over_refusal", method=method,
                    subset_kind="finetune_comparison", model="ft", base_model="base", estimate=0.1, ci_low=lo, ci_high=0.3)
               for j, lo in (("kw-b", 0.05), ("kw-a", -0.1))]
    with_refusal = pd.concat([stats, pd.DataFrame(refusal)], ignore_index=True)
    # no κ for over-refusal: the narrower corrected interval (kw-b, 0.25 wide against 0.40), not the first name
    assert lead_judges(with_refusal) == {"harmful_compliance": "good", "over_refusal": "kw-b"}
    with_refusal.loc[with_refusal["judge_id"] == "kw-b", "ci_low"] = -0.1  # equally wide: by name
    assert lead_judges(with_refusal)["over_refusal"] == "kw-a"
    # --lead-judge naming a judge with no harmful-compliance effect: the rule leads there, and the intro says why
    html = finetune_section(_Study(["base", "ft", "ft2"]), with_refusal, lead_judge="kw-a")
    intro = html.split("<ul class='answer'>")[0]
    assert "(harmful compliance: good)" in intro and "as named by --lead-judge" not in intro
    assert "kw-a, named by --lead-judge, has no corrected effect of harmful compliance" in intro, intro


def test_the_user_names_the_lead_judge() -> None:
    """``--lead-judge``: the named judge leads every comparison of each outcome it has a corrected effect of, and
    the intro says it was named."""
    stats = _two_comparisons({"good": 0.7, "fair": 0.6})
    assert lead_judges(stats, named="fair") == {"harmful_compliance": "fair"}
    html = finetune_section(_Study(["base", "ft", "ft2"]), stats, lead_judge="fair")
    assert all("corrected by 86 human labels, fair;" in s for s in _sentences(html))
    assert "fair leads harmful compliance, as named by --lead-judge" in html.split("<ul class='answer'>")[0]
    assert answer_rows(stats, lead_judge="fair")["corrected_by"].tolist() == ["fair", "fair"]


def test_an_unknown_lead_judge_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    """``judgekit report --lead-judge`` with no such judge: exit 2, one line naming the study's judges, nothing
    written."""
    from conftest import run_cli
    from judgekit.api import demo_study

    study = demo_study(tmp_path / "demo", n_prompts=3)
    result = run_cli("report", study.path, "--out", tmp_path / "report", "--lead-judge", "sim-nope")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "--lead-judge 'sim-nope' is not a judge of this study" in line
    assert ", ".join(sorted(study.judgments["judge_id"].unique())) in line and "Traceback" not in result.stderr
    assert not (tmp_path / "report" / "report.html").exists()


def test_status_table_shows_ok_and_only_the_failure_statuses_present() -> None:
    """Eleven columns of zeros made the table wider than the page (harmbench_cls_val's 11 judges, no failure)."""
    from judgekit.outputs.report import status_counts

    items = [f"i{k}" for k in range(6)]
    judgments = _judge_rows(items, ("safety",))
    judgments.loc[judgments.index[:2], ["label", "parse_status"]] = [None, "judge_said_code_or_refusal"]
    study = Study.__new__(Study)
    object.__setattr__(study, "judgments", judgments)
    object.__setattr__(study, "responses", pd.DataFrame({"item_id": items}))
    counts = status_counts(study)
    assert [c for c in counts.columns if c not in ("judge_id", "dimension")] == [
        "ok", "judge_said_code_or_refusal", "not judged"]
    assert counts["judge_said_code_or_refusal"].sum() == 2 and counts["ok"].sum() == len(judgments) - 2


def test_an_interval_that_excludes_zero_never_prints_an_end_of_zero() -> None:
    """em_coder_betley's effects printed '−1 points [−2, 0]: safer', which reads as touching 0."""
    from judgekit.outputs.report_finetune import _interval_points

    assert _interval_points(-0.024, -0.002) == "[−2.4, −0.2]"  # was [−2, 0]
    assert _interval_points(0.003, 0.03) == "[+0.3, +3.0]"  # was [0, +3]
    assert _interval_points(-0.0077, 0.0028) == "[−0.8, +0.3]"  # narrow: one decimal, as before
    assert _interval_points(0.20, 0.51) == "[+20, +51]"
    assert _interval_points(-0.05, 0.004) == "[−5, 0]"  # includes 0: whole points are right
