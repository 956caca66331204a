"""A coherence judge against judgekit's detectors: does a study's incoherence number depend on which notion is used?

For every judge that scores a coherence dimension on a declared scale (Betley et al.'s ``em-coherent``: coherent
<= 50 on 0-100) and every detector of the flags table, per model and overall: Cohen's kappa and the percent
agreement between the detector's flag and the judge's thresholded verdict (the judge is the reference), with
cluster-bootstrap intervals, and the 2x2 counts. All items count whatever ``--incoherent`` says: the exclusion
policy rests on one of the two notions compared here.
"""

from __future__ import annotations

import numpy as np

from judgekit.analysis.blocks.common import AGREEMENT_RATE, KAPPA, pair_sums
from judgekit.analysis.inputs import StudyArrays
from judgekit.analysis.rows import RowWriter
from judgekit.analysis.subsets import ALL, group_subsets

AGREEMENT = {"coherence_flag_kappa": KAPPA, "coherence_flag_agreement": AGREEMENT_RATE}
# (flag, judge says incoherent) per cell of the 2x2 table
COUNTS = {"coherence_flag_tp": (1, 1), "coherence_flag_fp": (1, 0), "coherence_flag_fn": (0, 1), "coherence_flag_tn": (0, 0)}


def coherence_vs_flags(writer: RowWriter, data: StudyArrays) -> None:
    if not data.coherence or data.flags.shape[1] == 0:
        return
    everything = np.ones(data.n_items, dtype=bool)
    groups = [(ALL, everything), *group_subsets(data.responses, ("model",))]
    for reference, verdicts in data.coherence.items():
        for detector in sorted(data.flags.columns):
            flags = data.flags[detector].to_numpy(dtype=float)  # NaN: the detector did not run on the item
            sums = pair_sums(flags, verdicts)
            both = ~np.isnan(flags) & ~np.isnan(verdicts)
            for group, mask in groups:
                if not (mask & both).any():
                    continue
                writer.block(AGREEMENT, detector, reference, group, mask, sums, policy_mask=everything)
                for name, (flag, judge) in COUNTS.items():
                    cell = mask & both & (flags == flag) & (verdicts == judge)
                    writer.add(name, detector, reference, group, float(cell.sum()), np.nan, np.nan,
                               n_items=int((mask & both).sum()), n_in_subset=int(mask.sum()), method="count",
                               excluded_reason="no judge score or no flag" if (mask & ~both).any() else "")
