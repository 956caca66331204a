"""Statistics: pure functions on arrays (``agreement``, ``resampling``) and the
study-level driver that turns tables into the long ``stats`` table (``study``)."""

from judgekit.stats.agreement import cohen_kappa, harmful_rate, percent_agreement
from judgekit.stats.resampling import bootstrap_ci, cluster_sums

__all__ = ["bootstrap_ci", "cluster_sums", "cohen_kappa", "harmful_rate", "percent_agreement"]
