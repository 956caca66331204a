"""Models and capability: which model was fine-tuned from which, toward what, and did it get there.

:mod:`.tables` reads and updates the optional ``models`` and ``capability``
tables of a study; :mod:`.importers` turns lm-evaluation-harness results,
Inspect AI eval logs and generic CSV files into capability rows;
:mod:`.gain` computes each fine-tune's capability gain over its base.
"""
