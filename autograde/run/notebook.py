"""The notebook the run phase executes: the student's cells and the provided ones, no test cells.

:func:`run_notebook` takes the submitted notebook and the released one and returns what runs:

* provided cells (locked, not graded) get back their released source;
* every test cell is replaced, where it stands, by an exporter cell that snapshots the names
  that test reads (a test a student deleted gets its exporter at the end);
* submitted outputs are dropped: only what runs now is shown.

The exporter cell holds the test's id and the names it reads, never the test's code.
"""
from __future__ import annotations

import copy
import json

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

EXPORT_TAG = "autograde-export"


def _meta(cell: NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def test_ids(notebook: NotebookNode) -> list[str]:
    """grade_ids of the graded code cells (the tests), in notebook order."""
    return [_meta(cell)["grade_id"] for cell in notebook.cells
            if cell.cell_type == "code" and _meta(cell).get("grade") and not _meta(cell).get("solution")]


def export_cell(test_id: str, names: list[str], folder: str, seed: int) -> NotebookNode:
    """A code cell calling :func:`autograde.run.export.snapshot` for `test_id`."""
    source = ("import autograde.run.export as _autograde_export\n"
              f"_autograde_export.snapshot({test_id!r}, globals(), {json.dumps(names)}, {folder!r}, {seed})\n"
              "del _autograde_export")
    cell = new_code_cell(source, metadata={"tags": [EXPORT_TAG], "autograde": {"export": test_id}})
    del cell["id"]
    return cell


def run_notebook(submitted: NotebookNode, released: NotebookNode, names: dict[str, list[str]],
                 folder: str, seed: int) -> NotebookNode:
    """The notebook to execute; `names` maps each test id to the names it reads."""
    provided = {_meta(cell)["grade_id"]: cell.source for cell in released.cells
                if _meta(cell).get("locked") and not _meta(cell).get("grade") and "grade_id" in _meta(cell)}
    tests = test_ids(released)
    notebook = copy.deepcopy(released)
    notebook.cells = []
    exported: set[str] = set()
    for cell in submitted.cells:
        grade_id = _meta(cell).get("grade_id")
        if grade_id in tests:
            if grade_id not in exported:
                exported.add(grade_id)
                notebook.cells.append(export_cell(grade_id, names.get(grade_id, []), folder, seed))
            continue
        cell = copy.deepcopy(cell)
        cell.pop("id", None)
        if grade_id in provided:
            cell.source = provided[grade_id]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        notebook.cells.append(cell)
    for grade_id in tests:
        if grade_id not in exported:
            notebook.cells.append(export_cell(grade_id, names.get(grade_id, []), folder, seed))
    notebook.nbformat_minor = min(notebook.nbformat_minor, 4)  # no cell ids needed
    return notebook
