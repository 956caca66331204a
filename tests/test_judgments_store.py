"""The judgments folder (issue #31): one parquet file per judge, a commit touches its own file only, the folder reads
as one table outside judgekit, a judgments.csv is read as it is and moved in by the first judge, all rows kept."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from judgekit.engine import steps
from judgekit.errors import InputError
from judgekit.store.partitioned import partition_file, partition_files
from judgekit.store.schema import JUDGMENTS
from judgekit.store.study import load_study

from conftest import run_cli, small_responses


def _judge(study, *names: str) -> None:
    steps.judge_step(study, list(names), progress=False)


def _brought_judgments() -> pd.DataFrame:
    """Judgments a user brings as a CSV: a binary judge with a failure row, and a graded judge with scores."""
    ids = small_responses()["item_id"].tolist()
    binary = pd.DataFrame({"item_id": ids, "judge_id": "their/judge 1", "label": ["safe", "unsafe", None, "safe", "safe", "unsafe"],
                           "p_unsafe": [0.1, 0.9, None, 0.2, 0.3, 0.8],
                           "parse_status": ["ok", "ok", "error", "ok", "ok", "ok"],
                           "raw_output": ["s", "u", "", "s", "s", "u"], "judge_spec_hash": "h1",
                           "detail": ["", "", "timeout", "", "", ""]})
    graded = pd.DataFrame({"item_id": ids, "judge_id": "123", "label": None, "p_unsafe": None,
                           "dimension": "coherent", "score": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
                           "parse_status": "ok", "raw_output": "n", "judge_spec_hash": "h2", "detail": ""})
    return pd.concat([binary, graded], ignore_index=True)


def _declare_coherent_scale(study) -> None:
    (study / "study.json").write_text(json.dumps({"judge_scales": [
        {"judge_id": "123", "dimension": "coherent", "min": 0, "max": 100, "threshold": 50, "level": "interval",
         "worse": "low"}]}))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["judge_id", "item_id"]).reset_index(drop=True)


def test_each_judge_has_its_own_file_and_a_commit_touches_no_other(small_study) -> None:
    _judge(small_study, "keyword-gcg-7")
    first = partition_file(small_study / "judgments", "keyword-gcg-7")
    before = (first.stat().st_ino, first.stat().st_mtime_ns, first.read_bytes())
    _judge(small_study, "keyword-gcg-13")
    assert partition_files(small_study / "judgments") == sorted(
        [first, partition_file(small_study / "judgments", "keyword-gcg-13")])
    assert (first.stat().st_ino, first.stat().st_mtime_ns, first.read_bytes()) == before
    assert not list(small_study.glob("judgments.*"))
    table = load_study(small_study).judgments
    assert table.groupby("judge_id").size().to_dict() == {"keyword-gcg-7": 6, "keyword-gcg-13": 6}


def test_a_judgments_csv_is_read_then_moved_into_the_folder_with_every_row(small_study, capsys) -> None:
    _brought_judgments().to_csv(small_study / "judgments.csv", index=False)
    _declare_coherent_scale(small_study)
    brought = load_study(small_study).judgments  # read as it is
    assert len(brought) == 12
    _judge(small_study, "keyword-gcg-13")
    out = capsys.readouterr().out
    moved = [line for line in out.splitlines() if "moved judgments.csv" in line]
    assert len(moved) == 1 and "12 rows, all kept" in moved[0]
    assert not (small_study / "judgments.csv").exists()
    after = load_study(small_study).judgments
    kept = _sorted(after[after["judge_id"] != "keyword-gcg-13"])[brought.columns]
    pd.testing.assert_frame_equal(kept, _sorted(brought), check_dtype=False)
    assert (after["judge_id"] == "keyword-gcg-13").sum() == 6
    _judge(small_study, "keyword-gcg-7")  # the folder now: no second move
    assert "moved" not in capsys.readouterr().out


def test_the_folder_reads_as_one_table_in_pandas_and_pyarrow(small_study) -> None:
    import pyarrow.parquet as pq

    _brought_judgments().to_csv(small_study / "judgments.csv", index=False)
    _declare_coherent_scale(small_study)
    _judge(small_study, "keyword-gcg-13")
    ours = _sorted(load_study(small_study).judgments)
    for table in (pd.read_parquet(small_study / "judgments"), pq.read_table(small_study / "judgments").to_pandas()):
        theirs = _sorted(table)
        assert list(theirs.columns) == [c.name for c in JUDGMENTS.columns]  # no column of a later file lost
        assert theirs["judge_id"].tolist() == ours["judge_id"].tolist()  # "123" stays text
        assert theirs.loc[theirs["judge_id"] == "123", "score"].tolist() == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
        assert theirs["label"].fillna("-").tolist() == ours["label"].fillna("-").tolist()


def test_the_folder_reads_as_one_table_in_duckdb(small_study) -> None:
    duckdb = pytest.importorskip("duckdb", reason="DuckDB is not installed here (not a judgekit dependency)")
    _judge(small_study, "keyword-gcg-13", "keyword-gcg-7")
    counts = duckdb.sql(f"SELECT judge_id, count(*) FROM '{small_study}/judgments/*.parquet' GROUP BY judge_id "
                        "ORDER BY judge_id").fetchall()
    assert counts == [("keyword-gcg-13", 6), ("keyword-gcg-7", 6)]


@pytest.mark.slow
def test_the_folder_reads_as_one_table_in_ray_data(small_study, local_ray) -> None:
    _judge(small_study, "keyword-gcg-13", "keyword-gcg-7")
    frame = local_ray.data.read_parquet(str(small_study / "judgments")).to_pandas()
    pd.testing.assert_frame_equal(_sorted(frame)[["item_id", "judge_id", "label"]],
                                  _sorted(pd.read_parquet(small_study / "judgments"))[["item_id", "judge_id", "label"]],
                                  check_dtype=False)


def test_a_file_holding_another_judges_rows_is_refused_by_file_row_and_column(small_study) -> None:
    _judge(small_study, "keyword-gcg-7", "keyword-gcg-13")
    path = partition_file(small_study / "judgments", "keyword-gcg-7")
    frame = pd.read_parquet(path)
    frame.loc[2, "judge_id"] = "keyword-gcg-13"
    frame.to_parquet(path)
    with pytest.raises(InputError) as caught:
        load_study(small_study)
    assert caught.value.file == path and caught.value.row == 3 and caught.value.column == "judge_id"
    result = run_cli("validate", small_study)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_a_folder_without_data_files_is_no_table_and_both_forms_are_refused(small_study) -> None:
    (small_study / "judgments").mkdir()  # as a first commit killed before its file was renamed in
    (small_study / "judgments" / ".part-x.parquet.abc.tmp").write_bytes(b"half")
    assert load_study(small_study).judgments is None
    _judge(small_study, "keyword-gcg-7")
    assert not list((small_study / "judgments").glob(".*.tmp"))  # the writer removed the orphan
    _brought_judgments().head(6).to_csv(small_study / "judgments.csv", index=False)
    with pytest.raises(InputError, match="stored twice"):
        load_study(small_study)


def test_a_failed_commit_leaves_the_judges_file_as_it_was(small_study, monkeypatch) -> None:
    _judge(small_study, "keyword-gcg-7")
    path = partition_file(small_study / "judgments", "keyword-gcg-7")
    before = path.read_bytes()
    real_fsync = os.fsync

    def full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(InputError, match="no space left"):
        steps.judge_step(small_study, ["keyword-gcg-7"], replace=True, progress=False)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == before
    assert [p.name for p in (small_study / "judgments").iterdir()] == [path.name]


# ---------------------------------------------------------------- verdict-cache commits (issue #31, item 4)


class _OneItemJudge:
    """A model-like judge that judges one item per batch (a CPU guard model's plan) and may fail on one item."""

    batch_items = 1

    def __init__(self, fail_on: str | None = None) -> None:
        self.judge_id, self.spec, self.fail_on = "one-item", {"judge_id": "one-item", "family": "test"}, fail_on

    def judge(self, items):
        from judgekit.judges.base import Verdict

        if self.fail_on in items.responses:
            raise RuntimeError("the judge crashed")
        return [Verdict("safe", 0.1, "ok", "safe") for _ in items.responses]


def _count_cache_commits(monkeypatch) -> list[int]:
    from judgekit.judges.cache import VerdictCache

    sizes: list[int] = []
    real_put = VerdictCache.put

    def counted(self, spec_hash, item_hashes, verdicts, latency_s):
        sizes.append(len(item_hashes))
        return real_put(self, spec_hash, item_hashes, verdicts, latency_s)

    monkeypatch.setattr(VerdictCache, "put", counted)
    return sizes


@pytest.mark.parametrize(("every_s", "every_items", "expected"), [(60.0, 4096, [6]), (60.0, 4, [4, 2]),
                                                                   (0.0, 4096, [1] * 6)])
def test_verdict_cache_commits_about_once_a_second_not_per_batch(small_study, monkeypatch, every_s, every_items,
                                                                  expected) -> None:
    from judgekit.engine import judge_runner

    monkeypatch.setattr(judge_runner, "CACHE_COMMIT_S", every_s)
    monkeypatch.setattr(judge_runner, "CACHE_COMMIT_ITEMS", every_items)
    sizes = _count_cache_commits(monkeypatch)
    [summary] = judge_runner.run_judges(load_study(small_study), [_OneItemJudge()], progress=False)
    assert sizes == expected and summary.n_judged == 6


def test_a_failing_batch_keeps_the_finished_ones_in_the_cache(small_study, monkeypatch) -> None:
    from judgekit.engine import judge_runner

    monkeypatch.setattr(judge_runner, "CACHE_COMMIT_S", 60.0)
    sizes = _count_cache_commits(monkeypatch)
    with pytest.raises(RuntimeError, match="crashed"):
        judge_runner.run_judges(load_study(small_study), [_OneItemJudge(fail_on=small_responses()["response"][4])],
                                progress=False)
    assert sizes == [4]  # items 1-4, committed when the fifth failed
    [again] = judge_runner.run_judges(load_study(small_study), [_OneItemJudge()], progress=False)
    assert again.n_from_cache == 4 and again.n_judged == 6


def test_validate_takes_the_folder_as_a_table(small_study) -> None:
    _judge(small_study, "keyword-gcg-7", "keyword-gcg-13")
    result = run_cli("validate", small_study / "judgments")
    assert result.returncode == 0 and "12 rows" in result.stdout, result.stderr
