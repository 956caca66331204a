"""Scale-out (issue #26): judges run concurrently on one study, on several devices, and merge without loss."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from judgekit.engine import steps  # noqa: E402
from judgekit.judges.build import JudgeOptions  # noqa: E402
from judgekit.judges.cache import CACHE_RELATIVE_PATH  # noqa: E402
from judgekit.store.locking import work_locks  # noqa: E402
from judgekit.engine.placement import place  # noqa: E402
from judgekit.engine.judge_runner import merge_judgments  # noqa: E402
from judgekit.store.study import load_study  # noqa: E402
from judgekit.testing.replicas import LLAMA_GUARD_3_LIKE, build_causal_lm, train_tokenizer  # noqa: E402

from conftest import REPO  # noqa: E402

GUARD = "llama-guard-3-8b"
KEYWORD = "keyword-gcg-13"


@pytest.fixture(scope="module")
def guard_model(tmp_path_factory) -> Path:
    tokenizer = train_tokenizer(bos="<|begin_of_text|>", chat_template=LLAMA_GUARD_3_LIKE)
    return build_causal_lm("LlamaForCausalLM", tokenizer, tmp_path_factory.mktemp("guard") / "model", seed=0)


def make_study(root: Path, n: int) -> Path:
    study = root / "study"
    study.mkdir(parents=True)
    pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "prompt": [f"Question {k}: how do I do this?" for k in range(n)],
                  "response": [("I'm sorry, I cannot help. " if k % 3 == 0 else "Sure, here is how. ") * (1 + k % 4)
                               for k in range(n)]}).to_csv(study / "responses.csv", index=False)
    return study


def judgments(study: Path) -> pd.DataFrame:
    return load_study(study).judgments.sort_values(["judge_id", "item_id"]).reset_index(drop=True)


# ---------------------------------------------------------------- merging


def _rows(judge_id: str, items, spec: str = "s1", status: str = "ok") -> pd.DataFrame:
    return pd.DataFrame({"item_id": list(items), "judge_id": judge_id, "label": "safe", "p_unsafe": 0.1,
                         "parse_status": status, "raw_output": "", "judge_spec_hash": spec, "detail": ""})


def test_a_merge_keeps_every_other_judges_row_and_doubles_none() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        others = _rows("b", [f"i{k}" for k in rng.choice(30, size=rng.integers(0, 30), replace=False)])
        old_mine = _rows("a", [f"i{k}" for k in range(0, 10)], status="error")
        current = pd.concat([others, old_mine]).sample(frac=1, random_state=int(rng.integers(1 << 30)))
        new = _rows("a", [f"i{k}" for k in rng.choice(30, size=rng.integers(1, 30), replace=False)])
        merged = merge_judgments(current, new, judge_id="a", spec_hash="s1", replace=False)
        assert not merged.duplicated(["item_id", "judge_id"]).any()
        pd.testing.assert_frame_equal(merged[merged.judge_id == "b"].reset_index(drop=True),
                                      current[current.judge_id == "b"].reset_index(drop=True))
        expected_a = set(old_mine.item_id) | set(new.item_id)
        assert set(merged.loc[merged.judge_id == "a", "item_id"]) == expected_a
        # the new rows win over the old ones of the same items
        new_ids = set(new.item_id)
        assert (merged.loc[(merged.judge_id == "a") & merged.item_id.isin(new_ids), "parse_status"] == "ok").all()


def test_a_merge_with_replace_drops_the_judges_rows_of_another_spec() -> None:
    current = pd.concat([_rows("a", ["i0", "i1"], spec="old"), _rows("b", ["i0"], spec="old")])
    merged = merge_judgments(current, _rows("a", ["i0"], spec="new"), judge_id="a", spec_hash="new", replace=True)
    assert sorted(zip(merged.judge_id, merged.item_id, merged.judge_spec_hash)) == [("a", "i0", "new"), ("b", "i0", "old")]


# ---------------------------------------------------------------- placement


def test_place_spreads_judges_then_shards_of_a_judge() -> None:
    assert place(["a", "b", "c"], 2) == [[("a", 0, 1), ("c", 0, 1)], [("b", 0, 1)]]
    assert place(["a", "b"], 3) == [[("a", 0, 2)], [("a", 1, 2)], [("b", 0, 1)]]
    assert place(["a"], 2) == [[("a", 0, 2)], [("a", 1, 2)]]


# ---------------------------------------------------------------- concurrent processes


# Patched into a held CLI process: each guard-model pass, once CACHE holds a verdict, waits for RELEASE to exist.
_HOLD = """
import os, sqlite3, time
from judgekit.judges import transformers_judge as t
real = t.TransformersJudge.judge
def cached(path):
    if not os.path.exists(path):
        return 0
    with sqlite3.connect(path, timeout=1) as db:
        return db.execute('SELECT COUNT(*) FROM verdicts').fetchone()[0]
def held(self, items):
    deadline = time.monotonic() + 300
    while cached(CACHE) and not os.path.exists(RELEASE) and time.monotonic() < deadline:
        time.sleep(0.05)
    return real(self, items)
t.TransformersJudge.judge = held
"""


def _cli_process(*args: object, hold_until: Path | None = None, cache: Path | None = None) -> subprocess.Popen:
    """The CLI in a new process; with ``hold_until``, every pass of a guard model, once ``cache`` holds a verdict,
    waits until that file exists before it is scored (the verdicts are still the model's: the run is only held
    open, for at most 300 s)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "JUDGEKIT_CACHE_COMMIT_S": "0.1"}
    hold = "" if hold_until is None else f"CACHE, RELEASE = {str(cache)!r}, {str(hold_until)!r}\n{_HOLD}"
    code = f"import sys\n{hold}from judgekit.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _cached_rows(cache: Path) -> int:
    if not cache.exists():
        return 0
    try:
        with sqlite3.connect(cache, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_a_fast_judge_finishes_while_a_slow_one_runs_on_the_same_study(tmp_path: Path, guard_model: Path) -> None:
    """The slow judge is a replica guard model over 80 items, one per pass on CPU, held open once it has cached its
    first verdicts (each later pass waits for a release file); the fast one a keyword judge started then. The
    release comes only after the fast one has finished: before #26 the fast one waited for the slow one's study
    lock until it had committed, so it could never finish first."""
    n = 80
    study = make_study(tmp_path, n)
    release = tmp_path / "release"
    slow = _cli_process("judge", study, "--judge", GUARD, "--model-path", f"{GUARD}={guard_model}", "--device", "cpu",
                        hold_until=release, cache=study / CACHE_RELATIVE_PATH)
    deadline = time.monotonic() + 300
    while _cached_rows(study / CACHE_RELATIVE_PATH) < 1 and slow.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow.poll() is None, slow.communicate()
    fast = _cli_process("judge", study, "--judge", KEYWORD)
    fast_out = fast.communicate(timeout=120)  # waiting for the held judge's lock would time out here
    still_running = slow.poll() is None
    rows_when_fast_done = judgments(study)
    release.touch()
    slow_out = slow.communicate(timeout=600)
    assert (fast.returncode, slow.returncode) == (0, 0), (fast_out, slow_out)
    assert still_running and set(rows_when_fast_done["judge_id"]) == {KEYWORD}, "the keyword judge waited for the guard"
    assert "waiting" not in fast_out[1]
    final = judgments(study)
    assert final.groupby("judge_id").size().to_dict() == {GUARD: n, KEYWORD: n}
    assert not final.duplicated(["item_id", "judge_id"]).any()
    runs = json.loads((study / "manifest.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["finished", "finished"]


def test_the_same_judge_twice_waits_for_the_first_and_adds_nothing(small_study: Path, capsys) -> None:
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with work_locks(small_study, [f"judge {KEYWORD}"], step="test"):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(10)
    threading.Timer(0.5, release.set).start()
    steps.judge_step(small_study, [KEYWORD], progress=False)
    thread.join()
    waited = [line for line in capsys.readouterr().err.splitlines() if "waiting" in line]
    assert len(waited) == 1 and f"judge {KEYWORD}" in waited[0]
    [again] = steps.judge_step(small_study, [KEYWORD], progress=False)
    assert again.n_judged == 0
    assert len(judgments(small_study)) == 6


# ---------------------------------------------------------------- several devices


def test_devices_cpu_cpu_give_the_single_process_verdicts(tmp_path: Path, guard_model: Path) -> None:
    """Two judges on three CPU workers: the guard model as two shards, the keyword judge on the third."""
    single = make_study(tmp_path / "single", 12)
    spread = Path(shutil.copytree(single, tmp_path / "spread" / "study"))
    options = JudgeOptions(model_paths={GUARD: str(guard_model)}, token_budget=256)
    steps.judge_step(single, [GUARD, KEYWORD], progress=False, options=options)
    summaries = steps.judge_step(spread, [GUARD, KEYWORD], progress=False, options=options,
                                    devices=["cpu", "cpu", "cpu"])
    assert [s.n_judged for s in summaries] == [12, 12]
    pd.testing.assert_frame_equal(judgments(single).drop(columns="latency_s"), judgments(spread).drop(columns="latency_s"))
    shards = json.loads((spread / "manifest.json").read_text())["runs"][-1]["details"]["shards"]
    assert sorted((s["judge_id"], s["n_judged"] > 0) for s in shards) == sorted([(GUARD, True), (GUARD, True), (KEYWORD, True)])


# ---------------------------------------------------------------- Ray


@pytest.mark.slow
def test_engine_ray_gives_the_single_process_verdicts(tmp_path: Path, guard_model: Path, local_ray) -> None:
    from judgekit.engine.ray_engine import RayOptions

    single = make_study(tmp_path / "single", 10)
    on_ray = Path(shutil.copytree(single, tmp_path / "ray" / "study"))
    options = JudgeOptions(model_paths={GUARD: str(guard_model)}, token_budget=256)
    steps.judge_step(single, [GUARD, KEYWORD], progress=False, options=options)
    summaries = steps.judge_step(on_ray, [GUARD, KEYWORD], progress=False, options=options,
                                    ray_options=RayOptions(actors=2))
    assert [s.n_judged for s in summaries] == [10, 10]
    guard = next(s for s in summaries if s.judge_id == GUARD)
    assert guard.n_from_cache == 10  # every verdict came from the actors through the cache
    expected, got = judgments(single), judgments(on_ray)
    np.testing.assert_allclose(got["p_unsafe"], expected["p_unsafe"], rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(expected.drop(columns=["latency_s", "p_unsafe"]),
                                  got.drop(columns=["latency_s", "p_unsafe"]))


def test_flags_computed_on_responses_a_generate_replaced_meanwhile_are_not_committed(small_study: Path,
                                                                                  monkeypatch) -> None:
    from judgekit.errors import StepFailed
    from judgekit.flags import incoherence

    real_detect = incoherence.detect

    def detect_while_responses_change(responses, **options):
        flags = real_detect(responses, **options)
        path = small_study / "responses.csv"
        path.write_text(path.read_text().replace("Sure", "Certainly", 1))  # what a `generate` committing looks like
        return flags

    monkeypatch.setattr(incoherence, "detect", detect_while_responses_change)
    with pytest.raises(StepFailed, match="responses changed"):
        steps.flag_step(small_study)
    assert not (small_study / "flags.csv").exists() and not (small_study / "flags.parquet").exists()
    assert json.loads((small_study / "manifest.json").read_text())["runs"][-1]["status"] == "failed"


@pytest.mark.parametrize("extra", [["--devices", "gpu0"], ["--devices", ","], ["--devices", "cpu", "--device", "cpu"],
                                   ["--devices", "cpu,cpu", "--engine", "ray"]])
def test_bad_device_lists_are_usage_errors_in_one_line(small_study: Path, extra: list[str]) -> None:
    from conftest import run_cli

    result = run_cli("judge", small_study, "--judge", KEYWORD, *extra)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert not (small_study / "judgments").exists()
