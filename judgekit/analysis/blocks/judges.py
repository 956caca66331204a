"""Each judge against the human reference, against each annotator, and judges against each other."""

from __future__ import annotations

import itertools

import numpy as np

from judgekit.analysis.blocks.common import AGREEMENT_RATE, BINARY, CONFUSION, KAPPA, TWO_RATER, pair_classes, pair_sums
from judgekit.analysis.blocks.humans import multirater_rows
from judgekit.analysis.inputs import StudyArrays, core_subsets, item_subsets
from judgekit.analysis.rows import RowWriter, Statistic
from judgekit.analysis.settings import StatsSettings
from judgekit.analysis.subsets import ALL, Subset
from judgekit.store.schema import HUMAN_MAJORITY
from judgekit.stats import agreement as ag
from judgekit.stats.classification import (
    accuracy_gap_from_sums,
    accuracy_gap_item_sums,
    confusion_item_sums,
    harmful_rate_from_sums,
    soft_agreement_item_sums,
)

COUNTS = ("tp", "fp", "fn", "tn")
# Binary multi-rater sums (5 columns) followed by the pair sums, whose reference classes the warning reads.
GWET = {"gwet_ac1": Statistic(lambda s: ag.gwet_ac1_from_sums(s[..., :5]), classes=lambda t: pair_classes(t[5:]))}

COHERENCE_GAP = Subset("coherent-incoherent", "coherence_gap", None)


def _group_notes(sums, settings: StatsSettings) -> list[str]:
    """Few items or clusters on either side of the coherent/incoherent gap (sums ``[n, correct] x 2``)."""
    notes = []
    for name, column in (("coherent", 0), ("incoherent", 2)):
        items, clusters = float(sums[:, column].sum()), int((sums[:, column] > 0).sum())
        if items < settings.min_class_items:
            notes.append(f"few {name} items (n={items:.0f})")
        if clusters < settings.min_clusters:
            notes.append(f"few clusters with {name} items (n={clusters})")
    return notes


GAP = {"accuracy_gap": Statistic(accuracy_gap_from_sums, notes=_group_notes)}


def accuracy_gap_rows(writer: RowWriter, data: StudyArrays, judge_id: str, verdicts) -> None:
    """Accuracy on coherent minus on incoherent items, one cluster bootstrap for both sides (paired).

    Needs the combined flag and ``--incoherent include`` (the other policies
    leave one side empty).
    """
    sides = {group.value: mask for group, mask in core_subsets(data) if group.kind == "coherence"}
    if len(sides) < 2 or writer.settings.incoherent != "include":
        return
    item_sums = accuracy_gap_item_sums(data.reference, verdicts, first=sides["coherent"], second=sides["incoherent"])
    writer.block(GAP, judge_id, HUMAN_MAJORITY, COHERENCE_GAP, sides["coherent"] | sides["incoherent"], item_sums,
                 counted=(item_sums[:, 0] + item_sums[:, 2]) > 0)


def judges_vs_reference(writer: RowWriter, data: StudyArrays) -> None:
    if not data.has_reference:
        return
    core = {s.label for s, _ in core_subsets(data)}
    humans = data.humans.to_numpy()
    rated = (~np.isnan(humans)).sum(axis=1)  # items without human labels get no share (NaN), silently
    share = np.divide(np.nansum(humans, axis=1), rated, out=np.full(data.n_items, np.nan), where=rated > 0)
    for judge_id in data.judges.columns:
        verdicts = data.judges[judge_id].to_numpy()
        confusion = confusion_item_sums(data.reference, verdicts)
        pair = pair_sums(verdicts, data.reference)
        for group, mask in item_subsets(data):
            if not mask.any():
                continue
            writer.block(CONFUSION, judge_id, HUMAN_MAJORITY, group, mask, confusion)
            if group.label not in core:
                continue
            writer.block(TWO_RATER, judge_id, HUMAN_MAJORITY, group, mask, pair)
            counts = ag.category_counts(np.column_stack([verdicts, data.reference]), BINARY)
            writer.block(GWET, judge_id, HUMAN_MAJORITY, group, mask, np.hstack([ag.multirater_item_sums(counts), pair]),
                         counted=pair[:, 0] > 0)
            used = mask & data.policy_mask
            for k, name in enumerate(COUNTS, start=1):
                writer.add(name, judge_id, HUMAN_MAJORITY, group, confusion[used, k].sum(), np.nan, np.nan,
                           n_items=int(confusion[used, 0].sum()), n_in_subset=int(mask.sum()), method="count",
                           excluded_reason=writer.excluded_reason(mask, used & (confusion[:, 0] > 0), HUMAN_MAJORITY))
        accuracy_gap_rows(writer, data, judge_id, verdicts)
        soft = {"soft_agreement": Statistic(harmful_rate_from_sums, lambda s: (s[..., 1], s[..., 0]))}
        for group, mask in core_subsets(data):
            writer.block(soft, judge_id, "human_soft", group, mask, soft_agreement_item_sums(verdicts, share))
        for annotator in data.humans.columns:
            writer.block({"accuracy": AGREEMENT_RATE, "cohen_kappa": KAPPA}, judge_id, annotator, ALL,
                         np.ones(data.n_items, dtype=bool), pair_sums(verdicts, data.humans[annotator].to_numpy()))


def judges_vs_judges(writer: RowWriter, data: StudyArrays) -> None:
    if data.judges.shape[1] < 2:
        return
    for first, second in itertools.combinations(data.judges.columns, 2):
        sums = pair_sums(data.judges[first].to_numpy(), data.judges[second].to_numpy())
        for group, mask in core_subsets(data):
            writer.block({"percent_agreement": AGREEMENT_RATE, "cohen_kappa": KAPPA}, first, second, group, mask, sums)
    multirater_rows(writer, data, data.judges.to_numpy(), "judges")
