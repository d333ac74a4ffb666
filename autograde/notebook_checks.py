"""Checks on a submitted notebook before it is graded, each a small function.

* :func:`read_submission`: the file is a notebook at all (size, JSON, nbformat schema).
* :func:`find_tampering`: which locked cells (tests, given code) were edited or deleted, and
  whose points were changed, compared with the student version. Grading ignores the student's
  copy of those cells anyway (provided cells are restored, tests come from the source notebook);
  this only says so in the grade table.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import warnings
from pathlib import Path

import nbformat
from nbformat import NotebookNode

MAX_NOTEBOOK_BYTES = 50_000_000


class InvalidSubmission(ValueError):
    """The file cannot be read as a notebook; the message says why, for the grade table."""


def read_bytes(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of the regular file `path`, opened without following a link (OSError otherwise,
    InvalidSubmission when larger than `limit`). A FIFO or device is never read: it is refused by
    its type after opening non-blocking."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InvalidSubmission("not a regular file")
        if info.st_size > limit:
            raise InvalidSubmission(f"file is {info.st_size} bytes, more than the {limit} accepted")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InvalidSubmission(f"file is more than the {limit} bytes accepted")
    return data


def read_submission(path: Path) -> NotebookNode:
    """Read and validate a submitted notebook (nbformat 4); raise InvalidSubmission otherwise.

    The file is opened without following links. The reason given never quotes the file's
    content (nbformat's and jsonschema's messages do, so they are not passed on): only where
    (line and column, cell number) and what kind of problem.
    """
    try:
        data = read_bytes(path)
    except OSError as error:
        reason = "a symbolic link" if error.errno == errno.ELOOP else error.strerror
        raise InvalidSubmission(f"cannot be read ({reason})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidSubmission(f"not a valid notebook: not UTF-8 text (byte {error.start})") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidSubmission(f"not a valid notebook: not JSON ({error.msg}, line {error.lineno} "
                                f"column {error.colno})") from None
    except RecursionError:
        raise InvalidSubmission("not a valid notebook: JSON nested too deeply") from None
    try:
        with warnings.catch_warnings():  # nbformat warns (on stderr) about cells without ids: not our business
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(text, as_version=4)
    except Exception:  # nbformat's errors quote the file
        raise InvalidSubmission("not a valid notebook: JSON, but not in a notebook format nbformat reads") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(notebook)
    except Exception as error:
        where = list(getattr(error, "absolute_path", []) or [])
        cell = (f" (cell {where[1] + 1})" if len(where) > 1 and where[0] == "cells" and isinstance(where[1], int)
                else "")
        raise InvalidSubmission(f"not a valid notebook: does not follow the nbformat 4 schema{cell}") from None
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
