"""Human labels for the judge-corrected fine-tune effect: plan which to collect, and bring them back.

``plan-labels`` measures, per model, how far a judge's verdicts stray from the
human labels collected so far (or, for a model with few labels, the judge's
disagreement with humans on coherent and incoherent responses, mixed by that
model's share of incoherent responses), plans the fewest extra labels for the
corrected fine-tune effect's interval to reach a target half-width
(:func:`judgekit.stats.labelplan.plan_additional_labels`), and picks the items
spread proportionally over strata — judges disagree or agree, incoherent or
coherent — so the labelled set stays a representative sample
(:func:`judgekit.stats.labelplan.stratified_selection`). The file it writes is
ready for an annotation tool: fill ``label`` (and ``annotator_id``).

``import-labels`` appends such a file to ``annotations``: validated row by
row, annotator ids kept, never overwriting a label already there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.analysis.inputs import human_reference, judge_codes
from judgekit.capability.tables import finetune_pairs, model_lineage, read_models
from judgekit.errors import InputError
from judgekit.io import read_table, write_table
from judgekit.locking import study_lock
from judgekit.schema import SCHEMAS, Column, TableSchema
from judgekit.stats.labelplan import (
    MAX_BINARY_VARIANCE,
    plan_additional_labels,
    residual_variance_from_disagreement,
    stratified_selection,
    variance_components,
)
from judgekit.study import Study, existing_study_dir, load_study, table_path

# Below this many labelled items a model's residual variance is taken from the judge's measured disagreement.
MIN_LABELS_FOR_VARIANCE = 30
REQUEST_COLUMNS = ["item_id", "model", "stratum", "prompt", "response", "annotator_id", "label"]


@dataclass(frozen=True)
class ModelPlan:
    model: str
    n_items: int
    n_labelled: int
    additional: int
    variance_source: str


def _judge_verdicts(study: Study, judge: str | None) -> tuple[str, np.ndarray, pd.DataFrame]:
    codes = judge_codes(study)
    if codes.shape[1] == 0:
        raise InputError("no judgments; run `judgekit judge STUDY --judge ID` first", file=study.path)
    if judge is None:
        if codes.shape[1] != 1:
            raise InputError(f"the study has several judges {sorted(codes.columns)}; choose one with --judge")
        judge = str(codes.columns[0])
    if judge not in codes:
        raise InputError(f"judge {judge!r} has no judgments in this study (has {sorted(codes.columns)})")
    return judge, codes[judge].to_numpy(dtype=float), codes


def _incoherent(study: Study) -> np.ndarray:
    if study.flags is None:
        return np.zeros(len(study.responses), dtype=bool)
    combined = study.flags[study.flags["detector"] == "incoherent"].set_index("item_id")["flagged"]
    return combined.reindex(study.responses["item_id"]).fillna(False).to_numpy(dtype=bool)


def disagreement_rates(reference: np.ndarray, verdict: np.ndarray, incoherent: np.ndarray) -> tuple[float, float]:
    """The judge's disagreement with humans on coherent and on incoherent labelled items (0.25 where none)."""
    both = ~np.isnan(reference) & ~np.isnan(verdict)
    rates = []
    for mask in (~incoherent, incoherent):
        rated = both & mask
        rates.append(float(np.mean(reference[rated] != verdict[rated])) if rated.any() else MAX_BINARY_VARIANCE)
    return rates[0], rates[1]


def model_variance_components(reference, verdict, incoherent, mask, rates) -> tuple[float, float, int, int, str]:
    """(residual variance, prediction variance, labelled, items, source) of one model's PPI++ rate."""
    usable = mask & ~np.isnan(verdict)
    labelled = usable & ~np.isnan(reference)
    n_labelled, n_items = int(labelled.sum()), int(usable.sum())
    unlabelled = verdict[usable & np.isnan(reference)]
    if n_labelled >= MIN_LABELS_FOR_VARIANCE:
        parts = variance_components(reference[labelled], verdict[labelled], unlabelled)
        return parts.residual, parts.prediction, n_labelled, n_items, f"measured on {n_labelled} labels"
    share = float(incoherent[usable].mean()) if n_items else 0.0
    residual = residual_variance_from_disagreement(rates[0], rates[1], share)
    prediction = float(np.var(unlabelled)) if len(unlabelled) else 0.0
    return residual, prediction, n_labelled, n_items, "judge's disagreement with humans (few labels)"


def plan_labels(study: Study, *, target_halfwidth: float, budget: int | None = None, judge: str | None = None,
                seed: int = 0) -> tuple[list[ModelPlan], pd.DataFrame, list[str]]:
    """Per model the plan, the items to label (``REQUEST_COLUMNS``), and one summary line per comparison."""
    if "model" not in study.responses:
        raise InputError("responses have no model column: there is no fine-tune effect to plan for", file=study.path)
    judge, verdict, codes = _judge_verdicts(study, judge)
    reference, _ = human_reference(study)
    incoherent = _incoherent(study)
    pairs = finetune_pairs(model_lineage(study.responses, read_models(study.path, study.responses)))
    if not pairs:
        raise InputError("no fine-tuned model with its base in the study (base_model column or models table)")
    rates = disagreement_rates(reference, verdict, incoherent)
    models = study.responses["model"].to_numpy()
    additional: dict[str, int] = {}
    plans: dict[str, ModelPlan] = {}
    lines = []
    for pair in pairs:
        names = [pair["model"], pair["base_model"]]
        parts = [model_variance_components(reference, verdict, incoherent, models == name, rates) for name in names]
        plan = plan_additional_labels([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts],
                                      [p[3] for p in parts], target_halfwidth=target_halfwidth, budget=budget)
        for name, part, extra in zip(names, parts, plan.additional, strict=True):
            additional[name] = max(additional.get(name, 0), int(extra))
            plans[name] = ModelPlan(name, part[3], part[2], additional[name], part[4])
        lines.append(f"{pair['model']} vs {pair['base_model']} ({judge}): half-width now {plan.halfwidth_now:.4f}, "
                     f"planned {plan.halfwidth_planned:.4f} (target {target_halfwidth}) with +{int(plan.additional[0])}"
                     f" / +{int(plan.additional[1])} labels" + (f"; {plan.reason}" if plan.reason else ""))
    requests = _select_items(study, codes, verdict, reference, incoherent, additional, seed)
    return list(plans.values()), requests, lines


def _select_items(study: Study, codes: pd.DataFrame, verdict, reference, incoherent, additional, seed) -> pd.DataFrame:
    verdicts = codes.to_numpy(dtype=float)
    judged = ~np.isnan(verdicts)
    disagree = (judged.sum(axis=1) >= 2) & (np.nanmax(np.where(judged, verdicts, -np.inf), axis=1)
                                            != np.nanmin(np.where(judged, verdicts, np.inf), axis=1))
    judges_part = [("judges disagree|" if d else "judges agree|") if codes.shape[1] >= 2 else "" for d in disagree]
    strata = np.array([j + ("incoherent" if i else "coherent") for j, i in zip(judges_part, incoherent, strict=True)])
    rng = np.random.default_rng(seed)
    responses = study.responses
    chosen = []
    for model in sorted(additional):
        candidates = np.flatnonzero((responses["model"].to_numpy() == model) & ~np.isnan(verdict) & np.isnan(reference))
        picked = candidates[stratified_selection(strata[candidates], min(additional[model], len(candidates)), rng=rng)]
        chosen.append(picked)
    rows = np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)
    return pd.DataFrame({"item_id": responses["item_id"].to_numpy()[rows], "model": responses["model"].to_numpy()[rows],
                         "stratum": strata[rows].astype(str), "prompt": responses["prompt"].to_numpy()[rows],
                         "response": responses["response"].to_numpy()[rows], "annotator_id": None, "label": None},
                        columns=REQUEST_COLUMNS)


def plan_labels_step(study_dir: Path, out_path: Path, *, target_halfwidth: float, budget: int | None = None,
                     judge: str | None = None, seed: int = 0) -> list[str]:
    """Plan labels for ``study_dir`` and write the items to ``out_path`` (.csv/.jsonl/.parquet)."""
    if out_path.suffix not in (".csv", ".jsonl", ".parquet"):
        raise InputError("the label requests file must end in .csv, .jsonl or .parquet", file=out_path)
    if out_path.exists():
        raise InputError("already exists; choose a new file (label requests are never overwritten)", file=out_path)
    study = load_study(study_dir)
    plans, requests, lines = plan_labels(study, target_halfwidth=target_halfwidth, budget=budget, judge=judge, seed=seed)
    # Spreadsheets run cells starting with = + - @ as formulas: the responses are adversarial text.
    write_table(requests, out_path, neutralise_formulas=out_path.suffix == ".csv")
    for plan in plans:
        lines.append(f"  {plan.model}: {plan.n_labelled} of {plan.n_items} judged items labelled, label "
                     f"{plan.additional} more (residual variance from {plan.variance_source})")
    lines.append(f"wrote {len(requests)} items to label to {out_path}")
    return lines


IMPORTED_LABELS = TableSchema(
    name="labels",
    key=("item_id", "annotator_id"),
    doc="Labels coming back from an annotation tool: the plan-labels file with label (and annotator_id) filled.",
    columns=(
        Column("item_id", "id", "Item labelled."),
        Column("annotator_id", "category", "Who labelled it; empty cells take --annotator.", nullable=True),
        Column("label", "category", "A label from the study's declared set; empty = not labelled yet.", nullable=True),
    ),
)


def import_labels_step(study_dir: Path, labels_path: Path, *, annotator: str | None = None) -> str:
    """Append the filled rows of ``labels_path`` to ``STUDY/annotations``; nothing already there is changed."""
    study_dir = existing_study_dir(study_dir)
    incoming = read_table(labels_path, IMPORTED_LABELS)
    if annotator is not None:
        incoming["annotator_id"] = incoming["annotator_id"].where(incoming["annotator_id"].notna(), annotator)
    with study_lock(study_dir, step="import-labels"):
        study = load_study(study_dir)
        new = _checked_labels(incoming, study, labels_path)
        existing = study.annotations
        combined = new if existing is None else pd.concat([existing, new], ignore_index=True)
        path = table_path(study_dir, "annotations") or study_dir / f"annotations{study.storage_format()}"
        write_table(combined, path, SCHEMAS["annotations"])
    skipped = len(incoming) - len(new)
    return f"appended {len(new)} labels to {path}" + (f" ({skipped} rows without a label skipped)" if skipped else "")


def _checked_labels(incoming: pd.DataFrame, study: Study, path: Path) -> pd.DataFrame:
    filled = incoming["label"].notna().to_numpy()
    known_items = set(study.responses["item_id"])
    allowed = set(study.metadata.annotation_labels.labels)
    already = set()
    if study.annotations is not None:
        already = set(zip(study.annotations["item_id"], study.annotations["annotator_id"], strict=True))
    for position in np.flatnonzero(filled):
        row = incoming.iloc[position]
        problem = _label_problem(row, known_items, allowed, already)
        if problem is not None:
            raise InputError(problem[1], file=path, row=int(position) + 1, column=problem[0])
        already.add((row["item_id"], row["annotator_id"]))  # the same label twice in one file is a duplicate too
    return incoming.loc[filled, ["item_id", "annotator_id", "label"]].reset_index(drop=True)


def _label_problem(row: pd.Series, known_items: set, allowed: set, already: set) -> tuple[str, str] | None:
    """(column, message) of the first thing wrong with one filled label row, or None."""
    if row["item_id"] not in known_items:
        return "item_id", f"item_id {row['item_id']!r} is not in the study's responses"
    if row["annotator_id"] is None:
        return "annotator_id", "is empty; fill it or pass --annotator"
    if row["label"] not in allowed:
        return "label", f"label {row['label']!r} is not in the declared label set {sorted(allowed)}"
    if (row["item_id"], row["annotator_id"]) in already:
        return "annotator_id", (f"annotator {row['annotator_id']!r} already labelled item {row['item_id']!r}; "
                                "annotations are append-only")
    return None
