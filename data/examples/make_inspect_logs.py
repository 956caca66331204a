"""Write data/examples/inspect/{base,ft}.json: two small Inspect AI logs of one task, a base and a fine-tuned model.

They are the logs of ``tests/framework_logs.py`` (inspect-ai 0.3.285, ``mockllm/model`` answering from a table, offline;
12 prompts, 2 epochs; scorer ``includes()`` against the target "Sure", so C means the model complied), rewritten in
Inspect's JSON log format without the sample transcripts (events), which judgekit reads with its core dependencies (``.eval`` needs zstandard). Rerun:
``python data/examples/make_inspect_logs.py`` (needs the dev extra: inspect-ai).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from inspect_ai.log import read_eval_log, write_eval_log  # noqa: E402

from tests.framework_logs import write_inspect_logs  # noqa: E402

with tempfile.TemporaryDirectory() as folder:
    logs = write_inspect_logs(Path(folder))
    for name in ("base", "ft"):
        log = read_eval_log(str(logs[name]))
        for sample in log.samples:
            sample.events = []  # the transcript: 80% of the file, and nothing judgekit reads
        write_eval_log(log, str(REPO / "data/examples/inspect" / f"{name}.json"), format="json")
