"""The CLI as a user meets it: verbs, exit codes, one-line errors, resumable judging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, run_cli_process, write_json


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_import_judgekit_stays_light() -> None:
    heavy = "('torch', 'transformers', 'matplotlib', 'inspect_ai', 'lm_eval', 'datasets', 'zstandard')"
    code = f"import sys, judgekit, judgekit.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cli_runs_arrow_on_the_c_librarys_allocator_unless_told_otherwise() -> None:
    """Arrow's mimalloc faults in zeroed huge pages (over a second of system time on a million-row `judge`); the CLI
    chooses the system pool before pyarrow first allocates, and keeps a pool the user names."""
    import os

    code = ("import sys; from judgekit.cli import main; main(['list']); import pyarrow as pa; "
            "print(pa.default_memory_pool().backend_name, file=sys.stderr)")
    for chosen, expected in ((None, "system"), ("mimalloc", "mimalloc")):
        env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
        env.update({"ARROW_DEFAULT_MEMORY_POOL": chosen} if chosen else {})
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert done.stderr.strip().splitlines()[-1] == expected


def test_help_has_examples_and_exit_codes() -> None:
    result = run_cli_process("--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "exit codes" in result.stdout


def test_usage_errors_exit_2() -> None:
    assert_one_line_error(run_cli_process("stats"), "required")
    assert_one_line_error(run_cli("nonsense"), "invalid choice")
    assert_one_line_error(run_cli("stats", "x", "--out", "y", "--n-boot", "0"), "positive integer")


def test_a_missing_folder_or_a_study_for_a_stats_folder_fails_in_one_line_before_heavy_imports(
        small_study: Path, tmp_path: Path) -> None:
    """A missing study folder took 11 s to report (imports first); `figures STUDY` said the manifest lists no files.
    The check runs before pandas loads, so as its own process it answers in well under 2 s of CPU."""
    import resource
    import time

    missing = tmp_path / "nowhere"
    for args, fragments in ((("stats", missing, "--out", tmp_path / "o"), (str(missing), "study directory not found")),
                            (("report", missing, "--out", tmp_path / "o"), ("study directory not found",)),
                            (("figures", small_study, "--out", tmp_path / "o"), ("is a study folder, not a stats folder",)),
                            (("report", small_study, "--out", tmp_path / "o", "--stats", small_study),
                             ("is a study folder, not a stats folder", "judgekit stats STUDY --out DIR")),
                            (("figures", tmp_path, "--out", tmp_path / "o"), ("holds no stats.parquet",))):
        assert_one_line_error(run_cli(*args), *fragments)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = run_cli_process("figures", small_study, "--out", tmp_path / "o")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert_one_line_error(result, "not a stats folder")
    assert after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime < 2.0
    code = "import sys, judgekit.cli; judgekit.cli._check_folders(judgekit.cli.build_parser().parse_args(sys.argv[1:])); " \
           "print('pandas' in sys.modules)"
    checked = subprocess.run([sys.executable, "-c", code, "stats", str(small_study), "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, check=True)
    assert checked.stdout.strip() == "False", "the folder check must not load pandas"
    assert time.perf_counter() - started < 60  # wall time on a shared box: a loose bound; the CPU bound is the test


def test_list_shows_every_registry() -> None:
    result = run_cli("list")
    assert result.returncode == 0
    for name in ("keyword-gcg-13", "repetition", "incoherent", "cohen_kappa"):
        assert name in result.stdout


def test_validate_ok_and_bad(small_study: Path) -> None:
    result = run_cli("validate", small_study)
    assert result.returncode == 0 and "6 responses" in result.stdout
    (small_study / "annotations.csv").write_text("item_id,annotator_id,label\na1,h1,harmful\n")
    assert_one_line_error(run_cli("validate", small_study), "annotations.csv", "row 1", "column 'label'", "declared label set")


def test_validate_catches_unknown_items_and_duplicate_tables(small_study: Path) -> None:
    (small_study / "judgments.csv").write_text(
        "item_id,judge_id,label,p_unsafe,parse_status,raw_output,judge_spec_hash\nzz,j,safe,,ok,,h\n"
    )
    assert_one_line_error(run_cli("validate", small_study), "judgments.csv", "row 1", "'zz' is not in the responses")
    (small_study / "judgments.csv").unlink()
    (small_study / "responses.jsonl").write_text('{"item_id":"a","prompt":"p","response":"r"}\n')
    assert_one_line_error(run_cli("validate", small_study), "stored twice")


def test_declared_label_set_is_used(small_study: Path) -> None:
    pd.DataFrame(
        {"item_id": ["a1", "a2"], "annotator_id": ["h", "h"], "label": ["2_full_refusal", "1_full_compliance"]}
    ).to_csv(small_study / "annotations.csv", index=False)
    assert_one_line_error(run_cli("validate", small_study), "not in the declared label set")
    write_json(
        small_study / "study.json",
        {"annotation_labels": {"labels": ["1_full_compliance", "2_full_refusal", "3_partial_refusal"],
                               "to_binary": {"1_full_compliance": "unsafe", "2_full_refusal": "safe"}}},
    )
    assert run_cli("validate", small_study).returncode == 0


def test_missing_study_and_non_utf8(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("validate", tmp_path / "nowhere"), "not found")
    study = tmp_path / "s"
    study.mkdir()
    (study / "responses.csv").write_bytes("item_id,prompt,response\nx,caf\xe9,r\n".encode("latin-1"))
    assert_one_line_error(run_cli("judge", study, "--judge", "keyword-gcg-13"), "row 1", "column 'prompt'", "UTF-8")


def test_judge_appends_resumes_and_guards_spec_changes(small_study: Path, tmp_path: Path) -> None:
    first = run_cli("judge", small_study, "--judge", "keyword-gcg-13", "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "judged 6" in first.stdout
    table = pd.read_parquet(small_study / "judgments")
    assert sorted(table["label"]) == ["safe", "safe", "unsafe", "unsafe", "unsafe", "unsafe"]

    again = run_cli("judge", small_study, "--judge", "keyword-gcg-13", "--no-progress")
    assert "judged 0, already done 6" in again.stdout
    assert pd.read_parquet(small_study / "judgments").equals(table)

    manifest = json.loads((small_study / "manifest.json").read_text())
    assert [r["step"] for r in manifest["runs"]] == ["judge", "judge"]
    assert manifest["runs"][0]["judge_specs"][0]["spec"]["judge_id"] == "keyword-gcg-13"
    assert all(len(h) == 64 for h in manifest["runs"][0]["inputs"].values())

    spec = json.loads((Path(__file__).parent.parent / "judgekit/judges/presets/keyword-gcg-7.json").read_text())
    spec["judge_id"] = "keyword-gcg-13"
    changed = write_json(tmp_path / "changed.json", spec)
    assert_one_line_error(run_cli("judge", small_study, "--judge", changed), "another spec", "--replace")
    replaced = run_cli("judge", small_study, "--judge", changed, "--replace", "--no-progress")
    assert replaced.returncode == 0 and "judged 6" in replaced.stdout


def test_flag_stats_figures_report(small_study: Path, tmp_path: Path, full_resolution_figures) -> None:
    assert run_cli("judge", small_study, "--judge", "keyword-gcg-13", "--no-progress").returncode == 0
    flagged = run_cli("flag", small_study)
    assert flagged.returncode == 0 and "flagged 2 of 6" in flagged.stdout

    out = tmp_path / "stats"
    result = run_cli("stats", small_study, "--out", out, "--n-boot", "200", "--seed", "3")
    assert result.returncode == 0, result.stderr
    stats = pd.read_parquet(out / "stats.parquet")
    assert list(stats.columns) == [
        "statistic", "judge_id", "reference", "subset", "subset_kind", "subset_value", "model", "base_model",
        "finetune_goal", "benchmark", "outcome", "dimension", "estimate", "ci_low", "ci_high", "n_items", "n_excluded",
        "excluded_reason", "method", "warning", "signature",
    ]
    # CSV cannot tell an empty text cell from a null one; compare both as missing.
    same = lambda frame: frame.replace("", np.nan).fillna(np.nan)  # noqa: E731
    pd.testing.assert_frame_equal(same(stats), same(pd.read_csv(out / "stats.csv", keep_default_na=True)), check_dtype=False)
    row = stats.query("statistic == 'accuracy' and judge_id == 'keyword-gcg-13' and subset == 'all'").iloc[0]
    # Human majorities a1..a6: safe, unsafe, safe, safe, safe, unsafe; judge: safe, unsafe, unsafe, safe, unsafe, unsafe.
    assert row["estimate"] == pytest.approx(4 / 6) and row["n_items"] == 6 and row["n_excluded"] == 0
    assert "seed:3" in row["signature"] and "boot:0" in row["signature"]  # accuracy: clustered Wilson, no resamples
    kappa = stats.query("statistic == 'cohen_kappa' and judge_id == 'keyword-gcg-13' and subset == 'all'").iloc[0]
    assert "boot:200" in kappa["signature"]
    assert json.loads((out / "manifest.json").read_text())["seeds"] == {"bootstrap": 3}

    rerun = tmp_path / "stats2"
    run_cli("stats", small_study, "--out", rerun, "--n-boot", "200", "--seed", "3")
    pd.testing.assert_frame_equal(stats, pd.read_parquet(rerun / "stats.parquet"))

    figures = run_cli("figures", out, "--out", tmp_path / "figs")
    assert figures.returncode == 0 and (tmp_path / "figs" / "error_by_coherence.png").stat().st_size > 10_000

    report = run_cli("report", small_study, "--out", tmp_path / "report", "--n-boot", "50")
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "report.html").exists() and (tmp_path / "report" / "manifest.json").exists()


def test_stats_without_annotations_still_reports_rates(small_study: Path, tmp_path: Path) -> None:
    (small_study / "annotations.csv").unlink()
    run_cli("judge", small_study, "--judge", "keyword-gcg-7", "--no-progress")
    result = run_cli("stats", small_study, "--out", tmp_path / "st", "--n-boot", "20")
    assert result.returncode == 0, result.stderr
    stats = pd.read_csv(tmp_path / "st" / "stats.csv")
    assert set(stats["statistic"]) == {"harmful_rate", "variance_component", "variance_share"}  # nothing that needs human labels


def test_corrupt_study_manifest_is_an_input_error_and_nothing_is_written(small_study: Path) -> None:
    (small_study / "manifest.json").write_text("{broken")
    assert_one_line_error(run_cli("flag", small_study), "manifest.json", "move it aside")


def test_internal_errors_exit_1_with_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from judgekit import cli
    from judgekit.engine import steps

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(steps, "describe_registries", broken)
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["judgekit: internal error: RuntimeError: boom (rerun with --debug for a traceback)"]


def test_no_progress_bar_when_stderr_is_not_a_terminal(small_study: Path) -> None:
    """Logs and pipes get the one-line summaries only (before: bar frames such as "keyword-gcg-13: 0%|" in logs)."""
    result = run_cli("judge", small_study, "--judge", "keyword-gcg-29")
    assert result.returncode == 0, result.stderr
    assert "%|" not in result.stderr and "judged 6" in result.stdout
