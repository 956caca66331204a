"""The optional ``models`` and ``capability`` tables of a study: reading, cross-checking, adding rows.

Both are validated like every table (one line naming file, row and column,
exit 2). ``models`` must agree with the lineage the responses already state:
a model whose responses name base model X cannot be listed with base model Y.
Capability rows are added per (model, task): importing a task a model
already has is refused unless ``replace`` is given, so nothing is silently
overwritten.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.errors import InputError
from judgekit.store.io import conform_frame, read_table, write_table
from judgekit.store.locking import study_lock
from judgekit.store.schema import SCHEMAS
from judgekit.store.layout import study_dir_to_update, table_path

LINEAGE_COLUMNS = ("base_model", "finetune_goal", "mitigation", "goal_task", "goal_target")
# Comparisons the models table states beside lineage (read from it alone: a response column of these names is data).
COMPARISON_COLUMNS = ("compare_with", "checkpoint_of", "step")


def read_models(study_dir: str | Path, responses: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """The study's ``models`` table (None when absent), checked against the responses' lineage columns."""
    path = table_path(study_dir, "models")
    if path is None:
        return None
    models = read_table(path, SCHEMAS["models"])
    if responses is not None:
        _check_lineage_agrees(models, responses, path)
    return models


def _check_lineage_agrees(models: pd.DataFrame, responses: pd.DataFrame, path: Path) -> None:
    listed = models.set_index("model")
    for column in LINEAGE_COLUMNS:
        if column not in responses or column not in listed:
            continue
        stated = responses[["model", column]].dropna().drop_duplicates()
        for model, value in stated.itertuples(index=False):
            if model in listed.index and pd.notna(listed.at[model, column]) and listed.at[model, column] != value:
                position = int(np.flatnonzero((models["model"] == model).to_numpy())[0])
                raise InputError(f"{column} {listed.at[model, column]!r} for model {model!r} disagrees with the "
                                 f"responses table, which says {value!r}", file=path, row=position + 1, column=column)


def lineage_table_counts(study_dir: str | Path) -> list[str]:
    """Validate a study's ``models`` and ``capability`` tables; return their row counts for ``judgekit validate``.

    Raises :class:`judgekit.errors.InputError` (file, row, column) on a bad
    row, a lineage that contradicts the responses, or a capability row whose
    model is neither in the responses nor in the models table.
    """
    responses_path = table_path(study_dir, "responses")
    responses = read_table(responses_path, SCHEMAS["responses"]) if responses_path is not None else None
    models = read_models(study_dir, responses)
    capability = read_capability(study_dir)
    # rows of the table, not models: the responses say how many models there are
    counts = [] if models is None else [f"models table {len(models)} row{'' if len(models) == 1 else 's'}"]
    if capability is None:
        return counts
    known = set(models["model"]) if models is not None else set()
    known |= set(responses["model"].dropna()) if responses is not None and "model" in responses else set()
    if known:
        unknown = ~capability["model"].isin(known).to_numpy()
        if unknown.any():
            position = int(np.flatnonzero(unknown)[0])
            raise InputError(f"model {capability['model'].iloc[position]!r} is in neither the responses nor the models "
                             "table", file=table_path(study_dir, "capability"), row=position + 1, column="model")
    return counts + [f"{len(capability)} capability"]


def model_lineage(responses: pd.DataFrame, models: pd.DataFrame | None) -> pd.DataFrame:
    """One row per model: ``model``, ``base_model``, ``finetune_goal``, ``mitigation`` (null where unknown).

    The models table wins where it states a value; otherwise the responses'
    columns give it. A base model is one whose ``base_model`` is empty or
    itself (:func:`check_lineage_forest` refuses a fine-tune of itself and cycles).
    """
    rows = responses[["model"] + [c for c in LINEAGE_COLUMNS if c in responses]].dropna(subset=["model"])
    lineage = rows.groupby("model", sort=True).first().reindex(columns=list(LINEAGE_COLUMNS))
    if models is not None:
        listed = models.set_index("model").reindex(columns=list(LINEAGE_COLUMNS))
        lineage = listed.combine_first(lineage)
    stated = models.set_index("model") if models is not None else pd.DataFrame(index=pd.Index([], name="model"))
    lineage = lineage.join(stated.reindex(columns=list(COMPARISON_COLUMNS)), how="left")
    lineage = lineage.astype(object).where(lineage.notna(), None)
    return lineage.reset_index().rename(columns={"index": "model"})


COMPARE_SEPARATOR = ";"  # compare_with names several models: "base;middle"


def compared_models(cell: object) -> list[str]:
    """The models one ``compare_with`` cell names (``a;b`` -> ``["a", "b"]``; empty -> none)."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return []
    return [name.strip() for name in str(cell).split(COMPARE_SEPARATOR) if name.strip()]


def _named_models(models: pd.DataFrame, column: str) -> list[tuple[int, str, str]]:
    """(row from 1, model, other) for each model a ``compare_with``/``checkpoint_of`` cell names."""
    cells = models[column]
    if column != "compare_with":
        return [(row, m, o) for row, (m, o) in enumerate(zip(models["model"], cells, strict=True), start=1)
                if pd.notna(o)]
    return [(row, m, o) for row, (m, cell) in enumerate(zip(models["model"], cells, strict=True), start=1)
            for o in compared_models(cell)]


def check_comparisons(models: pd.DataFrame, path: Path, known: set[str]) -> None:
    """Refuse a ``compare_with`` or ``checkpoint_of`` that names an unknown model or the model itself, a pair compared
    both ways, a checkpoint of a checkpoint (a chain or cycle), or a checkpoint without a ``step`` or sharing
    its base's step with another.

    Raises
    ------
    InputError
        Naming the models table, the row and the column.
    """
    for column, verb in (("compare_with", "compared with"), ("checkpoint_of", "a checkpoint of")):
        if column not in models:
            continue
        for row, model, other in _named_models(models, column):
            if other == model:
                raise InputError(f"model {model!r} is {verb} itself: name another model", file=path, row=row,
                                 column=column)
            if other not in known:
                raise InputError(f"{column} names {other!r}, which is not a model of this study (models: "
                                 f"{', '.join(sorted(known)[:8])})", file=path, row=row, column=column)
    if "compare_with" in models:
        rows: dict[tuple[str, str], int] = {}
        for row, model, other in _named_models(models, "compare_with"):
            if (model, other) in rows or (other, model) in rows:
                first = rows.get((model, other), rows.get((other, model)))
                raise InputError(f"{model!r} and {other!r} are compared with each other twice (rows {first} and "
                                 f"{row}): keep one compare_with", file=path, row=row, column="compare_with")
            rows[model, other] = row
    if "checkpoint_of" in models:
        _check_checkpoints(models, path)


def _check_checkpoints(models: pd.DataFrame, path: Path) -> None:
    bases = dict(zip(models["model"], models["checkpoint_of"], strict=True))
    steps = models["step"] if "step" in models else pd.Series(np.nan, index=models.index)
    seen: dict[tuple[str, float], int] = {}
    for row, (model, base, step) in enumerate(zip(models["model"], models["checkpoint_of"], steps, strict=True), start=1):
        if pd.isna(base):
            continue
        if pd.notna(bases.get(base)):
            raise InputError(f"{model!r} is a checkpoint of {base!r}, itself a checkpoint of {bases[base]!r}: name the "
                             "run's base model (the one every checkpoint is compared with)", file=path, row=row,
                             column="checkpoint_of")
        if pd.isna(step):
            raise InputError(f"checkpoint {model!r} has no step: give its training step", file=path, row=row,
                             column="step")
        if (base, float(step)) in seen:
            raise InputError(f"checkpoints of {base!r} at step {step:g} twice (rows {seen[base, float(step)]} and "
                             f"{row})", file=path, row=row, column="step")
        seen[base, float(step)] = row


def check_lineage_forest(study_dir: str | Path, responses: pd.DataFrame, responses_path: Path) -> None:
    """Refuse a lineage that is not a forest: a fine-tune named as its own base, or a cycle (A from B, B from A).

    The lineage is :func:`model_lineage` of the responses and the ``models`` table (which wins where it
    states a base). Each failure names the table, the rows and the column ``base_model``.

    Raises
    ------
    InputError
        A self-parent (the first such row) or a cycle (the rows of its models in the table that states it).
    """
    models_path = table_path(study_dir, "models")
    models = read_table(models_path, SCHEMAS["models"]) if models_path is not None else None
    tables = [(frame, path) for frame, path in ((models, models_path), (responses, responses_path))
              if frame is not None and {"model", "base_model"} <= set(frame.columns)]
    for frame, path in tables:
        # A base model may name itself (an old convention, read as "no base"); a fine-tune of itself may not.
        # Each distinct (model, base_model, finetune_goal) is tested once, at its first row (a million responses
        # hold a few): the first offending combination is at the first offending row.
        lineage = frame[[c for c in ("model", "base_model", "finetune_goal") if c in frame]].drop_duplicates()
        goal = (lineage["finetune_goal"].astype(object) if "finetune_goal" in lineage
                else pd.Series(None, index=lineage.index, dtype=object))
        declared = goal.notna().to_numpy() & (goal.astype(str).str.strip() != "").to_numpy()
        own = (lineage["model"].astype(object) == lineage["base_model"].astype(object)).to_numpy(dtype=bool) & declared
        if own.any():
            first = int(np.flatnonzero(own)[0])
            position = frame.index.get_loc(lineage.index[first])
            raise InputError(f"model {lineage['model'].iloc[first]!r} is a fine-tune (finetune_goal "
                             f"{goal.iloc[first]!r}) of itself: its base_model must be another model",
                             file=path, row=position + 1, column="base_model")
    if models is not None:
        known = set(models["model"]) | (set(responses["model"].dropna()) if "model" in responses else set())
        check_comparisons(models, models_path, known)
    # The models table last: it wins. Each (model, base_model) once, at its last row, in row order: the last row
    # stating a model's base still wins.
    stated = [(pairs["model"].astype(object), pairs["base_model"].astype(object)) for pairs in
              (f[["model", "base_model"]].drop_duplicates(keep="last") for f, _ in reversed(tables))]
    parent = {model: base for models_, bases in stated for model, base in zip(models_, bases, strict=True)
              if isinstance(base, str) and base and base != model and isinstance(model, str)}
    for start in sorted(parent):
        chain, node = [start], parent[start]
        while node in parent and node not in chain:
            chain.append(node)
            node = parent[node]
        if node not in chain:
            continue
        cycle = chain[chain.index(node):]
        frame, path = next(((f, p) for f, p in tables if set(cycle) <= set(f["model"])), tables[-1])
        rows = [int(np.flatnonzero((frame["model"] == m).to_numpy())[0]) + 1 for m in cycle if (frame["model"] == m).any()]
        raise InputError(f"lineage cycle {' -> '.join([*cycle, cycle[0]])} (rows {', '.join(map(str, rows))}): "
                         "following base_model must end at a base model", file=path, row=rows[0], column="base_model")


def finetune_pairs(lineage: pd.DataFrame) -> list[dict[str, str | None]]:
    """(fine-tuned model, its base, goal, mitigation) for every model whose base is another model."""
    pairs = []
    for row in lineage.itertuples(index=False):
        if row.base_model and row.base_model != row.model:
            pairs.append({"model": row.model, "base_model": row.base_model, "finetune_goal": row.finetune_goal,
                          "mitigation": row.mitigation})
    return pairs


def read_capability(study_dir: str | Path) -> pd.DataFrame | None:
    """The study's ``capability`` table, or None when absent."""
    path = table_path(study_dir, "capability")
    return None if path is None else read_table(path, SCHEMAS["capability"])


def add_capability_rows(study_dir: str | Path, rows: pd.DataFrame, *, replace: bool = False, source: str) -> Path:
    """Add imported capability rows to ``STUDY/capability``; refuse tasks already present unless ``replace``.

    ``rows`` is checked against the schema before anything is written; the
    table keeps its format (new tables take the responses table's).
    """
    study_dir = study_dir_to_update(study_dir)
    new = conform_frame(rows, SCHEMAS["capability"], source)
    with study_lock(study_dir, step="capability import"):
        responses = table_path(study_dir, "responses")
        if responses is None:
            raise InputError("no responses table; capability rows belong to a study", file=study_dir)
        _check_models_known(study_dir, responses, new, source)
        existing_path = table_path(study_dir, "capability")
        target = existing_path or study_dir / f"capability{responses.suffix}"
        existing = read_table(existing_path, SCHEMAS["capability"]) if existing_path else None
        combined = new if existing is None else _merge(existing, new, replace=replace, path=target)
        return write_table(combined, target, SCHEMAS["capability"])


def _check_models_known(study_dir: Path, responses_path: Path, rows: pd.DataFrame, source: str) -> None:
    """Rows of a model the study does not know would make ``validate`` fail later: refuse them now."""
    responses = read_table(responses_path, SCHEMAS["responses"])
    models = read_models(study_dir)
    known = set(responses["model"].dropna()) if "model" in responses else set()
    known |= set(models["model"]) if models is not None else set()
    unknown = sorted(set(rows["model"]) - known)
    if known and unknown:
        raise InputError(f"model {unknown[0]!r} is in neither the responses nor the models table of {study_dir} "
                         f"(it has {', '.join(map(repr, sorted(known)[:5]))}{', ...' if len(known) > 5 else ''}); name it with --model",
                         file=source)


def _merge(existing: pd.DataFrame, new: pd.DataFrame, *, replace: bool, path: Path) -> pd.DataFrame:
    new_keys = set(zip(new["model"], new["task"], strict=True))
    clash = [key in new_keys for key in zip(existing["model"], existing["task"], strict=True)]
    if any(clash) and not replace:
        model, task = next(k for k, c in zip(zip(existing["model"], existing["task"], strict=True), clash, strict=True) if c)
        raise InputError(f"already holds capability rows for model {model!r}, task {task!r}; pass --replace to "
                         "replace them", file=path)
    kept = existing[~np.asarray(clash, dtype=bool)]
    return pd.concat([kept, new], ignore_index=True, sort=False)
