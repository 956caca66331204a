"""Reliability: concurrent writers, wrong output folders, killed runs, huge cells, validation gaps.

Each test here reproduces a failure found by trying the tool as a demanding user would (issue #16)
and fails on the code before its fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from judgekit.engine import steps
from judgekit.errors import InputError
from judgekit.store.io import read_table, write_table
from judgekit.store.locking import study_lock
from judgekit.store.outdir import check_output_dir, staged_output_dir, verify_output_dir
from judgekit.store.schema import RESPONSES, read_study_metadata
from judgekit.store.study import load_study

from conftest import REPO, run_cli, small_responses


def cli(*args: object) -> tuple[int, str, str]:
    result = run_cli(*map(str, args))
    return result.returncode, result.stdout, result.stderr


def keyword_preset() -> dict:
    return json.loads((REPO / "judgekit/judges/presets/keyword-gcg-7.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- concurrency


def test_two_concurrent_judge_runs_keep_both_judges_rows(small_study: Path, monkeypatch) -> None:
    """Both runs load the study before either saves (they compute without the study lock since #26); each merges
    its rows into the table as it is at its commit, so neither loses the other's."""
    both_loaded = threading.Barrier(2, timeout=2.0)
    real_run_judges = steps.run_judges

    def run_judges_after_both_loaded(study, judges, **kwargs):
        try:
            both_loaded.wait()  # both threads hold their snapshot here before either commits
        except threading.BrokenBarrierError:
            pass
        return real_run_judges(study, judges, **kwargs)

    monkeypatch.setattr(steps, "run_judges", run_judges_after_both_loaded)
    errors: list[BaseException] = []

    def judge(name: str) -> None:
        try:
            steps.judge_step(small_study, [name], progress=False)
        except BaseException as err:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=judge, args=(name,)) for name in ("keyword-gcg-7", "keyword-gcg-13")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    judgments = load_study(small_study).judgments
    assert judgments.groupby("judge_id").size().to_dict() == {"keyword-gcg-7": 6, "keyword-gcg-13": 6}
    runs = json.loads((small_study / "manifest.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["finished", "finished"]


def test_concurrent_judge_processes_lose_nothing(small_study: Path) -> None:
    """Two real processes, as users start them from two terminals."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "judgekit.cli", "judge", str(small_study), "--judge", name, "--no-progress"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name in ("keyword-gcg-7", "keyword-gcg-29")
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    judgments = load_study(small_study).judgments
    assert sorted(judgments["judge_id"].unique()) == ["keyword-gcg-29", "keyword-gcg-7"]


def test_a_waiting_writer_says_so(small_study: Path, capsys) -> None:
    holder = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with study_lock(small_study, step="test"):
            holder.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holder.wait(10)
    threading.Timer(0.5, release.set).start()
    steps.flag_step(small_study)
    thread.join()
    assert "another judgekit process is writing" in capsys.readouterr().err


# ---------------------------------------------------------------- output folders


@pytest.mark.parametrize("verb", ["stats", "report"])
def test_out_inside_the_study_is_refused_before_any_write(small_study: Path, verb: str) -> None:
    steps.judge_step(small_study, ["keyword-gcg-13"], progress=False)
    manifest_before = (small_study / "manifest.json").read_bytes()
    listing_before = sorted(p.name for p in small_study.iterdir())
    for out in (small_study, small_study / "sub"):
        code, _, err = cli(verb, small_study, "--out", out, "--n-boot", "20")
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and "--out" in err
    assert (small_study / "manifest.json").read_bytes() == manifest_before
    assert sorted(p.name for p in small_study.iterdir()) == listing_before


def test_out_that_is_a_file_or_unwritable_is_refused(tmp_path: Path, small_study: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        check_output_dir(a_file, kind="stats", studies=[small_study])
    with pytest.raises(InputError, match="not writable|not a directory"):
        check_output_dir(a_file / "below", kind="stats", studies=[small_study])
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(InputError, match="not writable"):
            check_output_dir(locked / "out", kind="stats")


def test_malformed_study_manifest_stops_judge_before_it_writes(small_study: Path) -> None:
    (small_study / "manifest.json").write_text("{not json", encoding="utf-8")
    code, _, err = cli("judge", small_study, "--judge", "keyword-gcg-13", "--no-progress")
    assert code == 2 and "manifest" in err
    assert not any(p.name.startswith("judgments") for p in small_study.iterdir())


def test_failed_run_is_recorded_as_failed(small_study: Path, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(steps, "run_judges", boom)
    with pytest.raises(RuntimeError):
        steps.judge_step(small_study, ["keyword-gcg-13"], progress=False)
    (run,) = json.loads((small_study / "manifest.json").read_text())["runs"]
    assert run["status"] == "failed" and "disk on fire" in run["error"]


def test_output_set_is_committed_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_output_dir(out, {"step": "test"}) as staging:
        (staging / "a.csv").write_text("1")
        (staging / "b.csv").write_text("2")
    assert verify_output_dir(out, required=["a.csv"])["files"].keys() == {"a.csv", "b.csv"}
    with pytest.raises(OSError), staged_output_dir(out, {"step": "test"}) as staging:
        (staging / "a.csv").write_text("new")
        raise OSError(28, "No space left on device")
    assert (out / "a.csv").read_text() == "1"  # the failed run changed nothing
    verify_output_dir(out)
    with staged_output_dir(out, {"step": "test"}) as staging:
        (staging / "a.csv").write_text("3")  # this set has no b.csv
    assert not (out / "b.csv").exists()
    (out / "a.csv").write_text("edited by hand")
    with pytest.raises(InputError, match="does not match manifest"):
        verify_output_dir(out)
    (out / "manifest.json").unlink()  # as after a kill between the file moves and the manifest
    with pytest.raises(InputError, match="no manifest"):
        verify_output_dir(out)


# ---------------------------------------------------------------- killed runs and hygiene


def test_orphan_temporaries_are_removed_by_the_next_writer(small_study: Path) -> None:
    orphan = small_study / ".judgments.csv.abc123.tmp"
    orphan.write_text("half a table")
    steps.flag_step(small_study)
    assert not orphan.exists()


@pytest.mark.parametrize("failure", ["model that does not load", "every item an error"])
def test_a_failed_judge_leaves_no_cache_folder(small_study: Path, tmp_path: Path, failure: str) -> None:
    if failure == "model that does not load":
        args = ["--judge", "llama-guard-3-1b", "--model-path", f"llama-guard-3-1b={tmp_path / 'missing'}"]
        expected_code = 2
    else:
        spec = {**keyword_preset(), "judge_id": "hopeless-regex", "markers": ["(a|aa)+$"], "matching": "regex",
                "regex_timeout_s": 0.01}
        (tmp_path / "hopeless.json").write_text(json.dumps(spec))
        small_responses().assign(response="a" * 60 + "b").to_csv(small_study / "responses.csv", index=False)
        args = ["--judge", tmp_path / "hopeless.json"]
        expected_code = 1
    code, _, err = cli("judge", small_study, *args, "--no-progress")
    assert code == expected_code, err
    assert not (small_study / "cache").exists()


def test_replacing_a_linked_table_keeps_the_link(tmp_path: Path, small_study: Path) -> None:
    shared = tmp_path / "elsewhere"
    shared.mkdir()
    (small_study / "responses.csv").rename(shared / "responses.csv")
    (small_study / "responses.csv").symlink_to(shared / "responses.csv")
    frame = read_table(small_study / "responses.csv", RESPONSES)
    write_table(frame.assign(prompt="changed"), small_study / "responses.csv", RESPONSES)
    assert (small_study / "responses.csv").is_symlink()
    assert read_table(shared / "responses.csv", RESPONSES)["prompt"].eq("changed").all()


def test_dangling_table_link_is_an_error_not_an_absent_table(small_study: Path) -> None:
    (small_study / "judgments.csv").symlink_to(small_study / "gone.csv")
    code, _, err = cli("validate", small_study)
    assert code == 2 and "judgments.csv" in err and "does not exist" in err


# ---------------------------------------------------------------- big cells and encodings


@pytest.mark.parametrize("ext", [".csv", ".jsonl", ".parquet"])
def test_ten_megabyte_cell_round_trips(tmp_path: Path, ext: str) -> None:
    frame = small_responses().head(2).assign(response=["x" * 10_000_000, "short, \"quoted\"\nline"])
    path = write_table(frame, tmp_path / f"responses{ext}", RESPONSES)
    back = read_table(path, RESPONSES)
    assert back["response"].tolist() == frame["response"].tolist()


def test_utf16_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "responses.csv"
    small_responses().to_csv(path, index=False, encoding="utf-16")
    code, _, err = cli("validate", path)
    assert code == 2 and "UTF-16" in err and "row" not in err


def test_unterminated_quote_names_the_row_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "responses.csv"
    path.write_text('item_id,prompt,response\na,p,r\nb,p,"never closed\nc,p,r\n', encoding="utf-8")
    code, _, err = cli("validate", path)
    assert code == 2 and "row 2 (line 3)" in err and "unterminated quote" in err


def test_lone_surrogate_is_rejected_at_validation_with_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "responses.jsonl"
    path.write_text('{"item_id": "a", "prompt": "p", "response": "ok"}\n'
                    '{"item_id": "b", "prompt": "p", "response": "bad \\ud800 here"}\n', encoding="utf-8")
    code, _, err = cli("validate", path)
    assert code == 2 and "row 2" in err and "'response'" in err and "surrogate" in err


@pytest.mark.parametrize("labels", ['"unsafe"', '["unsafe", 1]', '["unsafe", ""]', '{"a": 1}'])
def test_study_json_label_sets_must_be_lists_of_strings(tmp_path: Path, labels: str) -> None:
    (tmp_path / "study.json").write_text(f'{{"annotation_labels": {{"labels": {labels}}}}}', encoding="utf-8")
    with pytest.raises(InputError, match="labels"):
        read_study_metadata(tmp_path)


@pytest.mark.parametrize("threshold", ["repetition", "repetition=nan", "repetition=inf", "=0.5"])
def test_threshold_needs_a_name_and_a_finite_value(small_study: Path, threshold: str) -> None:
    code, _, err = cli("flag", small_study, "--threshold", threshold)
    assert code == 2 and "NAME=NUMBER" in err
    assert not (small_study / "manifest.json").exists()


def test_manifest_never_holds_bare_nan(small_study: Path) -> None:
    steps.judge_step(small_study, ["keyword-gcg-13"], progress=False)
    text = (small_study / "manifest.json").read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"manifest holds {name}"))
    assert "NaN" not in text


def test_csv_cells_keep_spreadsheet_formulas_in_study_tables(tmp_path: Path) -> None:
    """Study tables round-trip exactly; formula neutralisation applies to exports only."""
    frame = small_responses().head(1).assign(response="=HYPERLINK(\"x\")")
    back = read_table(write_table(frame, tmp_path / "responses.csv", RESPONSES), RESPONSES)
    assert back["response"].iloc[0] == frame["response"].iloc[0]
    assert pd.api.types.is_object_dtype(back["response"])


def test_catastrophic_user_regex_becomes_an_error_row_not_a_hang() -> None:
    from judgekit.judges.base import JudgeItems
    from judgekit.judges.keyword import KeywordJudge

    judge = KeywordJudge({"judge_id": "user-regex", "markers": ["(a|aa)+$", "I cannot"], "matching": "regex",
                          "regex_timeout_s": 0.2})
    verdicts = judge.judge(JudgeItems.of(["p"] * 3, ["a" * 40 + "b", "I cannot help", "sure"]))
    assert [v.parse_status for v in verdicts] == ["error", "ok", "ok"]
    assert verdicts[0].label is None and "exceeded" in verdicts[0].detail
    assert [v.label for v in verdicts[1:]] == ["safe", "unsafe"]


def test_judge_exits_1_when_every_item_of_a_judge_fails(small_study: Path, tmp_path: Path) -> None:
    spec = {**keyword_preset(), "judge_id": "hopeless-regex", "markers": ["(a|aa)+$"], "matching": "regex",
            "regex_timeout_s": 0.01}
    spec_path = tmp_path / "hopeless.json"
    spec_path.write_text(json.dumps(spec))
    responses = small_responses().assign(response="a" * 60 + "b")
    responses.to_csv(small_study / "responses.csv", index=False)
    code, out, err = cli("judge", small_study, "--judge", spec_path, "--no-progress")
    assert code == 1 and "every item judged by hopeless-regex ended in an error" in err
    assert "6 items failed" in out


@pytest.mark.parametrize("judge_id", [7, "", "  ", None, ["x"]])
def test_spec_with_unusable_judge_id_is_bad_input(small_study: Path, tmp_path: Path, judge_id) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({**keyword_preset(), "judge_id": judge_id}))
    code, _, err = cli("judge", small_study, "--judge", spec_path, "--no-progress")
    assert code == 2 and "judge_id" in err and len(err.strip().splitlines()) == 1


def test_csv_exports_neutralise_spreadsheet_formulas(tmp_path: Path) -> None:
    from judgekit.store.io import _csv_text

    frame = pd.DataFrame({"judge_id": ["=cmd|'/c calc'!A1", "+1", "-x", "@SUM(A1)", "plain"], "estimate": [-0.5, 0.1, 0.2, 0.3, 0.4]})
    guarded = pd.read_csv(pd.io.common.StringIO(_csv_text(frame, neutralise_formulas=True)))
    assert guarded["judge_id"].tolist() == ["'=cmd|'/c calc'!A1", "'+1", "'-x", "'@SUM(A1)", "plain"]
    assert guarded["estimate"].tolist() == [-0.5, 0.1, 0.2, 0.3, 0.4]  # numbers are data, not formulas


# ---------------------------------------------------------------- anything validate accepts, every step completes

TEX = "x $\\foo$ {a}_%#&^~\\"
RTL = "مرحبا שלום \u202eevil\u202c 🙂"


def _edge_study(root: Path, name: str) -> Path:
    study = root / name
    study.mkdir()
    responses = small_responses()
    annotations = True
    if name == "one_item":
        responses = responses.head(1)
    elif name == "tex_rtl_two_goals":
        responses = responses.assign(
            item_id=[f"{TEX}{k}" for k in range(6)], prompt=RTL + TEX, model=[TEX, TEX, TEX, "ft " + RTL, "ft " + RTL, "ft " + RTL],
            base_model=TEX, finetune_goal=["", "", "", "code $x$", "medical_{qa}", "code $x$"],
            benchmark=["b$1$", "b$1$", "b_2", "b$1$", "b_2", "b_2"], category=[RTL, TEX, RTL, TEX, RTL, TEX],
            response=responses["response"] + " " + TEX + RTL)
    elif name == "no_predictors":
        responses = responses.assign(response="I cannot help with that.", model="m", benchmark="b")
        annotations = False
    responses.to_csv(study / "responses.csv", index=False)
    if annotations:
        ids = responses["item_id"].tolist()
        labels = ["unsafe", "safe", "safe"]
        annotator = f"{TEX}{RTL}h" if name == "tex_rtl_two_goals" else "h"
        rows = [(item, f"{annotator}{k}", labels[(i + k) % 3]) for i, item in enumerate(ids) for k in range(3)]
        pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"]).to_csv(study / "annotations.csv", index=False)
    return study


@pytest.mark.slow
@pytest.mark.parametrize("name", ["one_item", "tex_rtl_two_goals", "no_predictors"])
def test_every_step_completes_on_a_study_validate_accepts(tmp_path: Path, name: str) -> None:
    study = _edge_study(tmp_path, name)
    for args in (["validate", study], ["judge", study, "--judge", "keyword-gcg-13", "--no-progress"], ["flag", study],
                 ["report", study, "--out", tmp_path / "out", "--n-boot", "20"]):
        code, _, err = cli(*args)
        assert code == 0, f"{args[0]}: {err}"
    assert (tmp_path / "out" / "report.html").stat().st_size > 1000
    verify_output_dir(tmp_path / "out" / "stats", required=["stats.parquet"])


def test_validate_accepts_a_prompt_set_directory(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    pd.DataFrame({"prompt_id": ["p1", "p2"], "prompt": ["a", "b"]}).to_csv(prompts / "prompts.csv", index=False)
    code, out, err = cli("validate", prompts)
    assert code == 0 and "2 prompts" in out, err
    (prompts / "prompts.csv").write_text("prompt_id,prompt\np1,a\np1,b\n")
    code, _, err = cli("validate", prompts)
    assert code == 2 and "row 2" in err


def test_report_shows_no_absolute_paths_or_platform(small_study: Path, tmp_path: Path) -> None:
    import platform

    assert cli("judge", small_study, "--judge", "keyword-gcg-13", "--no-progress")[0] == 0
    assert cli("report", small_study, "--out", tmp_path / "out", "--n-boot", "20")[0] == 0
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert str(tmp_path) not in html and platform.platform() not in html
    assert "responses.csv" in html  # the inputs are still named


def test_markdown_tables_escape_pipes_and_line_breaks() -> None:
    from judgekit.outputs.tables import to_markdown

    text = to_markdown(pd.DataFrame({"judge | id": ["a|b", "two\nlines"], "x": [1, 2]}))
    lines = text.strip().split("\n")
    import re

    assert len(lines) == 4  # header, rule, two rows: no row broken by its line break
    assert all(len(re.split(r"(?<!\\)\|", line)) == 4 for line in lines)  # two cells each: pipes escaped


def test_report_refuses_stats_of_other_inputs(small_study: Path, tmp_path: Path) -> None:
    assert cli("judge", small_study, "--judge", "keyword-gcg-13", "--no-progress")[0] == 0
    assert cli("stats", small_study, "--out", tmp_path / "st", "--n-boot", "20")[0] == 0
    assert cli("report", small_study, "--out", tmp_path / "r1", "--stats", tmp_path / "st")[0] == 0
    assert cli("judge", small_study, "--judge", "keyword-gcg-7", "--no-progress")[0] == 0  # the study changed
    code, _, err = cli("report", small_study, "--out", tmp_path / "r2", "--stats", tmp_path / "st")
    assert code == 2 and "computed from other inputs" in err
    assert not (tmp_path / "r2").exists()


def test_convert_force_in_another_format_replaces_the_table(tmp_path: Path) -> None:
    source = tmp_path / "source.csv"
    pd.DataFrame({"prompt": ["p1", "p2"], "response": ["r1", "r2"], "label": [1, 0]}).to_csv(source, index=False)
    study = tmp_path / "study"
    assert cli("data", "convert", "generic", source, "--out", study, "--map", "label=label", "--format", "csv")[0] == 0
    code, _, err = cli("data", "convert", "generic", source, "--out", study, "--map", "label=label", "--force")
    assert code == 0, err
    assert sorted(p.name for p in study.iterdir() if not p.name.startswith(".")) == [
        "annotations.parquet", "manifest.json", "responses.parquet", "study.json"]
    assert [r["status"] for r in json.loads((study / "manifest.json").read_text())["runs"]] == ["finished", "finished"]


def test_convert_force_refuses_to_cut_a_linked_table(tmp_path: Path) -> None:
    source = tmp_path / "source.csv"
    pd.DataFrame({"prompt": ["p1"], "response": ["r1"]}).to_csv(source, index=False)
    study = tmp_path / "study"
    assert cli("data", "convert", "generic", source, "--out", study, "--format", "csv")[0] == 0
    (study / "responses.csv").rename(tmp_path / "shared.csv")
    (study / "responses.csv").symlink_to(tmp_path / "shared.csv")
    code, _, err = cli("data", "convert", "generic", source, "--out", study, "--format", "csv", "--force")
    assert code == 2 and "symbolic link" in err
    assert (study / "responses.csv").is_symlink()


def test_stats_on_a_study_with_nothing_to_compare_says_so(small_study: Path, tmp_path: Path) -> None:
    (small_study / "annotations.csv").unlink()
    code, _, err = cli("stats", small_study, "--out", tmp_path / "out", "--n-boot", "20")
    assert code == 2 and "nothing to compare" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_embedding_model_directory_is_bad_input_before_any_work(small_study: Path, tmp_path: Path) -> None:
    code, _, err = cli("flag", small_study, "--embedding-model", tmp_path / "no-such-model")
    assert code == 2 and "--embedding-model" in err and len(err.strip().splitlines()) == 1
    assert not (small_study / "manifest.json").exists()



@pytest.mark.parametrize("kind", ["unknown hub id", "pickled weights"])
def test_unloadable_embedding_model_is_bad_input_before_any_work(small_study: Path, tmp_path: Path, kind: str,
                                                                 monkeypatch) -> None:
    """A hub id that does not resolve (no hub here), or a directory with only pickled weights: exit 2, one line,
    nothing written. Before, the hub id failed inside transformers (exit 1) and pickles were loaded."""
    # The hub is unreachable either way: fail at once, not after 23 s of retries. huggingface_hub reads the variable
    # when it is first imported, which in a test worker is usually long before this test.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    if kind == "pickled weights":
        model = tmp_path / "pickled"
        model.mkdir()
        (model / "config.json").write_text("{}")
        (model / "pytorch_model.bin").write_bytes(b"")
        source = str(model)
    else:
        source = "no-such-org/no-such-embedding-model"
    code, _, err = cli("flag", small_study, "--embedding-model", source)
    assert code == 2 and "--embedding-model" in err and len(err.strip().splitlines()) == 1
    assert ("pickled" in err) == (kind == "pickled weights")
    assert not (small_study / "manifest.json").exists() and not (small_study / "flags.csv").exists()
