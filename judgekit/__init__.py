"""judgekit: measure how far to trust automated safety judges.

Data flow, one module per step (each step reads and writes files with the
schemas in :mod:`judgekit.schema`)::

    responses --judges--> judgments --incoherence--> flags --stats--> stats
        --figures/report--> figures, tables, report.html

Importing judgekit is light: torch and transformers load only when a model
judge runs.
"""

from judgekit.errors import InputError
from judgekit.io import read_table, write_table
from judgekit.registry import DETECTORS, JUDGES, STATISTICS
from judgekit.study import Study, load_study

__version__ = "0.1.0"

__all__ = [
    "DETECTORS",
    "JUDGES",
    "STATISTICS",
    "InputError",
    "Study",
    "__version__",
    "load_study",
    "read_table",
    "write_table",
]
