"""The --out rule (issue #23, item 2): an output folder is new, empty, or an earlier output of the same step;
anything else exits 2 unless --force; /, home, the study and the folders around it are always refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from judgekit.engine import steps
from tests.conftest import run_cli


@pytest.fixture
def judged(small_study: Path) -> Path:
    steps.judge_step(small_study, ["keyword-gcg-13"], progress=False)
    return small_study


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("where", ["root", "home", "study parent", "foreign"])
def test_stats_refuses_folders_it_does_not_own(judged: Path, tmp_path: Path, monkeypatch, where: str):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine", encoding="utf-8")
    out = {"root": Path("/"), "home": home, "study parent": judged.parent, "foreign": foreign}[where]
    before = sorted(p.name for p in out.iterdir())
    done = run_cli("stats", judged, "--out", out, "--n-boot", "20", "--no-progress")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "--out" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == before
    if where in ("root", "home", "study parent"):  # always refused, even with --force
        assert run_cli("stats", judged, "--out", out, "--n-boot", "20", "--force", "--no-progress").returncode == 2
        assert sorted(p.name for p in out.iterdir()) == before


def test_force_merges_into_a_foreign_folder(judged: Path, tmp_path: Path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine", encoding="utf-8")
    assert run_cli("stats", judged, "--out", foreign, "--n-boot", "20", "--force", "--no-progress").returncode == 0
    assert (foreign / "thesis.tex").read_text(encoding="utf-8") == "mine" and (foreign / "stats.parquet").is_file()


def test_an_earlier_output_of_the_same_step_is_replaced_and_of_another_step_refused(judged: Path, tmp_path: Path):
    out = tmp_path / "stats"
    assert run_cli("stats", judged, "--out", out, "--n-boot", "20", "--no-progress").returncode == 0
    assert run_cli("stats", judged, "--out", out, "--n-boot", "20", "--no-progress").returncode == 0
    done = run_cli("report", judged, "--out", out, "--n-boot", "20")  # a stats set is not a report
    assert done.returncode == 2 and "judgekit stats output" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("stats", judged, "--out", empty, "--n-boot", "20", "--no-progress").returncode == 0


def test_demo_out_refuses_a_foreign_folder_and_deletes_nothing(tmp_path: Path):
    out = tmp_path / "work"
    (out / "study").mkdir(parents=True)
    (out / "study" / "precious.csv").write_text("a,b\n", encoding="utf-8")
    done = run_cli("demo", "--out", out, "--n-boot", "20", "--no-progress")
    assert done.returncode == 2 and "--out" in done.stderr
    assert (out / "study" / "precious.csv").is_file()


def test_unwritable_out_is_one_line_exit_2(judged: Path):
    for out in ("/proc/judgekit-out", "/proc/self/judgekit-out"):
        done = run_cli("stats", judged, "--out", out, "--n-boot", "20", "--no-progress")
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "--out" in done.stderr


def test_study_writers_refuse_root_and_home_even_with_force(tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    source = tmp_path / "mine.csv"
    source.write_text("id,text\n1,hello\n", encoding="utf-8")
    for out in (Path("/"), home):
        done = run_cli("data", "convert", "prompts", source, "--map", "prompt=text,prompt_id=id", "--out", out, "--force")
        assert done.returncode == 2 and "must not be" in done.stderr, done.stderr
    assert sorted(p.name for p in home.iterdir()) == []


def test_a_failure_is_one_line_even_after_warnings_and_log_records(monkeypatch, capsys):
    """Glyph warnings of a figure or a library's log lines before a failure are dropped; after a success they show."""
    import logging
    import warnings

    from judgekit import cli
    from judgekit.errors import InputError

    def noisy(fail: bool):
        def dispatch(args):
            warnings.warn("Glyph 128578 missing from font(s) DejaVu Sans.", UserWarning)
            logging.getLogger("transformers").warning("Some weights were not initialized")
            if fail:
                raise InputError("bad input", file="x.csv", row=3)
        return dispatch

    monkeypatch.setattr(cli, "_dispatch", noisy(True))
    assert cli.main(["list"]) == 2
    assert capsys.readouterr().err == "judgekit: error: x.csv: row 3: bad input\n"
    monkeypatch.setattr(cli, "_dispatch", noisy(False))
    assert cli.main(["list"]) == 0
    err = capsys.readouterr().err
    assert "Glyph 128578" in err and "Some weights were not initialized" in err


def test_a_library_logger_with_its_own_handler_is_held_back_too(monkeypatch, capsys):
    """transformers, once imported, logs through its own stderr handler without propagating to the root logger:
    its warnings before a failure must not make the failure more than one line (it did when an earlier test in the
    same process had imported transformers)."""
    import io
    import logging

    from judgekit import cli
    from judgekit.errors import InputError

    library_stream = io.StringIO()
    library = logging.getLogger("judgekit_tests.library_with_own_handler")
    library.propagate = False
    monkeypatch.setattr(library, "handlers", [logging.StreamHandler(library_stream)])

    def dispatch(args):
        library.warning("Some weights were not initialized")
        raise InputError("bad input", file="x.csv", row=3)

    monkeypatch.setattr(cli, "_dispatch", dispatch)
    assert cli.main(["list"]) == 2
    assert capsys.readouterr().err == "judgekit: error: x.csv: row 3: bad input\n" and library_stream.getvalue() == ""


def test_a_commit_killed_half_way_is_still_its_steps_output(judged: Path, tmp_path: Path, monkeypatch):
    """Killed between removing the old manifest and placing the new one, the folder has no manifest; the
    rerun must still be accepted (the parked manifest beside it names the step)."""
    import os

    from judgekit.store import outdir

    out = tmp_path / "stats"
    assert run_cli("stats", judged, "--out", out, "--n-boot", "20", "--no-progress").returncode == 0
    real_replace = os.replace

    def killed(src, dst):
        if Path(dst).name == "stats.csv":
            raise SystemExit("killed")  # stands in for SIGKILL: the staging folder is left behind below
        real_replace(src, dst)

    class KilledOs:  # outdir's os, dying at the commit's move of stats.csv (other modules keep the real os)
        replace = staticmethod(killed)

        def __getattr__(self, name):
            return getattr(os, name)

    class KeptShutil:  # a killed step removes nothing: its staging folder stays beside --out
        rmtree = staticmethod(lambda *a, **k: None)

        def __getattr__(self, name):
            return getattr(outdir.shutil, name)

    monkeypatch.setattr(outdir, "shutil", KeptShutil())
    monkeypatch.setattr(outdir, "os", KilledOs())
    with pytest.raises(SystemExit):
        steps.stats_step(judged, out, steps.StatsSettings(n_boot=20, progress=False))
    monkeypatch.undo()
    assert not (out / "manifest.json").exists() and any(out.iterdir())
    assert run_cli("stats", judged, "--out", out, "--n-boot", "20", "--no-progress").returncode == 0


def test_a_report_that_failed_after_its_statistics_can_be_rerun(judged: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "report"

    def broken(*args, **kwargs):
        raise RuntimeError("figures failed")

    monkeypatch.setattr(steps, "figures_step", broken)
    assert run_cli("report", judged, "--out", out, "--n-boot", "20").returncode == 1
    monkeypatch.undo()
    assert (out / "stats" / "manifest.json").is_file() and not (out / "manifest.json").exists()
    (out / "notes.txt").write_text("mine", encoding="utf-8")  # more than a report's parts: refused
    assert run_cli("report", judged, "--out", out, "--n-boot", "20").returncode == 2
    (out / "notes.txt").unlink()
    assert run_cli("report", judged, "--out", out, "--n-boot", "20").returncode == 0
