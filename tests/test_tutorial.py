"""The tutorial notebook runs from top to bottom on the shared JailbreakBench data, and is stored without outputs."""

from __future__ import annotations

import json

import pytest

from conftest import REPO, SHARED_DATA, needs_shared

NOTEBOOK = REPO / "analyses" / "tutorial.ipynb"

try:
    import nbclient
    import nbformat
except ImportError:  # the dev extra installs them
    nbclient = nbformat = None
needs_nbclient = pytest.mark.skipif(nbclient is None, reason="nbclient/nbformat are not installed (pip install -e '.[dev]')")


def test_notebook_is_stored_without_outputs() -> None:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


@needs_shared
@needs_nbclient
def test_tutorial_runs_on_the_shared_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGEKIT_SHARED_DATA", str(SHARED_DATA))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "230 responses; 3 annotators" in text
    assert "keyword-gcg-13" in text and "keyword-gcg-29" in text
    assert "Judges against the human majority (95% intervals:" in text  # the caption written from the rows
