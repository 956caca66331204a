"""Statistics as pure functions on arrays, each with a References section.

Agreement (:mod:`.agreement`), a judge against a reference
(:mod:`.classification`), calibration of P(unsafe) (:mod:`.calibration`),
resampling (:mod:`.resampling`), comparisons and conclusion stability
(:mod:`.comparison`), bias audits (:mod:`.bias`), and the study-level driver
that writes the long ``stats`` table (:mod:`.study`).
"""

# name -> submodule, imported on first access (PEP 562): `import judgekit.stats.labelplan` (plan-labels) need not
# load every statistic and scipy.stats first.
_LAZY = {
    "bias_index": "agreement",
    "cohen_kappa": "agreement",
    "fleiss_kappa": "agreement",
    "gwet_ac1": "agreement",
    "item_agreement": "agreement",
    "krippendorff_alpha": "agreement",
    "krippendorff_alpha_interval": "agreement",
    "krippendorff_alpha_ordinal": "agreement",
    "pabak": "agreement",
    "pairwise_cohen_kappa": "agreement",
    "percent_agreement": "agreement",
    "prevalence_index": "agreement",
    "scott_pi": "agreement",
    "spearman_rho": "agreement",
    "weighted_kappa_linear": "agreement",
    "weighted_kappa_quadratic": "agreement",
    "brier_decomposition": "calibration",
    "brier_score": "calibration",
    "expected_calibration_error": "calibration",
    "log_loss": "calibration",
    "maximum_calibration_error": "calibration",
    "reliability_curve": "calibration",
    "classification_metrics": "classification",
    "confusion_matrix": "classification",
    "harmful_rate": "classification",
    "soft_agreement": "classification",
    "bootstrap_ci": "resampling",
    "cluster_sums": "resampling",
    "wilson_interval": "resampling",
}

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


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"judgekit.stats.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'judgekit.stats' has no attribute {name!r}")
