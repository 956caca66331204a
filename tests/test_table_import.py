"""Issue 32: your own table in with one command (``data import table``), two models compared with ``compare_with``,
a judge that rates one model only, small probes with an interval. Every number is checked against pandas/sklearn."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, needs_shared, run_cli
from sklearn.metrics import accuracy_score, cohen_kappa_score, recall_score

from judgekit.store.study import load_study

MODELS = {"0": "llama-2-7b-chat", "1": "gpt-3.5-turbo"}
JUDGES = {"gpt4": "gpt4_verdict", "llamaguard": "llamaguard", "keyword": "keyword_judge"}
N_PROMPTS = 40


def _evaluation_csv(path):
    """Two chat models under attacks, a human label, three judges; llamaguard judged the llama model only; a
    repeated (model, question) row marked split=dup; a few empty verdicts; a source column named intent."""
    rng = np.random.default_rng(32)
    rows = []
    for q in range(N_PROMPTS):
        for model_id, rate in (("0", 0.25), ("1", 0.5)):
            human = rng.random() < rate
            flip = lambda p: (not human) if rng.random() < p else human  # noqa: E731
            rows.append({
                "question_id": f"b{q:03d}", "model_id": model_id, "attack": rng.choice(["GCG", "PAIR", "none"]),
                "goal": f"Explain how to do harmful thing {q}", "target_response": f"Answer {q} of model {model_id}"
                + " words" * int(rng.integers(1, 30)), "intent": "jailbreak", "split": "main",
                "human_label": str(human), "gpt4_verdict": str(flip(0.1)),
                "llamaguard": str(flip(0.2)) if model_id == "0" else "",
                "keyword_judge": str(bool(rng.random() < 0.5)),
            })
    rows[3]["gpt4_verdict"] = ""  # no verdict, never "safe"
    rows[10]["keyword_judge"] = ""
    rows.append(dict(rows[5], split="dup", target_response="a second copy"))
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _import_args(csv, study):
    args = ["data", "import", "table", csv, "--out", study,
            "--map", "prompt=goal,response=target_response,prompt_id=question_id,model=model_id",
            "--values", "model_id:0=llama-2-7b-chat,1=gpt-3.5-turbo", "--where", "split=main",
            "--set", "intent=harmful", "--label", "human_label", "--unsafe-value", "label=True"]
    for name, column in JUDGES.items():
        args += ["--judge", f"{name}={column}", "--unsafe-value", f"{name}=True"]
    return args


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    csv = _evaluation_csv(folder / "eval.csv")
    study = folder / "S"
    dry = run_cli(*_import_args(csv, study), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert not study.exists()
    result = run_cli(*_import_args(csv, study))
    assert result.returncode == 0, result.stderr
    (study / "models.csv").write_text("model,compare_with\ngpt-3.5-turbo,llama-2-7b-chat\n")
    assert run_cli("validate", study).returncode == 0
    stats = run_cli("stats", study, "--out", folder / "stats", "--n-boot", "200")
    assert stats.returncode == 0, stats.stderr
    return {"csv": csv, "study": study, "dry": dry.stdout, "stdout": result.stdout, "stats_stdout": stats.stdout,
            "stats": pd.read_parquet(folder / "stats" / "stats.parquet"), "folder": folder}


def _source(csv) -> pd.DataFrame:
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame = frame[frame["split"] == "main"].copy()
    frame["model"] = frame["model_id"].map(MODELS)
    return frame


def test_preview_counts_models_pairs_and_each_judges_unsafe_safe_missing(imported):
    preview = imported["dry"]
    assert "read 81 rows from 1 file; kept 80 (--where split=main: 1 rows left out)" in preview
    assert "models: gpt-3.5-turbo (40 prompts), llama-2-7b-chat (40 prompts)" in preview
    assert "paired prompts (answered by all 2 models): 40" in preview
    source = _source(imported["csv"])
    for name, column in JUDGES.items():
        cells = source[column]
        counts = f"unsafe {(cells == 'True').sum()}, safe {(cells == 'False').sum()}, missing {(cells == '').sum()}"
        assert f"judge {name} (column {column}): {counts}" in preview
    assert "no verdict on model gpt-3.5-turbo" in preview  # llamaguard rated the llama model only
    assert "kept as source_<name> (named like a judgekit column, not mapped): intent" in preview
    assert "kept as extra response columns: attack, split" in preview
    assert "dry run: nothing written" in preview


def test_imported_study_keeps_source_columns_and_judge_provenance(imported):
    study = load_study(imported["study"])
    responses = study.responses
    assert len(responses) == 80 and set(responses["intent"]) == {"harmful"}
    assert set(responses["source_intent"]) == {"jailbreak"} and {"attack", "split"} <= set(responses.columns)
    judgments = study.judgments
    assert set(judgments["judge_id"]) == set(JUDGES)
    assert (judgments["provenance"] == judgments["judge_id"].map(lambda j: f"imported: eval.csv:{JUDGES[j]}")).all()
    # empty cells are no verdict (no row), never "safe"
    assert len(judgments) == 80 + 40 + 80 - 2
    assert set(study.annotations["annotator_id"]) == {"human_label"}


def _row(stats, statistic, judge, reference, subset):
    rows = stats[(stats["statistic"] == statistic) & (stats["judge_id"] == judge) & (stats["reference"] == reference)
                 & (stats["subset"] == subset)]
    assert len(rows) == 1, (statistic, judge, reference, subset, len(rows))
    return rows.iloc[0]


def test_every_rate_effect_kappa_sensitivity_specificity_equals_pandas_and_sklearn(imported):
    stats, source = imported["stats"], _source(imported["csv"])
    human = source["human_label"] == "True"
    comparison = "comparison=gpt-3.5-turbo vs llama-2-7b-chat|goal=None|benchmark=all"
    raters = {"human_majority": "human_label", **JUDGES}
    checked = 0
    for rater, column in raters.items():
        given = source[column] != ""
        unsafe = source[column] == "True"
        for subset, rows in [("all", given), *((f"model={m}", given & (source["model"] == m)) for m in MODELS.values())]:
            if rows.any():
                rate = _row(stats, "harmful_rate", rater, "none", subset)
                assert rate["estimate"] == pytest.approx(unsafe[rows].mean(), abs=1e-9)
                checked += 1
        wide = source[given].pivot(index="question_id", columns="model", values=column)
        wide = wide.reindex(columns=list(MODELS.values())).dropna()
        effect = _row(stats, "finetune_effect_paired", rater, "base_model", comparison)
        if len(wide):
            expected = ((wide["gpt-3.5-turbo"] == "True").astype(float) - (wide["llama-2-7b-chat"] == "True")).mean()
            assert effect["estimate"] == pytest.approx(expected, abs=1e-9) and effect["n_items"] == len(wide)
            assert effect["ci_low"] < effect["estimate"] < effect["ci_high"]
            checked += 1
        else:  # llamaguard: one model only -> a row saying why, no number
            assert np.isnan(effect["estimate"]) and "has no verdict on gpt-3.5-turbo" in effect["warning"]
        if rater == "human_majority":
            continue
        y, f = human[given], unsafe[given]
        expectations = {"cohen_kappa": cohen_kappa_score(y, f), "recall": recall_score(y, f),
                        "fpr": 1 - recall_score(~y, ~f), "accuracy": accuracy_score(y, f)}
        for name, value in expectations.items():
            assert _row(stats, name, rater, "human_majority", "all")["estimate"] == pytest.approx(value, abs=1e-9), name
            checked += 1
    assert checked == 3 * 3 - 1 + 3 + 3 * 4 + 3  # rates (llamaguard: 2), effects, judge-vs-human measures, humans


def test_comparison_rows_carry_their_kind_and_stats_says_what_is_undefined(imported):
    stats = imported["stats"]
    compared = stats[stats["subset"].str.startswith("comparison=gpt-3.5-turbo vs llama-2-7b-chat")]
    assert set(compared["subset_kind"]) == {"model_comparison"}
    assert {"finetune_effect_paired", "finetune_effect_corrected", "conclusion_agreement",
            "finetune_effect_cell"} <= set(compared["statistic"])
    assert stats["warning"][stats["estimate"].isna()].str.len().gt(0).all()  # every undefined row says why
    assert "finetune_effect_paired: undefined in 1 of 4 rows: llamaguard has no verdict on gpt-3.5-turbo" in \
        imported["stats_stdout"]


@pytest.mark.slow
def test_a_study_with_a_judge_rating_one_model_goes_through_figures_and_report(imported):
    folder = imported["folder"]
    figures = run_cli("figures", folder / "stats", "--out", folder / "figures", "--study", imported["study"])
    assert figures.returncode == 0, figures.stderr
    report = run_cli("report", imported["study"], "--stats", folder / "stats", "--out", folder / "report")
    assert report.returncode == 0, report.stderr
    html = (folder / "report" / "report.html").read_text(encoding="utf-8")
    assert "gpt-3.5-turbo vs llama-2-7b-chat" in html and "llamaguard has no verdict on gpt-3.5-turbo" in html


# ---------------------------------------------------------------- errors: one line, exit 2, nothing written


def test_user_errors_name_the_fix_and_write_nothing(tmp_path):
    csv = _evaluation_csv(tmp_path / "eval.csv")
    study = tmp_path / "S"
    base = ["data", "import", "table", csv, "--out", study]
    cases = [
        (["--map", "response=target_response"], "no prompt column named: --map prompt=COLUMN is needed",
         "did you mean --map prompt=goal?"),
        (["--map", "prompt=goal,response=target_respons"], "--map response names column 'target_respons'",
         "did you mean --map response=target_response?"),
        (["--map", "prompt=goal,response=target_response", "--judge", "gpt4=gpt4_verdict"],
         "--judge gpt4=gpt4_verdict needs --unsafe-value gpt4=VALUE", "'True'"),
        (["--map", "prompt=goal,response=target_response,prompt_id=question_id,model=model_id"],
         "model '1' answers prompt 'b002' twice (rows 6 of eval.csv and 81)", "--where"),
        (["--map", "prompt=goal,response=target_response", "--where", "split=nothing"], "no rows are left", ""),
        (["--map", "prompt=goal,response=target_response", "--label", "human_label"],
         "--label human_label needs --unsafe-value label=VALUE", ""),
    ]
    for extra, message, hint in cases:
        result = run_cli(*base, *extra)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (extra, result.stderr)
        assert message in result.stderr and hint in result.stderr, result.stderr
        assert not study.exists()


@pytest.mark.parametrize(("models_csv", "message"), [
    ("model,compare_with\ngpt-3.5-turbo,gpt-5\n", "row 1: column 'compare_with': compare_with names 'gpt-5'"),
    ("model,compare_with\ngpt-3.5-turbo,gpt-3.5-turbo\n", "compared with itself"),
    ("model,compare_with\ngpt-3.5-turbo,llama-2-7b-chat\nllama-2-7b-chat,gpt-3.5-turbo\n", "compared with each other"),
    ("model,checkpoint_of,step\ngpt-3.5-turbo,llama-2-7b-chat,\n", "has no step"),
    ("model,checkpoint_of,step\ngpt-3.5-turbo,llama-2-7b-chat,10\nllama-2-7b-chat,gpt-3.5-turbo,20\n",
     "itself a checkpoint of"),
])
def test_models_table_comparisons_are_validated(imported, tmp_path, models_csv, message):
    import shutil

    study = tmp_path / "S"
    shutil.copytree(imported["study"], study)
    (study / "models.csv").write_text(models_csv)
    result = run_cli("validate", study)
    assert result.returncode == 2 and message in result.stderr and "models.csv" in result.stderr, result.stderr


def test_hf_alias_and_other_formats_read_the_same(tmp_path):
    rows = [{"q": f"q{k}", "a": "answer", "y": k % 2, "score": k / 10, "m": "m1"} for k in range(6)]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tsv = tmp_path / "t.tsv"
    pd.DataFrame(rows).to_csv(tsv, sep="\t", index=False)
    parquet = tmp_path / "t.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    studies = []
    for k, (command, path) in enumerate((("hf", jsonl), ("table", tsv), ("table", parquet))):
        out = tmp_path / f"s{k}"
        result = run_cli("data", "import", command, path, "--out", out, "--map", "prompt=q,response=a,label=y,model=m",
                         "--judge", "score=score", "--unsafe-value", "score=>=0.3")
        assert result.returncode == 0, result.stderr
        studies.append(load_study(out))
    for study in studies:
        assert list(study.annotations["label"]) == ["safe", "unsafe"] * 3  # the hf reading of --map label
        assert list(study.judgments["label"]) == ["safe"] * 3 + ["unsafe"] * 3
        assert study.judgments["score"].tolist() == pytest.approx([k / 10 for k in range(6)])


# ---------------------------------------------------------------- small probes: two 8-prompt Inspect logs


@pytest.mark.parametrize("epochs", [1, 2])
def test_two_eight_prompt_inspect_logs_give_the_accuracy_difference_with_a_small_n_interval(tmp_path, epochs):
    """One epoch: 0/1 per prompt, Newcombe's interval; two epochs: prompt means of which fewer than 10 differ, the
    conservative score interval of the two arms' means (square-and-add)."""
    pytest.importorskip("inspect_ai", reason="inspect-ai (test-only dependency) is not installed")
    from framework_logs import write_inspect_logs
    from inspect_ai.log import read_eval_log

    logs = write_inspect_logs(tmp_path / "logs", n_prompts=8, epochs=epochs, errored=False, formats=("eval",))
    study = tmp_path / "S"
    for model in ("base", "ft"):
        result = run_cli("data", "import", "inspect", logs[model], "--out", study, "--model", model,
                         "--unsafe-value", "C")
        assert result.returncode == 0, result.stderr
    (study / "models.csv").write_text("model,compare_with\nft,base\n")
    result = run_cli("stats", study, "--out", tmp_path / "stats", "--only", "finetune_effect_paired")
    assert result.returncode == 0, result.stderr
    stats = pd.read_parquet(tmp_path / "stats" / "stats.parquet")
    row = stats[(stats["statistic"] == "finetune_effect_paired") & (stats["judge_id"] == "includes")].iloc[0]
    accuracy = {m: read_eval_log(str(logs[m])).results.scores[0].metrics["accuracy"].value for m in ("base", "ft")}
    assert accuracy["ft"] != accuracy["base"]
    assert row["estimate"] == pytest.approx(accuracy["ft"] - accuracy["base"], abs=1e-12) and row["n_items"] == 8
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    if epochs == 1:
        assert "small n (8 matched units" in row["warning"] and "Newcombe" in row["method"]
    else:
        assert "few units whose rates differ" in row["warning"] and "square-and-add" in row["method"]
    assert row["subset_kind"] == "model_comparison"


def test_a_comparison_with_a_model_without_responses_gets_rows_saying_so(imported, tmp_path):
    import shutil

    study = tmp_path / "S"
    shutil.copytree(imported["study"], study)
    (study / "models.csv").write_text("model,compare_with\nmistral-7b,gpt-3.5-turbo\ngpt-3.5-turbo,\nllama-2-7b-chat,\n")
    result = run_cli("stats", study, "--out", tmp_path / "stats", "--only", "finetune_effect_paired")
    assert result.returncode == 0, result.stderr
    stats = pd.read_parquet(tmp_path / "stats" / "stats.parquet")
    rows = stats[stats["subset"] == "comparison=mistral-7b vs gpt-3.5-turbo|goal=None|benchmark=all"]
    assert len(rows) == 4 and rows["estimate"].isna().all() and set(rows["subset_kind"]) == {"model_comparison"}
    assert rows["warning"].str.contains("'mistral-7b' has no responses in this study").all()


@needs_shared
def test_real_jailbreakbench_file_imports_four_judges_and_three_humans_in_one_command(tmp_path):
    """The shared JBB judge comparison (Mac Roman CSV): the counts SOURCE.md states for its shared part."""
    source = SHARED_DATA / "jbb_judge_comparison" / "judge-comparison.csv"
    args = ["data", "import", "table", source, "--out", tmp_path / "S", "--encoding", "mac_roman", "--map",
            "prompt=prompt,response=target_response,prompt_id=Index,goal=goal", "--set", "model=jbb-targets",
            "--label", "human1", "--label", "human2", "--label", "human3", "--unsafe-value", "label=1"]
    for name in ("harmbench", "gpt4", "llamaguard2", "llama3"):
        args += ["--judge", f"{name}={name}_cf", "--unsafe-value", f"{name}=1"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    for line in ("judge harmbench (column harmbench_cf): unsafe 111, safe 119, missing 0",
                 "judge gpt4 (column gpt4_cf): unsafe 91, safe 139, missing 0",
                 "judge llamaguard2 (column llamaguard2_cf): unsafe 93, safe 137, missing 0",
                 "judge llama3 (column llama3_cf): unsafe 98, safe 132, missing 0",
                 "kept as extra response columns: human_majority"):
        assert line in result.stdout
    study = load_study(tmp_path / "S")
    assert len(study.responses) == 230 and len(study.annotations) == 690 and len(study.judgments) == 920
