"""Record a batch's points in nbgrader's gradebook, so nbgrader's own tools see them.

The check phase decides the points; this module only writes them down, in the trusted batch
process, as each submission finishes. Two places it can write:

- by default ``OUT/gradebook.db``, a copy of the gradebook that ``nbgrader generate_assignment``
  made for the assignment (its notebooks and graded cells with their points), with one
  submission per student of the output folder's ledger (:mod:`autograde.ledger`). It is rebuilt
  from the ledger when a batch starts and a submission is added as it finishes, each time written
  beside and moved over the old one, so it always matches the ``grades.csv`` beside it;
- an instructor's existing nbgrader gradebook (``--gradebook sqlite:///.../gradebook.db``):
  the assignment must be there already (``nbgrader generate_assignment`` made it); each graded
  student's submission is created or updated, and nothing else in it is touched.

As nbgrader's own autograder does (``SaveAutoGrades``): each graded cell's points go into
``auto_score``, and the cell needs manual grading only when it already has a manual score
(which stays as it is: nbgrader shows the manual score where there is one); the submission's
timestamp is the submitted file's modification time (nbgrader takes it from ``timestamp.txt``),
stored as nbgrader stores it, in UTC without a time zone.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path

from autograde.course import CourseError
from autograde.jobs import Outcome


def _open(url: str):
    """nbgrader's Gradebook on `url`, which must exist: nbgrader would quietly create an empty one."""
    from nbgrader.api import Gradebook  # imported here: grading without a gradebook never needs it

    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise CourseError(f"no gradebook at {url} (expected sqlite:///PATH/gradebook.db of an nbgrader course)")

    quiet = io.StringIO()
    with contextlib.redirect_stderr(quiet), contextlib.redirect_stdout(quiet):
        return Gradebook(url)


def _graded_cells(gradebook, assignment: str, notebook: str) -> dict[str, float]:
    """grade_id -> max points of the graded cells nbgrader knows for `assignment`/`notebook`."""
    from nbgrader.api import MissingEntry

    try:
        cells = gradebook.find_notebook(notebook, assignment).grade_cells
    except MissingEntry:
        raise CourseError(f"the gradebook has no notebook {notebook!r} in an assignment {assignment!r}: "
                          f"run `nbgrader generate_assignment {assignment}` for it first") from None
    return {cell.name: float(cell.max_score) for cell in cells}


def _same_cells(gradebook, url: str, assignment: str, notebook: str, max_points: dict[str, float]) -> None:
    known = _graded_cells(gradebook, assignment, notebook)
    if known != max_points:
        differ = sorted(set(known.items()) ^ set(max_points.items()))
        raise CourseError(f"the gradebook {url} has other graded cells or points for {assignment!r} than the "
                          f"source notebook ({', '.join(f'{name}: {points:g}' for name, points in differ)}): "
                          f"was it generated from another version of it?")


def check(url: str, assignment: str, notebook: str, max_points: dict[str, float]) -> None:
    """Raise CourseError unless the gradebook at `url` can take this assignment's points
    (called before grading, so a wrong gradebook is found before the batch, not after it)."""
    gradebook = _open(url)
    try:
        _same_cells(gradebook, url, assignment, notebook, max_points)
    finally:
        gradebook.close()


def record(outcomes: list[Outcome], url: str, assignment: str, notebook: str,
           max_points: dict[str, float]) -> None:
    """Write each outcome's points per graded cell into the gradebook at `url`.

    `max_points` (grade_id -> points) is what this batch graded; the gradebook must hold the
    same graded cells with the same points, else CourseError (the gradebook belongs to another
    version of the assignment, and its totals would not add up).
    """
    from sqlalchemy.exc import SAWarning

    gradebook = _open(url)
    try:
        _same_cells(gradebook, url, assignment, notebook, max_points)
        with warnings.catch_warnings():
            # nbgrader 0.9's add_submission builds its rows in a way SQLAlchemy 2 warns about
            # ("not in session ... autoflush"); the rows are written all the same (the tests read them)
            warnings.simplefilter("ignore", SAWarning)
            _write(gradebook, outcomes, assignment, notebook, max_points)
    finally:
        gradebook.close()


def gradebook_id(student_id: str) -> str:
    """The student's id in the gradebook: the id, with bytes of a file name that are not UTF-8
    written as ``\\xNN`` (SQLite stores UTF-8 text only)."""
    return student_id.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _write(gradebook, outcomes: list[Outcome], assignment: str, notebook: str, max_points: dict[str, float]) -> None:
    for outcome in outcomes:
        student = gradebook_id(outcome.student_id)
        gradebook.update_or_create_student(student)
        when = {} if outcome.submitted is None else {
            "timestamp": datetime.fromtimestamp(outcome.submitted, timezone.utc).replace(tzinfo=None)}
        gradebook.update_or_create_submission(assignment, student, **when)
        for grade_id in max_points:
            grade = gradebook.find_grade(grade_id, notebook, assignment, student)
            grade.auto_score = float(outcome.cells.get(grade_id, 0.0))
            grade.needs_manual_grade = grade.manual_score is not None
        gradebook.db.commit()


def write_batch_gradebook(outcomes: list[Outcome], template: Path, out: Path, assignment: str, notebook: str,
                          max_points: dict[str, float]) -> Path:
    """``out``/gradebook.db: a copy of `template` (the generated assignment's gradebook) holding
    this batch's submissions. Written beside and moved in whole, so it is never half written."""
    out.mkdir(parents=True, exist_ok=True)
    partial = out / ".gradebook.db.partial"
    shutil.copyfile(template, partial)
    try:
        record(outcomes, f"sqlite:///{partial}", assignment, notebook, max_points)
        os.replace(partial, out / "gradebook.db")
    finally:
        partial.unlink(missing_ok=True)
    return out / "gradebook.db"


def add_to_batch_gradebook(outcome: Outcome, out: Path, assignment: str, notebook: str,
                           max_points: dict[str, float]) -> Path:
    """Record one finished submission in ``out``/gradebook.db (made by :func:`write_batch_gradebook`):
    a copy takes it, then replaces the file, so a crash leaves the file as it was before."""
    partial = out / ".gradebook.db.partial"
    shutil.copyfile(out / "gradebook.db", partial)
    try:
        record([outcome], f"sqlite:///{partial}", assignment, notebook, max_points)
        os.replace(partial, out / "gradebook.db")
    finally:
        partial.unlink(missing_ok=True)
    return out / "gradebook.db"
