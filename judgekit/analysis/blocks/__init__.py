"""The blocks of statistics, in the order they run.

Adding a block (say, a fine-tuning analysis with paired effects):

1. write ``blocks/<name>.py`` with a function ``(writer: RowWriter, data: StudyArrays) -> None``;
2. describe each statistic as a :class:`judgekit.analysis.rows.Statistic` (a
   function of summed per-item sufficient statistics, plus ``rate=`` when it
   is a ratio of counts) and emit rows with ``writer.block(...)`` (cluster
   intervals, warnings, per-row generator and signature come with it) or
   ``writer.add(...)`` for a number without an interval; use
   :class:`judgekit.analysis.subsets.Subset` for the items it covers, with
   its model/benchmark/goal as columns;
3. register it in ``BLOCKS`` below with the statistic names it writes, so
   ``--only`` can select it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from judgekit.analysis.blocks.bias import bias_audit
from judgekit.analysis.blocks.calibration import calibration
from judgekit.analysis.blocks.coherence import AGREEMENT as COHERENCE_AGREEMENT, COUNTS as COHERENCE_COUNTS, coherence_vs_flags
from judgekit.analysis.blocks.conclusions import finetune_effects
from judgekit.analysis.blocks.finetune import capability_rows, paired_comparisons
from judgekit.analysis.blocks.graded import STATISTICS as GRADED_STATISTICS, graded_agreement
from judgekit.analysis.blocks.humans import human_agreement, human_ceiling
from judgekit.analysis.blocks.judges import judges_vs_judges, judges_vs_reference
from judgekit.analysis.blocks.rates import harmful_rates
from judgekit.analysis.blocks.variance import variance_decomposition


@dataclass(frozen=True)
class Block:
    name: str
    run: Callable
    statistics: tuple[str, ...]


CONFUSION_NAMES = ("accuracy", "precision", "recall", "f1", "fpr", "fnr", "balanced_accuracy", "mcc")
BLOCKS = (
    Block("human_agreement", human_agreement, ("percent_agreement", "fleiss_kappa", "gwet_ac1", "krippendorff_alpha")),
    Block("human_ceiling", human_ceiling, ("accuracy", "cohen_kappa")),
    Block("judges_vs_reference", judges_vs_reference,
          (*CONFUSION_NAMES, "cohen_kappa", "scott_pi", "pabak", "prevalence_index", "bias_index", "gwet_ac1",
           "tp", "fp", "fn", "tn", "soft_agreement", "accuracy_gap")),
    Block("judges_vs_judges", judges_vs_judges,
          ("percent_agreement", "cohen_kappa", "fleiss_kappa", "gwet_ac1", "krippendorff_alpha")),
    Block("graded_agreement", graded_agreement, GRADED_STATISTICS),
    Block("calibration", calibration,
          ("ece", "brier", "ece_l2_squared_debiased", "mce", "log_loss", "brier_reliability", "brier_resolution",
           "brier_uncertainty", "brier_within_bin_variance", "brier_within_bin_covariance", "ece_equal_mass", "auroc",
           "auprc", "ece_noise_floor", "ece_noise_floor_p95")),
    Block("harmful_rates", harmful_rates, ("harmful_rate",)),
    Block("finetune_effects", finetune_effects,
          ("finetune_effect", "finetune_effect_p_value", "finetune_effect_bootstrap_tail_share", "ranking_kendall_tau")),
    Block("paired_comparisons", paired_comparisons,
          ("finetune_effect_paired", "finetune_effect_coherent_only", "finetune_effect_incoherent_share",
           "harmful_rate_corrected", "finetune_effect_corrected", "conclusion_agreement", "conclusion_reversal",
           "conclusion_disagreement", "finetune_effect_cell", "mitigation_effect_matched_capability",
           "labels_needed", "judge_error_shift", "checkpoint_trend", "checkpoint_step")),
    Block("capability", capability_rows, ("capability", "capability_gain", "capability_goal_target")),
    Block("bias_audit", bias_audit,
          ("accuracy", "error_odds_ratio", "error_odds_ratio_p_value", "mcnemar_p_value", "mcnemar_p_value_holm",
           "accuracy_difference", "cochran_q", "cochran_q_p_value")),
    Block("variance", variance_decomposition, ("variance_component", "variance_share")),
    Block("coherence_vs_flags", coherence_vs_flags, (*COHERENCE_AGREEMENT, *COHERENCE_COUNTS)),
)
STATISTIC_NAMES = tuple(sorted({s for block in BLOCKS for s in block.statistics}))
