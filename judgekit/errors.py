"""Error types that the CLI turns into one-line messages and exit codes.

Exit codes: 0 success, 1 failure of judgekit itself, 2 bad input or usage.
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


@dataclass
class InputError(Exception):
    """A problem with the user's files or arguments (exit code 2).

    ``row`` is the 1-based data row (the header is not counted); ``line`` is the
    1-based line of a text file when that differs from the row.
    """

    message: str
    file: str | Path | None = None
    row: int | None = None
    column: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            row = f"row {self.row}"
            if self.line is not None and self.line != self.row:
                row += f" (line {self.line})"
            where.append(row)
        if self.column is not None:
            where.append(f"column '{self.column}'")
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class StepFailed(Exception):
    """A step ran to its end but its work failed (exit code 1), e.g. every item of a judge ended in ``error``."""


_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` says the disk (or the user's quota) is full: the user's to fix, so exit code 2."""
    if isinstance(err, OSError):
        return err.errno in _DISK_FULL_ERRNOS
    return isinstance(err, sqlite3.OperationalError) and getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
