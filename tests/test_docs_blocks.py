"""Docs that cannot rot: every ``bash`` and ``python`` block of the README and the guides runs here.

Each block runs in a fresh working folder that holds ``data/`` and ``analyses/`` of this checkout (as a clone
does), with ``../shared/data`` read from the shared datasets. A ``text`` block right after a code block is its
expected output: each of its lines must appear, in order, in what the block printed (runs of spaces are one space,
``...`` matches anything). The marks below sit in an HTML comment just above a block:

* ``<!-- doctest: instead`` + commands + ``-->``: a reduced variant (small settings, a tiny model) runs instead of
  the block shown; the expected output is checked against it;
* ``<!-- doctest: continues -->``: the block runs after the block before it, in the same folder;
* ``<!-- doctest: requires data import table -->``: skipped, saying so, while the CLI lacks that command;
* ``<!-- doctest: requires-module ray -->``: skipped while a Python module is not installed;
* ``<!-- doctest: skip REASON -->``: not run (a GPU, a server, a network), with the reason;
* ``<!-- doctest: slow -->``: marked ``slow`` (a whole pipeline: generate, judge, report).

``judgekit`` lines run in this process (``judgekit.cli.main``); other lines run in bash with ``judgekit`` and
``python`` on the PATH meaning this interpreter and this checkout.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA, run_cli

DOCUMENTS = [REPO / "README.md", REPO / "docs" / "getting-started.md", *sorted((REPO / "docs" / "guides").glob("*.md"))]
RUNNABLE = {"bash", "python"}
FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r"<!--\s*doctest:\s*(\w[\w-]*)(.*?)-->", re.S)
SHELL_SYNTAX = re.compile(r"[|<>;$`*]|&&|\(|\)")


@dataclass
class Block:
    document: Path
    line: int
    language: str
    code: str
    expected: str | None = None
    marks: dict[str, str] = field(default_factory=dict)
    previous: Block | None = None

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"


def parse_blocks(document: Path) -> list[Block]:
    """The fenced blocks of ``document`` that run, each with its marks and the expected output after it."""
    lines = document.read_text(encoding="utf-8").splitlines()
    fenced: list[tuple[int, str, str, str]] = []  # (line, language, code, text between the previous block and it)
    index, gap_start = 0, 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match and match.group(1):
            end = index + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            fenced.append((index + 1, match.group(1), "\n".join(lines[index + 1:end]), "\n".join(lines[gap_start:index])))
            index = gap_start = end + 1
            continue
        index += 1
    blocks: list[Block] = []
    for position, (line, language, code, gap) in enumerate(fenced):
        if language not in RUNNABLE:
            continue
        block = Block(document, line, language, code)
        comments = MARK.findall(gap.rsplit("```", 1)[-1])
        block.marks = {kind: argument.strip() for kind, argument in comments}
        if position + 1 < len(fenced):
            next_line, next_language, next_code, next_gap = fenced[position + 1]
            if next_language == "text" and not next_gap.strip():
                block.expected = next_code
        if "continues" in block.marks:
            block.previous = blocks[-1]
        blocks.append(block)
    return blocks


ALL_BLOCKS = [block for document in DOCUMENTS if document.is_file() for block in parse_blocks(document)]


def _parser_has(command: str) -> bool:
    from judgekit.cli import build_parser

    from tools.docs_hooks import command_parsers

    return any(" ".join(path) == command for path, _, _ in command_parsers(build_parser()))


def _skip_reason(block: Block) -> str | None:
    marks = block.marks
    if "skip" in marks:
        return marks["skip"] or "marked skip without a reason"
    if "requires" in marks and not _parser_has(marks["requires"]):
        return f"needs `{marks['requires']}` (issue 32)"
    if "requires-module" in marks and importlib.util.find_spec(marks["requires-module"]) is None:
        return f"needs the Python module {marks['requires-module']}"
    if "../shared/data" in block.code + marks.get("instead", "") and not SHARED_DATA.is_dir():
        return f"the shared datasets are not at {SHARED_DATA}"
    return None


def _workspace(tmp_path: Path) -> Path:
    """A folder laid out like a clone: the bundled data and analyses, a PATH where judgekit and python are ours."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("data", "analyses", "Makefile", "pyproject.toml"):
        (work / name).symlink_to(REPO / name)
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, command in (("judgekit", f'"{sys.executable}" -m judgekit.cli "$@"'), ("python", f'"{sys.executable}" "$@"')):
        (shims / name).write_text(f"#!/bin/sh\nexec {command}\n", encoding="utf-8")
        (shims / name).chmod(0o755)
    return work


def _logical_lines(code: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", code)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _run_shell(code: str, work: Path) -> str:
    env = {**os.environ, "PATH": f"{work.parent / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "REPO": str(REPO)}
    output = []
    for line in _logical_lines(code):
        words = shlex.split(line, comments=True)
        if words and words[0] == "judgekit" and not SHELL_SYNTAX.search(line.split("#")[0]):
            result = run_cli(*words[1:])  # in this process: no interpreter start-up per command
        else:
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=work, env=env, capture_output=True,
                                    text=True, timeout=600)
        output.append(result.stdout + result.stderr)
        assert result.returncode == 0, f"`{line}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return "".join(output)


def _run_python(code: str) -> str:
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        exec(compile(code, "<docs block>", "exec"), {"__name__": "__docs__"})  # noqa: S102 (our own documentation)
    return captured.getvalue()


def _run(block: Block, work: Path) -> str:
    if block.previous is not None:
        _run(block.previous, work)
    code = block.marks.get("instead") or block.code
    code = code.replace("../shared/data", str(SHARED_DATA))
    saved = Path.cwd()
    os.chdir(work)  # judgekit's relative paths (and the Python blocks') resolve in the working folder
    try:
        return _run_shell(code, work) if block.language == "bash" else _run_python(code)
    finally:
        os.chdir(saved)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def assert_output_matches(expected: str, output: str) -> None:
    """Each expected line appears in the output, in order; ``...`` matches anything."""
    lines = [_normalise(line) for line in output.splitlines()]
    position = 0
    for wanted in (_normalise(line) for line in expected.splitlines()):
        if not wanted or wanted == "...":
            continue
        pattern = re.compile(".*?".join(re.escape(piece.strip()) for piece in wanted.split("...")))
        for offset, line in enumerate(lines[position:]):
            if pattern.search(line):
                position += offset + 1
                break
        else:
            raise AssertionError(f"the documented output line {wanted!r} is not in what the block printed:\n{output}")


@pytest.mark.parametrize("block", [pytest.param(block, id=block.name, marks=[pytest.mark.slow] * ("slow" in block.marks))
                                   for block in ALL_BLOCKS])
def test_documented_block_runs_and_prints_what_the_text_says(block: Block, tmp_path):
    reason = _skip_reason(block) or (block.previous and _skip_reason(block.previous))
    if reason:
        pytest.skip(reason)
    output = _run(block, _workspace(tmp_path))
    if block.expected is not None:
        assert_output_matches(block.expected, output)


def test_the_output_check_fails_on_a_changed_number_and_passes_on_the_documented_one():
    printed = "wrote 2 statistics to out/stats.parquet\nfinetune_effect_paired  includes  0.292  0.042  0.542\n"
    assert_output_matches("wrote ... statistics\nfinetune_effect_paired includes 0.292 0.042 0.542", printed)
    with pytest.raises(AssertionError, match="is not in what the block printed"):
        assert_output_matches("finetune_effect_paired includes 0.300 0.042 0.542", printed)
    with pytest.raises(AssertionError):  # order matters: the text's sequence is the program's
        assert_output_matches("finetune_effect_paired\nwrote", printed)


def test_every_document_has_runnable_blocks_and_marks_are_known():
    known = {"instead", "continues", "requires", "requires-module", "skip", "slow"}
    assert ALL_BLOCKS, "no runnable block found: the parser or the documents changed"
    for block in ALL_BLOCKS:
        assert set(block.marks) <= known, f"{block.name}: unknown doctest mark {set(block.marks) - known}"
