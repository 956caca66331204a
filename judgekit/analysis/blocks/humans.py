"""Inter-annotator agreement, and the human ceiling with judges scored on the very same items.

The ceiling scores each annotator against the majority of the *other*
annotators, on the items where those others have a majority. A judge is
comparable with it only on the same (item, others) pairs: ``ceiling_items``
rows score each judge against the same majority-of-others references,
pooled over annotators exactly like the ceiling.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from numpy.typing import NDArray

from judgekit.analysis.blocks.common import AGREEMENT_RATE, BINARY, KAPPA, pair_sums
from judgekit.analysis.inputs import StudyArrays, core_subsets, majority
from judgekit.analysis.rows import RowWriter, Statistic
from judgekit.analysis.subsets import subset
from judgekit.stats import agreement as ag

MULTIRATER = {"percent_agreement": Statistic(ag.percent_agreement_from_sums),
              "fleiss_kappa": Statistic(ag.fleiss_kappa_from_sums), "gwet_ac1": Statistic(ag.gwet_ac1_from_sums)}
PAIR = {"accuracy": AGREEMENT_RATE, "cohen_kappa": KAPPA}
CEILING = "human_ceiling"
OTHERS = "majority_of_others"


def multirater_rows(writer: RowWriter, data: StudyArrays, codes: NDArray, rater_set: str) -> None:
    """Percent agreement, Fleiss' kappa, Gwet's AC1 and Krippendorff's alpha among the columns of ``codes``."""
    counts = ag.category_counts(codes, BINARY)
    alpha = {"krippendorff_alpha": Statistic(partial(ag.krippendorff_alpha_from_sums, values=BINARY, level="nominal"))}
    pairable = (~np.isnan(codes)).sum(axis=1) >= 2
    for group, mask in core_subsets(data):
        writer.block(MULTIRATER, rater_set, rater_set, group, mask, ag.multirater_item_sums(counts))
        writer.block(alpha, rater_set, rater_set, group, mask, ag.krippendorff_item_sums(counts), counted=pairable)


def human_agreement(writer: RowWriter, data: StudyArrays) -> None:
    if data.humans.shape[1] >= 2:
        multirater_rows(writer, data, data.humans.to_numpy(), "humans")


def others_majorities(humans: NDArray) -> list[NDArray]:
    """Per annotator, the majority label of the other annotators per item (NaN on their ties)."""
    return [majority(np.delete(humans, k, axis=1)) for k in range(humans.shape[1])]


def human_ceiling(writer: RowWriter, data: StudyArrays) -> None:
    """Each annotator vs the majority of the others, the pooled ceiling, and every judge on the same pairs."""
    if data.humans.shape[1] < 2:
        return
    codes = data.humans.to_numpy()
    references = others_majorities(codes)
    for k, annotator in enumerate(data.humans.columns):
        for group, mask in core_subsets(data):
            writer.block(PAIR, annotator, OTHERS, group, mask, pair_sums(codes[:, k], references[k]))
    n = len(references)
    pooled = {"clusters": np.tile(data.clusters, n), "policy_mask": np.tile(data.policy_mask, n)}
    ceiling_pairs = np.concatenate([pair_sums(codes[:, k], references[k]) for k in range(n)])
    for group, mask in core_subsets(data):
        writer.block(PAIR, CEILING, OTHERS, group, np.tile(mask, n), ceiling_pairs, **pooled)
    # Judges on the (annotator, item) pairs the ceiling used: the annotator rated the item and the others agree.
    scored = np.concatenate([~np.isnan(codes[:, k]) & ~np.isnan(references[k]) for k in range(n)])
    stacked_reference = np.where(scored, np.concatenate(references), np.nan)
    for judge_id in data.judges.columns:
        verdicts = np.tile(data.judges[judge_id].to_numpy(), n)
        writer.block(PAIR, judge_id, OTHERS, subset("ceiling_items", "ceiling_items"), scored,
                     pair_sums(verdicts, stacked_reference), **pooled)
