"""Output directories: checked before any work, committed as one set, verified when read.

A step that writes an output directory (``stats``, ``figures``, ``report``,
``demo``, ``stress``) first calls :func:`check_output_dir`, so a bad ``--out``
fails before any computation: an output folder is new, empty, or an earlier
output set of the same step (``--force`` merges into any other folder, but
never into ``/``, the home folder or a study and the folders around it). It then writes every file into a staging directory beside the
target and :func:`commit_output_dir` moves the set into place, the manifest
last; the manifest lists the sha256 of every file it commits. Readers call
:func:`verify_output_dir`: a directory whose files do not match its manifest
(a step killed while committing, a file edited by hand, a file from another
run) is refused with one line instead of being read as a mixture.

A staging directory is locked (``flock`` on the directory) while its step
lives, and everything a commit moves aside goes inside it; the next step
writing beside it removes staging directories nobody holds, so a killed
step leaves nothing behind for long.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from judgekit.errors import InputError, is_disk_full
from judgekit.store.manifest import MANIFEST_NAME, sha256_file, write_manifest

FILES_KEY = "files"
STAGING_MARK = ".staging-"


def check_output_dir(out_dir: str | Path, *, kind: str | tuple[str, ...], studies: Iterable[str | Path] = (), force: bool = False) -> Path:
    """Refuse an ``--out`` that cannot hold a fresh output set of ``kind``, before any work.

    An output folder is new, empty, or a previous judgekit output set of the same kind (its
    ``manifest.json`` says ``"step": kind``); any other folder is refused unless ``force``
    (then the set is merged into it, replacing same-named entries). ``/``, the home folder,
    the studies read, their parents and anything inside them are refused even with ``force``.

    Parameters
    ----------
    out_dir : path
        The requested output directory (may not exist yet).
    kind : str or tuple of str
        The step writing it (``stats``, ``figures``, ``report``, ``demo``, ``stress``); a tuple
        also accepts earlier outputs of the other steps named.
    studies : iterable of paths
        Study directories the step reads.
    force : bool
        Accept a non-empty folder that is not an output set of ``kind``.

    Raises
    ------
    InputError
        One line naming ``--out`` and why.
    """
    out_dir = Path(out_dir)
    target = out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("--out exists and is not a directory", file=out_dir)
    refuse_system_folder(out_dir)
    for study in studies:
        study_path = Path(study).resolve()
        if target == study_path or study_path in target.parents or target in study_path.parents:
            raise InputError(f"--out must not be the study directory, lie inside it or contain it ({study}); "
                             "choose another folder", file=out_dir)
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir() or not _accepts_new_folders(existing):
        raise InputError(f"--out is not writable ({existing} does not accept new files)", file=out_dir)
    kinds = (kind,) if isinstance(kind, str) else kind
    if (not force and target.is_dir() and any(target.iterdir()) and output_kind(target) not in kinds
            and not _unfinished_report(target, demo="demo" in kinds)):
        found = output_kind(target)
        what = f"a judgekit {found} output" if found else "a folder that is not a judgekit output"
        raise InputError(f"--out is {what} and not empty; choose a new or empty folder, a previous {kinds[0]} "
                         "output, or pass --force to merge into it", file=out_dir)
    return out_dir


def check_study_out(out_dir: str | Path, *, option: str = "--out") -> Path:
    """Refuse a folder a step would create a study in (``generate``, a ``run`` file's ``[study] out``) unless
    it is new, empty or already a study (a responses or prompts table, a manifest), before any lock or file
    goes there: never ``/``, the home folder, a file, a folder of someone else's files or an unwritable place."""
    from judgekit.store.layout import table_path

    out_dir = Path(out_dir)
    refuse_system_folder(out_dir, option=option)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{option} exists and is not a directory", file=out_dir)
    target = out_dir.resolve()
    if target.is_dir():
        try:
            is_study = (any(table_path(target, name) is not None for name in ("responses", "prompts"))
                        or (target / MANIFEST_NAME).is_file())
            empty = next(target.iterdir(), None) is None
        except OSError as err:
            raise InputError(f"{option} cannot be read ({err.strerror})", file=out_dir) from None
        if not (is_study or empty):
            raise InputError(f"{option} is a folder that is neither a study nor empty; choose a new folder",
                             file=out_dir)
        return out_dir
    existing = next(p for p in target.parents if p.exists())
    if not existing.is_dir() or not _accepts_new_folders(existing):
        raise InputError(f"{option} is not writable ({existing} does not accept new files)", file=out_dir)
    return out_dir


def refuse_system_folder(out_dir: str | Path, *, option: str = "--out") -> None:
    """Refuse ``/`` and the home folder as an output folder, whatever else the step allows (``--force`` too)."""
    target = Path(out_dir).resolve()
    home = Path.home().resolve()
    if target == Path(target.anchor) or target == home:
        raise InputError(f"{option} must not be {'the home folder' if target == home else 'the file-system root'}; "
                         "choose a new folder", file=out_dir)


def _accepts_new_folders(folder: Path) -> bool:
    """Whether a folder can be made in ``folder``: tried, not guessed (``os.access`` says yes to root on a
    read-only or virtual file system such as /proc)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".judgekit-probe-", dir=folder))
    except OSError:
        return False
    return True


def _unfinished_report(folder: Path, *, demo: bool) -> bool:
    """A ``report`` (or ``demo``) folder whose run stopped before its own manifest: it holds only its parts
    (``stats/`` and ``figures/``, each an output of that step; the demo's ``study/``) and staging folders."""
    for entry in folder.iterdir():
        if entry.name.startswith(".") and STAGING_MARK in entry.name:
            continue
        if entry.name in ("stats", "figures") and entry.is_dir() and output_kind(entry) == entry.name:
            continue
        if demo and entry.name == "study" and entry.is_dir() and (entry / "study.json").is_file():
            continue
        return False
    return True


def output_kind(out_dir: Path) -> str | None:
    """The step that wrote ``out_dir`` (``stats``, ``report``...) by its manifest, or None when nothing says.

    A commit killed half-way has removed the old manifest and not yet placed the new one; its manifest
    is still parked in the staging folder beside ``out_dir``, and names the step, so the rerun is accepted.
    """
    out_dir = Path(out_dir).resolve()
    candidates = [out_dir / MANIFEST_NAME, *sorted(out_dir.parent.glob(
        f".{glob.escape(out_dir.name)}{STAGING_MARK}*/.commit-*/{MANIFEST_NAME}"))]
    for path in candidates:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            continue
        step = manifest.get("step") if isinstance(manifest, dict) else None
        if isinstance(step, str):
            return step
    return None


@contextmanager
def staged_output_dir(out_dir: str | Path, manifest: dict) -> Iterator[Path]:
    """Yield a staging directory; on success commit everything written there into ``out_dir``.

    ``manifest`` is written last, with the sha256 of every committed file
    added under ``files``. On failure the staging directory is removed and
    ``out_dir`` is left as it was.
    """
    out_dir = Path(out_dir).resolve()  # "x/.." has no name to stage beside
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_orphan_staging(out_dir)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}{STAGING_MARK}", dir=out_dir.parent))
    except OSError as err:
        if is_disk_full(err):
            raise
        raise InputError(f"--out cannot be written: {err.strerror or err}", file=out_dir) from None
    holder = os.open(staging, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # held while the step lives (a kill releases it): tells others it is no orphan
    try:
        yield staging
        commit_output_dir(staging, out_dir, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(holder)


def remove_orphan_staging(out_dir: Path) -> list[Path]:
    """Delete the staging directories beside ``out_dir`` that no living step holds (left by a killed step)."""
    removed = []
    for staging in out_dir.parent.glob(f".{glob.escape(out_dir.name)}{STAGING_MARK}*"):
        if not staging.is_dir() or staging.is_symlink():
            continue
        holder = os.open(staging, os.O_RDONLY)
        try:
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a running step's
        finally:
            os.close(holder)
        shutil.rmtree(staging, ignore_errors=True)
        removed.append(staging)
    return removed


def commit_output_dir(staging: Path, out_dir: Path, manifest: dict) -> None:
    """Move the files of ``staging`` into ``out_dir`` (replacing same-named entries), then the manifest.

    The manifest is written inside ``staging`` before ``out_dir`` changes, so a full disk fails the step
    with ``out_dir`` as it was; from then on only renames and deletions follow. Directories replaced in
    ``out_dir`` are moved into ``staging``, which its owner removes: a kill leaves nothing in ``out_dir``
    but files of the old set or the new one, and no manifest until the new one lands.
    """
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    entries = sorted(staging.iterdir())
    manifest = {**manifest, FILES_KEY: {str(p.relative_to(staging)): sha256_file(p) for p in files}}
    parked = Path(tempfile.mkdtemp(prefix=".commit-", dir=staging))
    staged_manifest = write_manifest(parked, manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = set(_listed_files(out_dir)) - set(manifest[FILES_KEY])
    # The old manifest goes first: from here until the new one lands, readers refuse the directory.
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for name in stale:  # files of the previous set that this set does not have must not be read with it
        (out_dir / name).unlink(missing_ok=True)
    for entry in entries:
        target = out_dir / entry.name
        if target.is_dir() and not target.is_symlink():
            os.replace(target, parked / entry.name)
        os.replace(entry, target)
    os.replace(staged_manifest, out_dir / MANIFEST_NAME)


def _listed_files(out_dir: Path) -> list[str]:
    try:
        listed = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8")).get(FILES_KEY, {})
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return []
    return [name for name in listed if isinstance(name, str) and ".." not in Path(name).parts]


def verify_output_dir(out_dir: str | Path, *, required: Iterable[str] = ()) -> dict:
    """Check that ``out_dir`` holds one committed output set; return its manifest.

    Raises
    ------
    InputError
        No manifest, a listed file missing or changed, or a required file absent.
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise InputError("has no manifest.json: not a finished judgekit output (was the step killed?); rerun it",
                         file=out_dir)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError("is not valid JSON; rerun the step that wrote this folder", file=manifest_path) from None
    listed = manifest.get(FILES_KEY) if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        raise InputError("lists no files (written by an older judgekit?); rerun the step", file=manifest_path)
    for name in required:
        if name not in listed:
            raise InputError(f"the output set has no {name}; rerun the step", file=out_dir)
    for name, digest in listed.items():
        path = out_dir / name
        if not path.is_file() or sha256_file(path) != digest:
            raise InputError(f"{name} does not match manifest.json (changed, or from another run); rerun the step",
                             file=out_dir)
    return manifest
