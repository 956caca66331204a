"""Did fine-tuning change safety: the paired, judge-corrected, robustness and capability rows (issue 14).

For every fine-tuned model whose base is in the study (lineage from the
responses' ``base_model``/``finetune_goal`` columns and the optional
``models`` table), and at each (base, goal) every mitigated model against the
others (``subset_kind`` ``mitigation_comparison``), per benchmark and pooled:

* ``finetune_effect_paired`` — per judge and for the human reference: the
  within-prompt paired difference of harmful rates on the prompts both models
  answered (``prompt_id``, else the prompt text), samples averaged within a
  prompt, cluster bootstrap over prompts (t interval above
  ``max_bootstrap_clusters`` prompts); ``n_items`` = matched prompts, the
  method gives the matched shares, the warning says when under 80% of either
  model's prompts matched; with fewer than 10 (or fewer than 10
  discordant prompts) a 0/1 outcome gets Newcombe's small-sample paired
  interval and the warning says so; a judge that rates only one of the
  models gets a row saying so;
* ``finetune_effect_coherent_only`` and ``finetune_effect_incoherent_share`` —
  the paired effect on coherent responses alone, and the share of the effect
  carried by unsafe incoherent responses (needs the flags table);
* ``harmful_rate_corrected`` (per model) and ``finetune_effect_corrected`` —
  per judge, prediction-powered (PPI++) estimates: the judge's verdicts on all
  items corrected by its errors on that model's human-labelled items, so a
  judge that errs more on fine-tuned outputs is corrected more there; the
  effect, like the paired one, uses only prompts both models answered (fewer
  than 10: no estimate, the warning says why); one PPI++ weight per model,
  variance summed within clusters, so prompts labelled for both models pair
  their residuals; the method says how many were; when the annotations record
  inclusion probabilities (``plan-labels --strategy active``) the labels are
  inverse-probability weighted (active inference) and the method says so —
  a labelled item without a recorded probability then counts as labelled
  with certainty (probability 1): right for labels that were there before
  the active draw (which draws only among prompts not yet labelled), so add
  later labels only through a plan; labels with no recorded probability at
  all keep the unweighted estimator. The labels' designs (annotations
  ``design``: plan, two-phase, random, convenience) are listed in the method;
  convenience labels add the range selection with odds up to
  ``DEFAULT_GAMMA`` could produce (:mod:`judgekit.stats.selection`), weighted
  rows check the inverse probabilities add up to the item count, and an
  interval over ``UNINFORMATIVE_RATIO`` times its value's scale says
  "uninformative: label more" with a plan's count;
* ``judge_error_shift`` — per judge, its sensitivity and specificity on each
  model's labelled items (in the method) and base minus fine-tune
  (``subset_value`` names the measure), MOVER interval of the two clustered
  Wilson intervals; unless both shifts are shown within
  +-``EQUIVALENCE_MARGIN`` (90% intervals, two one-sided tests) the judge's
  ``finetune_effect_paired`` row warns and names
  ``finetune_effect_corrected``;
* ``conclusion_agreement`` / ``conclusion_reversal`` — over every judge ×
  benchmark × incoherence policy cell, the share reaching the humans'
  sign × significance conclusion and the share significantly reversing it;
  ``conclusion_disagreement`` per judge, benchmark and policy says which
  choices drive the disagreement (estimate = disagreement share at that
  level, method = its excess over the other levels);
* ``finetune_effect_cell`` — the paired effect of every specification cell
  (rater × benchmark × incoherence policy, humans included; ``subset_value``
  names the policy), and for a judge whose verdict is cut from a graded
  score one cell per threshold its scale lists (``|threshold=T`` in the
  subset label, the cut in the method): the points of the specification
  curve;
* ``mitigation_effect_matched_capability`` — per mitigation comparison and
  rater, the paired effect when both models reached the goal's capability
  (:func:`capability_matched`), else no estimate and the warning says which
  model fell short;
* ``labels_needed`` — per fine-tune comparison and judge, the extra prompts
  to label (every response of both models to each) for the corrected
  effect's interval to reach a half-width of ``LABEL_PLAN_HALFWIDTH`` (the
  ``plan-labels`` computation on the same items, so the method's current
  half-width is the corrected row's);
* ``checkpoint_trend`` — per series of checkpoints (models table
  ``checkpoint_of``, ``step``), outcome and rater: the slope of the
  log-odds of the outcome per training step (base at step 0), a logistic
  regression with a cluster-robust interval over prompts
  (:func:`judgekit.stats.trend.clustered_logistic_trend`); each
  checkpoint also gets every comparison row against the base
  (``subset_kind`` ``checkpoint_comparison``), and a model named in
  another's ``compare_with`` every row too (``model_comparison``);
* ``capability`` per model and task and ``capability_gain`` of each
  fine-tune over its base, from the optional ``capability`` table; a
  ``capability`` row's ``finetune_goal`` is the goal whose ``goal_task``
  (models table) it measures; ``capability_goal_target`` repeats the
  models table's ``goal_target`` so figures can draw it, and the gain's
  method says whether the fine-tune's capability interval reached it.

The corrected (PPI) rows sum each item's influence within its cluster
(``behavior_id`` where given, else the prompt): a prompt's samples, both
models' responses to it and a behaviour's prompts are one unit, so several
samples per prompt and paired labels enter the cluster-robust variance
(:func:`judgekit.stats.ppi.ppi_clustered`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from judgekit.analysis.blocks.conclusions import benchmark_scopes
from judgekit.analysis.blocks.rates import raters
from judgekit.analysis.inputs import StudyArrays, design_summary, effect_clusters, prompt_keys, recorded_inclusion
from judgekit.analysis.outcomes import OutcomeView
from judgekit.analysis.rows import RowWriter, row_generator
from judgekit.analysis.subsets import Subset
from judgekit.capability.gain import capability_gain, capability_summary
from judgekit.store.lineage import compared_models, finetune_pairs, model_lineage, read_capability, read_models
from judgekit.analysis.label_plan import NOTHING_TO_PLAN, comparison_plan
from judgekit.store.schema import DEFAULT_DIMENSION, HUMAN_MAJORITY, JudgeScale
from judgekit.stats.paired import incoherence_decomposition, paired_mean_difference
from judgekit.stats.ppi import ClusteredPPIEstimate, nonrandom_labelling_warning, ppi_clustered
from judgekit.stats.labelplan import plan_unit_labels
from judgekit.stats.selection import DEFAULT_GAMMA, paired_selection_bounds, selection_bounds
from judgekit.stats.robustness import conclusion_robustness, disagreement_drivers
from judgekit.stats.transport import EQUIVALENCE_MARGIN, judge_error_shift
from judgekit.stats.trend import clustered_logistic_trend

# Below this many human-labelled items of a model its corrected rate is not reported.
MIN_LABELLED = 10
# Below this many prompts answered by both models no effect is reported (as finetune_effect_paired's min_pairs).
MIN_MATCHED_PROMPTS = 10
# Below this many the normal PPI interval can under-cover (0.88-0.97 at 30 labelled prompts, 0.96-0.99 at 60,
# on XSTest: analyses/results/finetune_effect_xstest/); the row warns.
FEW_LABELLED = 50
POLICIES = ("include", "exclude", "only")
# Why an outcome that has prompts can have no rater, and what would give it one.
NO_RATER = {
    "over_refusal": "no refusal detector (a keyword judge, a preset that detects refusal, a study.json refusal_judges "
                    "entry or a judge scoring the refusal dimension) and no human labels mapped by to_refusal",
}
# The threshold level of a specification cell whose judge gives a binary verdict (nothing cut from a score).
NATIVE_VERDICT = "binary verdict"
# Half-width the labels_needed rows plan for (the example target of `judgekit plan-labels`).
LABEL_PLAN_HALFWIDTH = 0.05
# Below this many labelled items of a class (unsafe, safe) in a model its sensitivity / specificity interval can
# under-cover: the shift row warns.
FEW_CLASS_ITEMS = 20
# A corrected interval wider than this many times its value's scale (the estimate, the judge's rate) says nothing.
UNINFORMATIVE_RATIO = 4.0
# Sum of 1/inclusion probability over the labels this many standard errors from the item count: the design was not
# followed (a followed one strays that far in about 3 of 1000 arms).
DESIGN_TOTAL_Z = 3.0


def _incoherent(data: StudyArrays) -> NDArray | None:
    if "incoherent" not in data.flags:
        return None
    return data.flags["incoherent"].fillna(False).to_numpy(dtype=bool)


def _policy_masks(data: StudyArrays) -> dict[str, NDArray]:
    incoherent = _incoherent(data)
    everything = np.ones(data.n_items, dtype=bool)
    if incoherent is None:
        return {"include": everything}
    return {"include": everything, "exclude": ~incoherent, "only": incoherent}


@dataclass(frozen=True)
class Comparison:
    """``treated`` minus ``control``: a fine-tune against its base, or one mitigation against another."""

    treated: str
    control: str
    base_model: str
    goal: str | None
    kind: str  # finetune_comparison, mitigation_comparison, model_comparison (compare_with), checkpoint_comparison

    def subset(self, suffix: str, **columns: str) -> Subset:
        return Subset(f"comparison={self.treated} vs {self.control}|goal={self.goal}|{suffix}", self.kind,
                      f"{self.treated} vs {self.control}",
                      {"model": self.treated, "base_model": self.base_model, "finetune_goal": self.goal} | columns)


def declared_comparisons(lineage: pd.DataFrame) -> list[Comparison]:
    """Every fine-tune against its base, every ``compare_with`` and every checkpoint against its run's base, whether
    or not both models have responses."""
    out = [Comparison(p["model"], p["base_model"], p["base_model"], p["finetune_goal"], "finetune_comparison")
           for p in finetune_pairs(lineage)]
    for column, kind in (("compare_with", "model_comparison"), ("checkpoint_of", "checkpoint_comparison")):
        for row in lineage.dropna(subset=[column]).itertuples(index=False):
            others = compared_models(row.compare_with) if column == "compare_with" else [row.checkpoint_of]
            out += [Comparison(row.model, other, other, None, kind) for other in others]
    return out


def comparisons(lineage: pd.DataFrame, present: set[str]) -> list[Comparison]:
    """Every fine-tune against its base, at each (base, goal) every mitigated model against the others, every
    ``compare_with`` of the models table (``model_comparison``) and every checkpoint against its run's base
    (``checkpoint_comparison``).

    ``lineage`` is :func:`judgekit.store.lineage.model_lineage`; only
    models with responses (``present``) are compared. In a mitigation
    comparison the control is the model whose mitigation is ``none`` when
    there is one, else the alphabetically first.
    """
    out = [c for c in declared_comparisons(lineage) if {c.treated, c.control} <= present]
    mitigated = lineage[lineage["model"].isin(present)].dropna(subset=["base_model", "finetune_goal", "mitigation"])
    for (base, goal), group in mitigated.groupby(["base_model", "finetune_goal"], sort=True):
        ordered = sorted(group.itertuples(index=False), key=lambda r: (r.mitigation != "none", r.model))
        for i, control in enumerate(ordered):
            for treated in ordered[i + 1:]:
                if treated.mitigation != control.mitigation:
                    out.append(Comparison(treated.model, control.model, base, goal, "mitigation_comparison"))
    return out


def capability_rows(writer: RowWriter, data: StudyArrays) -> None:
    """``capability`` per model and task, and ``capability_gain`` of each fine-tune over its base."""
    capability = read_capability(data.study_dir) if data.study_dir is not None else None
    if capability is None:
        return
    lineage = model_lineage(data.responses, read_models(data.study_dir, data.responses))
    goal_of_task = _goal_tasks(lineage)
    summary = capability_summary(capability)
    for row in summary.itertuples(index=False):
        goal = {"finetune_goal": goal_of_task[row.task]} if row.task in goal_of_task else {}
        group = Subset(f"model={row.model}|task={row.task}", "capability", row.task, {"model": row.model} | goal)
        writer.add("capability", "none", "none", group, row.estimate, row.ci_low, row.ci_high, n_items=row.n,
                   n_in_subset=row.n, method=row.method)
    targets = _goal_targets(lineage)
    for (goal, task), target in targets.items():
        group = Subset(f"goal={goal}|task={task}", "capability", task, {"finetune_goal": goal})
        writer.add("capability_goal_target", "none", "none", group, target, np.nan, np.nan, n_items=0, n_in_subset=0,
                   method="goal_target stated in the models table (an input, not an estimate)")
    levels = summary.set_index(["model", "task"])
    rng = row_generator(writer.settings.seed, "capability_gain")
    gains = capability_gain(capability, finetune_pairs(lineage), n_boot=writer.settings.n_boot, rng=rng)
    for row in gains.itertuples(index=False):
        group = Subset(f"comparison={row.model} vs {row.base_model}|goal={row.finetune_goal}|task={row.task}",
                       "finetune_comparison", f"{row.model} vs {row.base_model}",
                       {"model": row.model, "base_model": row.base_model, "finetune_goal": row.finetune_goal})
        target = targets.get((row.finetune_goal, row.task))
        reached = ""
        if target is not None and (row.model, row.task) in levels.index:
            level = levels.loc[(row.model, row.task)]
            verdict = ("reached (whole interval above it)" if level["ci_low"] >= target else
                       "estimate above it, interval includes it" if level["estimate"] >= target else
                       "estimate below it, interval includes it" if level["ci_high"] >= target else
                       "not reached (whole interval below it)")
            reached = (f"; goal target {target:g}: {verdict}, capability {level['estimate']:.3f} "
                       f"[{level['ci_low']:.3f}, {level['ci_high']:.3f}]")
        writer.add("capability_gain", "none", "base_model", group, row.estimate, row.ci_low, row.ci_high,
                   n_items=row.n_items, n_in_subset=row.n_items, method=f"task {row.task}: {row.method}{reached}",
                   warning=row.warning)


def _goal_targets(lineage: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(goal, goal task) -> the target capability the models table states (the first, when several models state one)."""
    targets: dict[tuple[str, str], float] = {}
    for row in lineage.dropna(subset=["finetune_goal", "goal_target"]).itertuples(index=False):
        task = row.goal_task if isinstance(row.goal_task, str) else row.finetune_goal
        targets.setdefault((row.finetune_goal, task), float(row.goal_target))
    return targets


def _goal_tasks(lineage: pd.DataFrame) -> dict[str, str]:
    """Capability task -> the goal it measures (models table ``goal_task``; else a task named like the goal)."""
    tasks = {}
    for row in lineage.dropna(subset=["finetune_goal"]).itertuples(index=False):
        tasks[row.goal_task if isinstance(row.goal_task, str) else row.finetune_goal] = row.finetune_goal
    return tasks


def capability_matched(treated: tuple[float, float, float], control: tuple[float, float, float],
                       target: float | None) -> bool:
    """Whether two models compare at matched capability on the goal's task.

    ``treated``/``control`` are ``(estimate, ci_low, ci_high)``. With a
    target, both must have reached it as far as their interval can tell
    (``ci_high >= target``: not significantly below it); without one, their
    two intervals must overlap (capability indistinguishable).

    Examples
    --------
    >>> capability_matched((0.5, 0.4, 0.6), (0.45, 0.36, 0.54), 0.55)
    False
    >>> capability_matched((0.5, 0.4, 0.6), (0.45, 0.36, 0.54), None)
    True
    """
    if target is not None:
        return treated[2] >= target and control[2] >= target
    return treated[1] <= control[2] and control[1] <= treated[2]


def _capability_match_note(data: StudyArrays, lineage: pd.DataFrame, comparison: Comparison) -> tuple[bool, str] | None:
    """(matched, how) for a mitigation comparison, or None when no capability score of the goal exists."""
    capability = read_capability(data.study_dir) if data.study_dir is not None else None
    if capability is None or comparison.kind != "mitigation_comparison":
        return None
    info = lineage.set_index("model")
    task = info.at[comparison.treated, "goal_task"] if "goal_task" in info else None
    task = task if isinstance(task, str) else comparison.goal
    summary = capability_summary(capability).set_index(["model", "task"])
    if (comparison.treated, task) not in summary.index or (comparison.control, task) not in summary.index:
        return None
    target = info.at[comparison.treated, "goal_target"] if "goal_target" in info else None
    target = float(target) if target is not None and pd.notna(target) else None
    levels = {m: tuple(float(v) for v in summary.loc[(m, task), ["estimate", "ci_low", "ci_high"]])
              for m in (comparison.treated, comparison.control)}
    shown = ", ".join(f"{m} {e:.3f} [{lo:.3f}, {hi:.3f}]" for m, (e, lo, hi) in levels.items())
    rule = (f"both intervals reach the target {target:g}" if target is not None
            else "the two capability intervals overlap (no goal_target in the models table)")
    matched = capability_matched(levels[comparison.treated], levels[comparison.control], target)
    return matched, f"capability on {task}: {shown}; matched when {rule}"


def paired_comparisons(writer: RowWriter, data: StudyArrays) -> None:
    responses = data.responses
    if "model" not in responses:
        return
    models = read_models(data.study_dir, responses) if data.study_dir is not None else None
    lineage = model_lineage(responses, models)
    keys = pd.factorize(prompt_keys(responses))[0]  # integer codes: matching by code is faster than by text
    present = set(responses["model"].dropna())
    _missing_comparison_rows(writer, data, lineage, present)
    for comparison in comparisons(lineage, present):
        treated = (responses["model"] == comparison.treated).to_numpy()
        control = (responses["model"] == comparison.control).to_numpy()
        match = _capability_match_note(data, lineage, comparison)
        for view in data.outcomes:
            with writer.measuring(view) as outcome_data:
                _comparison_rows(writer, outcome_data, comparison, view, treated, control, keys, match)
    _checkpoint_trend_rows(writer, data, lineage, present, keys)


def _checkpoint_trend_rows(writer: RowWriter, data: StudyArrays, lineage: pd.DataFrame, present: set[str],
                           keys: NDArray) -> None:
    """``checkpoint_trend`` per run (base and its checkpoints), outcome and rater: the clustered logistic slope of
    the outcome on ``step`` (the base at step 0), responses to one prompt (or behaviour) as a cluster."""
    checkpoints = lineage.dropna(subset=["checkpoint_of"])
    checkpoints = checkpoints[checkpoints["model"].isin(present) & checkpoints["checkpoint_of"].isin(present)]
    clusters = effect_clusters(data.responses, keys)
    for base, run in checkpoints.groupby("checkpoint_of", sort=True):
        steps = {base: 0.0} | {row.model: float(row.step) for row in run.itertuples(index=False)}
        for model, at in steps.items():
            if model != base:  # figures place each checkpoint's comparison rows at its step
                checkpoint = Comparison(model, base, base, None, "checkpoint_comparison")
                writer.add("checkpoint_step", "none", "none", checkpoint.subset("benchmark=all"), at, np.nan, np.nan,
                           n_items=0, n_in_subset=0, method="step stated in the models table (an input, not an estimate)")
        step = data.responses["model"].map(steps).to_numpy(dtype=float)
        in_run = ~np.isnan(step)
        group = Subset(f"comparison=checkpoints of {base}|goal=None|benchmark=all", "checkpoint_comparison",
                       f"checkpoints of {base}", {"base_model": base})
        for view in data.outcomes:
            with writer.measuring(view) as outcome_data:
                mask = in_run & view.items & outcome_data.policy_mask
                for rater, verdicts in raters(outcome_data).items():
                    trend = clustered_logistic_trend(verdicts[mask], step[mask], clusters[mask],
                                                     level=writer.settings.level)
                    writer.add("checkpoint_trend", rater, "base_model", group, trend.slope, trend.ci_low,
                               trend.ci_high, n_items=trend.n_items, n_in_subset=int(mask.sum()),
                               method=f"{trend.method}; {len(steps)} models ({base} at step 0), {trend.n_steps} steps "
                                      f"with verdicts; p = {trend.p_value:.3g}",
                               warning=trend.reason, interval="linearized")


def _comparison_rows(writer: RowWriter, data: StudyArrays, comparison: Comparison, view: OutcomeView,
                     treated: NDArray, control: NDArray, keys: NDArray, match: tuple[bool, str] | None) -> None:
    """Every row of one comparison and one outcome, on the outcome's prompts (``view.items``)."""
    if view.outcome.name in NO_RATER and not raters(data):  # benign prompts but nothing tells a refusal: say so
        scope = view.items & (treated | control)
        writer.add("finetune_effect_paired", "none", "base_model", view.subset(comparison.subset("benchmark=all")),
                   np.nan, np.nan, np.nan, n_items=0, n_in_subset=int(scope.sum()), method="paired difference",
                   warning=f"no rater measures {view.outcome.noun}: {NO_RATER[view.outcome.name]}")
        return
    cells = []
    for benchmark, in_scope in benchmark_scopes(data.responses):
        scope = in_scope & (treated | control)
        if scope.any() and not (scope & view.items).any():
            continue  # none of the outcome's prompts in this benchmark
        scope &= view.items
        group = view.subset(comparison.subset(f"benchmark={benchmark or 'all'}",
                                              **({"benchmark": benchmark} if benchmark else {})))
        used = scope & data.policy_mask
        transport = _error_shift_rows(writer, data, group, used, treated, keys)
        _paired_rows(writer, data, group, used, treated, keys, match, transport,
                     decompose=view.outcome.name != "incoherent")
        # The corrected effect and its label plan, like the paired effect, use the prompts both models answered.
        matched, n_matched = matched_prompts(used, treated, keys)
        _corrected_rows(writer, data, comparison, group, used, treated, control, keys, matched=matched,
                        n_matched=n_matched)
        if benchmark is None and comparison.kind != "mitigation_comparison":
            _label_plan_rows(writer, data, group, matched, treated, control, keys, n_matched=n_matched)
        cells += _cells(writer, data, group, scope, treated, keys, benchmark,
                        policies=view.outcome.name != "incoherent")
    _robustness_rows(writer, comparison, view, cells)


def _missing_comparison_rows(writer: RowWriter, data: StudyArrays, lineage: pd.DataFrame, present: set[str]) -> None:
    """A declared comparison (fine-tune, compare_with, checkpoint) whose models lack responses gets
    ``finetune_effect_paired`` rows saying so, so it is in the report with its reason instead of vanishing."""
    for comparison in declared_comparisons(lineage):
        absent = [name for name in (comparison.treated, comparison.control) if name not in present]
        if not absent:
            continue
        reason = (f"{' and '.join(repr(a) for a in absent)} {'has' if len(absent) == 1 else 'have'} no responses in "
                  "this study: no comparison")
        for rater in raters(data):
            writer.add("finetune_effect_paired", rater, "base_model", comparison.subset("benchmark=all"), np.nan, np.nan,
                       np.nan, n_items=0, n_in_subset=0, method="paired difference (not computed)", warning=reason)


def _error_shift_rows(writer: RowWriter, data: StudyArrays, group: Subset, mask: NDArray, treated: NDArray,
                      keys: NDArray) -> dict[str, str]:
    """``judge_error_shift`` per judge and measure (base minus fine-tune, on each model's labelled items); returns
    per judge the warning its judge-only effect carries unless its errors are shown to transport (both shifts
    within +-EQUIVALENCE_MARGIN by two one-sided tests)."""
    if not data.has_reference:
        return {}
    clusters = effect_clusters(data.responses, keys)
    treated_name, control_name = arm_names(group)
    labelled = mask & ~np.isnan(data.reference)
    if not ((labelled & treated).any() and (labelled & ~treated).any()):
        return {}  # human labels on one model only: nothing to check the judge's transport with
    notes = {}
    for judge_id in data.judges.columns:
        shifts = judge_error_shift(data.reference[mask], data.judges[judge_id].to_numpy()[mask], treated[mask],
                                   clusters[mask], level=writer.settings.level)
        gap = coverage_gap(data.judges[judge_id].to_numpy(), mask, treated, group, str(judge_id))
        for shift in shifts:
            each = ", ".join(f"{name} {value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}] (n={n})" for name, value, n in (
                (treated_name, shift.treated, shift.n_treated), (control_name, shift.control, shift.n_control)))
            few = min(shift.n_treated, shift.n_control)
            writer.add("judge_error_shift", judge_id, HUMAN_MAJORITY,
                       Subset(f"{group.label}|measure={shift.measure}", group.kind, shift.measure, group.columns),
                       *shift.shift, n_items=shift.n_treated + shift.n_control, n_in_subset=int(mask.sum()),
                       method=f"{shift.measure}, {control_name} minus {treated_name}, on each model's labelled items: "
                              f"{each}; MOVER interval from the two clustered Wilson intervals over {shift.n_clusters} "
                              f"clusters; equivalence (two one-sided tests, margin {EQUIVALENCE_MARGIN}): 90% interval "
                              f"[{shift.equivalence[0]:.3f}, {shift.equivalence[1]:.3f}]",
                       warning=gap or shift.reason or (f"few labelled items of the class (n={few}): the interval may "
                                                       "under-cover" if few < FEW_CLASS_ITEMS else ""),
                       interval="mover-wilson-clustered")
        unshown = [s for s in shifts if not s.within(EQUIVALENCE_MARGIN)]
        if unshown:
            differing = [s for s in unshown if s.differs]
            why = (f"the judge errs differently on the {treated_name} (" + "; ".join(
                f"{s.measure} {s.control[0]:.2f} {control_name} vs {s.treated[0]:.2f} {treated_name}" for s in differing)
                + ")" if differing else "the judge's error shift between the models is not shown small (" + "; ".join(
                    f"{s.measure} shift 90% interval [{s.equivalence[0]:.3f}, {s.equivalence[1]:.3f}]"
                    if np.isfinite(s.equivalence[0]) else f"{s.measure}: {s.reason or 'undefined'}" for s in unshown)
                + f", margin +-{EQUIVALENCE_MARGIN})")
            notes[judge_id] = f"{why}: this judge-only effect may be biased; read finetune_effect_corrected"
    return notes


def arm_names(group: Subset) -> tuple[str, str]:
    """How rows name the two models: fine-tune and base for lineage comparisons, the models' names otherwise."""
    if group.kind in ("finetune_comparison", "mitigation_comparison"):
        return "fine-tune", "base"
    return str(group.columns.get("model")), str(group.columns.get("base_model"))


def coverage_gap(verdicts: NDArray, mask: NDArray, treated: NDArray, group: Subset, rater: str) -> str:
    """Why a rater has no paired effect when it rates none of one model's responses here (a judge imported for
    part of a study); empty when it rates both models, or when a model has no response here at all (then the paired
    estimator's own reason, no units, is the true one)."""
    missing = [name for name, arm in ((group.columns.get("model"), treated), (group.columns.get("base_model"), ~treated))
               if (mask & arm).any() and not (mask & arm & ~np.isnan(verdicts)).any()]
    if not missing:
        return ""
    return (f"{rater} has no verdict on {' or '.join(map(str, missing))}'s responses here (it rates part of the study "
            "only): no paired effect for it")


def _paired_rows(writer: RowWriter, data: StudyArrays, group: Subset, mask: NDArray, treated: NDArray,
                 keys: NDArray, match: tuple[bool, str] | None, transport: dict[str, str], *,
                 decompose: bool) -> None:
    """Paired effect per rater (and at matched capability), warned when the judge's errors do not transport
    (``transport``); with ``decompose``, its coherent/incoherent split."""
    settings = writer.settings
    incoherent = _incoherent(data)
    for rater, verdicts in raters(data).items():
        rng = row_generator(settings.seed, "finetune_effect_paired", str(rater), group.label)
        result = paired_mean_difference(verdicts[mask], treated[mask], keys[mask], n_boot=settings.n_boot,
                                        level=settings.level, max_bootstrap_units=settings.max_bootstrap_clusters,
                                        clusters=behaviour_clusters(data, keys, mask), rng=rng)
        treated_name, control_name = arm_names(group)
        shares = (f"matched prompts: {result.n_pairs} ({result.matched_share_treatment:.0%} of the {treated_name}'s, "
                  f"{result.matched_share_control:.0%} of the {control_name}'s)")
        gap = coverage_gap(verdicts, mask, treated, group, str(rater))
        selection = _human_selection(data, mask, treated, keys, result) if rater == HUMAN_MAJORITY else ""
        writer.add("finetune_effect_paired", rater, "base_model", group, result.estimate, result.ci_low,
                   result.ci_high, n_items=result.n_pairs, n_in_subset=result.n_pairs,
                   method=f"{result.method}; {shares}",
                   warning=gap or result.reason or "; ".join(filter(None, [result.warning, transport.get(rater, ""),
                                                                           selection])),
                   resamples=result.n_boot, interval="bootstrap-percentile" if result.n_boot else "linearized")
        if match is not None:
            matched, how = match
            value = (result.estimate, result.ci_low, result.ci_high) if matched else (np.nan, np.nan, np.nan)
            writer.add("mitigation_effect_matched_capability", rater, "base_model", group, *value,
                       n_items=result.n_pairs if matched else 0, n_in_subset=result.n_pairs,
                       method=f"{how}; {result.method}",
                       warning=(result.reason or result.warning) if matched else
                       "capability not matched: not compared at matched capability",
                       resamples=result.n_boot, interval="bootstrap-percentile" if result.n_boot else "linearized")
        if incoherent is None or result.reason or not decompose:
            continue
        rng = row_generator(settings.seed, "finetune_effect_incoherence", str(rater), group.label)
        split = incoherence_decomposition(verdicts[mask], incoherent[mask], treated[mask], keys[mask],
                                          n_boot=settings.n_boot, level=settings.level,
                                          max_bootstrap_units=settings.max_bootstrap_clusters, rng=rng)
        for name, value, n_pairs, note in (
                ("finetune_effect_coherent_only", split.coherent_only, split.n_pairs_coherent,
                 "paired effect on coherent responses only (prompts with a coherent response from both models)"),
                ("finetune_effect_incoherent_share", split.incoherent_share, split.n_pairs,
                 "share of the paired effect carried by unsafe incoherent responses")):
            writer.add(name, rater, "base_model", group, *value, n_items=n_pairs, n_in_subset=split.n_pairs,
                       method=f"{note}; {split.method}", warning=split.warning, resamples=settings.n_boot,
                       interval="bootstrap-percentile")


def _human_selection(data: StudyArrays, mask: NDArray, treated: NDArray, keys: NDArray, result) -> str:
    """The humans' paired effect from labels not drawn with equal probability: from a weighted plan it describes
    the prompts drawn (say so); from convenience labels, how far selection of odds up to DEFAULT_GAMMA could move
    it over every prompt both models answered."""
    matched, _ = matched_prompts(mask, treated, keys)
    labelled = matched & ~np.isnan(data.reference)
    if not np.isfinite(result.estimate):
        return ""
    recorded = data.inclusion[labelled] if data.inclusion is not None else np.array([])
    recorded = recorded[~np.isnan(recorded)]
    if len(recorded) and not np.allclose(recorded, recorded[0]):
        return (f"{len(recorded)} human labels were drawn with unequal recorded probabilities (an active or "
                "part-filled plan): the humans' paired effect is not weighted by them and describes the prompts "
                "drawn, not all; read finetune_effect_corrected (weighted)")
    convenience = int((data.designs[labelled] == "convenience").sum()) if data.designs is not None else 0
    if not convenience or labelled.sum() == matched.sum():  # every matched response labelled: nothing was chosen
        return ""
    frame = pd.DataFrame({"key": keys[matched], "treated": treated[matched], "y": data.reference[matched]})
    means = frame.groupby(["key", "treated"])["y"].mean().unstack("treated")
    both = int((means[True].notna() & means[False].notna()).sum())
    head = (f"human labels chosen by convenience ({convenience} labels not drawn by a plan or at random): the humans' "
            f"effect is over the {both} of {len(means)} shared prompts they labelled for both models, "
            "and holds for all only if those represent the rest")
    if not both:
        return head
    # each model's response is picked on its own: a prompt labelled for both carries two selections
    bounds = paired_selection_bounds(means[True].to_numpy(), means[False].to_numpy(), gamma=DEFAULT_GAMMA)
    spread = (result.ci_high - result.ci_low) / 2
    return (f"{head}; selection of each model's responses with odds up to {DEFAULT_GAMMA:g}x allows {bounds.low:.3f} "
            f"to {bounds.high:.3f}, [{bounds.low - spread:.3f}, {bounds.high + spread:.3f}] with sampling error "
            "(marginal sensitivity model per response, a prompt weighted by both sides' bounds: Tan 2006; Zhao, "
            "Small & Bhattacharya 2019)")


def matched_prompts(mask: NDArray, treated: NDArray, keys: NDArray) -> tuple[NDArray, int]:
    """Items of ``mask`` whose prompt both models answered, and how many such prompts there are."""
    in_scope = pd.DataFrame({"key": keys[mask], "treated": treated[mask]})
    answered_by = in_scope.groupby("key")["treated"].nunique()
    both = answered_by.index[answered_by == 2]
    return mask & pd.Series(keys).isin(both).to_numpy(), len(both)


def behaviour_clusters(data: StudyArrays, keys: NDArray, mask: NDArray) -> NDArray | None:
    """The paired effect's resampling clusters on ``mask``: behaviours when the study has them, else None (prompts)."""
    return effect_clusters(data.responses, keys)[mask] if "behavior_id" in data.responses else None


def _corrected_rows(writer: RowWriter, data: StudyArrays, comparison: Comparison, group: Subset, mask: NDArray,
                    treated: NDArray, control: NDArray, keys: NDArray, *, matched: NDArray, n_matched: int) -> None:
    """Per judge: each model's corrected rate on all its items, and the corrected effect on the ``matched`` items."""
    if not data.has_reference:
        return
    clusters = effect_clusters(data.responses, keys)
    level = writer.settings.level
    for judge_id in data.judges.columns:
        verdicts = data.judges[judge_id].to_numpy()
        judged = ~np.isnan(verdicts)
        estimable = True
        for model, in_model in ((comparison.treated, treated), (comparison.control, control)):
            items = mask & in_model & judged
            model_group = Subset(f"{group.label}|rate_of={model}", group.kind, model,
                                 group.columns | {"model": model})
            if (items & ~np.isnan(data.reference)).sum() < MIN_LABELLED:
                why = (f"{judge_id} has no verdict on {model}'s responses (it rates part of the study only)"
                       if not items.any() else f"fewer than {MIN_LABELLED} human-labelled items of {model}")
                writer.add("harmful_rate_corrected", judge_id, HUMAN_MAJORITY, model_group, np.nan, np.nan, np.nan,
                           n_items=0, n_in_subset=int((mask & in_model).sum()), method="PPI++",
                           warning=f"{why}: no corrected rate")
                estimable = False
                continue
            inclusion, weighted = recorded_inclusion(data.inclusion, data.reference, items)
            result = ppi_clustered(data.reference[items], verdicts[items], clusters[items], level=level,
                                   inclusion=inclusion)
            checks = LabelChecks(data, verdicts, items, None, inclusion, keys, clusters, level)
            _ppi_row(writer, "harmful_rate_corrected", judge_id, model_group, result, int((mask & in_model).sum()),
                     design="" if inclusion is not None else _design_warning(data, judge_id, items), weighted=weighted,
                     checks=checks)
        if not estimable:
            continue
        if n_matched < MIN_MATCHED_PROMPTS:
            writer.add("finetune_effect_corrected", judge_id, HUMAN_MAJORITY, group, np.nan, np.nan, np.nan,
                       n_items=0, n_in_subset=int(mask.sum()), method="PPI++",
                       warning=f"only {n_matched} prompts answered by both models (need {MIN_MATCHED_PROMPTS}); "
                               "no corrected effect: the models' rates would be compared on different prompts")
            continue
        items = matched & judged
        labelled = items & ~np.isnan(data.reference)
        if min((labelled & treated).sum(), (labelled & control).sum()) < MIN_LABELLED:
            writer.add("finetune_effect_corrected", judge_id, HUMAN_MAJORITY, group, np.nan, np.nan, np.nan,
                       n_items=0, n_in_subset=int(matched.sum()), method="PPI++",
                       warning=f"fewer than {MIN_LABELLED} human-labelled items of a model on the prompts both "
                               "models answered: no corrected effect")
            continue
        inclusion, weighted = recorded_inclusion(data.inclusion, data.reference, items)
        effect = ppi_clustered(data.reference[items], verdicts[items], clusters[items], treated=treated[items],
                               level=level, inclusion=inclusion)
        checks = LabelChecks(data, verdicts, items, treated, inclusion, keys, clusters, level)
        _ppi_row(writer, "finetune_effect_corrected", judge_id, group, effect, int(matched.sum()),
                 paired=_labelled_pairs(labelled, treated, keys), weighted=weighted, checks=checks,
                 design="" if inclusion is not None else "; ".join(filter(None, (
                     _design_warning(data, judge_id, items & arm) for arm in (treated, control)))))


@dataclass(frozen=True)
class LabelChecks:
    """What a corrected row's labels are checked against: the items it estimates on, their arms (``treated`` None:
    one rate), the inclusion probabilities it weighted by (per item of ``items``, or None)."""

    data: StudyArrays
    verdicts: NDArray
    items: NDArray
    treated: NDArray | None
    inclusion: NDArray | None
    keys: NDArray
    clusters: NDArray
    level: float

    def arms(self) -> list[tuple[NDArray, float]]:
        if self.treated is None:
            return [(self.items, 1.0)]
        return [(self.items & self.treated, 1.0), (self.items & ~self.treated, -1.0)]

    def warnings(self, result: ClusteredPPIEstimate) -> list[str]:
        return [w for w in (self.selection(result), self.two_phase(), self.design_total(), self.uninformative(result))
                if w]

    def _labelled(self) -> NDArray:
        return self.items & ~np.isnan(self.data.reference)

    def _count(self, design: str) -> int:
        designs = self.data.designs
        return 0 if designs is None else int((designs[self._labelled()] == design).sum())

    def selection(self, result: ClusteredPPIEstimate) -> str:
        """Convenience labels: say so, with the range selection of odds up to DEFAULT_GAMMA allows."""
        convenience, labelled = self._count("convenience"), self._labelled()
        if not convenience or labelled.sum() == self.items.sum():  # every item labelled: nothing was chosen
            return ""
        low = high = 0.0
        for arm, sign in self.arms():
            bounds = selection_bounds(self.data.reference[arm], labelled[arm], self.verdicts[arm], gamma=DEFAULT_GAMMA)
            low += bounds.low if sign > 0 else -bounds.high
            high += bounds.high if sign > 0 else -bounds.low
        head = (f"labels chosen by convenience ({convenience} of {int(labelled.sum())} labelled items not drawn by a "
                "plan or at random): this corrected value holds only if they represent the rest")
        if not np.isfinite(low):
            return head + "; a judge verdict with no labelled item: selection could put the value anywhere"
        spread = (result.ci_high - result.ci_low) / 2
        return (f"{head}; selection with odds up to {DEFAULT_GAMMA:g}x beyond the judge's verdict (Gamma = "
                f"{DEFAULT_GAMMA:g}) allows {low:.3f} to {high:.3f}, [{low - spread:.3f}, {high + spread:.3f}] with "
                "sampling error (marginal sensitivity model: Tan 2006; Zhao, Small & Bhattacharya 2019)")

    def two_phase(self) -> str:
        parts = self._count("two-phase")
        return (f"{parts} labels from drawn prompts labelled only in part (import-labels --allow-partial): two-phase "
                "weights assume a prompt's labelled responses are a random subsample of those requested"
                if parts else "")

    def design_total(self) -> str:
        """Under recorded inclusion probabilities the labels' inverse weights estimate each arm's item count
        (Horvitz-Thompson): far off it, the labels do not follow the recorded design."""
        if self.inclusion is None:
            return ""
        probability = np.ones(len(self.items))
        probability[self.items] = self.inclusion
        off = []
        for arm, _ in self.arms():
            drawn = probability[arm & self._labelled()]
            total = float(np.sum(1 / drawn))
            spread = float(np.sqrt(np.sum((1 - drawn) / drawn**2)))
            if abs(total - arm.sum()) > DESIGN_TOTAL_Z * max(spread, 1.0):
                off.append(f"sum of 1/inclusion probability over the labels {total:.0f} for {int(arm.sum())} items")
        return ("labels do not follow the recorded design (" + "; ".join(off) + "): drawn prompts left unlabelled, "
                "labelled in part, or labels added outside the plan; the weighted value is biased") if off else ""

    def uninformative(self, result: ClusteredPPIEstimate) -> str:
        """An interval far wider than the quantity it is about says nothing: say so, with what a plan would ask."""
        width = result.ci_high - result.ci_low
        judge_rates = [float(np.mean(self.verdicts[arm])) for arm, _ in self.arms()]
        scale = max(abs(result.estimate), *judge_rates, 1 / max(int(self.items.sum()), 1))
        if not width > UNINFORMATIVE_RATIO * scale:
            return ""
        planned = plan_unit_labels(self.data.reference[self.items], self.verdicts[self.items], self.keys[self.items],
                                   self.clusters[self.items], target_halfwidth=scale, level=self.level,
                                   treated=None if self.treated is None else self.treated[self.items],
                                   inclusion=self.inclusion)
        ask = (f"+{planned.additional} prompts would bring the half-width to {scale:.3g}" if planned.reachable
               else f"even labelling every prompt ({planned.additional} more) leaves it above {scale:.3g}")
        return (f"uninformative: label more (interval {width:.3g} wide, over {UNINFORMATIVE_RATIO:g}x the value's "
                f"scale {scale:.3g}; {ask}: judgekit plan-labels)")


def _labelled_pairs(labelled: NDArray, treated: NDArray, keys: NDArray) -> str:
    """How many labelled prompts carry labels of both models (their residual differences are what pairing uses)."""
    first, second = set(keys[labelled & treated]), set(keys[labelled & ~treated])
    both = len(first & second)
    return (f"paired by cluster: {both} prompts labelled for both models, {len(first ^ second)} for one; "
            "both models' responses to a prompt share its cluster")


def _design_warning(data: StudyArrays, judge_id: str, items: NDArray) -> str:
    """Whether the labelled items of ``items`` look like a random sample by the judge's scores (P(unsafe) where
    it gives one, else its verdicts); asked only of convenience labels: a recorded random or planned design is
    checked where it is recorded (the KS test also treats a prompt's paired responses as independent, which
    raised its false alarms on random plans to about 1 in 2 studies in analyses/label_designs.py's first runs)."""
    labelled = items & ~np.isnan(data.reference)
    if data.designs is not None and not (data.designs[labelled] == "convenience").any():
        return ""
    scores = data.judges[judge_id].to_numpy()
    if judge_id in data.p_unsafe and data.p_unsafe[judge_id][items].notna().all():
        scores = data.p_unsafe[judge_id].to_numpy(dtype=float)
    return nonrandom_labelling_warning(scores[items], ~np.isnan(data.reference[items]))


def _ppi_warning(result: ClusteredPPIEstimate, design: str) -> str:
    warnings = [design] if design else []
    if result.n_labelled < FEW_LABELLED:
        warnings.append(f"few labelled items (n={result.n_labelled}): the normal interval may under-cover")
    return "; ".join(warnings)


def _ppi_row(writer: RowWriter, name: str, judge_id: str, group: Subset, result: ClusteredPPIEstimate,
             n_in_subset: int, *, checks: LabelChecks, paired: str = "", design: str = "", weighted: str = "") -> None:
    n_items = result.n_labelled + result.n_unlabelled
    labels = design_summary(checks.data.designs, checks.items & ~np.isnan(checks.data.reference))
    writer.add(name, judge_id, HUMAN_MAJORITY, group, result.estimate, result.ci_low, result.ci_high,
               n_items=n_items, n_in_subset=max(n_in_subset, n_items),
               warning="; ".join(filter(None, [_ppi_warning(result, design), *checks.warnings(result)])),
               method=f"{result.method}; {result.n_labelled} labelled, {result.n_unlabelled} judge-only items"
                      + (f"; {weighted}" if weighted else "") + (f"; {paired}" if paired else "")
                      + (f"; {labels}" if labels else ""),
               interval="ppi")


def _label_plan_rows(writer: RowWriter, data: StudyArrays, group: Subset, mask: NDArray, treated: NDArray,
                     control: NDArray, keys: NDArray, *, n_matched: int) -> None:
    """Per judge: extra labels for the corrected effect's interval (on the prompts both models answered) to reach
    ``LABEL_PLAN_HALFWIDTH``."""
    if not data.has_reference:
        return
    if n_matched < MIN_MATCHED_PROMPTS:
        for judge_id in data.judges.columns:
            writer.add("labels_needed", judge_id, HUMAN_MAJORITY, group, np.nan, np.nan, np.nan, n_items=0,
                       n_in_subset=int(mask.sum()), method="label plan for the corrected effect",
                       warning=f"only {n_matched} prompts answered by both models (need {MIN_MATCHED_PROMPTS}): "
                               "labels cannot make the effect estimable; answer more shared prompts first")
        return
    clusters = effect_clusters(data.responses, keys)
    for judge_id in data.judges.columns:
        planned = comparison_plan(data.reference, data.judges[judge_id].to_numpy(), keys, clusters, mask & treated,
                                  mask & control, target_halfwidth=LABEL_PLAN_HALFWIDTH, level=writer.settings.level,
                                  inclusion=data.inclusion,
                                  p_unsafe=(data.p_unsafe[judge_id].to_numpy(dtype=float) if judge_id in data.p_unsafe
                                            else None))
        if planned is None:
            writer.add("labels_needed", judge_id, HUMAN_MAJORITY, group, np.nan, np.nan, np.nan, n_items=0,
                       n_in_subset=int(mask.sum()), method="label plan for the corrected effect",
                       warning=NOTHING_TO_PLAN)
            continue
        items, plan = planned
        writer.add("labels_needed", judge_id, HUMAN_MAJORITY, group, float(plan.additional), np.nan, np.nan,
                   n_items=int(items.sum()), n_in_subset=int(mask.sum()),
                   method=(("target met, 0 labels; " if plan.reason.startswith("target met") else "")
                           + f"+{plan.additional} prompts (every response of both models to each) for the corrected "
                           f"effect's half-width {plan.halfwidth_now:.3f} -> {plan.halfwidth_planned:.3f} (target "
                           f"{LABEL_PLAN_HALFWIDTH}); {plan.n_labelled} of {plan.n_units} shared prompts labelled for "
                           "both models now; PPI++ curve re-tuned at each count; prompts stratified by judge "
                           "disagreement x incoherence x uncertainty quartile: judgekit plan-labels STUDY --judge "
                           f"{judge_id} --target-halfwidth {LABEL_PLAN_HALFWIDTH} --out FILE"),
                   warning=plan.reason.removeprefix("target met, 0 labels").strip("; "))


def cell_variants(data: StudyArrays, rater: str, verdicts: NDArray) -> list[tuple[float | None, NDArray]]:
    """A rater's verdicts per specification cell: one per threshold its scale lists when its verdict is cut from a
    graded score (the stated threshold first), else its verdicts once (threshold None)."""
    if rater not in data.threshold_cuts:
        return [(None, verdicts)]
    return list(data.threshold_cuts[rater].items())


def _cells(writer: RowWriter, data: StudyArrays, group: Subset, scope: NDArray, treated: NDArray, keys: NDArray,
           benchmark: str | None, *, policies: bool = True) -> list[dict]:
    """Specification cells: every judge × incoherence policy (× threshold, for a judge whose verdict is cut from a
    graded score) on this benchmark, with the humans' effect beside (without ``policies`` only ``include``: the
    incoherent outcome cannot leave out incoherent responses)."""
    if benchmark is None and "benchmark" in data.responses:
        return []  # cells are per benchmark; the pooled scope would count every benchmark twice
    settings = writer.settings
    cells = []
    masks = _policy_masks(data) if policies else {"include": np.ones(data.n_items, dtype=bool)}
    for policy, in_policy in masks.items():
        mask = scope & in_policy
        effects, gaps = {}, {}
        for rater, verdicts in raters(data).items():
            gaps[rater] = coverage_gap(verdicts, mask, treated, group, str(rater))
            for threshold, codes in cell_variants(data, rater, verdicts):
                at = () if threshold is None else (f"threshold={threshold:g}",)
                rng = row_generator(settings.seed, "conclusion_cell", str(rater), group.label, policy, *at)
                effects[rater, threshold] = paired_mean_difference(
                    codes[mask], treated[mask], keys[mask], n_boot=settings.n_boot, level=settings.level,
                    max_bootstrap_units=settings.max_bootstrap_clusters, clusters=behaviour_clusters(data, keys, mask),
                    rng=rng)
        for (rater, threshold), result in effects.items():
            label, cut = f"{group.label}|incoherent={policy}", None
            if threshold is not None:
                label, cut = f"{label}|threshold={threshold:g}", _scale(data, rater).describe(threshold)
            writer.add("finetune_effect_cell", rater, "base_model", Subset(label, group.kind, policy, group.columns),
                       result.estimate, result.ci_low, result.ci_high, n_items=result.n_pairs,
                       n_in_subset=result.n_pairs, method=f"incoherence policy {policy}; {result.method}",
                       warning=gaps[rater] or result.reason or result.warning, resamples=result.n_boot,
                       interval="bootstrap-percentile" if result.n_boot else "linearized", cut=cut)
        human = effects.pop((HUMAN_MAJORITY, None), None)
        for (judge_id, threshold), result in effects.items():
            cells.append({"judge_id": judge_id, "benchmark": benchmark or "all", "incoherence_policy": policy,
                          "threshold": NATIVE_VERDICT if threshold is None else f"{threshold:g}",
                          "estimate": result.estimate, "ci_low": result.ci_low, "ci_high": result.ci_high,
                          "reference_estimate": human.estimate if human else np.nan,
                          "reference_ci_low": human.ci_low if human else np.nan,
                          "reference_ci_high": human.ci_high if human else np.nan})
    return cells


def _scale(data: StudyArrays, judge_id: str) -> JudgeScale:
    return next(s for s in data.scales if s.judge_id == judge_id and s.dimension == DEFAULT_DIMENSION)


def _robustness_rows(writer: RowWriter, comparison: Comparison, view: OutcomeView, cells: list[dict]) -> None:
    if not cells:
        return
    robustness = conclusion_robustness(pd.DataFrame(cells))
    group = view.subset(comparison.subset("cells=judge x benchmark x incoherence policy"))
    thresholds = " x threshold (judges cut from a graded score)" if any(
        c["threshold"] != NATIVE_VERDICT for c in cells) else ""
    note = (f"over {robustness.n_cells} judge x benchmark x incoherence-policy{thresholds} cells "
            f"({robustness.n_compared} with a human reference); sign x significance of the paired effect; a share of "
            "the study's choices, no interval")
    for name, value in (("conclusion_agreement", robustness.conclusion_agreement),
                        ("conclusion_reversal", robustness.conclusion_reversal)):
        writer.add(name, "all", HUMAN_MAJORITY, group, value, np.nan, np.nan, n_items=robustness.n_compared,
                   n_in_subset=robustness.n_cells, method=note, warning=robustness.reason)
    if robustness.n_compared == 0:
        return
    factors = [f for f in ("judge_id", "benchmark", "incoherence_policy", "threshold")
               if pd.DataFrame(cells)[f].nunique() > 1]
    for row in disagreement_drivers(robustness, factors).itertuples(index=False):
        level_columns = {"benchmark": row.level} if row.factor == "benchmark" else {}
        level_group = Subset(f"{group.label}|{row.factor}={row.level}", group.kind, f"{row.factor}={row.level}",
                             group.columns | level_columns)
        writer.add("conclusion_disagreement", row.level if row.factor == "judge_id" else "all",
                   HUMAN_MAJORITY, level_group, row.disagreement, np.nan, np.nan, n_items=row.n_cells,
                   n_in_subset=row.n_cells,
                   method=f"share of this {row.factor}'s cells not reaching the humans' conclusion; "
                          f"{row.excess_disagreement:+.2f} against the other levels; reversal share {row.reversal:.2f}")
