"""How much judgekit reads from one input: the bounds every reader shares (issue #35).

A small archive or parquet file can expand a thousandfold, a CSV header can hold a million columns, a JSON
value can nest a hundred thousand deep. Every reader of user input (study tables, Inspect logs, lm-eval logs,
Hugging Face datasets folders and files, the table importers built on them) checks these bounds *before* it
expands or parses, and says which one a file broke in one line naming the file and the limit.

Defaults, each overridable by an environment variable (a whole number of MiB, or of columns):

==============================  ===========  =============================================================
``JUDGEKIT_MAX_EXPANDED_MB``    1024 MiB     total bytes one input expands to (all zip members of an
                                             ``.eval``, the uncompressed pages of a parquet file, the arrow
                                             files of a datasets folder)
``JUDGEKIT_MAX_MEMBER_MB``      256 MiB      one zip member (a sample file of an ``.eval`` log)
``JUDGEKIT_MAX_FILE_MB``        4096 MiB     one text file read whole (CSV, JSONL, JSON)
``JUDGEKIT_MAX_LINE_MB``        256 MiB      one line of a JSONL file, one record of a CSV file
``JUDGEKIT_MAX_COLUMNS``        10000        columns of one table
==============================  ===========  =============================================================

Nesting is bounded too: a JSON value deeper than Python's recursion limit is refused by the parsers (a
``RecursionError``, turned into a one-line error where it is read), and a parquet column nested deeper than
:data:`MAX_NESTING` is refused from the file's schema before any page is read.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from judgekit.errors import InputError

MIB = 1 << 20
MAX_NESTING = 64  # levels of list/struct in one parquet column: study tables hold scalars, importers one or two
_ENV = {"max_expanded_bytes": ("JUDGEKIT_MAX_EXPANDED_MB", 1024 * MIB, MIB),
        "max_member_bytes": ("JUDGEKIT_MAX_MEMBER_MB", 256 * MIB, MIB),
        "max_file_bytes": ("JUDGEKIT_MAX_FILE_MB", 4096 * MIB, MIB),
        "max_line_bytes": ("JUDGEKIT_MAX_LINE_MB", 256 * MIB, MIB),
        "max_columns": ("JUDGEKIT_MAX_COLUMNS", 10_000, 1)}


@dataclass(frozen=True)
class ReadLimits:
    """The bounds in force (see the module docstring); :func:`read_limits` gives the current ones."""

    max_expanded_bytes: int
    max_member_bytes: int
    max_file_bytes: int
    max_line_bytes: int
    max_columns: int


def read_limits() -> ReadLimits:
    """The limits from the environment, defaults where a variable is unset; a bad value is a one-line error."""
    values = {}
    for field_name, (variable, default, unit) in _ENV.items():
        text = os.environ.get(variable, "").strip()
        if not text:
            values[field_name] = default
            continue
        if not text.isdigit() or int(text) < 1:
            raise InputError(f"{variable}={text!r} must be a whole number >= 1")
        values[field_name] = int(text) * unit
    return ReadLimits(**values)


def describe(n_bytes: int) -> str:
    """A byte count as people read limits: MiB when whole, else bytes."""
    return f"{n_bytes // MIB} MiB" if n_bytes % MIB == 0 and n_bytes >= MIB else f"{n_bytes} bytes"


def _variable(field_name: str) -> str:
    return _ENV[field_name][0]


def over_limit(path: str | Path, what: str, field_name: str, limit: int, *, bytes_: bool = True) -> InputError:
    """The one-line error of a file that breaks ``field_name``: what, the limit and how to raise it."""
    shown = describe(limit) if bytes_ else str(limit)
    return InputError(f"{what}, over the limit of {shown} (set {_variable(field_name)} to raise it)", file=path)


class ExpansionBudget:
    """Bytes one input may still expand to; each reader takes from it before it holds the bytes."""

    def __init__(self, path: str | Path, limits: ReadLimits | None = None) -> None:
        self.path = path
        self.limits = limits or read_limits()
        self.used = 0

    @property
    def left(self) -> int:
        return self.limits.max_expanded_bytes - self.used

    def take(self, n_bytes: int, what: str) -> None:
        """Count ``n_bytes`` more of ``what``; refuse when the input's total would pass the limit."""
        self.used += n_bytes
        if self.used > self.limits.max_expanded_bytes:
            raise over_limit(self.path, f"expands to {self.used / MIB:,.1f} MiB or more (at {what})",
                             "max_expanded_bytes", self.limits.max_expanded_bytes)


def read_bytes_bounded(path: str | Path, limits: ReadLimits | None = None) -> bytes:
    """The whole of a regular file, refused (before it is read) when larger than the file limit.

    The size is checked on the open file, so a special file (``/dev/zero``, a FIFO) behind a name is refused
    rather than read forever.
    """
    limits = limits or read_limits()
    path = Path(path)
    with open(path, "rb") as stream:
        status = os.fstat(stream.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise InputError("is not a regular file", file=path)
        if status.st_size > limits.max_file_bytes:
            raise over_limit(path, f"is {status.st_size} bytes", "max_file_bytes", limits.max_file_bytes)
        # the size found, not the limit: read(n) allocates n bytes before it reads any
        data = stream.read(status.st_size + 1)
    if len(data) > status.st_size:
        raise InputError("grew while it was read; read it again when nothing is writing it", file=path)
    return data


def check_columns(path: str | Path, count: int, limits: ReadLimits | None = None) -> None:
    limits = limits or read_limits()
    if count > limits.max_columns:
        raise over_limit(path, f"has {count} columns", "max_columns", limits.max_columns, bytes_=False)


def check_line_lengths(path: str | Path, data: bytes | str, limits: ReadLimits | None = None) -> None:
    """Refuse a text whose longest line passes the line limit (C-speed searches, no copy per line)."""
    limits = limits or read_limits()
    start = first_long_line(data, limits.max_line_bytes)
    if start is None:
        return
    newline = b"\n" if isinstance(data, bytes) else "\n"
    end = data.find(newline, start)
    end = len(data) if end < 0 else end
    raise over_limit(path, f"line {data.count(newline, 0, start) + 1} is {end - start} characters long",
                     "max_line_bytes", limits.max_line_bytes)


def first_long_line(data, limit: int) -> int | None:
    """Offset of the first line of ``data`` (bytes, str or mmap) longer than ``limit``, None when every line fits.

    Each step looks for the last newline within ``limit`` + 1 of a line's start: none means that line is too
    long; one means every line up to it fits, and the search goes on after it. A file is crossed in about
    len / limit searches, each reading back from a window's end, not in one step per line.
    """
    newline = "\n" if isinstance(data, str) else b"\n"
    start = 0
    while len(data) - start > limit:
        last = data.rfind(newline, start, start + limit + 1)
        if last < 0:
            return start
        start = last + 1
    return None
