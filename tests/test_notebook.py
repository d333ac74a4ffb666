"""The reference notebook, end to end.

- ``lab3.ipynb`` carries valid nbgrader metadata: unique ids, graded cells that are locked tests with points;
- executed headless (kernel ``python3``), every cell runs, every graded test passes, nothing is
  written to stderr (nbgrader gives zero points to a test cell that writes there) and the
  pictures are drawn;
- ``nbgrader generate_assignment`` turns it into a student version with no solution and no
  hidden test, with the pictures next to it;
- run as is, the student version stops only where work is missing. The rule, per cell that
  raises: a TODO cell raises ``NotImplementedError`` (nbgrader's stub); a cell that uses a
  TODO's result raises ``NotImplementedError`` from ``needs(...)`` ("finish the TODO that
  defines ... first"); a graded test cell fails with ``AssertionError`` (or ``NameError``)
  and a message. No other cell raises, and no graded test passes.

Executing the reference notebook takes about a minute, so each notebook runs once per session.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from notebooks import ASSETS, NOTEBOOK, ROOT, execute

SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
HIDDEN_REGION = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def graded(nb) -> list:
    return [c for c in nb.cells if nbgrader(c).get("grade")]


def solutions(nb) -> list:
    return [c for c in nb.cells if nbgrader(c).get("solution")]


def errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


@pytest.fixture(scope="module")
def source() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def reference(executed_reference) -> nbformat.NotebookNode:
    """The reference notebook, executed in a folder that holds only it and ``assets/``."""
    return executed_reference


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """The student version, written by ``nbgrader generate_assignment`` in a fresh course."""
    course = tmp_path_factory.mktemp("course")
    (course / "source" / "lab3").mkdir(parents=True)
    shutil.copy(NOTEBOOK, course / "source" / "lab3" / "lab3.ipynb")
    shutil.copytree(ASSETS, course / "source" / "lab3" / "assets")
    env = dict(os.environ)  # nbgrader's database calls the venv's `alembic`
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", "lab3", "--force",
         f"--CourseDirectory.root={course}"],
        cwd=course, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return course / "release" / "lab3"


@pytest.fixture(scope="module")
def student_run(release) -> nbformat.NotebookNode:
    return execute(release / "lab3.ipynb")


# --- the source notebook ------------------------------------------------------------------

def test_kernelspec_is_python3(source):
    assert source.metadata.kernelspec.name == "python3"
    assert source.metadata.kernelspec.display_name == "Python 3"


def test_nbgrader_metadata_is_schema_3_with_unique_ids(source):
    marked = [c for c in source.cells if nbgrader(c)]
    ids = [nbgrader(c)["grade_id"] for c in marked]
    assert len(ids) == len(set(ids)), f"duplicate grade_id: {sorted(ids)}"
    for cell in marked:
        meta = nbgrader(cell)
        assert meta["schema_version"] == 3, meta
        for key in ("grade", "solution", "locked"):
            assert isinstance(meta[key], bool), (meta["grade_id"], key)


def test_graded_cells_are_locked_tests_with_points(source):
    """Whatever an instructor makes of the lab (points, questions), each graded cell is a locked
    test with points and a visible assert."""
    cells = graded(source)
    assert cells
    for cell in cells:
        meta = nbgrader(cell)
        assert cell.cell_type == "code" and meta["locked"] and not meta["solution"], meta
        assert meta["points"] > 0, meta
        visible = HIDDEN_REGION.sub("", cell.source)
        assert "assert " in visible, f"{meta['grade_id']}: no visible assert"
    assert sum(nbgrader(c)["points"] for c in cells) > 0


def test_markers_are_balanced_and_in_the_right_cells(source):
    for cell in source.cells:
        text, meta = cell.source, nbgrader(cell)
        n_solution = text.count("### BEGIN SOLUTION")
        n_hidden = text.count("### BEGIN HIDDEN TESTS")
        assert n_solution == text.count("### END SOLUTION"), cell.id
        assert n_hidden == text.count("### END HIDDEN TESTS"), cell.id
        assert n_solution == len(SOLUTION_REGION.findall(text)), cell.id
        assert (n_solution > 0) == bool(meta.get("solution")), cell.id
        assert n_hidden == 0 or meta.get("grade"), cell.id


def test_source_is_stored_without_outputs(source):
    for cell in source.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, cell.id


def test_pictures_it_shows_are_in_assets_and_small(source):
    shown = set()
    for cell in source.cells:
        if cell.cell_type == "markdown":
            shown.update(re.findall(r"\]\((assets/[\w.-]+\.png)\)", cell.source))
    assert {"assets/adversarial.png", "assets/mnist_samples.png",
            "assets/verification.png"} <= shown
    for name in shown:
        picture = ROOT / name
        assert picture.is_file(), name
        assert picture.stat().st_size < 200_000, name


# --- the reference solution, executed ------------------------------------------------------

def test_reference_runs_without_errors(reference):
    failed = {c.id: f"{e.ename}: {e.evalue}" for c in reference.cells for e in errors(c)}
    assert not failed


def test_reference_passes_every_graded_test(reference):
    for cell in graded(reference):
        assert not errors(cell), (nbgrader(cell)["grade_id"], errors(cell))


def test_reference_writes_nothing_to_stderr(reference):
    noisy = {c.id: o.text[:300] for c in reference.cells if c.cell_type == "code"
             for o in c.outputs if o.output_type == "stream" and o.name == "stderr"}
    assert not noisy


def test_reference_draws_its_pictures(reference):
    drawing = [c for c in reference.cells if c.cell_type == "code"
               and "plt.show()" in c.source.splitlines()]  # unconditional drawings only
    assert len(drawing) >= 10
    for cell in drawing:
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.id


# --- the student version -------------------------------------------------------------------

def test_release_holds_no_solution_and_no_hidden_test(source, release):
    student = (release / "lab3.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in student
    # every line of an answer or a hidden test that is not also written elsewhere in the source
    given = {line.strip() for c in source.cells
             for line in HIDDEN_REGION.sub("", SOLUTION_REGION.sub("", c.source)).splitlines()}
    secret = {line.strip() for c in source.cells
              for region in SOLUTION_REGION.findall(c.source) + HIDDEN_REGION.findall(c.source)
              for line in region.splitlines()} - given - {""}
    student_lines = {line.strip() for c in nbformat.reads(student, as_version=4).cells
                     for line in c.source.splitlines()}
    assert not secret & student_lines


def test_release_keeps_the_scaffold_around_each_todo(source, release):
    student = {c.id: c for c in nbformat.read(release / "lab3.ipynb", as_version=4).cells}
    for cell in solutions(source):
        text = student[cell.id].source
        assert "raise NotImplementedError()" in text, cell.id
        for line in SOLUTION_REGION.sub("", cell.source).splitlines():
            assert line in text, (cell.id, line)


def test_release_has_the_pictures_next_to_it(release):
    for picture in ASSETS.glob("*.png"):
        assert (release / "assets" / picture.name).read_bytes() == picture.read_bytes()


def test_release_stops_only_where_work_is_missing(student_run):
    for cell in student_run.cells:
        for error in errors(cell):
            if nbgrader(cell).get("grade"):
                assert error.ename in ("AssertionError", "NameError"), (cell.id, error.ename)
                assert error.evalue, f"{cell.id}: a failing test should say why"
            elif nbgrader(cell).get("solution"):
                assert error.ename == "NotImplementedError", (cell.id, error.ename, error.evalue)
            else:
                assert error.ename == "NotImplementedError", (cell.id, error.ename, error.evalue)
                assert error.evalue.startswith("finish the TODO"), (cell.id, error.evalue)


def test_release_passes_no_graded_test(student_run):
    passing = [nbgrader(c)["grade_id"] for c in graded(student_run) if not errors(c)]
    assert not passing
