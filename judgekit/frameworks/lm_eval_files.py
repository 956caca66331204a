"""Where lm-evaluation-harness put its files, from what the user passed as ``--output_path``.

``EvaluationTracker.save_results_aggregated`` and ``save_results_samples``
(``lm_eval/loggers/evaluation_tracker.py``, lm-eval 0.4.13) write, for one run
stamped ``<date>`` (``datetime.now().isoformat()`` with ``:`` as ``-``):

* ``--output_path x.json`` -> ``x_<date>.json`` and ``samples_<task>_<date>.jsonl`` beside it;
* ``--output_path DIR`` -> ``DIR/<model>/results_<date>.json`` and ``DIR/<model>/samples_<task>_<date>.jsonl``.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from judgekit.errors import InputError

_DATE = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?"
_STAMPED = re.compile(rf"^(?P<stem>.+)_(?P<date>{_DATE})\.json$")
_SAMPLES = re.compile(rf"^samples_(?P<task>.+)_(?P<date>{_DATE})\.jsonl$")


def results_file(path: Path) -> Path:
    """The results JSON lm-eval wrote for ``path``: the file itself, ``x_<date>.json`` for ``x.json``, or the one
    ``results_<date>.json`` in a folder (or its model subfolder). Several runs are an error naming them."""
    if path.is_file():
        return path
    if path.suffix == ".json":
        candidates = sorted(p for p in path.parent.glob(f"{glob.escape(path.stem)}_*.json")
                            if (m := _STAMPED.match(p.name)) and m["stem"] == path.stem)
        hint = f"lm-eval writes {path.stem}_<date>.json for --output_path {path.name}"
    elif path.is_dir():
        candidates = sorted([*path.glob("results_*.json"), *path.glob("*/results_*.json")])
        candidates = [p for p in candidates if _STAMPED.match(p.name)]
        hint = "lm-eval writes <model>/results_<date>.json under an --output_path folder"
    else:
        raise InputError("file not found", file=path)
    if not candidates:
        raise InputError(f"no results file found ({hint})", file=path)
    if len(candidates) > 1:
        names = ", ".join(str(p) for p in candidates[:5]) + (", ..." if len(candidates) > 5 else "")
        raise InputError(f"{len(candidates)} runs' results found ({names}); pass the one to import", file=path)
    return candidates[0]


def sample_files(results: Path, given: list[Path]) -> dict[str, Path]:
    """task -> per-sample log: ``given`` ones, else the ``samples_<task>_<date>.jsonl`` of the results' run."""
    if given:
        files = given
    else:
        stamped = _STAMPED.match(results.name)
        date = stamped["date"] if stamped else None
        files = sorted(results.parent.glob(f"samples_*_{date}.jsonl")) if date else []
    out = {}
    for file in files:
        match = _SAMPLES.match(file.name)
        if match is None:
            raise InputError("cannot read the task from the name; per-sample logs are named "
                             "samples_<task>_<date>.jsonl", file=file)
        if match["task"] in out:
            raise InputError(f"two per-sample logs of task {match['task']!r} ({out[match['task']].name})", file=file)
        out[match["task"]] = file
    return out


def run_results(samples: Path) -> Path | None:
    """The results file of the run that wrote per-sample log ``samples`` (same folder, same date), if there."""
    match = _SAMPLES.match(samples.name)
    if match is None:
        return None
    found = [p for p in samples.parent.glob(f"*_{glob.escape(match['date'])}.json") if _STAMPED.match(p.name)]
    return found[0] if len(found) == 1 else None
