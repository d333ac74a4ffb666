"""The real lab graded as a class: the example submissions of ``make demo`` (perfect, partial,
blank, tampered, a kernel that dies, a damaged file) and correct solutions written differently
(tests/honest_variants.py), in one batch under the default limits.

One batch rather than two: the ten-epoch variant takes several times longer than any other
notebook, and the others fill the second worker meanwhile (``make test`` runs on two cores).
``autograde demo`` itself is tested on the small fixture (tests/test_autograde_grading.py) and the
reference run in tests/test_notebook.py.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import honest_variants
from autograde import crafted
from autograde.batch import graded_cells
from autograde.cli import DEMO_KINDS
from autograde.course import release

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "lab3.ipynb"
# Student ids sort in grading order: the longest notebook first, so it never starts last.
HONEST = {"a_ten_epochs": honest_variants.ten_epochs, "other_ways": honest_variants.other_ways}
FULL = sum(points for _, points in graded_cells(nbformat.read(SOURCE, as_version=4)))  # from the source


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("real_lab")
    released = release(SOURCE, root / "release", root / "scratch")
    source_nb, release_nb = nbformat.read(SOURCE, as_version=4), nbformat.read(released, as_version=4)
    subs = root / "subs"
    for name, make in {**{kind: crafted.MAKERS[kind] for kind in DEMO_KINDS}, **HONEST}.items():
        crafted.write_submission(make(source_nb, release_nb), subs / f"{name}.ipynb")
    crafted.write_submission(crafted.damaged_json(release_nb), subs / "damaged_json.ipynb")
    result = subprocess.run([sys.executable, "-m", "autograde", "grade", str(subs), "--out", str(root / "out"),
                             "--workers", "2", "--cache", str(root / "cache")],
                            cwd=REPO, capture_output=True, text=True, timeout=1800)
    with open(root / "out" / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"result": result, "rows": rows, "out": root / "out"}


def test_the_batch_exits_cleanly_with_a_row_per_submission(graded):
    result = graded["result"]
    assert result.returncode == 0 and result.stderr == "", result.stdout[-3000:] + result.stderr[-3000:]
    assert set(graded["rows"]) == {*DEMO_KINDS, "damaged_json", *HONEST}
    assert {float(row["max_score"]) for row in graded["rows"].values()} == {FULL}
    for name in graded["rows"]:
        if name != "damaged_json":
            assert (graded["out"] / "feedback" / f"{name}.html").is_file()


def test_example_submissions_get_the_grades_they_deserve(graded):
    rows = graded["rows"]
    score = {name: float(row["score"]) for name, row in rows.items()}
    assert score["perfect"] == FULL and rows["perfect"]["status"] == "ok"
    assert score["blank"] == 0 and rows["blank"]["status"] == "ok"
    assert score["tampered"] == 0, "editing the test cells must not gain points"
    assert 0 < score["partial"] < FULL
    assert rows["kernel_death"]["status"] == "kernel died" and score["kernel_death"] < FULL
    assert rows["damaged_json"]["status"] == "invalid notebook" and score["damaged_json"] == 0


def test_correct_solutions_written_differently_get_full_marks(graded):
    row = graded["rows"]["other_ways"]
    assert (row["status"], float(row["score"])) == ("ok", FULL), row


def test_ten_mnist_epochs_fit_the_default_limits(graded):
    row = graded["rows"]["a_ten_epochs"]
    assert (row["status"], float(row["score"])) == ("ok", FULL), row
