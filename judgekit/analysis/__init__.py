"""The study-level driver: a loaded :class:`~judgekit.store.study.Study` in, the long ``stats`` table out.

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

from judgekit.analysis.settings import StatsSettings

# Imported on first access (PEP 562): the blocks load scipy.stats and every statistic, which a command that
# only needs the settings or the study's inputs (the CLI, plan-labels) should not wait for.
_LAZY = {"compute_stats": "judgekit.analysis.driver", "human_majority": "judgekit.analysis.inputs",
         "judge_codes": "judgekit.analysis.inputs"}

__all__ = ["StatsSettings", "compute_stats", "human_majority", "judge_codes"]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'judgekit.analysis' has no attribute {name!r}")
