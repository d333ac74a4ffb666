"""Correct solutions written differently (tests/honest_variants.py) get full marks on the real lab,
graded under the default limits."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import honest_variants
from autograde import crafted
from autograde.course import release

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "lab3.ipynb"


def grade_variants(tmp_path: Path, makers: dict) -> dict[str, dict]:
    released = release(SOURCE, tmp_path / "release", tmp_path / "scratch")
    source_nb, release_nb = nbformat.read(SOURCE, as_version=4), nbformat.read(released, as_version=4)
    for name, make in makers.items():
        crafted.write_submission(make(source_nb, release_nb), tmp_path / "subs" / f"{name}.ipynb")
    result = subprocess.run([sys.executable, "-m", "autograde", "grade", str(tmp_path / "subs"), "--out",
                             str(tmp_path / "out"), "--workers", "2", "--cache", str(tmp_path / "cache")],
                            cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    with open(tmp_path / "out" / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Both variants graded in one batch (two workers: the long one sets the pace)."""
    return grade_variants(tmp_path_factory.mktemp("honest"), {"other_ways": honest_variants.other_ways,
                                                              "ten_epochs": honest_variants.ten_epochs})


def test_correct_solutions_written_differently_get_full_marks(rows):
    row = rows["other_ways"]
    assert (row["status"], float(row["score"])) == ("ok", 100.0), row


def test_ten_mnist_epochs_fit_the_default_limits(rows):
    row = rows["ten_epochs"]
    assert (row["status"], float(row["score"])) == ("ok", 100.0), row
