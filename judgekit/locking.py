"""One writer at a time per study directory.

Steps that update a study in place (``judge``, ``flag``, ``generate``) hold an
exclusive advisory lock on ``STUDY/.judgekit.lock`` from reading the study to
committing their tables, so two processes never read the same ``judgments``
and each replace it with only their own rows. A second writer waits and says
so. While the lock is held no other judgekit process is writing the study, so
temporary files left by a killed writer (``.NAME.*.tmp``) are removed then.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".judgekit.lock"


@contextmanager
def study_lock(study_dir: str | Path, *, step: str) -> Iterator[None]:
    """Hold the study's write lock for the duration of the block.

    Parameters
    ----------
    study_dir : path
        The study directory (must exist).
    step : str
        Name of the step, shown to a process that has to wait.
    """
    study_dir = Path(study_dir)
    descriptor = os.open(study_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"judgekit: {step}: another judgekit process is writing {study_dir}; waiting for it to finish",
                  file=sys.stderr, flush=True)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        remove_orphan_temporaries(study_dir)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def remove_orphan_temporaries(directory: Path) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files an atomic write leaves behind when its process is killed."""
    removed = []
    for path in directory.glob(".*.tmp"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
