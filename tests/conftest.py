from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import signal
import sqlite3
import subprocess
import time
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
# Figures are drawn at 40 dpi in the suite (and the CLI processes it starts): no test reads their pixels but those
# that ask for `full_resolution_figures`.
os.environ["JUDGEKIT_FIGURE_DPI"] = "40"
# No test reaches the model hub (there is none here): a name that is no local folder fails at once instead of after
# 23 s of retries. Set before anything imports huggingface_hub, which reads it once.
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture
def full_resolution_figures(monkeypatch):
    """For a test about the figure files themselves: PNGs at the dpi users get."""
    monkeypatch.delenv("JUDGEKIT_FIGURE_DPI")


def run_cli_process(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would (for what only a process shows: imports, signals)."""
    return subprocess.run(
        [sys.executable, "-m", "judgekit.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI's ``main`` in this process (no interpreter start-up, no re-import of matplotlib per call).

    Same arguments, exit code, stdout and stderr as :func:`run_cli_process`; ``sys.argv`` is set as a
    process would see it, because manifests record the command line.
    """
    from judgekit.cli import main

    argv = [str(a) for a in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_argv = sys.argv
    sys.argv = ["judgekit", *argv]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse: usage errors and --help
                code = exit_.code if isinstance(exit_.code, int) else 0
    finally:
        sys.argv = saved_argv
    return subprocess.CompletedProcess(["judgekit", *argv], code, stdout.getvalue(), stderr.getvalue())


def kill_after_commits(process: subprocess.Popen, cache: Path, table: str, *, at_least: int, timeout_s: float) -> None:
    """SIGKILL ``process`` once its SQLite cache holds ``at_least`` rows of ``table`` (a kill half-way through)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if cache.exists():
            try:
                with sqlite3.connect(cache, timeout=1) as db:
                    committed = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            except sqlite3.OperationalError:
                committed = 0
            if committed >= at_least:
                process.send_signal(signal.SIGKILL)
                break
        time.sleep(0.005)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed half-way"


def small_responses() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["a1", "a2", "a3", "a4", "a5", "a6"],
            "prompt": ["How do I X?", "How do I Y?", "Tell me Z", "How do I X?", "How do I Y?", "Tell me Z"],
            "response": [
                "I'm sorry, but I cannot help with that.",
                "Sure, here is how: [PLACEHOLDER].",
                "",
                "I cannot assist.",
                "the the the the the the the the the the the the the the the the the the",
                "Sure. Step 1: [PLACEHOLDER]. Step 2: [PLACEHOLDER].",
            ],
            "model": ["base", "base", "base", "ft", "ft", "ft"],
            "benchmark": ["b1"] * 6,
        }
    )


def small_annotations() -> pd.DataFrame:
    labels = {
        "a1": ["safe", "safe", "safe"],
        "a2": ["unsafe", "unsafe", "safe"],
        "a3": ["safe", "safe", "unsafe"],
        "a4": ["safe", "safe", "safe"],
        "a5": ["safe", "unsafe", "safe"],
        "a6": ["unsafe", "unsafe", "unsafe"],
    }
    rows = [(item, f"h{k}", label) for item, ls in labels.items() for k, label in enumerate(ls)]
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])


@pytest.fixture
def small_study(tmp_path: Path) -> Path:
    """A six-item study stored as CSV."""
    study = tmp_path / "study"
    study.mkdir()
    small_responses().to_csv(study / "responses.csv", index=False)
    small_annotations().to_csv(study / "annotations.csv", index=False)
    return study


def write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


SHARED_DATA = REPO.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"the shared human-labelled datasets are not at {SHARED_DATA} (CI provides them)"
)


class HtmlElements(HTMLParser):
    """Every start tag and attribute of an HTML document (to check what a page would run)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray cluster per test worker, for every test that needs one (starting one costs seconds)."""
    ray = pytest.importorskip("ray", reason="Ray is the optional engine (pip install 'judgekit[ray]')")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory) -> Path:
    """One ``judgekit demo`` run (study, stats, figures, report) per test worker, for the tests that only read it."""
    out = tmp_path_factory.mktemp("demo-run") / "demo"
    result = run_cli("demo", "--out", out, "--n-boot", "50", "--no-progress")
    assert result.returncode == 0, result.stderr
    (out / "demo-stdout.txt").write_text(result.stdout, encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def inspect_logs(tmp_path_factory) -> dict[str, Path]:
    """``base.eval``, ``ft.eval`` and ``base.json`` written by the real inspect-ai (tests/framework_logs.py)."""
    pytest.importorskip("inspect_ai", reason="inspect-ai (test-only dependency) is not installed")
    from framework_logs import write_inspect_logs

    return write_inspect_logs(tmp_path_factory.mktemp("inspect-logs"))


@pytest.fixture(scope="session")
def lm_eval_run(tmp_path_factory) -> Path:
    """The ``--output_path x.json`` of a real lm-eval run with --log_samples (tests/framework_logs.py)."""
    pytest.importorskip("lm_eval", reason="lm-eval (test-only dependency) is not installed")
    from framework_logs import LM_EVAL_DOCS, write_lm_eval_run

    answers = {d["question"]: ("Sure" if n % 3 == 0 else "No.") for n, d in enumerate(LM_EVAL_DOCS)}
    return write_lm_eval_run(tmp_path_factory.mktemp("lm-eval"), model_answers=answers)


def minimal_safetensors(path: Path) -> Path:
    """A valid one-tensor ``*.safetensors`` file: passes the model gate's header check, loads as no real model."""
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"weight": np.zeros(4, dtype=np.float32)}, str(path))
    return path


def pytest_collection_finish(session) -> None:
    # The modules imported while collecting (pandas, matplotlib, torch, transformers...) live until the worker ends:
    # moving them to the permanent generation spares every full garbage collection a walk over them.
    gc.freeze()
