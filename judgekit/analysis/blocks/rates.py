"""Rate of each outcome per rater, overall and per model × benchmark, on the outcome's prompts.

The statistic is ``harmful_rate`` for every outcome (its ``outcome`` column
says what it counts): harmful compliance (attack success rate), over-refusal
on benign prompts, incoherent responses.
"""

from __future__ import annotations

from judgekit.analysis.blocks.common import HARMFUL_RATE
from judgekit.analysis.inputs import StudyArrays, core_subsets
from judgekit.analysis.rows import RowWriter
from judgekit.analysis.subsets import group_subsets
from judgekit.store.schema import HUMAN_MAJORITY
from judgekit.stats.classification import rate_item_sums


def raters(data: StudyArrays) -> dict:
    """Every judge's verdicts and, when there is one, the human reference."""
    out = {j: data.judges[j].to_numpy() for j in data.judges.columns}
    if data.has_reference:
        out[HUMAN_MAJORITY] = data.reference
    return out


def harmful_rates(writer: RowWriter, data: StudyArrays) -> None:
    groups = core_subsets(data) + group_subsets(data.responses, ("model", "benchmark"))
    for view in data.outcomes:
        with writer.measuring(view) as outcome_data:
            for rater, verdicts in raters(outcome_data).items():
                sums = rate_item_sums(verdicts)
                for group, mask in groups:
                    if mask.any() and not (mask & view.items).any():
                        continue  # e.g. a benchmark of benign prompts has no harmful-compliance rate
                    writer.block({"harmful_rate": HARMFUL_RATE}, rater, "none", group, mask & view.items, sums)
