"""Checks on a submitted notebook before it is graded, each a small function.

* :func:`read_submission`: the file is a notebook at all (size, JSON, nbformat schema).
* :func:`find_tampering`: which locked cells (tests, given code) were edited or deleted, and
  whose points were changed, compared with the student version. Grading ignores the student's
  copy of those cells anyway (provided cells are restored, tests come from the source notebook);
  this only says so in the grade table.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode

MAX_NOTEBOOK_BYTES = 50_000_000


class InvalidSubmission(ValueError):
    """The file cannot be read as a notebook; the message says why, for the grade table."""


def read_submission(path: Path) -> NotebookNode:
    """Read and validate a submitted notebook (nbformat 4); raise InvalidSubmission otherwise."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise InvalidSubmission(f"file is {size} bytes, more than the {MAX_NOTEBOOK_BYTES} accepted")
    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # json, nbformat and encoding errors all mean the same here
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InvalidSubmission(f"not a valid notebook: {first_line}") from error
    return notebook


def _nbgrader_cells(notebook: NotebookNode) -> dict[str, NotebookNode]:
    cells = {}
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if isinstance(grade_id, str):
            cells.setdefault(grade_id, cell)
    return cells


def find_tampering(submitted: NotebookNode, released: NotebookNode) -> list[str]:
    """Describe, in words, each locked cell of `released` that `submitted` changed or lacks."""
    found = _nbgrader_cells(submitted)
    changes = []
    for grade_id, original in _nbgrader_cells(released).items():
        meta = original.metadata.nbgrader
        if not meta.get("locked"):
            continue
        cell = found.get(grade_id)
        if cell is None:
            changes.append(f"{grade_id} deleted")
        elif cell.source != original.source:
            changes.append(f"{grade_id} edited")
        elif meta.get("grade") and cell.metadata.nbgrader.get("points") != meta.get("points"):
            changes.append(f"{grade_id} points changed")
    return changes
