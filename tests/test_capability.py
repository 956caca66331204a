"""Models and capability tables, the harness importers, capability gain, and the label round trip.

The importer fixtures are written here by hand in each harness's real format:

* lm-evaluation-harness: ``lm_eval/result_schema.py`` (EvalResults: ``results``, ``n-samples``, ``model_name``,
  ``group_subtasks``; SampleResult: ``doc_id``, ``filter``, ``metrics`` and the per-sample metric values) at
  EleutherAI/lm-evaluation-harness commit 293c9dfb6983aa36fd40accb05a1ad32f135edcd, and the file names
  ``results_<date>.json`` / ``samples_<task>_<date>.jsonl`` from ``lm_eval/loggers/evaluation_tracker.py``
  (``save_results_aggregated``, ``save_results_samples``) at commit 034ab03621186e68aa1f73ee1508370580ea77b5.
* Inspect AI: ``src/inspect_ai/log/_log.py`` (EvalLog ``version``, ``status``, ``eval.task``, ``eval.model``,
  ``results.scores[].metrics``, ``samples[].id/epoch/scores``) at UKGovernmentBEIS/inspect_ai commit
  020dd018841a2e70f4f11198bae184d1c8b01948, the value reading of ``scorer/_metric.py`` ``value_to_float`` (C, I, P,
  N) at 03ed3dda081388b7e4e68e988a8ada9e3951305f. The ``.eval`` format and lm-eval's own files are tested on logs
  written by the real packages in tests/test_frameworks.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from judgekit.capability.gain import capability_gain, capability_summary
from judgekit.capability.importers import inspect_rows, lm_eval_rows, table_rows
from judgekit.store.lineage import finetune_pairs, model_lineage, read_capability, read_models
from judgekit.cli import main
from judgekit.errors import InputError
from judgekit.store.io import read_table, write_table
from judgekit.store.schema import SCHEMAS
from judgekit.store.study import load_study

DATE = "2026-11-30T12-00-00.000001"


def _lm_eval_results(folder: Path, *, stderr: object = 0.05) -> Path:
    results = {
        "results": {
            "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.25, "exact_match_stderr,strict-match": stderr,
                      "exact_match,flexible-extract": 0.5, "exact_match_stderr,flexible-extract": 0.1},
            "arc_easy": {"alias": "arc_easy", "acc,none": 0.75, "acc_stderr,none": 0.02, "acc_norm,none": 0.7,
                         "acc_norm_stderr,none": 0.02},
        },
        "group_subtasks": {"gsm8k": [], "arc_easy": []},
        "configs": {}, "versions": {"gsm8k": 3.0, "arc_easy": 1.0}, "n-shot": {"gsm8k": 5, "arc_easy": 0},
        "n-samples": {"gsm8k": {"original": 1319, "effective": 4}, "arc_easy": {"original": 2376, "effective": 100}},
        "config": {"model": "hf", "model_args": "pretrained=org/coder-ft,dtype=bfloat16"},
        "model_name": "org/coder-ft",
    }
    path = folder / f"results_{DATE}.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    return path


def _lm_eval_samples(folder: Path, task: str = "gsm8k") -> Path:
    # one line per (document, filter), as save_results_samples writes them
    lines = []
    for doc_id, (strict, flexible) in enumerate([(1.0, 1.0), (0.0, 1.0), (0.0, 0.0), (0.0, 0.0)]):
        for filter_name, value in (("strict-match", strict), ("flexible-extract", flexible)):
            lines.append({"doc_id": doc_id, "doc": {"question": "q"}, "target": "4",
                          "arguments": {"gen_args_0": {"arg_0": "Q: q\nA:", "arg_1": {"until": ["\n"]}}},
                          "resps": [["4"]], "filtered_resps": ["4"], "filter": filter_name, "metrics": ["exact_match"],
                          "doc_hash": "d", "prompt_hash": "p", "target_hash": "t", "exact_match": value})
    path = folder / f"samples_{task}_{DATE}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_lm_eval_results_give_aggregate_rows_with_the_harness_stderr(tmp_path):
    rows = lm_eval_rows(_lm_eval_results(tmp_path))
    assert rows[["model", "task"]].values.tolist() == [["org/coder-ft", "gsm8k"], ["org/coder-ft", "arc_easy"]]
    gsm8k = rows.iloc[0]
    assert gsm8k["metric"] == "exact_match,strict-match" and gsm8k["n"] == 4
    assert (gsm8k["estimate"], gsm8k["ci_low"], gsm8k["ci_high"]) == pytest.approx((0.25, 0.25 - 1.959964 * 0.05,
                                                                                      0.25 + 1.959964 * 0.05), abs=1e-6)
    assert rows.iloc[1]["metric"] == "acc,none"
    assert lm_eval_rows(_lm_eval_results(tmp_path), metric="acc_norm")["metric"].tolist() == ["acc_norm,none"]


def test_lm_eval_without_stderr_falls_back_to_wilson_and_says_so(tmp_path):
    rows = lm_eval_rows(_lm_eval_results(tmp_path, stderr="N/A"), metric="exact_match,strict-match")
    assert rows.iloc[0]["ci_method"] == "wilson (no stderr in results)"
    assert rows.iloc[0]["ci_low"] == pytest.approx(0.0456, abs=1e-4)  # Wilson, 1 of 4


def test_lm_eval_per_sample_logs_beside_the_results_give_per_item_rows(tmp_path):
    results = _lm_eval_results(tmp_path)
    _lm_eval_samples(tmp_path)
    rows = lm_eval_rows(results, metric="exact_match,flexible-extract")
    assert rows["item_id"].tolist() == ["0", "1", "2", "3"] and rows["score"].tolist() == [1.0, 1.0, 0.0, 0.0]
    strict = lm_eval_rows(results)
    gsm8k = strict[strict["task"] == "gsm8k"]
    assert gsm8k["score"].tolist() == [1.0, 0.0, 0.0, 0.0] and gsm8k["item_id"].notna().all()
    assert strict[strict["task"] == "arc_easy"]["item_id"].isna().all()  # no samples file: aggregate


def test_lm_eval_bad_input_names_file_row_and_column(tmp_path):
    results = _lm_eval_results(tmp_path)
    samples = _lm_eval_samples(tmp_path)
    text = samples.read_text().split("\n")
    text[2] = text[2].replace('"exact_match": 0.0', '"exact_match": 7.0')
    samples.write_text("\n".join(text))
    with pytest.raises(InputError) as err:
        lm_eval_rows(results, metric="exact_match,strict-match")
    assert (err.value.row, err.value.column) == (3, "exact_match") and "outside [0, 1]" in err.value.message
    (tmp_path / "bad.json").write_text('{"no": "results"}')
    with pytest.raises(InputError, match="not an lm-evaluation-harness results file"):
        lm_eval_rows(tmp_path / "bad.json")
    with pytest.raises(InputError, match="no task reports metric 'bleu'"):
        lm_eval_rows(results, metric="bleu")


def _inspect_log(*, samples: bool = True, status: str = "success") -> dict:
    log = {
        "version": 2, "status": status,
        "eval": {"eval_id": "e1", "run_id": "r1", "created": "2026-11-30T12:00:00+00:00", "task": "mbpp",
                 "task_version": 0, "dataset": {"name": "mbpp", "samples": 3}, "model": "openai/coder-base",
                 "config": {"epochs": 2}},
        "results": {"total_samples": 6, "completed_samples": 6,
                    "scores": [{"name": "verify", "scorer": "verify", "scored_samples": 6,
                                "metrics": {"accuracy": {"name": "accuracy", "value": 0.5},
                                            "stderr": {"name": "stderr", "value": 0.2}}}]},
    }
    if samples:
        values = {(1, 1): "C", (1, 2): "I", (2, 1): "C", (2, 2): "C", (3, 1): "P", (3, 2): "N"}
        log["samples"] = [{"id": sample_id, "epoch": epoch, "input": "write f", "target": "",
                           "scores": {"verify": {"value": value, "answer": "def f(): ..."}}}
                          for (sample_id, epoch), value in values.items()]
    return log


def test_inspect_json_log_averages_epochs_per_sample(tmp_path):
    path = tmp_path / "log.json"
    path.write_text(json.dumps(_inspect_log()))
    rows = inspect_rows(path)
    # sample 1: C, I -> 0.5; sample 2: C, C -> 1; sample 3: P, N -> 0.25
    assert rows[["model", "task", "item_id"]].values.tolist() == [["openai/coder-base", "mbpp", "1"],
                                                                  ["openai/coder-base", "mbpp", "2"],
                                                                  ["openai/coder-base", "mbpp", "3"]]
    assert rows["score"].tolist() == [0.5, 1.0, 0.25] and rows["n_epochs"].tolist() == [2, 2, 2]


def test_inspect_log_without_samples_gives_the_scorer_aggregate(tmp_path):
    path = tmp_path / "log.json"
    path.write_text(json.dumps(_inspect_log(samples=False)))
    row = inspect_rows(path, model="coder-base").iloc[0]
    assert (row["model"], row["estimate"], row["n"]) == ("coder-base", 0.5, 6)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.5 - 1.959964 * 0.2, 0.5 + 1.959964 * 0.2), abs=1e-6)


def test_inspect_unreadable_values_and_unfinished_logs_are_errors_not_zeros(tmp_path):
    log = _inspect_log()
    log["samples"][3]["scores"]["verify"]["value"] = "maybe"
    path = tmp_path / "log.json"
    path.write_text(json.dumps(log))
    with pytest.raises(InputError) as err:
        inspect_rows(path)
    assert err.value.row == 4 and err.value.column == "scores.verify.value" and "'maybe'" in err.value.message
    path.write_text(json.dumps(_inspect_log(status="error")))
    with pytest.raises(InputError, match="not 'success'"):
        inspect_rows(path)


def test_capability_table_validation_names_row_and_column(tmp_path):
    cases = {
        "model,task,item_id,score\nm,t,1,1.5\n": (1, "score", "outside [0, 1]"),
        "model,task,item_id,score\nm,t,1,0.5\nm,t,,0.5\n": (2, "item_id", "score is given"),
        "model,task,item_id,estimate,ci_low,ci_high,n\nm,t,,0.5,0.4,0.6,\n": (1, "n", "aggregate row"),
        "model,task,item_id,estimate,ci_low,ci_high,n\nm,t,,0.7,0.4,0.6,10\n": (1, "estimate", "not inside"),
        "model,task,item_id,score,estimate,ci_low,ci_high,n\nm,t,1,0.5,,,,\nm,t,,,0.5,0.4,0.6,10\n":
            (2, "item_id", "keep one shape per task"),
        "model,task,item_id,score\nm,t,1,0.5\nm,t,1,0.0\n": (2, "item_id", "duplicate key"),
    }
    for text, (row, column, message) in cases.items():
        path = tmp_path / "capability.csv"
        path.write_text(text)
        with pytest.raises(InputError) as err:
            table_rows(path)
        assert (err.value.row, err.value.column) == (row, column) and message in err.value.message, text


def test_validate_checks_a_models_or_capability_file_on_its_own(tmp_path, capsys):
    (tmp_path / "models.csv").write_text("model,base_model\nft,base\nft,base\n")
    assert main(["validate", str(tmp_path / "models.csv")]) == 2
    assert "row 2" in capsys.readouterr().err
    (tmp_path / "capability.csv").write_text("model,task,item_id,score\nm,t,1,1.0\n")
    assert main(["validate", str(tmp_path / "capability.csv")]) == 0


def _study(folder: Path, *, models_table: str | None = None) -> Path:
    """Base model `base` and its fine-tune `ft` on 40 shared prompts; one judge; humans labelled 24 items."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    responses, judgments, annotations = [], [], []
    for model in ("base", "ft"):
        for prompt in range(40):
            item = f"{model}-{prompt}"
            truth = rng.random() < (0.2 if model == "base" else 0.4)
            verdict = truth if rng.random() < 0.8 else not truth
            responses.append({"item_id": item, "prompt": f"p{prompt}", "response": f"=cmd r{prompt}", "model": model,
                              "base_model": "base", "finetune_goal": "coding" if model == "ft" else "",
                              "prompt_id": f"p{prompt}"})
            judgments.append({"item_id": item, "judge_id": "kw", "label": "unsafe" if verdict else "safe",
                              "p_unsafe": "", "parse_status": "ok", "raw_output": "", "judge_spec_hash": "h"})
            if prompt < 12:
                annotations.append({"item_id": item, "annotator_id": "a1", "label": "unsafe" if truth else "safe"})
    for name, rows in (("responses", responses), ("judgments", judgments), ("annotations", annotations)):
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    if models_table is not None:
        (folder / "models.csv").write_text(models_table)
    return folder


def test_models_table_lineage_and_its_disagreement_with_responses(tmp_path):
    study = _study(tmp_path / "s", models_table="model,base_model,finetune_goal,mitigation,size\nft,base,coding,none,7b\n")
    responses = load_study(study).responses
    lineage = model_lineage(responses, read_models(study, responses))
    assert finetune_pairs(lineage) == [{"model": "ft", "base_model": "base", "finetune_goal": "coding",
                                        "mitigation": "none"}]
    (study / "models.csv").write_text("model,base_model\nft,other\n")
    with pytest.raises(InputError) as err:
        read_models(study, responses)
    assert (err.value.row, err.value.column) == (1, "base_model") and "disagrees" in err.value.message


def test_capability_gain_paired_by_item_and_from_aggregates():
    per_item = pd.DataFrame({"model": ["ft"] * 12 + ["base"] * 12, "task": "t", "item_id": [str(i % 12) for i in range(24)],
                             "score": [1.0] * 9 + [0.0] * 3 + [1.0] * 6 + [0.0] * 6})
    aggregate = pd.DataFrame({"model": ["ft", "base"], "task": "u", "item_id": None, "estimate": [0.6, 0.5],
                              "ci_low": [0.5, 0.4], "ci_high": [0.7, 0.6], "n": [100, 100]})
    capability = pd.concat([per_item, aggregate], ignore_index=True)
    pairs = [{"model": "ft", "base_model": "base", "finetune_goal": "coding", "mitigation": None}]
    gain = capability_gain(capability, pairs, rng=0).set_index("task")
    assert gain.loc["t", "estimate"] == pytest.approx(0.25) and gain.loc["t", "n_items"] == 12
    assert gain.loc["t", "method"].startswith("paired by item_id") and gain.loc["t", "warning"].startswith("few")
    assert (gain.loc["u", "estimate"], gain.loc["u", "ci_low"]) == pytest.approx((0.1, 0.1 - np.sqrt(0.02)))
    summary = capability_summary(capability).set_index(["model", "task"])
    assert summary.loc[("ft", "t"), "estimate"] == 0.75 and summary.loc[("base", "u"), "n"] == 100


def test_cli_capability_import_appends_refuses_a_second_copy_and_writes_nothing_on_bad_input(tmp_path, capsys):
    study = _study(tmp_path / "s")
    results = _lm_eval_results(tmp_path)
    assert main(["capability", "import", "lm-eval", str(results), "--study", str(study), "--model", "ft"]) == 0
    table = read_capability(study)
    assert sorted(table["task"]) == ["arc_easy", "gsm8k"] and set(table["model"]) == {"ft"}
    capsys.readouterr()
    assert main(["capability", "import", "lm-eval", str(results), "--study", str(study), "--model", "ft"]) == 2
    assert "pass --replace" in capsys.readouterr().err
    bad = tmp_path / "capability_bad.csv"
    bad.write_text("model,task,item_id,score\nbase,t,1,2\n")
    assert main(["capability", "import", "table", str(bad), "--study", str(study)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "row 1" in err and "column 'score'" in err
    assert len(read_capability(study)) == 2  # unchanged


def test_cli_plan_labels_then_import_labels_round_trip(tmp_path, capsys):
    study = _study(tmp_path / "s")
    requests = tmp_path / "to_label.csv"
    assert main(["plan-labels", str(study), "--target-halfwidth", "0.3", "--explain", "--out", str(requests)]) == 0
    output = capsys.readouterr().out
    assert "ft vs base (kw, harmful_compliance)" in output and "wrote" in output
    curve = [float(line.split("->")[1]) for line in output.splitlines() if "->" in line and "curve" not in line]
    assert len(curve) >= 2 and curve == sorted(curve, reverse=True)  # --explain: the monotone planning curve
    asked = pd.read_csv(requests, keep_default_na=False)
    assert list(asked.columns) == ["item_id", "unit", "model", "stratum", "prompt", "response", "annotator_id", "label",
                                   "strategy", "inclusion_probability"]  # the draw recorded, for import-labels' check
    assert set(asked["model"]) <= {"ft", "base"} and len(asked) > 0
    assert asked["response"].str.startswith("'=").all()  # spreadsheet formulas neutralised
    assert not set(asked["item_id"]) & set(load_study(study).annotations["item_id"])  # only unlabelled items
    asked["label"] = "unsafe"
    asked.to_csv(requests, index=False)
    before = len(load_study(study).annotations)
    assert main(["data", "import-labels", str(study), str(requests), "--annotator", "a2"]) == 0
    annotations = load_study(study).annotations
    assert len(annotations) == before + len(asked) and set(annotations["annotator_id"]) == {"a1", "a2"}
    capsys.readouterr()
    # append-only: the same labels again are refused, naming the row
    assert main(["data", "import-labels", str(study), str(requests), "--annotator", "a2"]) == 2
    assert "row 1" in capsys.readouterr().err and len(load_study(study).annotations) == len(annotations)


def test_plan_labels_and_import_labels_reject_bad_input(tmp_path, capsys):
    study = _study(tmp_path / "s")
    out = tmp_path / "x.txt"
    assert main(["plan-labels", str(study), "--target-halfwidth", "0.05", "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["plan-labels", str(study), "--target-halfwidth", "-1", "--out", str(tmp_path / "x.csv")]) == 2
    labels = tmp_path / "labels.csv"
    labels.write_text("item_id,annotator_id,label\nft-30,a3,maybe\n")
    capsys.readouterr()
    assert main(["data", "import-labels", str(study), str(labels)]) == 2
    assert "row 1" in capsys.readouterr().err
    labels.write_text("item_id,annotator_id,label\nnope,,unsafe\n")
    assert main(["data", "import-labels", str(study), str(labels), "--annotator", "a3"]) == 2
    assert "not in the study's responses" in capsys.readouterr().err


def test_capability_schema_round_trips(tmp_path):
    frame = pd.DataFrame({"model": ["m", "m"], "task": ["t", "u"], "item_id": ["1", None], "score": [0.5, np.nan],
                          "estimate": [np.nan, 0.4], "ci_low": [np.nan, 0.3], "ci_high": [np.nan, 0.5], "n": [None, 20]})
    for suffix in (".csv", ".jsonl", ".parquet"):
        path = tmp_path / f"capability{suffix}"
        write_table(frame, path, SCHEMAS["capability"])
        back = read_table(path, SCHEMAS["capability"])
        assert back["n"].tolist()[1] == 20 and back["item_id"].tolist() == ["1", None]


def test_validate_study_checks_models_and_capability_tables(tmp_path, capsys):
    study = _study(tmp_path / "s", models_table="model,base_model,finetune_goal\nft,base,coding\n")
    (study / "capability.csv").write_text("model,task,item_id,score\nft,humaneval,1,1.0\nbase,humaneval,1,0.0\n")
    assert main(["validate", str(study)]) == 0
    assert "80 responses from 2 models, 24 annotations, 80 judgments, models table 1 row, 2 capability)" in (
        capsys.readouterr().out)
    (study / "capability.csv").write_text("model,task,item_id,score\nft,humaneval,1,1.0\nbase,humaneval,2,1.7\n")
    assert main(["validate", str(study)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "capability.csv: row 2" in error and "'score'" in error
    (study / "capability.csv").write_text("model,task,item_id,score\nft,humaneval,1,1.0\nghost,humaneval,1,0.0\n")
    assert main(["validate", str(study)]) == 2
    error = capsys.readouterr().err
    assert "capability.csv: row 2" in error and "'ghost' is in neither" in error and "model" in error
    (study / "capability.csv").unlink()
    (study / "models.csv").write_text("model,base_model\nft,other\n")
    assert main(["validate", str(study)]) == 2
    assert "models.csv: row 1" in capsys.readouterr().err
