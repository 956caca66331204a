"""judgekit: measure how far to trust automated safety judges.

Data flow, one module per step (each step reads and writes files with the
schemas in :mod:`judgekit.store.schema`)::

    responses --judges--> judgments --incoherence--> flags --stats--> stats
        --figures/report--> figures, tables, report.html

The Python API (:mod:`judgekit.api`) runs the same steps on a loaded study::

    study = judgekit.load_study("studies/jbb")
    judgekit.run_judges(study, ["keyword-gcg-13"])
    judgekit.flag(study)
    stats = judgekit.compute_stats(study, judgekit.StatsSettings(n_boot=1000))
    tables = judgekit.paper_tables(stats)
    judgekit.make_report(study, "reports/jbb")

Importing judgekit is light: the API functions, pandas, matplotlib, torch and
transformers load on first use.
"""

from judgekit.errors import InputError

__version__ = "0.1.0"

# name -> module it lives in, imported on first access (PEP 562), so `import judgekit` imports none of them
# (not even pandas: the CLI answers a usage error before any of it loads).
_LAZY = {
    **{name: "judgekit.store.io" for name in ("read_table", "write_table")},
    **{name: "judgekit.registry" for name in ("DETECTORS", "JUDGES", "STATISTICS")},
    **{name: "judgekit.store.study" for name in ("Study", "load_study")},
    "StatsSettings": "judgekit.analysis",
    **{name: "judgekit.api" for name in ("compute_stats", "convert_dataset", "demo_study", "draw_figure", "flag",
                                         "make_report", "paper_tables", "run_judges")},
}

__all__ = [
    "DETECTORS",
    "JUDGES",
    "STATISTICS",
    "InputError",
    "StatsSettings",
    "Study",
    "__version__",
    "compute_stats",
    "convert_dataset",
    "demo_study",
    "draw_figure",
    "flag",
    "load_study",
    "make_report",
    "paper_tables",
    "read_table",
    "run_judges",
    "write_table",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'judgekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
