"""The released student notebook, untouched, run in JupyterLab 4 in Chromium.

*Run All* stops at the first error, so the test goes on as a student would: it selects the
first cell that has not run and uses *Run > Run Selected Cell and All Below*, until every code
cell has run. Then each cell that stopped must stop for a reason the student can act on:

- a TODO cell (nbgrader solution cell) raises ``NotImplementedError`` from its own stub,
  with a message naming what is missing;
- a cell that uses a TODO's result raises ``NotImplementedError`` from ``needs(...)``:
  "finish the TODO that defines ... first", naming the same variables as its ``needs`` call;
- a graded test cell fails with an ``AssertionError`` and a message.

No other cell fails, no traceback goes into a module of the kit or a library (only frames of
notebook cells), and nothing else is written to stderr.
"""
from __future__ import annotations

import re
from types import SimpleNamespace

import nbformat
import pytest

from lab_driver import NotebookPage, new_context, release_student_notebook

CELL_SECONDS = 300
NEEDS_CALL = re.compile(r"""^needs\(((?:\s*"\w+",?)+)\)""", re.M)
LIBRARY_FRAME = re.compile(r"^File [^\n]*\.py:\d+", re.M)   # IPython's frame line for a module


def nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def error_line(traceback_text: str) -> str:
    """The last line of a rendered traceback: ``Name: message``."""
    return traceback_text.strip().splitlines()[-1].strip()


def error_parts(traceback_text: str) -> tuple[str, str]:
    """The exception's name and its message (empty for a bare ``raise Name()``)."""
    name, _, message = error_line(traceback_text).partition(":")
    return name, message.strip()


@pytest.fixture(scope="module")
def student(browser, lab, lab_root):
    """The student version, released by ``python -m autograde release``, run to the end."""
    released = nbformat.read(release_student_notebook(lab_root / "student"), as_version=4)
    context = new_context(browser, lab.base_url)
    notebook = NotebookPage(context.new_page(), lab, "student/lab3.ipynb").open()
    notebook.run_all(CELL_SECONDS)
    restarts = 0
    while not_run := [c for c in notebook.cells() if c.kind == "code" and c.execution_count is None]:
        notebook.run_from(not_run[0].index, CELL_SECONDS)  # raises if the cell does not run
        restarts += 1
    yield SimpleNamespace(released=released, cells=notebook.cells(), restarts=restarts,
                          context=context)
    context.close()


def test_every_code_cell_runs_when_the_student_goes_on_after_each_error(student):
    assert len(student.cells) == len(student.released.cells)
    not_run = [c.index for c in student.cells if c.kind == "code" and c.execution_count is None]
    assert not not_run, f"cells never run: {not_run}"
    assert student.restarts >= 5, "Run All should have stopped at each missing piece of work"


def test_each_error_is_one_traceback_through_notebook_cells_only(student):
    for cell in student.cells:
        assert len(cell.stderr) <= 1, f"cell {cell.index}: more than one stderr output: {cell.stderr}"
        for text in cell.stderr:
            assert "Traceback (most recent call last)" in text, \
                f"cell {cell.index}: stderr output that is not an error: {text[:300]!r}"
            deep = LIBRARY_FRAME.findall(text)
            assert not deep, f"cell {cell.index}: the traceback goes into the kit or a library: {deep}"


def test_todo_cells_stop_with_a_not_implemented_error_naming_the_missing_work(student):
    stopped = 0
    for source, cell in zip(student.released.cells, student.cells):
        if not nbgrader(source).get("solution") or "\nraise NotImplementedError" not in "\n" + source.source:
            continue  # a TODO inside a method only raises when the method is called
        assert cell.stderr, f"TODO cell {cell.index} ({nbgrader(source)['grade_id']}) did not stop"
        name, message = error_parts(cell.stderr[0])
        assert name == "NotImplementedError", f"cell {cell.index}: {error_line(cell.stderr[0])}"
        todo = re.search(r"^# TODO: (.*)$", source.source, re.M).group(1)
        assert message.startswith("TODO: " + todo.rstrip(",")[:40]), \
            f"cell {cell.index}: the message should say what is missing (its TODO), got {message!r}"
        stopped += 1
    assert stopped >= 6


def test_cells_using_a_todo_stop_with_the_kit_message_naming_it(student):
    stopped = 0
    for source, cell in zip(student.released.cells, student.cells):
        call = NEEDS_CALL.search(source.source) if source.cell_type == "code" else None
        if call is None or nbgrader(source):
            continue
        names = ", ".join(re.findall(r'"(\w+)"', call.group(1)))
        assert cell.stderr, f"cell {cell.index} uses {names} but did not stop"
        assert error_line(cell.stderr[0]) == \
            f"NotImplementedError: finish the TODO that defines {names} first", \
            f"cell {cell.index}: {error_line(cell.stderr[0])}"
        stopped += 1
    assert stopped >= 10


def test_graded_tests_fail_with_an_assertion_that_says_why(student):
    for source, cell in zip(student.released.cells, student.cells):
        if not nbgrader(source).get("grade"):
            continue
        assert cell.stderr, f"test cell {cell.index} ({nbgrader(source)['grade_id']}) passed on no work"
        name, message = error_parts(cell.stderr[0])
        assert name == "AssertionError" and message, f"cell {cell.index}: {error_line(cell.stderr[0])}"


def test_nothing_else_fails(student):
    expected = {i for i, source in enumerate(student.released.cells)
                if nbgrader(source).get("solution") or nbgrader(source).get("grade")
                or (source.cell_type == "code" and NEEDS_CALL.search(source.source))}
    others = {c.index: error_line(c.stderr[0]) for c in student.cells if c.stderr and c.index not in expected}
    assert not others, f"cells that fail although they need no missing work: {others}"


def test_nothing_is_fetched_from_outside_localhost(student):
    assert student.context.outside_requests == [], "the page tried to reach the internet"
