"""Human labels for the judge-corrected fine-tune effect: plan which to collect, and bring them back.

``plan-labels`` plans, per fine-tune comparison whose two models have
responses, on exactly the estimator ``stats`` reports for the corrected
effect (:func:`judgekit.stats.ppi.ppi_clustered` on the judged responses to
the prompts both models answered): its current half-width is the stats row's,
and its curve re-tunes the PPI++ weights at each number of labelled prompts
(:func:`judgekit.stats.labelplan.plan_unit_labels`), so it falls
monotonically. The unit is the prompt: both models' responses (every sample)
to a chosen prompt are labelled, so their residuals pair. A target already
met asks for 0 labels and writes no file. With ``strategy="random"`` prompts
are drawn at random within strata — judges disagree or agree, incoherent or
coherent, and the quartile of the judge's uncertainty — so each has about the
same inclusion probability (:func:`judgekit.stats.labelplan.stratified_selection`). With
``strategy="active"`` each open prompt is drawn with a probability that
mixes uniform and the judge's uncertainty on it
(:func:`judgekit.stats.labelplan.active_inclusion_probabilities`, the uniform
share raised for small draws by
:func:`judgekit.stats.labelplan.defensive_uniform_share`), the planned count
exactly, by systematic sampling along the uncertainty
(:func:`judgekit.stats.labelplan.systematic_draw`), where that pays: for a target, a comparison whose active plan
needs under ``MIN_ACTIVE_SAVING`` fewer prompts than a random one is drawn at random instead, and its line says so
(with a budget the count is the user's and the draw stays active).
Either way the file records per row
the prompt (``unit``), the ``strategy`` and the ``inclusion_probability`` (an
item requested by several comparisons: the probability any of their draws
took it). The file is ready for an annotation tool: fill ``label`` (and
``annotator_id``).

``import-labels`` appends such a file to ``annotations``: validated row by
row, annotator ids kept, never overwriting a label already there, with the
labelling design recorded (``design``: plan, random or convenience; see
``docs/guides/labels.md``). Under a plan it checks that every drawn prompt
was labelled in full, and keeps the inclusion probabilities the corrected
rows weight by (an active plan, or a plan labelled in part under
``allow_partial``: two-phase).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.analysis.inputs import effect_clusters, judge_codes, prompt_keys, study_arrays
from judgekit.store.lineage import finetune_pairs, model_lineage, read_models
from judgekit.analysis.label_plan import NOTHING_TO_PLAN, comparison_plan
from judgekit.errors import InputError
from judgekit.store.io import read_table, write_table
from judgekit.store.layout import study_dir_to_update
from judgekit.store.locking import study_lock
from judgekit.store.schema import LABEL_DESIGNS, SCHEMAS, Column, TableSchema
from judgekit.stats.labelplan import (UnitPlan, active_inclusion_probabilities, defensive_uniform_share,
                                      stratified_selection, systematic_draw)
from judgekit.store.study import Study, load_study, table_path

# For a target, an active draw must save this share of the prompts a random draw needs, else the plan is random
# (see _active_or_random).
MIN_ACTIVE_SAVING = 0.10
# unit: the prompt (the labelling unit: every response of both models to it is requested); strategy and
# inclusion_probability record the draw, so import-labels can check the plan was followed and weight by it.
REQUEST_COLUMNS = ["item_id", "unit", "model", "stratum", "prompt", "response", "annotator_id", "label", "strategy",
                   "inclusion_probability"]
STRATEGIES = ("random", "active")


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


def plan_labels(study: Study, *, target_halfwidth: float, budget: int | None = None, judge: str | None = None,
                seed: int = 0, explain: bool = False, strategy: str = "random") -> tuple[pd.DataFrame, list[str]]:
    """The items to label (``REQUEST_COLUMNS``: every response of the chosen prompts, both models) and the lines
    to print: per comparison with responses from both models and per outcome the judge rates (harmful compliance
    on harmful prompts, over-refusal on benign ones), the half-width now (the stats row's), planned and the prompts
    to add; with ``explain`` the planning curve. ``strategy="active"`` adds the column ``inclusion_probability``."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown label strategy {strategy!r}; choose one of {list(STRATEGIES)}")
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
    not_drawn = np.ones(len(responses))  # active: probability no comparison's draw took the item
    drawn_actively = np.zeros(len(responses), dtype=bool)
    uncertainty = _uncertainty(codes, data.p_unsafe, judge, _incoherent(study))
    lines = []
    for pair in pairs:
        treated, control = models == pair["model"], models == pair["base_model"]
        for view in data.outcomes:
            name = f"{pair['model']} vs {pair['base_model']} ({judge}, {view.outcome.name})"
            if judge not in view.judges:
                continue  # the judge does not rate this outcome
            scope = view.items & data.policy_mask

            def planned_by(how: str, view=view, scope=scope, treated=treated, control=control):
                return comparison_plan(view.reference, view.judges[judge].to_numpy(dtype=float), keys, clusters,
                                       treated & scope, control & scope, target_halfwidth=target_halfwidth,
                                       budget=budget, inclusion=data.inclusion,
                                       p_unsafe=_judge_probability(data, view, judge), strategy=how,
                                       uncertainty=uncertainty)

            planned = planned_by(strategy)
            if planned is None:
                lines.append(f"{name}: {NOTHING_TO_PLAN}")
                continue
            items, plan = planned
            why_random = ""
            if strategy == "active" and budget is None:
                items, plan, why_random = _active_or_random(planned, planned_by("random"))
            lines.append(f"{name}: half-width now {plan.halfwidth_now:.4f} ({plan.n_labelled} of {plan.n_units} "
                         f"shared prompts labelled for both models), planned {plan.halfwidth_planned:.4f} (target "
                         f"{target_halfwidth}) with +{plan.additional} prompts"
                         + "".join(f"; {r}" for r in (plan.reason, why_random) if r))
            if explain:
                lines += _explain(plan)
            if plan.strategy == "active":
                probability, new = _draw_active(keys, items, view.reference, uncertainty, plan.additional, rng)
            else:
                probability, new = _pick_prompts(keys, items, view.reference, strata, uncertainty, plan.additional,
                                                 chosen, rng)
            open_items = items & np.isnan(view.reference)
            not_drawn[open_items] *= 1 - probability.reindex(keys[open_items]).fillna(0.0).to_numpy()
            chosen |= new
            drawn_now = items & pd.Series(keys).isin(new).to_numpy() & np.isnan(view.reference)
            requested |= drawn_now
            drawn_actively |= drawn_now & (plan.strategy == "active")
    rows = np.flatnonzero(requested)
    requests = pd.DataFrame({"item_id": responses["item_id"].to_numpy()[rows], "unit": keys[rows],
                             "model": models[rows], "stratum": strata[rows].astype(str),
                             "prompt": responses["prompt"].to_numpy()[rows],
                             "response": responses["response"].to_numpy()[rows], "annotator_id": None, "label": None,
                             "strategy": np.where(drawn_actively[rows], "active", "random"),
                             "inclusion_probability": 1 - not_drawn[rows]},
                            columns=REQUEST_COLUMNS)
    return requests, lines


def _active_or_random(active: tuple[np.ndarray, UnitPlan], random: tuple[np.ndarray, UnitPlan]
                      ) -> tuple[np.ndarray, UnitPlan, str]:
    """(items, plan, why it is random) of the plan to draw when active was asked for a target (not a budget, whose
    count is the user's): the active one only where it pays, needing at least ``MIN_ACTIVE_SAVING`` fewer prompts
    than a random draw for the target.

    Where it does not pay, the random draw gives as much for as many labels and the unweighted estimate, whose
    interval moves less with the draw than the inverse-probability-weighted one: at target 0.10 in
    ``analyses/label_designs.py`` (200 studies, the draw's weights then worth 30 prompts, uniform share 0.5) the two
    asked for a median 33 and 36 prompts, and the active plans landed within 20% of the target in 0.812 of studies
    against random's 0.922."""
    items, plan = active
    if plan.additional == 0:
        return items, plan, ""
    other = random[1]
    if plan.reachable and (not other.reachable or plan.additional <= (1 - MIN_ACTIVE_SAVING) * other.additional):
        return items, plan, ""
    return (*random, f"active does not pay here (+{plan.additional} prompts active, +{other.additional} random; it "
                     f"must save {MIN_ACTIVE_SAVING:.0%} of the prompts): drawn at random, the unweighted estimate")


def _judge_probability(data, view, judge: str) -> np.ndarray | None:
    """The judge's P(unsafe) per item where the outcome is harmful compliance (what P(unsafe) is about), else None."""
    if view.outcome.name != "harmful_compliance" or judge not in data.p_unsafe:
        return None
    return data.p_unsafe[judge].to_numpy(dtype=float)


def _explain(plan: UnitPlan) -> list[str]:
    """What the unlabelled prompts' labels were taken to be, and the planning curve at about a dozen points:
    labelled prompts -> predicted half-width."""
    grid = plan.curve
    picks = np.unique(np.linspace(0, len(grid) - 1, min(len(grid), 12)).round().astype(int))
    design = ("drawn by the active plan's inclusion probabilities, labels inverse-probability weighted "
              "(Horvitz-Thompson variance)" if plan.strategy == "active" else "drawn at random")
    return ([f"  labels of the prompts not labelled yet: {plan.label_model}"] if plan.label_model else []) + [
        f"  curve (prompts labelled for both models, {design} -> predicted half-width; PPI++ weights re-tuned at "
        "each):"] + [f"    {int(grid[k, 0]):>6} -> {grid[k, 1]:.4f}" for k in picks]


def _strata(codes: pd.DataFrame, incoherent: np.ndarray) -> np.ndarray:
    verdicts = codes.to_numpy(dtype=float)
    judged = ~np.isnan(verdicts)
    disagree = (judged.sum(axis=1) >= 2) & (np.nanmax(np.where(judged, verdicts, -np.inf), axis=1)
                                            != np.nanmin(np.where(judged, verdicts, np.inf), axis=1))
    judges_part = [("judges disagree|" if d else "judges agree|") if codes.shape[1] >= 2 else "" for d in disagree]
    return np.array([j + ("incoherent" if i else "coherent") for j, i in zip(judges_part, incoherent, strict=True)])


def _uncertainty(codes: pd.DataFrame, p_unsafe: pd.DataFrame, judge: str, incoherent: np.ndarray) -> np.ndarray:
    """Per item, where the judge is likely wrong: the judges' disagreement (share of judges against the majority,
    times 2) plus the judge's closeness to an even call ``1 - 2|p_unsafe - 0.5|`` (where it gives P(unsafe)) plus
    1 for an incoherent response; each part in [0, 1]."""
    verdicts = codes.to_numpy(dtype=float)
    judged = (~np.isnan(verdicts)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unsafe_share = np.where(judged > 0, np.nansum(verdicts, axis=1) / np.maximum(judged, 1), 0.0)
    disagreement = 2 * np.minimum(unsafe_share, 1 - unsafe_share)
    closeness = np.zeros(len(verdicts))
    if judge in p_unsafe:
        p = p_unsafe[judge].to_numpy(dtype=float)
        closeness = np.where(np.isnan(p), 0.0, 1 - 2 * np.abs(np.nan_to_num(p) - 0.5))
    return disagreement + closeness + incoherent.astype(float)


def _draw_active(keys, items, reference, uncertainty, count, rng) -> tuple[pd.Series, set[str]]:
    """(inclusion probability per open prompt, the prompts drawn): probabilities mixing uniform and the prompt's mean
    uncertainty over its unlabelled items (the uniform share raised for small draws), ``count`` prompts drawn by
    systematic sampling along that uncertainty: fixed in number and spread over it, so the weighted estimator's
    variance estimate moves less with the draw (Poisson sampling before: 0.705 of redraws within 20% of their
    median at target 0.10)."""
    frame = pd.DataFrame({"key": keys[items], "missing": np.isnan(reference[items]), "u": uncertainty[items]})
    per_prompt = frame[frame["missing"]].groupby("key", sort=True)["u"].mean()
    scores, wanted = per_prompt.to_numpy(), min(count, len(per_prompt))
    share = defensive_uniform_share(scores, wanted)
    probability = pd.Series(active_inclusion_probabilities(scores, wanted, uniform_share=share),
                            index=per_prompt.index)
    drawn = systematic_draw(probability.to_numpy(), order=scores, rng=rng)
    return probability, set(per_prompt.index[drawn])


def _pick_prompts(keys, items, reference, strata, uncertainty, count, already: set[str], rng
                  ) -> tuple[pd.Series, set[str]]:
    """(per open prompt its probability of being drawn, the ``count`` prompts drawn): prompts not yet labelled for
    both models, drawn stratified (a prompt's stratum: its first item's whose label is missing, split by the quartile
    of the judge's uncertainty, mean over its open items, among the open prompts), prompts another comparison already
    asked for first (their probability is then 1)."""
    frame = pd.DataFrame({"key": keys[items], "missing": np.isnan(reference[items]), "stratum": strata[items],
                          "u": uncertainty[items]})
    open_frame = frame[frame["missing"]].groupby("key", sort=True)
    # Proportional allocation within uncertainty quartiles fixes how many prompts the draw takes where the judge is
    # unsure (where the labels' variance lives), so the achieved half-width moves less with the draw (0.90 -> 0.95
    # of redraws within 20% of their median in simulation); every prompt keeps about the same probability.
    quartile = pd.Series(pd.qcut(open_frame["u"].mean(), 4, labels=False, duplicates="drop"))
    open_prompts = open_frame["stratum"].first() + "|uncertainty q" + quartile.fillna(0).astype(int).astype(str)
    reused = [k for k in open_prompts.index if k in already][:count]
    rest = open_prompts.drop(index=reused)
    wanted = min(count - len(reused), len(rest))
    picked = stratified_selection(rest.to_numpy(), wanted, rng=rng)
    drawn = pd.Series(False, index=rest.index)
    drawn.iloc[picked] = True
    fraction = drawn.groupby(rest.to_numpy()).mean()  # each stratum's sampling fraction
    # A reused prompt was in this draw's frame too (had the other comparison not drawn it, this one could have):
    # its stratum's fraction, so that 1 - prod(1 - p) over comparisons approximates its inclusion probability.
    probability = open_prompts.map(fraction).fillna(wanted / max(len(rest), 1)).astype(float)
    return probability, set(reused) | set(rest.index[picked])


def plan_labels_step(study_dir: Path, out_path: Path, *, target_halfwidth: float, budget: int | None = None,
                     judge: str | None = None, seed: int = 0, explain: bool = False,
                     strategy: str = "random") -> list[str]:
    """Plan labels for ``study_dir`` and write the items to ``out_path`` (.csv/.jsonl/.parquet)."""
    if out_path.suffix not in (".csv", ".jsonl", ".parquet"):
        raise InputError("the label requests file must end in .csv, .jsonl or .parquet", file=out_path)
    if out_path.exists():
        raise InputError("already exists; choose a new file (label requests are never overwritten)", file=out_path)
    study = load_study(study_dir)
    requests, lines = plan_labels(study, target_halfwidth=target_halfwidth, budget=budget, judge=judge, seed=seed,
                                  explain=explain, strategy=strategy)
    if requests.empty:
        lines.append(f"nothing to label: no file written ({out_path} does not exist; there is nothing to import)")
        return lines
    # Spreadsheets run cells starting with = + - @ as formulas: the responses are adversarial text.
    write_table(requests, out_path, neutralise_formulas=out_path.suffix == ".csv")
    how = ("drawn independently, more often where the judge is unsure" if strategy == "active"
           else "drawn at random within strata")
    lines.append(f"wrote {len(requests)} items to label to {out_path} (every response of each chosen prompt, both "
                 f"models, {how}, each with its inclusion_probability, seed {seed}): label every row of a prompt, "
                 "keep the unit, strategy and inclusion_probability columns, and import with `judgekit data "
                 "import-labels STUDY FILE` (design plan)")
    return lines


IMPORTED_LABELS = TableSchema(
    name="labels",
    key=("item_id", "annotator_id"),
    doc="Labels coming back from an annotation tool: the plan-labels file with label (and annotator_id) filled.",
    columns=(
        Column("item_id", "id", "Item labelled."),
        Column("annotator_id", "category", "Who labelled it; empty cells take --annotator.", nullable=True),
        Column("label", "category", "A label from the study's declared set; empty = not labelled yet.", nullable=True),
        Column("inclusion_probability", "float", "As plan-labels wrote it: the probability its prompt was drawn.",
               required=False, nullable=True, bounds=(0.0, 1.0)),
        Column("strategy", "category", "As plan-labels wrote it: random or active.", required=False, nullable=True),
    ),
    rules=SCHEMAS["annotations"].rules,
)
DESIGNS = tuple(d for d in LABEL_DESIGNS if d != "two-phase")  # two-phase is what --allow-partial records


def import_labels_step(study_dir: Path, labels_path: Path, *, annotator: str | None = None,
                       design: str | None = None, allow_partial: bool = False) -> str:
    """Append the filled rows of ``labels_path`` to ``STUDY/annotations`` with how they were chosen (``design``);
    nothing already there is changed.

    ``design``: ``plan`` (a plan-labels file, followed: the default when the file carries
    ``inclusion_probability``), ``random`` (a uniform random sample) or ``convenience`` (anything else; the default
    otherwise). Under a plan every requested response of a drawn prompt must be labelled: a prompt labelled only in
    part is refused, naming its empty rows, unless ``allow_partial``, which weights its labels by the two-phase
    inclusion probability (the prompt's, times the share of that model's requested responses labelled)."""
    study_dir = study_dir_to_update(study_dir)
    incoming = read_table(labels_path, IMPORTED_LABELS)
    if design is None:
        design = "plan" if "inclusion_probability" in incoming else "convenience"
    if design not in DESIGNS:
        raise InputError(f"unknown label design {design!r}; choose one of {list(DESIGNS)}", file=labels_path)
    if design == "plan" and "inclusion_probability" not in incoming:
        raise InputError("--design plan needs the plan-labels file's inclusion_probability column (this file has "
                         "none); say --design random or --design convenience", file=labels_path)
    if annotator is not None:
        incoming["annotator_id"] = incoming["annotator_id"].where(incoming["annotator_id"].notna(), annotator)
    with study_lock(study_dir, step="import-labels"):
        study = load_study(study_dir)
        new, note = _designed_labels(_checked_labels(incoming, study, labels_path), incoming, study, labels_path,
                                     design=design, allow_partial=allow_partial)
        existing = study.annotations
        combined = new if existing is None else pd.concat([existing, new], ignore_index=True)
        path = table_path(study_dir, "annotations") or study_dir / f"annotations{study.storage_format()}"
        write_table(combined, path, SCHEMAS["annotations"])
    skipped = len(incoming) - len(new)
    return (f"appended {len(new)} labels to {path} (design {design}{note})"
            + (f" ({skipped} rows without a label skipped)" if skipped else ""))


def _checked_labels(incoming: pd.DataFrame, study: Study, path: Path) -> pd.DataFrame:
    """The filled rows (item_id, annotator_id, label and any inclusion_probability), each checked; in file order,
    with the file's row position in ``position``."""
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
    kept = ["item_id", "annotator_id", "label"] + (["inclusion_probability"] if "inclusion_probability" in incoming
                                                   else [])
    return incoming.loc[filled, kept].reset_index(drop=True)


def _designed_labels(new: pd.DataFrame, incoming: pd.DataFrame, study: Study, path: Path, *, design: str,
                     allow_partial: bool) -> tuple[pd.DataFrame, str]:
    """``new`` with its ``design`` column and the inclusion probabilities the design implies, and what to say."""
    new = new.assign(design=design)
    if design != "plan":
        return new.drop(columns=["inclusion_probability"], errors="ignore"), ""
    units = _plan_units(incoming, study)
    filled = incoming["label"].notna().to_numpy()
    frame = pd.DataFrame({"unit": units, "model": _item_models(incoming, study), "filled": filled})
    per_unit = frame.groupby("unit")["filled"]
    partial_units = per_unit.any() & ~per_unit.all()
    if partial_units.any():
        empty = np.flatnonzero(frame["unit"].isin(partial_units.index[partial_units]).to_numpy() & ~filled)
        if not allow_partial:
            shown = ", ".join(f"row {k + 1} ({incoming['item_id'].iloc[k]})" for k in empty[:5])
            raise InputError(f"the plan asks for every response of each drawn prompt, but {int(partial_units.sum())} "
                             f"drawn prompts are labelled only in part: empty {shown}"
                             + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
                             + "; label them, or pass --allow-partial for the two-phase estimate", file=path)
    # Two-phase inclusion: the prompt's probability times the share of its requested responses of that model labelled
    # (the second phase taken as a random subsample within each prompt and model: stated in the corrected rows).
    share = frame.groupby(["unit", "model"])["filled"].transform("mean").to_numpy()
    probability = incoming["inclusion_probability"].to_numpy(dtype=float) * share
    strategies = set(incoming["strategy"].dropna()) if "strategy" in incoming else set()
    if partial_units.any() or strategies != {"random"}:  # active (or an older file without the column): weighted
        new["inclusion_probability"] = probability[filled]
        in_part = frame["unit"].isin(partial_units.index[partial_units]).to_numpy()[filled]
        new["design"] = np.where(in_part, "two-phase", "plan")
        note = (f", {int(partial_units.sum())} prompts labelled in part: two-phase inclusion probabilities"
                if partial_units.any() else ", weighted by the recorded inclusion probabilities")
    else:  # a random plan followed: equal probability within strata, the unweighted estimate
        new = new.drop(columns=["inclusion_probability"], errors="ignore")
        note = ", random within strata, every drawn prompt labelled in full"
    drawn_unlabelled = int((~per_unit.any()).sum())
    if drawn_unlabelled:
        note += f"; {drawn_unlabelled} drawn prompts have no label yet (import them when labelled)"
    return new, note


def _plan_units(incoming: pd.DataFrame, study: Study) -> np.ndarray:
    """Per row of a plan file, its labelling unit: the file's ``unit`` column, else the item's prompt in the study."""
    if "unit" in incoming and incoming["unit"].notna().all():
        return incoming["unit"].astype(str).to_numpy()
    keys = pd.Series(prompt_keys(study.responses), index=study.responses["item_id"].to_numpy())
    return keys.reindex(incoming["item_id"].to_numpy()).astype(str).to_numpy()


def _item_models(incoming: pd.DataFrame, study: Study) -> np.ndarray:
    if "model" not in study.responses:
        return np.zeros(len(incoming), dtype=int)
    models = study.responses.set_index("item_id")["model"]
    return models.reindex(incoming["item_id"].to_numpy()).astype(str).to_numpy()


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
