"""Turn a study's tables into the long ``stats`` table (one row per number).

Reference labels: the human majority per item, from annotations mapped to
unsafe/safe through the study's label set; ties and items without a binary
label have no reference and are counted in ``n_excluded``.

Subsets: ``all``; with a flags table, ``coherent`` and ``incoherent`` by the
combined ``incoherent`` detector; harmful rates also per ``model=…|benchmark=…``.

Exclusion policy: an item is left out of a judge's statistic when the judge
has no verdict for it (unparseable, refused, error, skipped or not run) or
when the statistic needs a reference and the item has none. Every such item is
counted in ``n_excluded``; nothing is coerced to "safe".

Intervals: percentile cluster bootstrap; clusters are ``behavior_id`` where
given, else the prompt text (responses to one prompt from different models
are not independent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from judgekit.stats.agreement import (
    binary_agreement_sums,
    cohen_kappa_from_sums,
    harmful_rate_from_sums,
    percent_agreement_from_sums,
    rate_sums,
)
from judgekit.stats.resampling import bootstrap_ci, cluster_sums
from judgekit.study import Study

HUMAN_MAJORITY = "human_majority"
_CODE = {"unsafe": 1.0, "safe": 0.0}


@dataclass(frozen=True)
class StatsSettings:
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.n_boot < 1:
            raise ValueError(f"n_boot must be >= 1, got {self.n_boot}")

    def signature(self, version: str, cluster: str) -> str:
        return (
            f"ci:percentile-{self.level:.0%}|boot:{self.n_boot}|seed:{self.seed}|cluster:{cluster}"
            f"|exclude:no-verdict+no-reference|version:{version}"
        )


def human_majority(study: Study) -> pd.Series:
    """Majority binary label per item (1 unsafe, 0 safe, NaN tie/none), indexed by item_id."""
    items = study.responses["item_id"]
    if study.annotations is None:
        return pd.Series(np.nan, index=items, dtype=float)
    mapping = study.metadata.annotation_labels.to_binary
    codes = study.annotations["label"].map(lambda label: _CODE.get(mapping.get(label), np.nan))
    votes = pd.DataFrame({"item_id": study.annotations["item_id"], "code": codes}).dropna()
    tally = votes.groupby("item_id")["code"].agg(["sum", "count"])
    majority = np.where(tally["sum"] * 2 > tally["count"], 1.0, np.where(tally["sum"] * 2 < tally["count"], 0.0, np.nan))
    return pd.Series(majority, index=tally.index, dtype=float).reindex(items)


def judge_codes(study: Study) -> pd.DataFrame:
    """Items × judges matrix of verdict codes (1 unsafe, 0 safe, NaN no verdict)."""
    if study.judgments is None:
        return pd.DataFrame(index=study.responses["item_id"])
    codes = study.judgments.assign(code=study.judgments["label"].map(_CODE))
    wide = codes.pivot(index="item_id", columns="judge_id", values="code")
    return wide.reindex(study.responses["item_id"]).astype(float)


def _subsets(study: Study) -> dict[str, NDArray[np.bool_]]:
    everything = np.ones(len(study.responses), dtype=bool)
    subsets = {"all": everything}
    if study.flags is not None:
        combined = study.flags.loc[study.flags["detector"] == "incoherent"].set_index("item_id")["flagged"]
        flagged = combined.reindex(study.responses["item_id"])
        if flagged.notna().any():
            incoherent = flagged.fillna(False).to_numpy(dtype=bool)
            known = flagged.notna().to_numpy()
            subsets["coherent"] = known & ~incoherent
            subsets["incoherent"] = known & incoherent
    return subsets


def _clusters(study: Study) -> tuple[NDArray, str]:
    responses = study.responses
    if "behavior_id" in responses and responses["behavior_id"].notna().all():
        return responses["behavior_id"].to_numpy(dtype=object), "behavior_id"
    return responses["prompt"].to_numpy(dtype=object), "prompt"


def compute_stats(study: Study, settings: StatsSettings, *, version: str) -> pd.DataFrame:
    """All statistics that apply to the tables present, as the long ``stats`` table."""
    clusters, cluster_name = _clusters(study)
    signature = settings.signature(version, cluster_name)
    rng = np.random.default_rng(settings.seed)
    reference = human_majority(study).to_numpy()
    judges = judge_codes(study)
    rows: list[dict] = []

    def add(statistic: str, judge_id: str, ref: str, subset: str, mask: NDArray, sums: NDArray, fn: Callable) -> None:
        estimate, low, high = bootstrap_ci(
            cluster_sums(sums, clusters[mask]), fn, n_boot=settings.n_boot, level=settings.level, rng=rng
        )
        n_items = int(sums[:, 0].sum())
        n_in_subset = int(mask.sum())
        rows.append(
            {
                "statistic": statistic,
                "judge_id": judge_id,
                "reference": ref,
                "subset": subset,
                "estimate": estimate if n_items else float("nan"),
                "ci_low": low,
                "ci_high": high,
                "n_items": n_items,
                "n_excluded": n_in_subset - n_items,
                "method": "cluster bootstrap, percentile",
                "signature": signature,
            }
        )

    has_reference = not np.all(np.isnan(reference))
    for subset, mask in _subsets(study).items():
        for judge_id in judges.columns:
            verdicts = judges[judge_id].to_numpy()[mask]
            if has_reference:
                sums = binary_agreement_sums(verdicts, reference[mask])
                add("percent_agreement", judge_id, HUMAN_MAJORITY, subset, mask, sums, percent_agreement_from_sums)
                add("cohen_kappa", judge_id, HUMAN_MAJORITY, subset, mask, sums, cohen_kappa_from_sums)

    raters = {j: judges[j].to_numpy() for j in judges.columns}
    if has_reference:
        raters[HUMAN_MAJORITY] = reference
    rate_subsets = {**_subsets(study), **_model_benchmark_subsets(study)}
    for subset, mask in rate_subsets.items():
        for judge_id, verdicts in raters.items():
            add("harmful_rate", judge_id, "none", subset, mask, rate_sums(verdicts[mask]), harmful_rate_from_sums)
    return pd.DataFrame(rows)


def _model_benchmark_subsets(study: Study) -> dict[str, NDArray[np.bool_]]:
    responses = study.responses
    keys = [c for c in ("model", "benchmark") if c in responses and responses[c].notna().any()]
    if not keys:
        return {}
    subsets = {}
    for values, group in responses.groupby(keys, dropna=False, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        name = "|".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
        mask = np.zeros(len(responses), dtype=bool)
        mask[responses.index.get_indexer(group.index)] = True
        subsets[name] = mask
    return subsets
