"""Faults during each step (issue #16): kill -9 and a full disk leave the old set or the new one, never a mixture.

Kills: a forked copy of this process runs the CLI and SIGKILLs itself right before its k-th call of
one of the file-system operations a commit is made of (flush a file to disk, rename, delete, create
a folder), for points spread over every such call of an uninterrupted run. The kill is a real
SIGKILL: no ``finally`` block, no exit handler runs.

Full disk: the k-th flush to disk raises ``OSError(ENOSPC)`` (every environment), and, where this
process may mount one, the step writes to a real 8 MiB tmpfs filled up to a few bytes.

After each fault the test checks what a user would find, then reruns the step and compares with an
uninterrupted run.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from judgekit.errors import InputError
from judgekit.store.locking import LOCK_NAME, WORK_LOCK_PREFIX
from judgekit.store.outdir import verify_output_dir
from judgekit.store.schema import PARTITION_COLUMNS
from judgekit.store.study import load_study

from conftest import run_cli, small_annotations, small_responses

# The operations a commit is made of; pathlib and shutil call these through the os module.
COMMIT_OPERATIONS = ("fsync", "replace", "rename", "unlink", "mkdir", "rmdir")
MAX_POINTS_PER_STEP = 5
# Steps that take seconds a run (model loading, matplotlib) get fewer points.
FEWER_POINTS = {"generate": 3, "figures": 3, "report": 3}
# Columns that differ between two identical runs (timings): left out when runs are compared.
VOLATILE_COLUMNS = ("latency_s",)
# "judge into judgments.csv": the first judge on a study whose judgments are one CSV file moves them into judgments/.
STUDY_STEPS = ["judge", "judge into judgments.csv", "flag", "data convert --force", "generate"]
OUTPUT_STEPS = ["stats", "figures", "report"]


def cli(args: list[object]) -> subprocess.CompletedProcess:
    return run_cli(*map(str, args))


# ---------------------------------------------------------------- fault injection


def _hook_operations(names: tuple[str, ...], on_call: Callable[[str], None]) -> dict[str, Callable]:
    """Make ``os.NAME`` call ``on_call(NAME)`` first; returns the real functions."""
    real = {name: getattr(os, name) for name in names}

    def hooked(name: str) -> Callable:
        def call(*args, **kwargs):
            on_call(name)
            return real[name](*args, **kwargs)
        return call

    for name in names:
        setattr(os, name, hooked(name))
    return real


def run_recording(args: list[object]) -> list[str]:
    """Run the CLI uninterrupted (in this process); the names of its commit operations in call order."""
    calls: list[str] = []
    real = _hook_operations(COMMIT_OPERATIONS, calls.append)
    try:
        result = cli(args)
    finally:
        for name, function in real.items():
            setattr(os, name, function)
    assert result.returncode == 0, result.stderr
    return calls


def run_killed_at(args: list[object], point: int) -> None:
    """Run the CLI in a forked process that SIGKILLs itself before its ``point``-th commit operation."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            seen = 0

            def kill_at_point(_: str) -> None:
                nonlocal seen
                seen += 1
                if seen == point:
                    os.kill(os.getpid(), signal.SIGKILL)

            if "torch" in sys.modules:  # OpenMP worker threads do not survive a fork; one thread needs none
                sys.modules["torch"].set_num_threads(1)
            _hook_operations(COMMIT_OPERATIONS, kill_at_point)
            code = cli(args).returncode
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"the run ended (status {status}) before its kill point {point}")


def run_with_full_disk_at(args: list[object], point: int) -> subprocess.CompletedProcess:
    """Run the CLI (in this process) with its ``point``-th flush to disk failing as on a full disk."""
    seen = 0

    def disk_full_at_point(_: str) -> None:
        nonlocal seen
        seen += 1
        if seen == point:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real = _hook_operations(("fsync",), disk_full_at_point)
    try:
        return cli(args)
    finally:
        os.fsync = real["fsync"]


def fault_points(total: int, most: int = MAX_POINTS_PER_STEP) -> list[int]:
    """Up to ``most`` points spread evenly over 1..total, first and last included."""
    return sorted({int(round(x)) for x in np.linspace(1, total, min(total, most))})


# ---------------------------------------------------------------- what a user finds


def _file_fingerprint(path: Path) -> str:
    """Content of a table as data (volatile columns left out), of any other file as bytes."""
    if path.suffix in (".csv", ".parquet", ".jsonl"):
        reader = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".jsonl": lambda p: pd.read_json(p, lines=True)}
        frame = reader[path.suffix](path)
        text = frame.drop(columns=[c for c in VOLATILE_COLUMNS if c in frame]).to_csv(index=False)
        return hashlib.sha256(text.encode()).hexdigest()
    if path.suffix in (".png", ".pdf", ".html") or path.name == "manifest.json":
        return "present"  # they carry timestamps: two identical runs differ in bytes (verify_output_dir checks them)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder_fingerprint(folder: Path) -> str | None:
    """A table folder (judgments/) read as one table by pandas, as a user would; None when it holds no data file."""
    if not any(folder.glob("[!._]*.parquet")):
        return None
    frame = pd.read_parquet(folder)
    text = frame.drop(columns=[c for c in VOLATILE_COLUMNS if c in frame]).to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()


def study_tables(study: Path) -> dict[str, str]:
    """Fingerprint of every table (a file, or a folder such as judgments/) and study.json of a study (not its
    manifest, lock or cache)."""
    files = {p.name: _file_fingerprint(p) for p in sorted(study.iterdir())
             if p.is_file() and not p.name.startswith(".") and p.name != "manifest.json"}
    folders = {p.name + "/": _folder_fingerprint(p) for p in sorted(study.iterdir())
               if p.is_dir() and p.name in PARTITION_COLUMNS}
    return {**files, **{name: digest for name, digest in folders.items() if digest is not None}}


def study_runs(study: Path) -> list[str]:
    path = study / "manifest.json"
    return [run["status"] for run in json.loads(path.read_text())["runs"]] if path.exists() else []


def output_set(out: Path) -> dict[str, str] | None:
    """Fingerprint of a committed output set ({} when absent); None when readers refuse the folder."""
    if not out.exists() or not any(out.iterdir()):
        return {}
    try:
        manifest = verify_output_dir(out)
    except InputError:
        return None
    return {name: _file_fingerprint(out / name) for name in manifest["files"]}


def leftovers(*folders: Path) -> list[str]:
    """Hidden entries (temporaries, staging folders) other than the study lock and the work locks, also inside a
    table folder (judgments/)."""
    folders = (*folders, *(f / name for f in folders for name in PARTITION_COLUMNS))
    return [p.name for folder in folders if folder.is_dir() for p in folder.iterdir()
            if p.name.startswith(".") and p.name != LOCK_NAME and not p.name.startswith(WORK_LOCK_PREFIX)]


def one_line_disk_full(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, result.stderr
    # transformers draws its own bar while generate loads the model (not judgekit's output)
    # stage lines ("judgekit: stats (13 blocks)", written as each stage starts when stderr is no terminal) are
    # progress, not part of the error
    lines = [line for line in result.stderr.strip().splitlines()
             if not line.startswith("Loading weights") and not re.fullmatch(r"judgekit: [\w ]+ \(\d+ \w+\)", line)]
    assert len(lines) == 1 and "no space left on the device" in lines[0], lines


# ---------------------------------------------------------------- the steps


def _make_study(path: Path) -> Path:
    """The six-item study with one judge's verdicts."""
    path.mkdir(parents=True)
    small_responses().to_csv(path / "responses.csv", index=False)
    small_annotations().to_csv(path / "annotations.csv", index=False)
    assert cli(["judge", path, "--judge", "keyword-gcg-7", "--no-progress"]).returncode == 0
    return path


def _make_study_with_judgments_csv(path: Path) -> Path:
    """The six-item study with a user's judgments.csv (one judge, as brought from elsewhere)."""
    path.mkdir(parents=True)
    small_responses().to_csv(path / "responses.csv", index=False)
    small_annotations().to_csv(path / "annotations.csv", index=False)
    pd.DataFrame({"item_id": small_responses()["item_id"], "judge_id": "their-judge", "label": "safe", "p_unsafe": 0.25,
                  "parse_status": "ok", "raw_output": "safe", "judge_spec_hash": "theirs"}).to_csv(
        path / "judgments.csv", index=False)
    return path


def _source_table(path: Path, n: int) -> Path:
    pd.DataFrame({"prompt": [f"p{k}" for k in range(n)], "response": [f"r{k}" for k in range(n)],
                  "label": [k % 2 for k in range(n)]}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory) -> Path:
    """A tiny random-weight chat model for ``generate`` (as in tests/test_generate.py)."""
    pytest.importorskip("torch")
    from judgekit.testing.replicas import QWEN3GUARD_LIKE, build_causal_lm, train_tokenizer

    tokenizer = train_tokenizer(bos=None, eos="<|im_end|>", chat_template=QWEN3GUARD_LIKE)
    return build_causal_lm("LlamaForCausalLM", tokenizer, tmp_path_factory.mktemp("chat"))


@dataclass
class StudyStep:
    """A step that updates a study in place: how to make the study it starts from, and its command line."""

    make: Callable[[Path], Path]
    args: Callable[[Path], list[object]]


def study_step(step: str, tmp_path: Path, request) -> StudyStep:
    if step == "data convert --force":
        old_source, new_source = _source_table(tmp_path / "a.csv", 2), _source_table(tmp_path / "b.csv", 3)

        def convert(study: Path, source: Path, *options: str) -> list[object]:
            return ["data", "convert", "generic", source, "--out", study, "--map", "label=label", *options]

        def make_converted(study: Path) -> Path:
            assert cli(convert(study, old_source, "--format", "csv")).returncode == 0
            return study

        return StudyStep(make_converted, lambda study: convert(study, new_source, "--force"))  # parquet: csv must go
    if step == "generate":  # a second model variant's responses join the first's
        model = request.getfixturevalue("chat_model")
        prompts = tmp_path / "prompts"
        prompts.mkdir()
        pd.DataFrame({"prompt_id": ["p1", "p2", "p3"], "prompt": ["a?", "b?", "c?"]}).to_csv(prompts / "prompts.csv",
                                                                                          index=False)

        def generate(study: Path, name: str) -> list[object]:
            return ["generate", prompts, "--model", model, "--out", study, "--name", name, "--max-new-tokens", "4",
                    "--backend", "transformers", "--no-progress"]

        def make_generated(study: Path) -> Path:
            assert cli(generate(study, "first")).returncode == 0
            return study

        return StudyStep(make_generated, lambda study: generate(study, "second"))
    if step == "judge":
        return StudyStep(_make_study, lambda study: ["judge", study, "--judge", "keyword-gcg-13", "--no-progress"])
    if step == "judge into judgments.csv":
        return StudyStep(_make_study_with_judgments_csv,
                         lambda study: ["judge", study, "--judge", "keyword-gcg-13", "--no-progress"])
    return StudyStep(_make_study, lambda study: ["flag", study])


@dataclass
class OutputStep:
    """A step that writes an output folder, over a study whose second judge changes every statistic."""

    args: Callable[[Path], list[object]]
    sets: list[str]  # the committed sets under the output folder (report: its stats, its figures, report.html)
    first: Path  # the folder as the previous run left it (before the second judge)

    def found(self, out: Path) -> list[dict[str, str] | None]:
        return [output_set(out / name) for name in self.sets]


def output_step(step: str, tmp_path: Path) -> OutputStep:
    study = _make_study(tmp_path / "study")
    stats_dir = tmp_path / "stats"

    def stats(out: Path) -> list[object]:
        return ["stats", study, "--out", out, "--n-boot", "20", "--seed", "3"]

    def figures(out: Path) -> list[object]:
        # PNGs only: the set's whole-or-refused guarantee does not depend on the file format, and drawing each
        # figure twice more than doubled every rerun of the step (test_figures checks the PDFs themselves)
        return ["figures", stats_dir, "--out", out, "--study", study, "--format", "png"]

    def report(out: Path) -> list[object]:
        return ["report", study, "--out", out, "--n-boot", "20", "--seed", "3"]

    args = {"stats": stats, "figures": figures, "report": report}[step]
    first = tmp_path / "first"
    assert cli(stats(stats_dir)).returncode == 0
    assert cli(args(first)).returncode == 0
    assert cli(["judge", study, "--judge", "keyword-gcg-13", "--no-progress"]).returncode == 0
    assert cli(stats(stats_dir)).returncode == 0
    return OutputStep(args, ["stats", "figures", "."] if step == "report" else ["."], first)


@dataclass
class Uninterrupted:
    """What an uninterrupted run of a step starts from and leaves, and its commit operations in order."""

    old: object
    new: object
    operations: list[str]

    def points(self, step: str, *, only: str | None = None) -> list[int]:
        total = len(self.operations) if only is None else self.operations.count(only)
        return fault_points(total, most=FEWER_POINTS.get(step, MAX_POINTS_PER_STEP))


@pytest.fixture(scope="module")
def study_cases(tmp_path_factory, request) -> Callable[[str], tuple[StudyStep, Uninterrupted]]:
    """Each study step with its uninterrupted run, made once for the module."""
    made: dict[str, tuple[StudyStep, Uninterrupted]] = {}

    def case_of(step: str) -> tuple[StudyStep, Uninterrupted]:
        if step not in made:
            root = tmp_path_factory.mktemp("study-step")
            case = study_step(step, root, request)
            # Every study is called "study": generate names the study after its folder (study.json).
            whole = case.make(root / "whole" / "study")
            old = study_tables(whole)
            operations = run_recording(case.args(whole))
            made[step] = case, Uninterrupted(old, study_tables(whole), operations)
            assert made[step][1].new != old
        return made[step]

    return case_of


@pytest.fixture(scope="module")
def output_cases(tmp_path_factory) -> Callable[[str], tuple[OutputStep, Uninterrupted]]:
    """Each output step with its uninterrupted run, made once for the module."""
    made: dict[str, tuple[OutputStep, Uninterrupted]] = {}

    def case_of(step: str) -> tuple[OutputStep, Uninterrupted]:
        if step not in made:
            root = tmp_path_factory.mktemp("output-step")
            case = output_step(step, root)
            whole = root / "whole"
            shutil.copytree(case.first, whole)
            operations = run_recording(case.args(whole))
            made[step] = case, Uninterrupted(case.found(case.first), case.found(whole), operations)
            assert made[step][1].new[0] != made[step][1].old[0]
        return made[step]

    return case_of


# ---------------------------------------------------------------- kill -9


@pytest.mark.parametrize("step", STUDY_STEPS)
def test_kill_during_a_study_step_leaves_old_or_new_tables(tmp_path: Path, step: str, study_cases) -> None:
    case, whole = study_cases(step)
    outcomes = []
    for point in whole.points(step):
        study = case.make(tmp_path / f"killed-{point}" / "study")
        runs_before = study_runs(study)
        run_killed_at(case.args(study), point)
        try:
            load_study(study)
        except InputError as err:  # only a replacement of several tables killed after its commit point
            assert "killed half-way" in str(err)
            outcomes.append("refused")
        else:
            state = study_tables(study)
            assert state in (whole.old, whole.new), f"kill at {point}: a mixture"
            outcomes.append("old" if state == whole.old else "new")
        assert study_runs(study)[: len(runs_before)] == runs_before  # history kept
        assert cli(case.args(study)).returncode == 0
        assert study_tables(study) == whole.new, f"kill at {point}: the rerun differs from an uninterrupted run"
        assert study_runs(study)[-1] == "finished"
        assert not leftovers(study), f"kill at {point}: files of the killed run are left"
    assert "old" in outcomes and "new" in outcomes, outcomes  # the points span the commit


@pytest.mark.parametrize("step", OUTPUT_STEPS)
def test_kill_during_an_output_step_leaves_whole_sets_or_refused_folders(tmp_path: Path, step: str,
                                                                         output_cases) -> None:
    case, whole = output_cases(step)
    outcomes = []
    for point in whole.points(step):
        out = tmp_path / f"killed-{point}"
        shutil.copytree(case.first, out)
        run_killed_at(case.args(out), point)
        for name, before, after, state in zip(case.sets, whole.old, whole.new, case.found(out), strict=True):
            assert state in (before, after, None), f"kill at {point}: readers of {name} would see a mixture"
            outcomes.append("old" if state == before else "new" if state == after else "refused")
        assert cli(case.args(out)).returncode == 0
        assert case.found(out) == whole.new, f"kill at {point}: the rerun differs from an uninterrupted run"
        assert not leftovers(out.parent, out), f"kill at {point}: staging folders are left"
    assert "old" in outcomes and "new" in outcomes, outcomes  # the points span the commit


# ---------------------------------------------------------------- full disk


@pytest.mark.parametrize("step", STUDY_STEPS)
def test_full_disk_during_a_study_step_exits_2_with_old_or_new_tables(tmp_path: Path, step: str,
                                                                      study_cases) -> None:
    case, whole = study_cases(step)
    outcomes = []
    for point in whole.points(step, only="fsync"):
        study = case.make(tmp_path / f"full-{point}" / "study")
        result = run_with_full_disk_at(case.args(study), point)
        one_line_disk_full(result)
        state = study_tables(study)
        assert state in (whole.old, whole.new), f"disk full at write {point}: a mixture"
        if state == whole.new:  # the tables were committed; only the run's record could not be marked finished
            assert "manifest.json" in result.stderr
        outcomes.append("old" if state == whole.old else "new")
        assert not leftovers(study), f"disk full at write {point}: temporaries are left"
        assert cli(case.args(study)).returncode == 0
        assert study_tables(study) == whole.new
    assert "old" in outcomes, outcomes


@pytest.mark.parametrize("step", OUTPUT_STEPS)
def test_full_disk_during_an_output_step_exits_2_and_keeps_the_old_set(tmp_path: Path, step: str,
                                                                       output_cases) -> None:
    case, whole = output_cases(step)
    for point in whole.points(step, only="fsync"):
        out = tmp_path / f"full-{point}"
        shutil.copytree(case.first, out)
        result = run_with_full_disk_at(case.args(out), point)
        one_line_disk_full(result)
        found = case.found(out)
        # A report commits its stats, then its figures, then report.html: each set is whole, old or new.
        assert all(state in (before, after) for before, after, state in zip(whole.old, whole.new, found, strict=True))
        assert found[-1] == whole.old[-1], f"disk full at write {point}: the failed step's own set changed"
        assert not leftovers(out.parent, out), f"disk full at write {point}: staging folders are left"
        assert cli(case.args(out)).returncode == 0
        assert case.found(out) == whole.new


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 8 MiB tmpfs (needs the right to mount: root, as in the project's container)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the injected ENOSPC tests cover a full disk")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the injected ENOSPC tests cover a full disk")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(disk: Path, *, leave: int) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes."""
    stat = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(stat.f_bavail * stat.f_frsize - leave, 0))
    return filler


@pytest.mark.parametrize("step", ["judge", "data convert --force", "generate", "stats", "report"])
def test_a_real_full_disk_exits_2_and_loses_nothing(small_disk: Path, step: str, study_cases, output_cases) -> None:
    outcomes = []
    for leave in (0, 32_768):
        target = small_disk / f"run-{leave}"
        if step in OUTPUT_STEPS:
            case, _ = output_cases(step)
            shutil.copytree(case.first, target)
            found = case.found
        else:
            case, _ = study_cases(step)
            case.make(target)
            found = study_tables
        before = found(target)
        filler = fill(small_disk, leave=leave)
        result = cli(case.args(target))
        if result.returncode == 0:
            outcomes.append("completed")
        else:
            one_line_disk_full(result)
            outcomes.append("refused")
            if "manifest.json" not in result.stderr:  # else: committed, only the run's record was not finished
                assert found(target) == before, f"{leave} bytes free: the failed run changed the output"
            assert not leftovers(small_disk, target), f"{leave} bytes free: temporaries are left"
        filler.unlink()
        assert cli(case.args(target)).returncode == 0  # with room again the step completes
        shutil.rmtree(target)
    assert outcomes[0] == "refused", outcomes
