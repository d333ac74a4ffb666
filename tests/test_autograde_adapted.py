"""An instructor's adapted lab: a provided helper and constant, changed points, a new value test.

The adapted source is made from the fixture notebook as an instructor would adapt it: the points
of one test changed, a provided cell defining ``in_unit_disc`` and ``RADIUS``, a new question whose
solution uses them, and a test that reads both and the student's value. Totals and cells are read
from the source, never assumed.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from autograde import crafted, source_check
from autograde.course import CourseError, release
from grading_runs import autograde, instructor_folder, read_rows, release_for_grading

PROVIDED = ("RADIUS = 1.0\n"
            "def in_unit_disc(p):\n"
            "    return (p[0] ** 2 + p[1] ** 2) ** 0.5 < RADIUS\n")
SOLUTION = "far = None\n### BEGIN SOLUTION\nfar = [p for p in points if not in_unit_disc(p)]\n### END SOLUTION"
TEST = ("assert far is not None, 'far is still None'\n"
        "assert all(not in_unit_disc(p) for p in far) and RADIUS == 1.0\n"
        "### BEGIN HIDDEN TESTS\nassert len(far) == 3\n### END HIDDEN TESTS")


def _cell(kind: str, grade_id: str, text: str, points: float = 0) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(text)
    cell.pop("id", None)   # the fixture is nbformat 4.4, whose cells have no ids
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "grade": kind == "test", "solution": kind == "solution",
                                 "locked": kind != "solution", "schema_version": 3,
                                 **({"points": points} if kind == "test" else {})}
    return cell


def adapted(root: Path, test: str = TEST, extra: list | None = None) -> Path:
    """The fixture, adapted (see the module's docstring), in ``root/instructor``."""
    source = instructor_folder(root)
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "test_square":
            cell.metadata.nbgrader["points"] = 4   # was 2
    notebook.cells += [_cell("provided", "helpers", PROVIDED), _cell("solution", "far_points", SOLUTION),
                       _cell("test", "test_far", test, points=5), *(extra or [])]
    nbformat.write(notebook, source)
    return source


def total(source: Path) -> float:
    notebook = nbformat.read(source, as_version=4)
    return sum(float(c.metadata.nbgrader.get("points", 0)) for c in notebook.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("grade"))


def test_the_source_check_says_how_each_value_crosses(tmp_path):
    report = source_check.check(adapted(tmp_path))
    crossings = {c.name: (c.how, c.where) for c in report.tests["test_far"]}
    assert crossings == {"RADIUS": ("provided", ""), "in_unit_disc": ("provided", ""),
                         "far": ("value", "cell far_points")}
    assert report.points["test_far"] == 5 and report.problems == []


def test_a_picture_missing_beside_the_source_stops_the_release_naming_it(tmp_path):
    source = adapted(tmp_path)
    notebook = nbformat.read(source, as_version=4)
    picture = nbformat.v4.new_markdown_cell('![the disc](assets/disc.png) and <img src="assets/missing too.svg">')
    picture.pop("id", None)
    notebook.cells.insert(1, picture)
    nbformat.write(notebook, source)
    with pytest.raises(CourseError) as raised:
        release(source, tmp_path / "out", tmp_path / "work")
    assert "cell 2 refers to assets/disc.png" in str(raised.value)
    assert "cell 2 refers to assets/missing too.svg" in str(raised.value)


def test_an_adapted_lab_grades_the_instructors_helpers_from_the_source(tmp_path):
    """The reference gets full marks; a student who changes the provided constant and helper
    changes nothing in the check; a wrong value loses exactly its test's points."""
    source = adapted(tmp_path)
    source_nb, release_nb = release_for_grading(source, tmp_path)
    subs = tmp_path / "submissions"
    crafted.write_submission(crafted.perfect(source_nb, release_nb), subs / "reference.ipynb")
    shadowing = crafted.perfect(source_nb, release_nb)
    wrong = copy.deepcopy(shadowing)
    for cell in shadowing.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "far_points":
            cell.source += "\nRADIUS = 100.0\nin_unit_disc = lambda p: True\n"
    for cell in wrong.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "far_points":
            cell.source = "far = list(points)"
    crafted.write_submission(shadowing, subs / "shadowing.ipynb")
    crafted.write_submission(wrong, subs / "wrong.ipynb")
    graded = autograde("grade", subs, "--out", tmp_path / "out", "--source", source, "--workers", "2",
                       "--timeout", "30", "--submission-timeout", "90", cwd=tmp_path)
    assert graded.returncode == 0 and graded.stderr == "", graded.stdout + graded.stderr
    rows = read_rows(tmp_path / "out" / "grades.csv")
    full = total(source)
    assert full == 4 + 3 + 1 + 5   # test_square's points went from 2 to 4
    assert {k: float(r["score"]) for k, r in rows.items()} == {
        "reference": full, "shadowing": full, "wrong": full - 5}, rows
    assert all(r["status"] == "ok" for r in rows.values()), rows


def test_check_says_how_each_value_crosses_and_demo_fails_when_the_reference_loses_points(tmp_path):
    """A value that cannot cross (a map object) passes in the reference run but not at grading:
    ``demo`` stops, naming the test; ``check`` prints the report and exits 0 (no static problem)."""
    lazy = _cell("solution", "lazy_squares", "squares_again = None\n### BEGIN SOLUTION\n"
                                             "squares_again = map(lambda x: x * x, range(10))\n### END SOLUTION")
    test = _cell("test", "test_lazy", "assert list(squares_again)[3] == 9", points=1)
    source = adapted(tmp_path, extra=[lazy, test])
    checked = autograde("check", "--source", source, cwd=tmp_path)
    assert checked.returncode == 0 and checked.stderr == "", checked
    assert "test_far (5 points): RADIUS (provided), in_unit_disc (provided), far (value, cell far_points)" \
        in checked.stdout
    assert "0 problem(s)" in checked.stdout
    demo = autograde("demo", "--out", tmp_path / "demo", "--source", source, "--timeout", "20",
                     "--cache", tmp_path / "cache", cwd=tmp_path)
    assert demo.returncode == 2, demo.stdout + demo.stderr
    assert "the reference's answers scored" in demo.stderr and "test_lazy (0 of 1)" in demo.stderr
