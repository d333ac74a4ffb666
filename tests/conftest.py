"""Fixtures shared across test folders."""
from __future__ import annotations

import nbformat
import pytest

from notebooks import execute_reference


@pytest.fixture(scope="session")
def executed_reference(tmp_path_factory) -> nbformat.NotebookNode:
    """The reference notebook run headless once per session (about half a minute)."""
    return execute_reference(tmp_path_factory.mktemp("reference"))
