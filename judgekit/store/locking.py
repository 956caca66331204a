"""Who may write a study, and when.

Steps that update a study in place (``judge``, ``flag``, ``generate``) read a
snapshot of the study, compute into their durable caches without holding any
study-wide lock, and take the study's exclusive advisory lock on
``STUDY/.judgekit.lock`` only to re-read the current table, merge their new
rows into it and commit (:func:`study_lock`). So two ``judge`` processes with
different judges run at the same time, and a merge never drops the rows the
other committed in between.

The same work twice at once (one judge, one model's generation, the flags) is
kept apart by a lock of its own (:func:`work_locks`): the second process waits
and says so in one line, then finds the first one's rows done.

While the study lock is held no other judgekit process is writing the study's
tables, so temporary files left by a killed writer (``.NAME.*.tmp``, in the study
folder and in a table folder such as ``judgments/``) are removed then.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from judgekit.errors import InputError
from judgekit.store.layout import is_system_folder
from judgekit.store.schema import PARTITION_COLUMNS

LOCK_NAME = ".judgekit.lock"
WORK_LOCK_PREFIX = ".judgekit.work-"


@contextmanager
def _exclusive(path: Path, *, waiting_message: str) -> Iterator[None]:
    if is_system_folder(path.parent):  # the callers check the folder is a study first; this is the backstop
        raise InputError("a lock file never goes in the file-system root or the home folder", file=path.parent)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(waiting_message, file=sys.stderr, flush=True)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


@contextmanager
def study_lock(study_dir: str | Path, *, step: str) -> Iterator[None]:
    """Hold the study's write lock for the duration of the block (a snapshot read or a merge and commit).

    Parameters
    ----------
    study_dir : path
        The study directory (must exist).
    step : str
        Name of the step, shown to a process that has to wait.
    """
    study_dir = Path(study_dir)
    with _exclusive(study_dir / LOCK_NAME, waiting_message=(
            f"judgekit: {step}: another judgekit process is writing {study_dir}; waiting for it to finish")):
        remove_orphan_temporaries(study_dir)
        yield


@contextmanager
def work_locks(study_dir: str | Path, keys: list[str], *, step: str) -> Iterator[None]:
    """Hold one lock per unit of work (``judge ID``, ``generate MODEL``, ``flag``) for the whole computation.

    Keys are taken in sorted order, so two processes asking for overlapping sets never wait on each other
    in a cycle. A process that finds a key taken waits, after one line on stderr naming it.
    """
    study_dir = Path(study_dir)
    with ExitStack() as stack:
        for key in sorted(set(keys)):
            digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            stack.enter_context(_exclusive(study_dir / f"{WORK_LOCK_PREFIX}{digest}.lock", waiting_message=(
                f"judgekit: {step}: another judgekit process is running {key} on {study_dir}; "
                "waiting for it to finish")))
        yield


def remove_orphan_temporaries(directory: Path) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files an atomic write leaves behind when its process is killed."""
    removed = []
    folders = [directory, *(directory / name for name in PARTITION_COLUMNS)]
    for path in (p for folder in folders for p in folder.glob(".*.tmp")):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
