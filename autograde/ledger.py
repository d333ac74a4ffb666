"""The output folder of ``grade`` as a ledger: each submission's results are kept as it finishes.

Layout of ``OUT`` (``--out``):

- ``ledger/<stem>.json``: one entry per student: the row (status, points per graded cell, notes),
  the submission's timestamp, and the *key* it was graded under (:func:`submission_key`);
- ``grades.csv``, ``feedback/<stem>.html``, ``logs/<stem>.log``, ``gradebook.db``: what the
  instructor reads, rebuilt from or added beside the entries.

When a submission finishes (:meth:`Ledger.record`), its feedback page and log are written, then
its entry, then ``grades.csv`` (every entry's row) and ``gradebook.db``; each file is written
beside its final name and moved over it with ``os.replace``, so a reader (or a ``kill -9``)
never sees half a file, and a crash loses only the submissions still running. The entry is
the commit point: a crash after it and before the table leaves a table that the next run
rewrites first.

A student's entry is replaced only when that student is graded again; everyone else's files
are left as they are (byte for byte). A submission is graded again when its key changed: the
notebook's bytes (or, with no notebook, what was found instead), the source notebook and its
assets, the kit's own package files, and the grading options (time and memory limits,
``--show-hidden-tests``); or when ``--regrade`` names it.

Students' ids are file or folder names, so any of them is a legal name, but ``<id>.html`` may not
be: :func:`file_stem` shortens long ids with a hash; the CSV keeps the full id. CSV cells are
neutralised against formula injection (:func:`neutralise`).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
from functools import lru_cache
from pathlib import Path

from autograde.collect import Submission
from autograde.jobs import Limits, Outcome
from autograde.notebook_checks import InvalidSubmission, read_bytes
from autograde.packages import KIT_PACKAGES

FORMAT = 1
LEDGER = "ledger"
# in ledger/: the graded cells and points of the columns (no student id starts with ".")
ASSIGNMENT = ".assignment.json"
FIXED_COLUMNS = ["student_id", "score", "max_score", "status"]
MAX_STEM_BYTES = 200  # "<stem>.html", ".json", ".log" stay far below the usual 255-byte name limit
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --- names and cells -----------------------------------------------------------------------

def file_stem(student_id: str) -> str:
    """The file name stem for `student_id`'s feedback, log and entry: the id itself when it is
    short enough, else its first 100 bytes, a dash and 16 hex digits of its sha256."""
    raw = student_id.encode("utf-8", "surrogateescape")
    if len(raw) <= MAX_STEM_BYTES:
        return student_id
    return f"{raw[:100].decode('utf-8', 'ignore')}-{hashlib.sha256(raw).hexdigest()[:16]}"


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet reads as text, never as a formula (OWASP's rule: a leading ``'``
    before ``= + - @``, tab or carriage return). A cell that starts with ``'`` itself gets one
    more, so :func:`restore` gives back exactly what was written."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS + ("'",)) else cell


def restore(cell: str) -> str:
    """The text :func:`neutralise` was given."""
    return cell[1:] if cell.startswith("'") else cell


def _number(value: float) -> str:
    return f"{value:g}"


def csv_row(outcome: Outcome, grade_ids: list[str]) -> list[str]:
    """One grades.csv row: text cells neutralised, numbers as written by the grader."""
    return ([neutralise(outcome.student_id), _number(outcome.score), _number(outcome.max_score),
             neutralise(outcome.status)]
            + [_number(outcome.cells.get(grade_id, 0.0)) for grade_id in grade_ids]
            + [neutralise("; ".join(outcome.notes))])


def table_bytes(outcomes: list[Outcome], grade_ids: list[str]) -> bytes:
    """grades.csv's content: a header, then one row per outcome in the order given."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(FIXED_COLUMNS + grade_ids + ["notes"])
    for outcome in outcomes:
        writer.writerow(csv_row(outcome, grade_ids))
    return text.getvalue().encode("utf-8", "surrogateescape")


# --- atomic files ------------------------------------------------------------------------------

def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.parent / f".partial-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def copy_atomic(source: Path, path: Path) -> None:
    """Copy `source` to `path` the way :func:`write_atomic` writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.parent / f".partial-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# --- keys --------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def kit_digest() -> str:
    """sha256 of the kit's package files (their paths and bytes; caches left out)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in KIT_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def grading_options(limits: Limits, show_hidden_tests: bool) -> dict:
    """The options a grade depends on: every limit but the thread count, and ``--show-hidden-tests``."""
    options = {name: value for name, value in dataclasses.asdict(limits).items() if name != "threads"}
    return {**options, "show_hidden_tests": bool(show_hidden_tests)}


def submission_key(submission: Submission, source_fingerprint: str, options: dict) -> str:
    """What a grade depends on, hashed (see the module docstring)."""
    digest = hashlib.sha256()
    if submission.notebook is not None:
        try:
            digest.update(b"notebook\0" + read_bytes(submission.notebook))
        except (OSError, InvalidSubmission) as error:
            digest.update(f"unreadable\0{type(error).__name__}".encode())
    described = {"problem": submission.problem, "notes": list(submission.notes), "source": source_fingerprint,
                 "kit": kit_digest(), "options": options}
    digest.update(json.dumps(described, sort_keys=True).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


# --- the ledger --------------------------------------------------------------------------------

def _entry(outcome: Outcome, key: str) -> dict:
    return {"format": FORMAT, "student_id": outcome.student_id, "key": key, "status": outcome.status,
            "score": outcome.score, "max_score": outcome.max_score, "cells": outcome.cells,
            "notes": list(outcome.notes), "submitted": outcome.submitted, "seconds": outcome.seconds}


def _outcome(entry: dict, out: Path) -> Outcome:
    stem = file_stem(entry["student_id"])
    page, log = out / "feedback" / f"{stem}.html", out / "logs" / f"{stem}.log"
    return Outcome(entry["student_id"], str(entry["status"]), float(entry["score"]), float(entry["max_score"]),
                   {str(k): float(v) for k, v in entry["cells"].items()}, [str(n) for n in entry["notes"]],
                   feedback=page if page.is_file() else None, log=log if log.is_file() else None,
                   seconds=float(entry.get("seconds") or 0.0), submitted=entry.get("submitted"))


class Ledger:
    """The entries of one output folder, read when it is opened, and the files built from them."""

    def __init__(self, out: Path):
        self.out = out
        self.folder = out / LEDGER
        self.entries: dict[str, dict] = {}
        self.damaged: list[str] = []
        self.points: dict[str, float] | None = None
        self._sweep()
        if (self.folder / ASSIGNMENT).is_file():
            try:
                stored = json.loads((self.folder / ASSIGNMENT).read_text(encoding="utf-8"))
                self.points = {str(k): float(v) for k, v in stored["points"].items()}
            except (ValueError, KeyError, TypeError, AttributeError):
                self.damaged.append(ASSIGNMENT)
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            if path.name == ASSIGNMENT:
                continue
            try:
                entry = json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
                _outcome(entry, out)  # every field it needs is there and has its type
                if entry.get("format") != FORMAT or file_stem(entry["student_id"]) != path.stem:
                    raise ValueError
            except (ValueError, KeyError, TypeError, AttributeError):
                self.damaged.append(path.name)
                continue
            self.entries[entry["student_id"]] = entry

    def _sweep(self) -> None:
        """Remove the temporary files a killed run left beside the files it was writing."""
        for folder in (self.out, self.folder, self.out / "feedback", self.out / "logs"):
            for leftover in folder.glob(".partial-*") if folder.is_dir() else []:
                leftover.unlink(missing_ok=True)
        (self.out / ".gradebook.db.partial").unlink(missing_ok=True)

    def matches(self, student_id: str, key: str) -> bool:
        """Whether `student_id` has an entry graded under `key` (then it can be reused)."""
        entry = self.entries.get(student_id)
        return entry is not None and entry.get("key") == key

    def outcomes(self) -> list[Outcome]:
        """Every entry's outcome, sorted by student id."""
        return [_outcome(self.entries[student_id], self.out) for student_id in sorted(self.entries)]

    def set_points(self, points: dict[str, float], graded: set[str]) -> list[str]:
        """Make `points` (grade id -> points, in notebook order) the columns of the ledger.

        When they differ from the stored ones, the entries of students in `graded` (about to be
        graded again) are dropped, and the others' ids returned (the caller refuses: their rows
        would not fit the new columns); an empty list means the ledger now follows `points`."""
        if self.points is not None and self.points != points:
            others = sorted(set(self.entries) - graded)
            if others:
                return others
            for student_id in list(self.entries):
                self._forget(student_id)
        self.points = dict(points)
        write_atomic(self.folder / ASSIGNMENT, (json.dumps({"format": FORMAT, "points": points}, indent=1)
                                                + "\n").encode())
        return []

    @property
    def grade_ids(self) -> list[str]:
        return list(self.points or {})

    def _forget(self, student_id: str) -> None:
        stem = file_stem(student_id)
        for path in (self.folder / f"{stem}.json", self.out / "feedback" / f"{stem}.html",
                     self.out / "logs" / f"{stem}.log"):
            path.unlink(missing_ok=True)
        del self.entries[student_id]

    def record(self, outcome: Outcome, key: str) -> None:
        """Publish one finished submission: its feedback page and log (or remove an older one's),
        its entry, then the whole grades.csv."""
        stem = file_stem(outcome.student_id)
        for produced, path in ((outcome.feedback, self.out / "feedback" / f"{stem}.html"),
                               (outcome.log, self.out / "logs" / f"{stem}.log")):
            if produced is not None and produced.is_file():
                copy_atomic(produced, path)
            else:
                path.unlink(missing_ok=True)
        entry = _entry(outcome, key)
        write_atomic(self.folder / f"{stem}.json",
                     json.dumps(entry, indent=1).encode("utf-8", "surrogateescape") + b"\n")
        self.entries[outcome.student_id] = entry
        self.write_table()

    def write_table(self) -> None:
        """grades.csv from every entry, rows sorted by student id."""
        write_atomic(self.out / "grades.csv", table_bytes(self.outcomes(), self.grade_ids))
