"""Dishonest submissions (tests/attack_cells.py) against the two-phase grader, on the fixture notebook.

Batch 1 holds every attack class next to an honest and a blank notebook; batch 2, graded right
after, holds an honest notebook (a process left by batch 1 would meddle with it) and is graded
with ``--show-hidden-tests``. Each attack must score what the blank scores, the honest notebooks
full marks; nothing outside the sandboxes changes; no feedback page carries a hidden test, a
reference answer, or markup from a submission.
"""
from __future__ import annotations

import csv
import html
import re
import uuid
from pathlib import Path

import nbformat
import pytest

from attack_cells import ATTACKS, attack
from autograde import crafted
from grading_runs import autograde, instructor_folder, processes_with, snapshot
from autograde.run.sandbox import bwrap_binary

FULL_MARKS = 6.0

pytestmark = pytest.mark.skipif(bwrap_binary() is None, reason="bubblewrap cannot run here: no sandbox to test")


def rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def marked_lines(source: nbformat.NotebookNode, begin: str, end: str) -> list[str]:
    """The non-trivial lines between `begin` and `end` markers in the source notebook."""
    found = []
    for cell in source.cells:
        inside = False
        for line in cell.source.splitlines():
            if begin in line:
                inside = True
            elif end in line:
                inside = False
            elif inside and len(line.strip()) > 12:
                found.append(line.strip())
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    source = instructor_folder(root)
    instructor = source.parent
    assert autograde("release", "--out", root / "release", "--source", source, cwd=root).returncode == 0
    source_nb = nbformat.read(source, as_version=4)
    release_nb = nbformat.read(root / "release" / "lab3.ipynb", as_version=4)
    marker = f"attack-{uuid.uuid4().hex}"
    first, second = root / "batch1", root / "batch2"
    crafted.write_submission(crafted.perfect(source_nb, release_nb), first / "honest.ipynb")
    crafted.write_submission(crafted.blank(source_nb, release_nb), first / "blank.ipynb")
    for kind in ATTACKS:
        crafted.write_submission(attack(release_nb, kind, marker), first / f"{kind}.ipynb")
    crafted.write_submission(crafted.perfect(source_nb, release_nb), second / "honest_next.ipynb")
    before = {"instructor": snapshot(instructor), "batch1": snapshot(first), "batch2": snapshot(second)}
    common = ("--source", source, "--workers", "2", "--timeout", "30", "--submission-timeout", "90",
              "--memory-mb", "1024", "--cache", root / "cache")
    results = [autograde("grade", first, "--out", root / "out1", *common, cwd=root),
               autograde("grade", second, "--out", root / "out2", *common, "--show-hidden-tests", cwd=root)]
    return {"root": root, "instructor": instructor, "before": before, "results": results, "marker": marker,
            "rows": {**rows(root / "out1"), **rows(root / "out2")}, "source": source_nb,
            "feedback": sorted((root / "out1" / "feedback").glob("*.html")),
            "feedback_next": sorted((root / "out2" / "feedback").glob("*.html"))}


def test_both_batches_run_cleanly(graded):
    for result in graded["results"]:
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_an_attack_scores_what_the_blank_scores(graded, kind):
    row, blank = graded["rows"][kind], graded["rows"]["blank"]
    assert float(row["score"]) == float(blank["score"]) == 0.0, row


def test_honest_work_keeps_full_marks_in_the_same_batch_and_the_next(graded):
    for student in ("honest", "honest_next"):
        row = graded["rows"][student]
        assert (row["status"], float(row["score"])) == ("ok", FULL_MARKS), row


def test_nothing_outside_the_sandbox_changes(graded):
    root = graded["root"]
    assert snapshot(graded["instructor"]) == graded["before"]["instructor"]
    assert snapshot(root / "batch1") == graded["before"]["batch1"]
    assert snapshot(root / "batch2") == graded["before"]["batch2"]
    marker = graded["marker"]
    assert not processes_with(marker), "a process of batch 1 outlived it"
    assert not list(Path("/tmp").glob(f"{marker}*")) and not list(Path("/dev/shm").glob(f"{marker}*"))
    assert not list(root.rglob("sitecustomize.py"))


def test_the_shared_mapping_meets_the_memory_limit(graded):
    row = graded["rows"]["memory"]
    assert row["status"] == "kernel died", row
    if "RLIMIT_DATA only" not in row["notes"]:
        assert "memory limit (1024 MiB) reached" in row["notes"]


def test_no_feedback_holds_hidden_tests_or_reference_answers(graded):
    hidden = marked_lines(graded["source"], "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
    answers = marked_lines(graded["source"], "BEGIN SOLUTION", "END SOLUTION")
    assert hidden and answers
    for page in graded["feedback"]:
        text = html.unescape(page.read_text(encoding="utf-8"))
        assert not [line for line in hidden if line in text], page.name
        if page.stem != "honest":  # the honest student wrote the answers themselves
            assert not [line for line in answers if line in text], page.name


def test_show_hidden_tests_puts_them_back_for_instructors(graded):
    hidden = marked_lines(graded["source"], "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
    text = html.unescape(graded["feedback_next"][0].read_text(encoding="utf-8"))
    assert all(line in text for line in hidden)


def test_feedback_carries_no_markup_from_a_submission(graded):
    for page in graded["feedback"]:
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text.lower(), page.name
        assert not re.search(r"<[^>]*\son\w+\s*=", text, re.IGNORECASE), page.name
        assert text.lower().count("<style") == 1, page.name  # the page's own
        assert page.stat().st_size < 5_000_000, page.name
    flood = graded["rows"]["flood"]
    assert "output cut" in flood["notes"]
