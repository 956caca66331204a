"""Human labels for the judge-corrected fine-tune effect: plan which to collect, and bring them back.

``plan-labels`` plans, per fine-tune comparison whose two models have
responses, on exactly the estimator ``stats`` reports for the corrected
effect (:func:`judgekit.stats.ppi.ppi_clustered` on the judged responses to
the prompts both models answered): its current half-width is the stats row's,
and its curve re-tunes the PPI++ weights at each number of labelled prompts
(:func:`judgekit.stats.labelplan.plan_unit_labels`), so it falls
monotonically. The unit is the prompt: both models' responses (every sample)
to a chosen prompt are labelled, so their residuals pair. A target already
met asks for 0 labels. Prompts are drawn at random within strata — judges
disagree or agree, incoherent or coherent — so each has the same inclusion
probability (:func:`judgekit.stats.labelplan.stratified_selection`). The
file it writes is ready for an annotation tool: fill ``label`` (and
``annotator_id``).

``import-labels`` appends such a file to ``annotations``: validated row by
row, annotator ids kept, never overwriting a label already there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.analysis.inputs import effect_clusters, judge_codes, prompt_keys, study_arrays
from judgekit.capability.tables import finetune_pairs, model_lineage, read_models
from judgekit.errors import InputError
from judgekit.io import read_table, write_table
from judgekit.locking import study_lock
from judgekit.schema import SCHEMAS, Column, TableSchema
from judgekit.stats.labelplan import UnitPlan, plan_unit_labels, stratified_selection
from judgekit.study import Study, existing_study_dir, load_study, table_path

REQUEST_COLUMNS = ["item_id", "model", "stratum", "prompt", "response", "annotator_id", "label"]


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


def comparison_plan(reference: np.ndarray, verdict: np.ndarray, keys: np.ndarray, clusters: np.ndarray,
                    treated: np.ndarray, control: np.ndarray, *, target_halfwidth: float, level: float = 0.95,
                    budget: int | None = None) -> tuple[np.ndarray, UnitPlan] | None:
    """The items of a fine-tune comparison's corrected effect (judged responses of both models to the prompts both
    answered, as ``stats`` takes them) and its plan in prompts; None when fewer than 2 prompts are shared."""
    in_pair = treated | control
    answered = pd.DataFrame({"key": keys[in_pair], "treated": treated[in_pair]}).groupby("key")["treated"].nunique()
    shared = pd.Series(keys).isin(answered.index[answered == 2]).to_numpy()
    items = in_pair & shared & ~np.isnan(verdict)
    if len(np.unique(keys[items])) < 2:
        return None
    plan = plan_unit_labels(reference[items], verdict[items], keys[items], clusters[items],
                            treated=treated[items], target_halfwidth=target_halfwidth, level=level, budget=budget)
    return items, plan


def plan_labels(study: Study, *, target_halfwidth: float, budget: int | None = None, judge: str | None = None,
                seed: int = 0, explain: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The items to label (``REQUEST_COLUMNS``: every response of the chosen prompts, both models) and the lines
    to print: per comparison with responses from both models and per outcome the judge rates (harmful compliance
    on harmful prompts, over-refusal on benign ones), the half-width now (the stats row's), planned and the prompts
    to add; with ``explain`` the planning curve."""
    if "model" not in study.responses:
        raise InputError("responses have no model column: there is no fine-tune effect to plan for", file=study.path)
    judge, _, codes = _judge_verdicts(study, judge)
    data = study_arrays(study, "include")
    responses = data.responses
    present = set(responses["model"].dropna())
    pairs = [p for p in finetune_pairs(model_lineage(responses, read_models(study.path, responses)))
             if {p["model"], p["base_model"]} <= present]
    if not pairs:
        raise InputError("no fine-tuned model with its base among the models that have responses "
                         "(base_model column or models table)")
    keys = prompt_keys(responses)
    clusters = effect_clusters(responses, keys)
    models = responses["model"].to_numpy()
    rng = np.random.default_rng(seed)
    strata = _strata(codes, _incoherent(study))
    chosen: set[str] = set()
    requested = np.zeros(len(responses), dtype=bool)
    lines = []
    for pair in pairs:
        treated, control = models == pair["model"], models == pair["base_model"]
        for view in data.outcomes:
            name = f"{pair['model']} vs {pair['base_model']} ({judge}, {view.outcome.name})"
            if judge not in view.judges:
                continue  # the judge does not rate this outcome
            scope = view.items & data.policy_mask
            planned = comparison_plan(view.reference, view.judges[judge].to_numpy(dtype=float), keys, clusters,
                                      treated & scope, control & scope, target_halfwidth=target_halfwidth,
                                      budget=budget)
            if planned is None:
                lines.append(f"{name}: fewer than 2 prompts answered by both models; nothing to plan")
                continue
            items, plan = planned
            lines.append(f"{name}: half-width now {plan.halfwidth_now:.4f} ({plan.n_labelled} of {plan.n_units} "
                         f"shared prompts labelled for both models), planned {plan.halfwidth_planned:.4f} (target "
                         f"{target_halfwidth}) with +{plan.additional} prompts"
                         + (f"; {plan.reason}" if plan.reason else ""))
            if explain:
                lines += _explain(plan)
            new = _pick_prompts(keys, items, view.reference, strata, plan.additional, chosen, rng)
            chosen |= new
            requested |= items & pd.Series(keys).isin(new).to_numpy() & np.isnan(view.reference)
    rows = np.flatnonzero(requested)
    requests = pd.DataFrame({"item_id": responses["item_id"].to_numpy()[rows], "model": models[rows],
                             "stratum": strata[rows].astype(str), "prompt": responses["prompt"].to_numpy()[rows],
                             "response": responses["response"].to_numpy()[rows], "annotator_id": None, "label": None},
                            columns=REQUEST_COLUMNS)
    return requests, lines


def _explain(plan: UnitPlan) -> list[str]:
    """The planning curve at about a dozen points: labelled prompts -> predicted half-width."""
    grid = plan.curve
    picks = np.unique(np.linspace(0, len(grid) - 1, min(len(grid), 12)).round().astype(int))
    return ["  curve (prompts labelled for both models -> predicted half-width; PPI++ weights re-tuned at each):"] + [
        f"    {int(grid[k, 0]):>6} -> {grid[k, 1]:.4f}" for k in picks]


def _strata(codes: pd.DataFrame, incoherent: np.ndarray) -> np.ndarray:
    verdicts = codes.to_numpy(dtype=float)
    judged = ~np.isnan(verdicts)
    disagree = (judged.sum(axis=1) >= 2) & (np.nanmax(np.where(judged, verdicts, -np.inf), axis=1)
                                            != np.nanmin(np.where(judged, verdicts, np.inf), axis=1))
    judges_part = [("judges disagree|" if d else "judges agree|") if codes.shape[1] >= 2 else "" for d in disagree]
    return np.array([j + ("incoherent" if i else "coherent") for j, i in zip(judges_part, incoherent, strict=True)])


def _pick_prompts(keys, items, reference, strata, count, already: set[str], rng) -> set[str]:
    """``count`` prompts not yet labelled for both models, drawn stratified (a prompt's stratum: its first item's
    whose label is missing), prompts another comparison already asked for first."""
    frame = pd.DataFrame({"key": keys[items], "missing": np.isnan(reference[items]), "stratum": strata[items]})
    open_prompts = frame[frame["missing"]].groupby("key", sort=True)["stratum"].first()
    reused = [k for k in open_prompts.index if k in already][:count]
    rest = open_prompts.drop(index=reused)
    picked = stratified_selection(rest.to_numpy(), min(count - len(reused), len(rest)), rng=rng)
    return set(reused) | set(rest.index[picked])


def plan_labels_step(study_dir: Path, out_path: Path, *, target_halfwidth: float, budget: int | None = None,
                     judge: str | None = None, seed: int = 0, explain: bool = False) -> list[str]:
    """Plan labels for ``study_dir`` and write the items to ``out_path`` (.csv/.jsonl/.parquet)."""
    if out_path.suffix not in (".csv", ".jsonl", ".parquet"):
        raise InputError("the label requests file must end in .csv, .jsonl or .parquet", file=out_path)
    if out_path.exists():
        raise InputError("already exists; choose a new file (label requests are never overwritten)", file=out_path)
    study = load_study(study_dir)
    requests, lines = plan_labels(study, target_halfwidth=target_halfwidth, budget=budget, judge=judge, seed=seed,
                                  explain=explain)
    # Spreadsheets run cells starting with = + - @ as formulas: the responses are adversarial text.
    write_table(requests, out_path, neutralise_formulas=out_path.suffix == ".csv")
    lines.append(f"wrote {len(requests)} items to label to {out_path} (every response of each chosen prompt, both "
                 "models, drawn at random within strata)")
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
