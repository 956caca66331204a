"""Statistics as pure functions on arrays, each with a References section.

Agreement (:mod:`.agreement`), a judge against a reference
(:mod:`.classification`), calibration of P(unsafe) (:mod:`.calibration`),
resampling (:mod:`.resampling`), comparisons and conclusion stability
(:mod:`.comparison`), bias audits (:mod:`.bias`), and the study-level driver
that writes the long ``stats`` table (:mod:`.study`).
"""

from judgekit.stats.agreement import (
    bias_index,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    item_agreement,
    krippendorff_alpha,
    krippendorff_alpha_interval,
    krippendorff_alpha_ordinal,
    pabak,
    pairwise_cohen_kappa,
    percent_agreement,
    prevalence_index,
    scott_pi,
    spearman_rho,
    weighted_kappa_linear,
    weighted_kappa_quadratic,
)
from judgekit.stats.calibration import (
    brier_decomposition,
    brier_score,
    expected_calibration_error,
    log_loss,
    maximum_calibration_error,
    reliability_curve,
)
from judgekit.stats.classification import classification_metrics, confusion_matrix, harmful_rate, soft_agreement
from judgekit.stats.resampling import bootstrap_ci, cluster_sums, wilson_interval

__all__ = [
    "bias_index",
    "bootstrap_ci",
    "brier_decomposition",
    "brier_score",
    "classification_metrics",
    "cluster_sums",
    "cohen_kappa",
    "confusion_matrix",
    "expected_calibration_error",
    "fleiss_kappa",
    "gwet_ac1",
    "harmful_rate",
    "item_agreement",
    "krippendorff_alpha",
    "krippendorff_alpha_interval",
    "krippendorff_alpha_ordinal",
    "log_loss",
    "maximum_calibration_error",
    "pabak",
    "pairwise_cohen_kappa",
    "percent_agreement",
    "prevalence_index",
    "reliability_curve",
    "scott_pi",
    "soft_agreement",
    "spearman_rho",
    "weighted_kappa_linear",
    "weighted_kappa_quadratic",
    "wilson_interval",
]
