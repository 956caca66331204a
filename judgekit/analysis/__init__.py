"""The study-level driver: a loaded :class:`~judgekit.study.Study` in, the long ``stats`` table out.

* :mod:`.settings` — :class:`StatsSettings` and the row signature;
* :mod:`.inputs` — the study's tables as aligned arrays (reference labels,
  verdicts, clusters, exclusion policy) and the item subsets;
* :mod:`.subsets` — subsets as data (kind, value, model/benchmark columns);
* :mod:`.rows` — the interval each statistic gets, warnings, per-row
  generators and signatures;
* :mod:`.blocks` — one module per block of statistics (how to add one is
  documented there);
* :mod:`.driver` — :func:`compute_stats`.

The pure statistics live in :mod:`judgekit.stats`, which imports nothing
else from judgekit.
"""

from judgekit.analysis.driver import compute_stats
from judgekit.analysis.inputs import human_majority, judge_codes
from judgekit.analysis.settings import StatsSettings

__all__ = ["StatsSettings", "compute_stats", "human_majority", "judge_codes"]
