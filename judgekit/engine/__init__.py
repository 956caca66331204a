"""The execution engine: the steps a command runs (:mod:`judgekit.engine.steps`), the judge runner, device
placement, Ray Data, stress tests, label planning and the ``judgekit run CONFIG`` runner.

The top floor below the CLI: it combines the packages beneath it, and none of them imports it back.
"""
