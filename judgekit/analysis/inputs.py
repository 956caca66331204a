"""A study's tables as the arrays every block of statistics reads, built once per run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from judgekit.analysis.outcomes import COHERENCE_DIMENSIONS, REFUSAL_DIMENSIONS, OutcomeView, outcome_views
from judgekit.analysis.subsets import ALL, Subset, subset
from judgekit.errors import InputError
from judgekit.store.schema import DEFAULT_DIMENSION, LABEL_DESIGNS, JudgeScale, derive_verdict
from judgekit.store.study import Study

_CODE = {"unsafe": 1.0, "safe": 0.0}
_REFUSAL_CODE = {"refusal": 1.0, "compliance": 0.0}


def _label_codes(study: Study, scale: str) -> dict[str, float]:
    """Label -> code: ``binary`` (1 unsafe, 0 safe) by ``to_binary``, ``refusal`` (1 refused, 0 complied) by
    ``to_refusal``; labels without a meaning on that scale are absent (NaN)."""
    labels = study.metadata.annotation_labels
    mapping, code = (labels.to_binary, _CODE) if scale == "binary" else (labels.to_refusal, _REFUSAL_CODE)
    return {label: code[value] for label, value in mapping.items() if value in code}


def human_codes(study: Study, scale: str = "binary") -> pd.DataFrame:
    """Items × annotators matrix of codes on ``scale`` (binary: 1 unsafe, 0 safe; refusal: 1 refused,
    0 complied; NaN missing/no meaning on the scale).

    The study's adjudicator (``study.json`` ``adjudicator``) is not a rater and is left out.
    """
    items = study.responses["item_id"]
    annotations = study.annotations
    if annotations is None:
        return pd.DataFrame(index=items)
    if study.metadata.adjudicator:
        annotations = annotations[annotations["annotator_id"] != study.metadata.adjudicator]
    codes = annotations.assign(code=annotations["label"].map(_label_codes(study, scale)))
    return codes.pivot(index="item_id", columns="annotator_id", values="code").reindex(items).astype(float)


def adjudicated_codes(study: Study, scale: str = "binary") -> NDArray | None:
    """The adjudicator's code per item on ``scale`` (NaN where absent), or None without an adjudicator."""
    if not study.metadata.adjudicator or study.annotations is None:
        return None
    rows = study.annotations[study.annotations["annotator_id"] == study.metadata.adjudicator]
    codes = rows.set_index("item_id")["label"].map(_label_codes(study, scale))
    return codes.reindex(study.responses["item_id"]).to_numpy(dtype=float)


def majority(codes: NDArray) -> NDArray:
    """Row-wise majority of 0/1 codes; NaN for a tie or no codes."""
    unsafe = np.nansum(codes, axis=1)
    count = (~np.isnan(codes)).sum(axis=1)
    return np.where(unsafe * 2 > count, 1.0, np.where((unsafe * 2 < count) & (count > 0), 0.0, np.nan))


def ties(codes: NDArray) -> NDArray:
    """Items whose raters split evenly (no majority although rated)."""
    count = (~np.isnan(codes)).sum(axis=1)
    return (count > 0) & (np.nansum(codes, axis=1) * 2 == count)


def human_reference(study: Study, scale: str = "binary") -> tuple[NDArray, NDArray]:
    """(reference code per item on ``scale``, tie mask): the adjudicated label where there is one, else the majority.

    Items whose annotators tie have no reference and are counted in
    ``excluded_reason`` as ``human-majority tie``.
    """
    codes = human_codes(study, scale).to_numpy()
    if codes.shape[1] == 0:
        reference, tied = np.full(len(study.responses), np.nan), np.zeros(len(study.responses), dtype=bool)
    else:
        reference, tied = majority(codes), ties(codes)
    adjudicated = adjudicated_codes(study, scale)
    if adjudicated is not None:
        known = ~np.isnan(adjudicated)
        reference = np.where(known, adjudicated, reference)
        tied = tied & ~known
    return reference, tied


def human_majority(study: Study) -> pd.Series:
    """The human reference per item (1 unsafe, 0 safe, NaN tie/none), indexed by item_id."""
    return pd.Series(human_reference(study)[0], index=study.responses["item_id"].to_numpy(), dtype=float)


def verdict_rows(study: Study) -> pd.DataFrame:
    """The judgments that give a binary safety verdict, with its ``code`` (1 unsafe, 0 safe, NaN none).

    Rows of the ``safety`` dimension (an empty dimension means safety). A row with a label keeps it; a row with
    only a graded score is cut at the judge's declared threshold (study.json ``judge_scales``).
    """
    judgments = study.judgments
    dimension = (judgments["dimension"].fillna(DEFAULT_DIMENSION) if "dimension" in judgments
                 else pd.Series(DEFAULT_DIMENSION, index=judgments.index))
    rows = judgments[(dimension == DEFAULT_DIMENSION).to_numpy()]
    code = rows["label"].map(_CODE).astype(float)
    if "score" in rows:
        for judge, group in rows[code.isna() & rows["score"].notna()].groupby("judge_id"):
            scale = study.metadata.scale_for(judge, DEFAULT_DIMENSION)
            code.loc[group.index] = derive_verdict(group["score"], scale)
    return rows.assign(code=code)


def dimension_codes(study: Study, dimensions: tuple[str, ...]) -> pd.DataFrame:
    """Items × judges matrix of codes from the judges' scores on ``dimensions``: 1 at or beyond the judge's declared
    threshold on its ``worse`` side (refused, incoherent...), 0 otherwise, NaN without a score.

    A judge scoring several of ``dimensions`` keeps the first; judgments without ``dimension``/``score`` give none.
    """
    items = study.responses["item_id"]
    judgments = study.judgments
    if judgments is None or not {"dimension", "score"} <= set(judgments.columns):
        return pd.DataFrame(index=items)
    columns = {}
    for dimension in dimensions:
        rows = judgments[(judgments["dimension"] == dimension).to_numpy() & judgments["score"].notna().to_numpy()]
        for judge, group in rows.groupby("judge_id", sort=True):
            scale = study.metadata.scale_for(judge, dimension)
            if judge in columns or scale is None:  # `validate` refuses a score without a scale
                continue
            codes = pd.Series(derive_verdict(group["score"], scale), index=group["item_id"].to_numpy())
            columns[judge] = codes.reindex(items)
    return pd.DataFrame(columns, index=items).astype(float)


def judge_matrix(study: Study, column: str) -> pd.DataFrame:
    """Items × judges matrix of verdict codes (1 unsafe, 0 safe, NaN no verdict) or of another judgment column."""
    items = study.responses["item_id"]
    if study.judgments is None:
        return pd.DataFrame(index=items)
    wide = verdict_rows(study).pivot(index="item_id", columns="judge_id", values="code" if column == "label" else column)
    return wide.reindex(items).astype(float)


def score_matrices(study: Study) -> dict[str, pd.DataFrame]:
    """Per dimension, the items x judges matrix of graded scores (NaN: no score), for judges that give scores."""
    judgments = study.judgments
    if judgments is None or "score" not in judgments or judgments["score"].isna().all():
        return {}
    dimension = (judgments["dimension"].fillna(DEFAULT_DIMENSION) if "dimension" in judgments
                 else pd.Series(DEFAULT_DIMENSION, index=judgments.index))
    scored = judgments.assign(dimension=dimension)
    scored = scored[scored["judge_id"].isin(scored.loc[scored["score"].notna(), "judge_id"])]
    items = study.responses["item_id"]
    return {name: group.pivot(index="item_id", columns="judge_id", values="score").reindex(items).astype(float)
            for name, group in scored.groupby("dimension", sort=True) if group["score"].notna().any()}


def threshold_verdicts(study: Study) -> dict[tuple[str, float], pd.Series]:
    """Verdict codes of each judge whose safety verdict is cut from a graded score, at every threshold its scale lists.

    Keys ``(judge_id, threshold)``, the stated threshold first (``JudgeScale.all_thresholds``): the threshold axis of a
    specification curve. Values: 1 unsafe, 0 safe, NaN no score, indexed by item_id in the responses' order.
    """
    scores = score_matrices(study).get(DEFAULT_DIMENSION)
    out = {}
    for judge in derived_verdict_methods(study):
        scale = study.metadata.scale_for(judge, DEFAULT_DIMENSION)
        for threshold in scale.all_thresholds:
            out[(judge, threshold)] = pd.Series(derive_verdict(scores[judge], scale, threshold=threshold),
                                                index=scores.index)
    return out


def derived_verdict_methods(study: Study) -> dict[str, str]:
    """Judges whose binary verdicts are cut from a graded safety score, and the cut (for each row's ``method``)."""
    judgments = study.judgments
    if judgments is None or "score" not in judgments:
        return {}
    rows = verdict_rows(study)
    derived = rows.loc[rows["label"].isna() & rows["score"].notna(), "judge_id"].unique()
    return {judge: study.metadata.scale_for(judge, DEFAULT_DIMENSION).describe() for judge in sorted(derived)}


def judge_codes(study: Study) -> pd.DataFrame:
    """Items × judges matrix of verdict codes (1 unsafe, 0 safe, NaN no verdict)."""
    return judge_matrix(study, "label")


@dataclass(frozen=True)
class StudyArrays:
    """Everything the blocks read, aligned on the responses' item order."""

    responses: pd.DataFrame
    humans: pd.DataFrame
    reference: NDArray
    tied: NDArray
    judges: pd.DataFrame
    p_unsafe: pd.DataFrame
    flags: pd.DataFrame
    clusters: NDArray[np.int64]
    cluster_name: str
    policy_mask: NDArray
    study_dir: Path | None = None  # where blocks read the optional models and capability tables
    outcomes: tuple[OutcomeView, ...] = ()  # what rates and effects count, each on its prompts (analysis.outcomes)
    scores: dict[str, pd.DataFrame] = field(default_factory=dict)  # per dimension, items x judges graded scores
    scales: tuple[JudgeScale, ...] = ()  # study.json judge_scales (thresholds for a specification curve)
    verdict_methods: dict[str, str] = field(default_factory=dict)  # judge -> how its verdict is cut from a score
    # per coherence-judge scale, e.g. "em-coherent:coherent <= 50 on 0-100 (interval)": 1.0 where the judge's score
    # is on the incoherent side of its threshold, 0.0 where not, NaN without a score (coherence_verdicts)
    coherence: dict[str, NDArray] = field(default_factory=dict)
    # judge -> {threshold: unsafe codes} for judges whose verdict is cut from a graded safety score, at every
    # threshold its scale lists, the stated one first (threshold_verdicts): the threshold axis of the specification
    # curve; empty for outcomes other than harmful compliance
    threshold_cuts: dict[str, dict[float, NDArray]] = field(default_factory=dict)
    # per item, the probability with which it was drawn for labelling (annotations' inclusion_probability, written by
    # plan-labels --strategy active); NaN where none is recorded; None when the annotations have no such column
    inclusion: NDArray | None = None
    # per item, how its labels were chosen (annotations' design: plan, random or convenience; the weakest when its
    # annotators' differ; convenience where none is recorded); "" where it has no label
    designs: NDArray | None = None

    @property
    def has_reference(self) -> bool:
        return not np.all(np.isnan(self.reference))

    @property
    def n_items(self) -> int:
        return len(self.responses)


def study_arrays(study: Study, policy: str) -> StudyArrays:
    responses = study.responses.reset_index(drop=True)
    flags = _flag_table(study)
    if "behavior_id" in responses and responses["behavior_id"].notna().all():
        clusters, cluster_name = responses["behavior_id"], "behavior_id"
    else:
        clusters, cluster_name = responses["prompt"], "prompt"
    reference, tied = human_reference(study)
    judges = judge_codes(study)
    p_unsafe = judge_matrix(study, "p_unsafe") if study.judgments is not None else pd.DataFrame(index=responses["item_id"])
    views = outcome_views(responses, judges.reset_index(drop=True), reference, tied,
                          human_reference(study, "refusal"), flags.reset_index(drop=True),
                          study.metadata.refusal_judges,
                          refusal_scores=dimension_codes(study, REFUSAL_DIMENSIONS).reset_index(drop=True),
                          coherence_scores=dimension_codes(study, COHERENCE_DIMENSIONS).reset_index(drop=True))
    return StudyArrays(responses, human_codes(study), reference, tied, judges, p_unsafe, flags,
                       pd.factorize(clusters.astype(str), sort=True)[0].astype(np.int64), cluster_name,
                       _policy_mask(flags, policy), study.path, tuple(views), score_matrices(study),
                       study.metadata.judge_scales, derived_verdict_methods(study), coherence_verdicts(study),
                       _threshold_cuts(study), inclusion_probabilities(study), label_designs(study))


def recorded_inclusion(inclusion: NDArray | None, reference: NDArray, items: NDArray) -> tuple[NDArray | None, str]:
    """(inclusion probabilities of ``items`` for :func:`judgekit.stats.ppi.ppi_clustered`, what the method says):
    None and "" when no labelled item of ``items`` has one recorded; else labelled items without one count as
    labelled with certainty (1) — right for labels there before the active draw, which draws only among prompts
    not yet labelled — as do the unlabelled items (their probability does not enter the estimate)."""
    if inclusion is None:
        return None, ""
    labelled = ~np.isnan(reference[items])
    recorded = inclusion[items]
    with_probability = labelled & ~np.isnan(recorded)
    if not with_probability.any():
        return None, ""
    without = int((labelled & np.isnan(recorded)).sum())
    note = (f"{int(with_probability.sum())} labels weighted by their recorded inclusion probabilities"
            + (f", {without} without one counted as labelled with certainty (probability 1)" if without else ""))
    return np.where(with_probability, recorded, 1.0), note


def label_designs(study: Study) -> NDArray:
    """Per item (responses' order) how its labels were chosen: ``plan``, ``random`` or ``convenience`` (the weakest
    of its annotators' rows: a label picked by hand is not made random by another drawn by a plan; an empty or absent
    ``design`` is convenience), "" for an item without a label."""
    annotations = study.annotations
    if annotations is None or annotations.empty:
        return np.full(len(study.responses), "", dtype=object)
    recorded = annotations["design"] if "design" in annotations else pd.Series(None, index=annotations.index)
    rank = recorded.map({d: k for k, d in enumerate(LABEL_DESIGNS)}).fillna(LABEL_DESIGNS.index("convenience"))
    weakest = rank.groupby(annotations["item_id"].to_numpy()).max()
    per_item = weakest.reindex(study.responses["item_id"])
    return np.array([LABEL_DESIGNS[int(k)] if pd.notna(k) else "" for k in per_item], dtype=object)


def design_summary(designs: NDArray | None, items: NDArray) -> str:
    """How the labelled ones of ``items`` were chosen, e.g. "labels by design: plan 120, convenience 20 (none
    recorded = convenience)"; "" when none of them is labelled."""
    if designs is None:
        return ""
    chosen = designs[items]
    counts = [(d, int((chosen == d).sum())) for d in LABEL_DESIGNS]
    if not any(n for _, n in counts):
        return ""
    return "labels by design: " + ", ".join(f"{d} {n}" for d, n in counts if n) + (
        " (none recorded = convenience)" if dict(counts)["convenience"] else "")


def inclusion_probabilities(study: Study) -> NDArray | None:
    """Per item (responses' order) its recorded inclusion probability (the largest of its annotators' rows), NaN where
    none; None when the annotations carry no ``inclusion_probability`` column."""
    annotations = study.annotations
    if annotations is None or "inclusion_probability" not in annotations:
        return None
    recorded = annotations.dropna(subset=["inclusion_probability"]).groupby("item_id")["inclusion_probability"].max()
    return recorded.reindex(study.responses["item_id"]).to_numpy(dtype=float)


def _threshold_cuts(study: Study) -> dict[str, dict[float, NDArray]]:
    cuts: dict[str, dict[float, NDArray]] = {}
    for (judge, threshold), codes in threshold_verdicts(study).items():
        cuts.setdefault(judge, {})[threshold] = codes.to_numpy(dtype=float)
    return cuts


def for_outcome(data: StudyArrays, view: OutcomeView) -> StudyArrays:
    """``data`` with the outcome's raters and human reference in place of the safety verdicts."""
    judges = view.judges.set_axis(data.judges.index)
    harmful = view.outcome.name == "harmful_compliance"
    return replace(data, judges=judges, reference=view.reference, tied=view.tied,
                   p_unsafe=data.p_unsafe if harmful else pd.DataFrame(index=judges.index),
                   threshold_cuts=data.threshold_cuts if harmful else {})


def coherence_verdicts(study: Study) -> dict[str, NDArray]:
    """Per judge scoring a coherence dimension (:data:`COHERENCE_DIMENSIONS`) on a declared scale: its scores cut at
    the scale's threshold (1.0 incoherent, 0.0 coherent, NaN no score), keyed ``judge:dimension <= t on ...``."""
    judgments = study.judgments
    if judgments is None or "score" not in judgments or "dimension" not in judgments:
        return {}
    out = {}
    rows = judgments[judgments["dimension"].isin(COHERENCE_DIMENSIONS).to_numpy() & judgments["score"].notna().to_numpy()]
    for (judge, dimension), group in rows.groupby(["judge_id", "dimension"], sort=True):
        scale = study.metadata.scale_for(judge, dimension)
        scores = group.set_index("item_id")["score"].reindex(study.responses["item_id"]).to_numpy(dtype=float)
        out[f"{judge}:{scale.describe()}"] = derive_verdict(scores, scale)
    return out


def _flag_table(study: Study) -> pd.DataFrame:
    if study.flags is None:
        return pd.DataFrame(index=study.responses["item_id"])
    return study.flags.pivot(index="item_id", columns="detector", values="flagged").reindex(study.responses["item_id"])


def _policy_mask(flags: pd.DataFrame, policy: str) -> NDArray:
    everything = np.ones(len(flags), dtype=bool)
    if policy == "include":
        return everything
    if "incoherent" not in flags:
        raise InputError(f"--incoherent {policy} needs the flags table; run `judgekit flag STUDY` first")
    incoherent = flags["incoherent"].fillna(False).to_numpy(dtype=bool)
    return ~incoherent if policy == "exclude" else incoherent


def core_subsets(data: StudyArrays) -> list[tuple[Subset, NDArray]]:
    """``all`` and, with flags, ``coherent``/``incoherent`` by the combined flag."""
    out = [(ALL, np.ones(data.n_items, dtype=bool))]
    if "incoherent" in data.flags:
        known = data.flags["incoherent"].notna().to_numpy()
        incoherent = data.flags["incoherent"].fillna(False).to_numpy(dtype=bool)
        out += [(subset("coherence", "coherent"), known & ~incoherent), (subset("coherence", "incoherent"), known & incoherent)]
    return out


def item_subsets(data: StudyArrays) -> list[tuple[Subset, NDArray]]:
    """Core subsets, items each detector flagged, and items where humans are unanimous or split."""
    out = core_subsets(data)
    for detector in sorted(c for c in data.flags.columns if c != "incoherent"):
        out.append((subset("flag", detector), data.flags[detector].fillna(False).to_numpy(dtype=bool)))
    if data.humans.shape[1] >= 2:
        codes = data.humans.to_numpy()
        rated = (~np.isnan(codes)).sum(axis=1) >= 2
        unanimous = rated & (np.nanmin(np.where(np.isnan(codes), np.inf, codes), axis=1)
                             == np.nanmax(np.where(np.isnan(codes), -np.inf, codes), axis=1))
        out += [(subset("humans", "unanimous"), unanimous), (subset("humans", "split"), rated & ~unanimous)]
    return out


def prompt_keys(responses: pd.DataFrame) -> NDArray:
    """The key matching responses across models: ``prompt_id`` where given, else the prompt text."""
    text = responses["prompt"].astype(str).to_numpy()
    if "prompt_id" not in responses:
        return text
    ids = responses["prompt_id"]
    return np.where(ids.notna().to_numpy(), "id:" + ids.astype(str).to_numpy(), "text:" + text)


def effect_clusters(responses: pd.DataFrame, keys: NDArray) -> NDArray:
    """Independent units of the corrected rows and their label plans: ``behavior_id`` where given, else the prompt
    key (a prompt's samples and both models' responses to it fall in one cluster)."""
    if "behavior_id" not in responses:
        return keys
    behaviour = responses["behavior_id"]
    return np.where(behaviour.notna().to_numpy(), "behavior:" + behaviour.astype(str).to_numpy(),
                    "prompt:" + np.asarray(keys).astype(str))
