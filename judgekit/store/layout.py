"""Where a study's tables live on disk: finding a table's file, checking a study folder exists.

The lowest floor of the study store: :mod:`judgekit.store.study` and :mod:`judgekit.store.lineage` both
read paths through it, so neither needs the other to find a file.
"""

from __future__ import annotations

from pathlib import Path

from judgekit.errors import InputError
from judgekit.store.schema import PARTITION_COLUMNS, TABLE_EXTENSIONS


def table_path(study_dir: str | Path, name: str) -> Path | None:
    """The file (or, for a partitioned table, the folder) holding table ``name``, or None.

    A table folder with no data file yet (its first commit was killed before its file was renamed in)
    is no table. Two forms of one table is an error.
    """
    study_dir = Path(study_dir)
    candidates = [study_dir / f"{name}{ext}" for ext in TABLE_EXTENSIONS]
    found = [p for p in candidates if p.exists() or p.is_symlink()]
    folder = study_dir / name
    if name in PARTITION_COLUMNS and folder.is_dir() and any(folder.glob("[!._]*.parquet")):
        found.append(folder)
    if len(found) > 1:
        raise InputError(f"table '{name}' is stored twice ({', '.join(p.name for p in found)}); keep one", file=study_dir)
    if found and not found[0].exists():
        raise InputError("is a symbolic link to a file that does not exist", file=found[0])
    return found[0] if found else None


def existing_study_dir(study_dir: str | Path) -> Path:
    """``study_dir`` as a Path, after checking it is a directory (before a step locks or writes anything)."""
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise InputError("study directory not found" if not study_dir.exists() else "is not a directory", file=study_dir)
    return study_dir


def study_dir_to_update(study_dir: str | Path) -> Path:
    """``study_dir`` after checking it is a study (it holds a responses table), before a step that updates it
    takes a lock or writes a file there: a folder that is not a study (``/``, the home folder, ``/proc/self``,
    a link to a photos folder) is refused with nothing created in it."""
    study_dir = existing_study_dir(study_dir)
    if is_system_folder(study_dir):
        raise InputError("is the file-system root or the home folder, not a study", file=study_dir)
    try:
        found = table_path(study_dir, "responses")
    except OSError:
        found = None
    if found is None:
        raise InputError(f"not a study: no responses table (responses{'|'.join(TABLE_EXTENSIONS)})", file=study_dir)
    return study_dir


def is_system_folder(folder: str | Path) -> bool:
    """Whether ``folder`` is the file-system root or the user's home folder (never a study or an output)."""
    target = Path(folder).resolve()
    return target == Path(target.anchor) or target == Path.home().resolve()
