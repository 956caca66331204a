"""A study's tables as the arrays every block of statistics reads, built once per run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from judgekit.analysis.subsets import ALL, Subset, subset
from judgekit.errors import InputError
from judgekit.schema import DEFAULT_DIMENSION, derive_verdict
from judgekit.study import Study

_CODE = {"unsafe": 1.0, "safe": 0.0}


def human_codes(study: Study) -> pd.DataFrame:
    """Items × annotators matrix of binary codes (1 unsafe, 0 safe, NaN missing/no binary meaning).

    The study's adjudicator (``study.json`` ``adjudicator``) is not a rater and is left out.
    """
    items = study.responses["item_id"]
    annotations = study.annotations
    if annotations is None:
        return pd.DataFrame(index=items)
    if study.metadata.adjudicator:
        annotations = annotations[annotations["annotator_id"] != study.metadata.adjudicator]
    mapping = study.metadata.annotation_labels.to_binary
    codes = annotations.assign(code=annotations["label"].map(lambda label: _CODE.get(mapping.get(label), np.nan)))
    return codes.pivot(index="item_id", columns="annotator_id", values="code").reindex(items).astype(float)


def adjudicated_codes(study: Study) -> NDArray | None:
    """The adjudicator's binary code per item (NaN where absent), or None without an adjudicator."""
    if not study.metadata.adjudicator or study.annotations is None:
        return None
    mapping = study.metadata.annotation_labels.to_binary
    rows = study.annotations[study.annotations["annotator_id"] == study.metadata.adjudicator]
    codes = rows.set_index("item_id")["label"].map(lambda label: _CODE.get(mapping.get(label), np.nan))
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


def human_reference(study: Study) -> tuple[NDArray, NDArray]:
    """(reference label per item, tie mask): the adjudicated label where there is one, else the majority.

    Items whose annotators tie have no reference and are counted in
    ``excluded_reason`` as ``human-majority tie``.
    """
    codes = human_codes(study).to_numpy()
    if codes.shape[1] == 0:
        reference, tied = np.full(len(study.responses), np.nan), np.zeros(len(study.responses), dtype=bool)
    else:
        reference, tied = majority(codes), ties(codes)
    adjudicated = adjudicated_codes(study)
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


def judge_matrix(study: Study, column: str) -> pd.DataFrame:
    """Items × judges matrix of verdict codes (1 unsafe, 0 safe, NaN no verdict) or of another judgment column."""
    items = study.responses["item_id"]
    if study.judgments is None:
        return pd.DataFrame(index=items)
    wide = verdict_rows(study).pivot(index="item_id", columns="judge_id", values="code" if column == "label" else column)
    return wide.reindex(items).astype(float)


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
    return StudyArrays(responses, human_codes(study), reference, tied, judges, p_unsafe, flags,
                       pd.factorize(clusters.astype(str), sort=True)[0].astype(np.int64), cluster_name,
                       _policy_mask(flags, policy), study.path)


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
