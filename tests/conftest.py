"""Fixtures shared across test folders."""
from __future__ import annotations

import nbformat
import pytest

from notebooks import execute_reference


@pytest.fixture(scope="session")
def executed_reference(tmp_path_factory) -> nbformat.NotebookNode:
    """The reference notebook run headless once per session (about half a minute)."""
    return execute_reference(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    """A small class graded once, unsharded, with ``python -m autograde grade``: the rows that
    sharded runs (tests/test_autograde_shards.py) and Gradescope runs
    (tests/test_autograde_gradescope.py) must give again. See :func:`grading_runs.grade_class`."""
    from grading_runs import grade_class

    return grade_class(tmp_path_factory.mktemp("class"))
