"""The output folder as a ledger, and the submissions folder as hostile input, end to end.

A class with hostile entries (links to another student's notebook, to the instructor's source
notebook and to a secret file outside; a hard link to the source; a 253-byte folder name; ids
that a spreadsheet reads as formulas; a file whose first line is a secret) is graded with
``python -m autograde grade``; then the same command again (everything reused), a late student
into the same ``--out`` (everyone else's files byte-identical), ``--regrade`` of one student, and
a batch killed with SIGKILL after its first reported submission, then resumed.
"""
from __future__ import annotations

import csv
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograde import crafted, ledger
from autograde.collect import find_submissions
from autograde.jobs import Limits
from autograde.notebook_checks import InvalidSubmission, read_submission
from grading_runs import autograde, instructor_folder, read_rows, snapshot

FULL_MARKS = 6.0
LIMITS = ("--timeout", "30", "--submission-timeout", "60")
SECRET = "root:$6$SECRET-HASH-7f3a9c:19000:0:99999:7:::"
LONG_ID = "long-" + "x" * 248  # 253 bytes, a legal folder name
FORMULA_IDS = ["=HYPERLINK(1)", "+cmd", "-2+3", "@SUM(A1)"]


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# --- no grading --------------------------------------------------------------------------------

def test_neutralised_cells_read_back_exactly():
    for text in ["=1+2", "+x", "-x", "@x", "\tx", "\rx", "'x", "''=x", "plain", "", "a=b"]:
        cell = ledger.neutralise(text)
        assert ledger.restore(cell) == text
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert ledger.neutralise("=1+2") == "'=1+2" and ledger.neutralise("plain") == "plain"


def test_long_ids_get_short_distinct_file_names():
    other = LONG_ID[:-1] + "y"
    stems = {ledger.file_stem(LONG_ID), ledger.file_stem(other)}
    assert len(stems) == 2 and all(len((stem + ".html").encode()) <= 255 for stem in stems)
    assert ledger.file_stem("alice") == "alice"


def test_the_key_follows_the_notebook_the_source_and_the_options(tmp_path):
    (tmp_path / "a.ipynb").write_text("{}")
    [found] = find_submissions(tmp_path, "lab3")
    options = ledger.grading_options(Limits(), False)
    key = ledger.submission_key(found, "source-1", options)
    assert key == ledger.submission_key(found, "source-1", ledger.grading_options(Limits(threads=7), False))
    assert key != ledger.submission_key(found, "source-2", options)
    assert key != ledger.submission_key(found, "source-1", ledger.grading_options(Limits(cell_timeout=5), False))
    assert key != ledger.submission_key(found, "source-1", ledger.grading_options(Limits(), True))
    (tmp_path / "a.ipynb").write_text("{ }")
    assert key != ledger.submission_key(found, "source-1", options)


def test_the_ledger_reads_back_what_it_recorded_whatever_the_ids(tmp_path):
    from autograde.jobs import Outcome

    points = {"test_one": 1.0, "test_two": 2.0}
    book = ledger.Ledger(tmp_path)
    assert book.set_points(points, set()) == []
    for student in ("assignment", "grades", LONG_ID, *FORMULA_IDS):
        book.record(Outcome(student, "ok", 3.0, 3.0, {"test_one": 1.0, "test_two": 2.0}, ["=note"], submitted=1.5e9),
                    key=f"key-{student}")
    (tmp_path / "feedback").mkdir()
    (tmp_path / "feedback" / ".partial-1-x").write_text("left by a killed run")
    again = ledger.Ledger(tmp_path)
    assert again.points == points and not again.damaged
    assert sorted(again.entries) == sorted(("assignment", "grades", LONG_ID, *FORMULA_IDS))
    assert again.matches("assignment", "key-assignment") and not again.matches("assignment", "other")
    assert [o.submitted for o in again.outcomes()] == [1.5e9] * 7
    table = read_csv(tmp_path / "grades.csv")
    assert table[0] == ["student_id", "score", "max_score", "status", "test_one", "test_two", "notes"]
    assert [ledger.restore(row[0]) for row in table[1:]] == sorted(again.entries)
    assert all(row[-1] == "'=note" for row in table[1:])
    assert not list(tmp_path.rglob(".partial-*"))
    assert again.set_points({"test_one": 1.0}, {"assignment"}) == sorted(set(again.entries) - {"assignment"})


def test_links_and_special_files_are_refused_without_being_read(tmp_path):
    subs, outside = tmp_path / "subs", tmp_path / "outside"
    subs.mkdir()
    outside.mkdir()
    (outside / "shadow").write_text(SECRET + "\n")
    (outside / "folder").mkdir()
    (outside / "folder" / "lab3.ipynb").write_text("{}")
    source = tmp_path / "lab3.ipynb"
    source.write_text("{}")
    (subs / "a.ipynb").write_text("{}")
    (subs / "b").mkdir()
    (subs / "b" / "lab3.ipynb").symlink_to("../a.ipynb")
    (subs / "c.ipynb").symlink_to(source)
    (subs / "d.ipynb").symlink_to(outside / "shadow")
    (subs / "e").symlink_to(outside / "folder")
    (subs / "f").mkdir()
    (subs / "f" / "work").symlink_to(outside / "folder")  # a linked folder inside: not walked
    os.mkfifo(subs / "g.ipynb")
    os.link(source, subs / "h.ipynb")
    (subs / "i").mkdir()
    (subs / "i" / "mine.ipynb").write_text("{}")
    (subs / "i" / "theirs.ipynb").symlink_to("../a.ipynb")
    found = {s.student_id: s for s in find_submissions(subs, "lab3", protected=[source])}
    assert sorted(found) == list("abcdefghi")
    assert found["a"].notebook == subs / "a.ipynb" and found["a"].modified == os.lstat(subs / "a.ipynb").st_mtime
    for student in "bcdeh":
        assert found[student].notebook is None and found[student].problem.startswith("link refused"), student
    assert found["f"].problem.startswith("no notebook")
    assert found["g"].notebook is None and found["g"].problem.startswith("not a regular file")
    assert found["i"].notebook == subs / "i" / "mine.ipynb" and any("theirs.ipynb" in n for n in found["i"].notes)
    assert not any(SECRET in s.problem + "".join(s.notes) for s in found.values())
    with pytest.raises(InvalidSubmission, match="symbolic link"):
        read_submission(subs / "d.ipynb")
    with pytest.raises(InvalidSubmission, match="not a regular file"):
        read_submission(subs / "g.ipynb")


def test_invalid_notebooks_are_described_without_quoting_them(tmp_path):
    cases = {"text.ipynb": SECRET + "\n", "json.ipynb": '{"cells": "' + SECRET + '"}',
             "schema.ipynb": '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "'
                             + SECRET + '", "source": "", "metadata": {}}]}',
             "bytes.ipynb": b"\xff\xfe" + SECRET.encode()}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(InvalidSubmission, match="not a valid notebook") as caught:
            read_submission(path)
        assert "SECRET" not in str(caught.value), (name, str(caught.value))


# --- a hostile class, graded for real ---------------------------------------------------------

@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("ledger")
    source = instructor_folder(root)
    released = autograde("release", "--out", root / "release", "--source", source, cwd=root)
    assert released.returncode == 0, released.stderr
    source_nb = nbformat.read(source, as_version=4)
    release_nb = nbformat.read(root / "release" / "lab3.ipynb", as_version=4)
    subs, outside = root / "submissions", root / "outside"
    outside.mkdir()
    (outside / "shadow").write_text(SECRET + "\n")
    crafted.write_submission(crafted.perfect(source_nb, release_nb), subs / "alice.ipynb")
    crafted.write_submission(crafted.blank(source_nb, release_nb), subs / "bob.ipynb")
    crafted.write_submission(crafted.blank(source_nb, release_nb), subs / LONG_ID / "lab3.ipynb")
    (subs / "copycat").mkdir()
    (subs / "copycat" / "lab3.ipynb").symlink_to("../alice.ipynb")
    (subs / "insider.ipynb").symlink_to(source)
    (subs / "shadow.ipynb").symlink_to(outside / "shadow")
    os.link(source, subs / "hardlink.ipynb")
    (subs / "leaky.ipynb").write_text(SECRET + "\n")
    for student in FORMULA_IDS:
        crafted.write_submission(crafted.damaged_json(release_nb), subs / f"{student}.ipynb")
    command = ["grade", subs, "--out", root / "out", "--source", source, "--workers", "2", *LIMITS,
               "--cache", root / "cache"]
    first = autograde(*command, cwd=root)
    snapshot_first = snapshot(root / "out")
    again = autograde(*command, cwd=root)
    return {"root": root, "source": source, "subs": subs, "out": root / "out", "command": command,
            "first": first, "again": again, "snapshot": snapshot_first, "source_nb": source_nb,
            "release_nb": release_nb}


def test_every_entry_gets_a_row_and_nothing_on_stderr(hostile_class):
    for run in (hostile_class["first"], hostile_class["again"]):
        assert run.returncode == 0 and run.stderr == "", run.stderr
    rows = read_rows(hostile_class["out"] / "grades.csv")
    expected = {"alice", "bob", LONG_ID, "copycat", "insider", "shadow", "hardlink", "leaky"}
    assert {ledger.restore(student) for student in rows} == expected | set(FORMULA_IDS)
    assert (rows["alice"]["status"], float(rows["alice"]["score"])) == ("ok", FULL_MARKS)
    for student in ("copycat", "insider", "shadow", "hardlink"):
        assert (rows[student]["status"], float(rows[student]["score"])) == ("link refused", 0.0), rows[student]
    assert rows["leaky"]["status"] == "invalid notebook"
    assert rows[LONG_ID]["status"] == "ok" and float(rows[LONG_ID]["score"]) == 0.0


def test_a_253_byte_name_gets_its_feedback_and_log(hostile_class):
    stem = ledger.file_stem(LONG_ID)
    assert stem != LONG_ID
    page = hostile_class["out"] / "feedback" / f"{stem}.html"
    assert page.is_file() and (hostile_class["out"] / "logs" / f"{stem}.log").is_file()
    assert LONG_ID in page.read_text(encoding="utf-8")


def test_formula_ids_are_neutralised_in_the_csv(hostile_class):
    table = read_csv(hostile_class["out"] / "grades.csv")
    cells = [cell for row in table for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    ids = [row[0] for row in table[1:]]
    assert all("'" + student in ids for student in FORMULA_IDS)


def test_no_file_content_reaches_the_output(hostile_class):
    out = hostile_class["out"]
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".db":
            text = path.read_text(encoding="utf-8", errors="replace")
            assert "SECRET-HASH" not in text, path
            assert "BEGIN SOLUTION" not in text, path
    assert "SECRET" not in hostile_class["first"].stdout


def test_progress_is_one_line_per_submission_with_the_time_left(hostile_class):
    lines = [line for line in hostile_class["first"].stdout.splitlines() if line.startswith("[")]
    total = 8 + len(FORMULA_IDS)
    assert len(lines) == total
    assert lines[0].startswith(f"[1/{total}] ")
    assert any(re.search(r"; about (\d+ min )?\d+ s left$", line) for line in lines[:-1]), lines
    assert lines[-1].startswith(f"[{total}/{total}] ") and "all done in" in lines[-1]
    assert "\r" not in hostile_class["first"].stdout
    failed = total - 3  # alice, bob and the long name are ok; every other row is refused or invalid
    assert f"{total} graded, 0 reused, {failed} failed" in hostile_class["first"].stdout


def test_the_same_command_again_reuses_everything_and_changes_nothing(hostile_class):
    total = 8 + len(FORMULA_IDS)
    assert f"0 graded, {total} reused, 0 failed" in hostile_class["again"].stdout
    assert snapshot(hostile_class["out"]) == hostile_class["snapshot"]


def test_the_gradebook_reads_as_nbgraders_own(hostile_class):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{hostile_class['out'] / 'gradebook.db'}") as book:
        submissions = {s.student.id: s for s in book.find_assignment("lab3").submissions}
        assert set(submissions) == {ledger.restore(s) for s in read_rows(hostile_class["out"] / "grades.csv")}
        for student, submission in submissions.items():
            grades = submission.notebooks[0].grades
            assert grades and not any(grade.needs_manual_grade for grade in grades), student
            assert submission.timestamp is not None, student
        alice = hostile_class["subs"] / "alice.ipynb"
        expected = datetime.datetime.fromtimestamp(alice.stat().st_mtime, datetime.timezone.utc).replace(tzinfo=None)
        assert submissions["alice"].timestamp == expected
        assert sum(grade.score for grade in submissions["alice"].notebooks[0].grades) == FULL_MARKS


@pytest.fixture(scope="module")
def late_and_regraded(hostile_class, tmp_path_factory):
    """A copy of the class's output; a late student graded alone into it, then --regrade of bob."""
    root = tmp_path_factory.mktemp("late")
    out = root / "out"
    shutil.copytree(hostile_class["out"], out, symlinks=True)
    late = root / "late"
    crafted.write_submission(crafted.perfect(hostile_class["source_nb"], hostile_class["release_nb"]),
                             late / "zoe.ipynb")
    before = snapshot(out)
    common = ["--source", hostile_class["source"], "--workers", "1", *LIMITS,
              "--cache", hostile_class["root"] / "cache"]
    graded_late = autograde("grade", late, "--out", out, *common, cwd=root)
    after_late = snapshot(out)
    regraded = autograde("grade", hostile_class["subs"], "--out", out, *common, "--regrade", "bob", cwd=root)
    return {"out": out, "before": before, "after_late": after_late, "late": graded_late, "regraded": regraded,
            "after_regrade": snapshot(out)}


def _owned_by_others(files: dict[str, str], student: str) -> dict[str, str]:
    """The files of a snapshot that belong to other students than `student` (feedback, logs, entries)."""
    stem = ledger.file_stem(student)
    return {path: digest for path, digest in files.items()
            if path.split("/")[0] in ("feedback", "logs", "ledger") and Path(path).stem != stem
            and Path(path).name != ledger.ASSIGNMENT}


def test_a_late_student_is_added_and_everyone_else_is_kept_byte_for_byte(late_and_regraded):
    run = late_and_regraded["late"]
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "1 graded, 0 reused, 0 failed" in run.stdout
    assert f"kept the rows of {8 + len(FORMULA_IDS)} students not in" in run.stdout
    rows = read_rows(late_and_regraded["out"] / "grades.csv")
    assert len(rows) == 9 + len(FORMULA_IDS)
    assert (rows["zoe"]["status"], float(rows["zoe"]["score"])) == ("ok", FULL_MARKS)
    before, after = late_and_regraded["before"], late_and_regraded["after_late"]
    assert _owned_by_others(after, "zoe") == _owned_by_others(before, "zoe")
    assert {"feedback/zoe.html", "logs/zoe.log", "ledger/zoe.json"} <= set(after)


def test_regrade_grades_only_the_students_named(late_and_regraded):
    run = late_and_regraded["regraded"]
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert f"1 graded, {7 + len(FORMULA_IDS)} reused, 0 failed" in run.stdout
    after_late, after = late_and_regraded["after_late"], late_and_regraded["after_regrade"]
    assert _owned_by_others(after, "bob") == _owned_by_others(after_late, "bob")
    assert read_rows(late_and_regraded["out"] / "grades.csv")["bob"]["status"] == "ok"


def test_regrade_of_an_unknown_student_is_an_error(hostile_class, tmp_path):
    run = autograde(*hostile_class["command"][:3], tmp_path / "out", *hostile_class["command"][4:],
                    "--regrade", "nobody", cwd=tmp_path)
    assert run.returncode == 2 and "--regrade: no submission for nobody" in run.stderr
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_a_killed_batch_keeps_what_finished_and_resumes(hostile_class, tmp_path):
    subs = tmp_path / "subs"
    for student in ("ann", "ben", "cat"):
        crafted.write_submission(crafted.blank(hostile_class["source_nb"], hostile_class["release_nb"]),
                                 subs / f"{student}.ipynb")
    command = [sys.executable, "-m", "autograde", "grade", str(subs), "--out", str(tmp_path / "out"),
               "--source", str(hostile_class["source"]), "--workers", "1", *LIMITS,
               "--cache", str(hostile_class["root"] / "cache")]
    batch = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    seen = []
    try:
        for line in batch.stdout:
            seen.append(line)
            if line.startswith("[1/3]"):
                break
    finally:
        os.killpg(batch.pid, signal.SIGKILL)
        batch.wait(timeout=60)
    assert any(line.startswith("[1/3]") for line in seen), "".join(seen) + batch.stderr.read()
    time.sleep(1)  # the killed group's last processes go away
    rows = read_rows(tmp_path / "out" / "grades.csv")
    assert len(rows) == 1 and next(iter(rows.values()))["status"] == "ok"
    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and resumed.stderr == "", resumed.stderr
    assert "2 graded, 1 reused, 0 failed" in resumed.stdout
    assert sorted(read_rows(tmp_path / "out" / "grades.csv")) == ["ann", "ben", "cat"]


def test_an_output_folder_of_another_version_of_the_assignment_is_refused(hostile_class, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(hostile_class["out"], out, symlinks=True)
    before = snapshot(out)
    instructor = tmp_path / "instructor"
    shutil.copytree(hostile_class["source"].parent, instructor)
    notebook = nbformat.read(instructor / "lab3.ipynb", as_version=4)
    graded = next(c for c in notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade"))
    graded.metadata.nbgrader["points"] = graded.metadata.nbgrader["points"] + 1
    nbformat.write(notebook, instructor / "lab3.ipynb")
    late = tmp_path / "late"
    crafted.write_submission(crafted.blank(hostile_class["source_nb"], hostile_class["release_nb"]),
                             late / "zoe.ipynb")
    run = autograde("grade", late, "--out", out, "--source", instructor / "lab3.ipynb", *LIMITS,
                    "--cache", hostile_class["root"] / "cache", cwd=tmp_path)
    assert run.returncode == 2 and "graded for other graded cells or points" in run.stderr, run.stderr
    assert snapshot(out) == before
