"""The grading CLI end to end, on crafted submissions made from the fixture notebook.

One batch holds every kind of hand-in (perfect, blank, half done, edited tests, endless loop,
crash, hostile code, huge output, damaged file, odd folder layouts); it is graded twice with
``python -m autograde grade`` and each row is checked.
"""
from __future__ import annotations

import csv
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import nbformat
import pytest

import grading_runs
from autograde import crafted
from autograde.batch import graded_cells
from autograde.course import CourseError
from autograde.run.confine import landlock_abi
from grading_runs import FIXTURE, instructor_folder, processes_with, snapshot

FULL_MARKS = sum(points for _, points in graded_cells(nbformat.read(FIXTURE, as_version=4)))
CELL_TIMEOUT, SUBMISSION_TIMEOUT = 3, 10


def autograde(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return grading_runs.autograde(*args, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Release the fixture, craft a batch of submissions, grade it twice; return what happened."""
    root = tmp_path_factory.mktemp("grading")
    source = instructor_folder(root)
    instructor = source.parent
    released = autograde("release", "--out", root / "release", "--source", source, cwd=root)
    assert released.returncode == 0, released.stderr

    source_nb = nbformat.read(source, as_version=4)
    release_nb = nbformat.read(root / "release" / "lab3.ipynb", as_version=4)
    subs, out = root / "submissions", root / "out"
    for kind, make in crafted.MAKERS.items():
        crafted.write_submission(make(source_nb, release_nb), subs / f"{kind}.ipynb")
    marker = f"leftover-{uuid.uuid4().hex}"
    targets = [source, instructor / "assets" / "dot.png", subs / "perfect.ipynb", subs, out,
               out / "grades.csv", root]
    crafted.write_submission(crafted.hostile(targets, marker)(source_nb, release_nb), subs / "hostile.ipynb")
    crafted.write_submission(crafted.damaged_json(release_nb), subs / "damaged_json.ipynb")
    crafted.write_submission(crafted.perfect(source_nb, release_nb), subs / "folder_layout" / "lab3.ipynb")
    crafted.write_submission(crafted.perfect(source_nb, release_nb), subs / "renamed" / "Lab3 (1).ipynb")
    (subs / "empty").mkdir()
    crafted.write_submission(release_nb, subs / "two_notebooks" / "a.ipynb")
    crafted.write_submission(release_nb, subs / "two_notebooks" / "b.ipynb")

    protected = {"instructor": snapshot(instructor), "submissions": snapshot(subs)}
    command = ("grade", subs, "--out", out, "--source", source, "--workers", "2", "--timeout", CELL_TIMEOUT,
               "--submission-timeout", SUBMISSION_TIMEOUT, "--cache", root / "cache")
    runs = []
    for again in ((), ("--regrade",)):  # the second run grades everyone again (unchanged ones are reused without it)
        started = time.monotonic()
        result = autograde(*command, *again, cwd=root)
        runs.append({"result": result, "seconds": time.monotonic() - started,
                     "csv": (out / "grades.csv").read_bytes() if (out / "grades.csv").exists() else b""})
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"root": root, "out": out, "subs": subs, "instructor": instructor, "rows": rows, "runs": runs,
            "protected": protected, "marker": marker}


def test_batch_exits_zero_and_writes_nothing_to_stderr(batch):
    for run in batch["runs"]:
        assert run["result"].returncode == 0, run["result"].stderr
        assert run["result"].stderr == ""
        assert "grades.csv" in run["result"].stdout


def test_one_row_per_submission_with_the_expected_columns(batch):
    expected = {*crafted.MAKERS, "hostile", "damaged_json", "folder_layout", "renamed", "empty", "two_notebooks"}
    assert set(batch["rows"]) == expected
    with open(batch["out"] / "grades.csv", encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert header == ["student_id", "score", "max_score", "status",
                      "test_square", "test_inside_circle", "test_picture_bytes", "notes"]
    assert all(float(row["max_score"]) == FULL_MARKS for row in batch["rows"].values())


def test_regrading_gives_identical_grades(batch):
    first, second = (run["csv"].decode().splitlines() for run in batch["runs"])
    assert first
    changed = [(a, b) for a, b in zip(first, second) if a != b]
    assert first == second, f"rows that changed between the two runs: {changed}"


def test_perfect_submissions_get_full_marks(batch):
    for student in ("perfect", "folder_layout", "renamed"):
        row = batch["rows"][student]
        assert (row["status"], float(row["score"])) == ("ok", FULL_MARKS), row
    assert "Lab3 (1).ipynb" in batch["rows"]["renamed"]["notes"]


def test_blank_submission_gets_no_points(batch):
    row = batch["rows"]["blank"]
    assert (row["status"], float(row["score"])) == ("ok", 0.0)


def test_partial_submission_gets_some_points(batch):
    row = batch["rows"]["partial"]
    assert row["status"] == "ok" and 0 < float(row["score"]) < FULL_MARKS


def test_tampered_tests_gain_nothing(batch):
    tampered, blank = batch["rows"]["tampered"], batch["rows"]["blank"]
    assert float(tampered["score"]) == float(blank["score"])
    assert float(tampered["max_score"]) == FULL_MARKS
    assert "test_square deleted" in tampered["notes"] and "edited" in tampered["notes"]


def test_endless_loop_times_out_below_full_marks(batch):
    row = batch["rows"]["endless_loop"]
    assert row["status"] == "timeout" and float(row["score"]) < FULL_MARKS
    assert all(run["seconds"] < 120 for run in batch["runs"])


def test_kernel_death_keeps_points_earned_before(batch):
    row = batch["rows"]["kernel_death"]
    assert row["status"] == "kernel died"
    assert 0 < float(row["score"]) < FULL_MARKS


def test_huge_output_is_cut_and_graded(batch):
    row = batch["rows"]["noisy"]
    assert (row["status"], float(row["score"])) == ("ok", FULL_MARKS)
    assert "output cut" in row["notes"]
    assert (batch["out"] / "feedback" / "noisy.html").stat().st_size < 5_000_000


def test_unreadable_submissions_keep_a_row_with_the_reason(batch):
    rows = batch["rows"]
    assert rows["damaged_json"]["status"] == "invalid notebook"
    assert rows["empty"]["status"] == "no notebook"
    assert rows["two_notebooks"]["status"] == "several notebooks"
    assert all(float(rows[s]["score"]) == 0 for s in ("damaged_json", "empty", "two_notebooks"))


def test_feedback_and_logs_for_every_graded_submission(batch):
    graded = [s for s, row in batch["rows"].items() if row["status"] not in ("no notebook", "several notebooks",
                                                                              "invalid notebook")]
    assert sorted(p.stem for p in (batch["out"] / "feedback").glob("*.html")) == sorted(graded)
    assert {p.stem for p in (batch["out"] / "logs").glob("*.log")} >= set(graded)


def test_hostile_code_changes_nothing_outside_its_sandbox(batch):
    if landlock_abi() == 0:
        pytest.skip("this kernel has no Landlock: writes to absolute paths are not prevented")
    assert snapshot(batch["instructor"]) == batch["protected"]["instructor"]
    assert snapshot(batch["subs"]) == batch["protected"]["submissions"]
    assert not list(batch["root"].rglob("pwned.txt"))
    assert sorted(p.name for p in batch["out"].iterdir()) == ["feedback", "gradebook.db", "grades.csv", "ledger",
                                                               "logs"]
    assert not processes_with(batch["marker"])
    row = batch["rows"]["hostile"]
    if landlock_abi() >= 6:  # it could not signal the grader either
        assert (row["status"], float(row["score"])) == ("ok", FULL_MARKS), row


def _gradebook_points(url: str) -> dict[str, dict[str, float]]:
    """student -> grade_id -> points, as nbgrader's own API reads them from the gradebook at `url`."""
    from nbgrader.api import Gradebook

    with Gradebook(url) as gradebook:
        return {submission.student.id: {grade.name: grade.score for grade in submission.notebooks[0].grades}
                for submission in gradebook.find_assignment("lab3").submissions}


def test_the_points_are_recorded_in_an_nbgrader_gradebook(batch):
    recorded = _gradebook_points(f"sqlite:///{batch['out'] / 'gradebook.db'}")
    assert set(recorded) == set(batch["rows"])
    for student, row in batch["rows"].items():
        cells = recorded[student]
        assert cells == {grade_id: float(row[grade_id]) for grade_id in cells}, student
        assert sum(cells.values()) == float(row["score"])
    assert sum(recorded["perfect"].values()) == FULL_MARKS and sum(recorded["blank"].values()) == 0


def test_an_instructors_gradebook_takes_the_points_and_keeps_the_rest(batch, tmp_path):
    from autograde import gradebook
    from autograde.jobs import Outcome

    course = next((batch["root"] / "cache").glob("lab3-*"))
    shutil.copyfile(course / "gradebook.db", tmp_path / "gradebook.db")
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    from nbgrader.api import Gradebook
    with Gradebook(url) as book:
        points = {cell.name: float(cell.max_score) for cell in book.find_notebook("lab3", "lab3").grade_cells}
        book.add_student("earlier")  # a student the batch does not grade keeps what the gradebook has
    first = Outcome("alice", "ok", cells={name: 1.0 for name in points})
    gradebook.record([first], url, "lab3", "lab3", points)
    regraded = Outcome("alice", "ok", cells={name: 0.0 for name in points})
    gradebook.record([regraded], url, "lab3", "lab3", points)  # a regrade replaces, never adds
    assert _gradebook_points(url) == {"alice": {name: 0.0 for name in points}}
    with Gradebook(url) as book:
        assert {student.id for student in book.students} == {"alice", "earlier"}
    other_version = {**points, "extra-test": 1.0}
    with pytest.raises(CourseError, match="other graded cells or points"):
        gradebook.check(url, "lab3", "lab3", other_version)
    with pytest.raises(CourseError, match="no gradebook at"):
        gradebook.check(f"sqlite:///{tmp_path / 'missing.db'}", "lab3", "lab3", points)
    assert not (tmp_path / "missing.db").exists()


def test_a_gradebook_that_cannot_take_the_points_stops_the_batch_before_it_starts(batch, tmp_path):
    result = autograde("grade", batch["subs"], "--out", tmp_path / "out",
                       "--source", batch["instructor"] / "lab3.ipynb",
                       "--cache", batch["root"] / "cache", "--gradebook", f"sqlite:///{tmp_path / 'none.db'}",
                       cwd=tmp_path)
    assert result.returncode == 2
    assert "no gradebook at" in result.stderr
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_missing_submissions_folder_is_an_error(tmp_path):
    result = autograde("grade", tmp_path / "nowhere", "--out", tmp_path / "out", "--source", FIXTURE,
                       "--cache", tmp_path / "cache", cwd=tmp_path)
    assert result.returncode == 2
    assert "submissions folder not found" in result.stderr


def test_invalid_source_notebook_is_an_error(tmp_path):
    (tmp_path / "subs").mkdir()
    (tmp_path / "lab3.ipynb").write_text("{ not json", encoding="utf-8")
    result = autograde("grade", tmp_path / "subs", "--out", tmp_path / "out", "--source", tmp_path / "lab3.ipynb",
                       "--cache", tmp_path / "cache", cwd=tmp_path)
    assert result.returncode == 2
    assert "not a valid notebook" in result.stderr


def test_demo_checks_releases_and_grades_the_examples(tmp_path):
    result = autograde("demo", "--out", tmp_path / "demo", "--source", FIXTURE, "--timeout", "10",
                       "--cache", tmp_path / "cache", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    with open(tmp_path / "demo" / "grades" / "grades.csv", newline="", encoding="utf-8") as handle:
        scores = {row["student_id"]: (row["status"], float(row["score"])) for row in csv.DictReader(handle)}
    assert scores["perfect"] == ("ok", FULL_MARKS)
    assert scores["blank"] == ("ok", 0.0) and scores["tampered"] == ("ok", 0.0)
    assert scores["damaged_json"][0] == "invalid notebook"
    assert (tmp_path / "demo" / "release" / "lab3.ipynb").is_file()


def test_demo_refuses_a_reference_notebook_that_fails(tmp_path):
    notebook = nbformat.read(FIXTURE, as_version=4)
    notebook.cells[1].source += "\nraise RuntimeError('broken reference')"
    nbformat.write(notebook, tmp_path / "lab3.ipynb")
    result = autograde("demo", "--out", tmp_path / "demo", "--source", tmp_path / "lab3.ipynb",
                       "--cache", tmp_path / "cache", cwd=tmp_path)
    assert result.returncode == 2
    assert "broken reference" in result.stderr
