"""Grade a class in slices on many machines, then merge the slices into one grade table.

``python -m autograde grade SUBMISSIONS --out OUT_K --shard K/N`` grades only the students of
slice K of N. A student's slice is fixed by their id alone (:func:`slice_of`: sha256 of the id,
modulo N), so every machine, given the same folder, agrees on who is whose without talking to
the others. Each slice's output holds, beside ``grades.csv``, ``gradebook.db``, ``feedback/`` and
``logs/``, a manifest (``shard.json``, :func:`write_manifest`): which slice it is, of which source
notebook (its name and fingerprint), the graded cells and their points, every student in the
folder and the ones given to it, and whether it finished. It is written before grading starts,
so a slice that died says so.

``python -m autograde merge OUT_1 ... OUT_N --out OUT`` (:func:`merge`) checks the manifests
agree (same N, same source, same cells, same class), refuses a slice given twice or a student
graded twice, and writes one ``grades.csv`` (rows sorted by student id, as one unsharded run
writes it), one ``gradebook.db`` and everyone's feedback and logs. Students nobody graded (a
slice missing or unfinished, a row missing) are reported, by name.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from autograde.jobs import Outcome
from autograde.ledger import LEDGER, file_stem, restore
from autograde.report import FIXED_COLUMNS, shown

MANIFEST = "shard.json"
FORMAT = 1


class ShardError(ValueError):
    """A shard that cannot be parsed or merged; the message says what is wrong."""


@dataclass(frozen=True)
class Shard:
    """Slice `index` (from 1) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, student_id: str) -> bool:
        return slice_of(student_id, self.count) == self.index


def slice_of(student_id: str, count: int) -> int:
    """The slice (1..count) of `student_id`: the same on every machine and Python version."""
    digest = hashlib.sha256(student_id.encode("utf-8", "surrogateescape")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """``K/N`` with 1 <= K <= N; ShardError otherwise."""
    index, slash, count = text.partition("/")
    if not (slash and index.strip().isdigit() and count.strip().isdigit()):
        raise ShardError(f"--shard takes K/N (e.g. 2/8), got {text!r}")
    shard = Shard(int(index), int(count))
    if not 1 <= shard.index <= shard.count:
        raise ShardError(f"--shard {text}: K must be between 1 and N")
    return shard


def write_manifest(out: Path, shard: Shard, assignment: str, source_fingerprint: str, points: dict[str, float],
                   everyone: list[str], given: list[str], finished: bool) -> None:
    """Write `out`/shard.json (see the module docstring); `points` maps each graded cell, in
    notebook order, to its points."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, "shard": [shard.index, shard.count], "assignment": assignment,
                "source": source_fingerprint, "points": points, "class": everyone, "students": given,
                "finished": finished}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


@dataclass
class Slice:
    """One shard's output, read back."""

    folder: Path
    shard: Shard
    assignment: str
    source: str
    points: dict[str, float]
    everyone: list[str]
    students: list[str]
    finished: bool
    rows: dict[str, list[str]]  # student id -> CSV row (as written: text cells neutralised)

    @property
    def grade_ids(self) -> list[str]:
        return list(self.points)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def read_slice(folder: Path) -> Slice:
    """A shard's output folder, checked; ShardError when it is not one."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ShardError(f"{folder} is not the output of `grade --shard`: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        index, count = manifest["shard"]
        shard = Shard(int(index), int(count))
        points = {str(key): float(value) for key, value in manifest["points"].items()}
        if (manifest["format"] != FORMAT or not 1 <= shard.index <= shard.count
                or not all(isinstance(manifest[key], str) for key in ("assignment", "source"))
                or not all(_strings(manifest[key]) for key in ("class", "students"))):
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ShardError(f"{path} is damaged or not a shard manifest") from None
    rows: dict[str, list[str]] = {}
    grades = folder / "grades.csv"
    if manifest.get("finished") is True and grades.is_file():
        with open(grades, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            table = list(csv.reader(handle))
        if not table or table[0] != FIXED_COLUMNS + list(points) + ["notes"]:
            raise ShardError(f"{grades} does not have the columns its {MANIFEST} names")
        for row in table[1:]:
            student_id = restore(row[0]) if row else ""
            if student_id in rows:
                raise ShardError(f"{grades} has two rows for {shown(student_id, 60)}")
            if student_id not in manifest["students"]:
                raise ShardError(f"{grades} has a row for {shown(student_id, 60)}, who is not in shard {shard}")
            rows[student_id] = row
    return Slice(folder, shard, manifest["assignment"], manifest["source"], points, manifest["class"],
                 manifest["students"], manifest.get("finished") is True and grades.is_file(), rows)


@dataclass
class Merged:
    """What :func:`merge` wrote and what it could not find."""

    rows: int
    missing_students: list[str]
    missing_shards: list[str]  # "K/N" of the slices not given, or given unfinished


def merge(folders: list[Path], out: Path) -> Merged:
    """Merge shard outputs into `out` (``grades.csv``, ``feedback/``, ``logs/``); see the module
    docstring. Raises ShardError, writing nothing, when they do not belong together."""
    if not folders:
        raise ShardError("merge needs at least one shard output")
    slices = [read_slice(folder) for folder in folders]
    first = slices[0]
    for other in slices[1:]:
        for what, mine, theirs in (("a different number of shards", first.shard.count, other.shard.count),
                                   ("a different source notebook", first.source, other.source),
                                   ("different graded cells", first.points, other.points),
                                   ("a different submissions folder", first.everyone, other.everyone)):
            if mine != theirs:
                raise ShardError(f"{other.folder} and {first.folder} were graded with {what}: they cannot be merged")
    seen: dict[int, Path] = {}
    for piece in slices:
        if piece.shard.index in seen:
            raise ShardError(f"shard {piece.shard} given twice: {seen[piece.shard.index]} and {piece.folder}")
        seen[piece.shard.index] = piece.folder
    graded_by: dict[str, Slice] = {}
    for piece in slices:
        for student_id in piece.rows:
            if student_id in graded_by:
                raise ShardError(f"{student_id} was graded twice: in {graded_by[student_id].folder} "
                                 f"and in {piece.folder}")
            graded_by[student_id] = piece
    resolved = out.resolve()
    if any(piece.folder.resolve() == resolved for piece in slices):
        raise ShardError(f"--out {out} is one of the shards: merge into a new folder")
    count = first.shard.count
    unfinished = [str(piece.shard) for piece in slices if not piece.finished]
    absent = [f"{index}/{count}" for index in range(1, count + 1) if index not in seen]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FIXED_COLUMNS + first.grade_ids + ["notes"])
        for student_id in sorted(graded_by):
            writer.writerow(graded_by[student_id].rows[student_id])
    for folder, suffix in (("feedback", ".html"), ("logs", ".log")):
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / folder).mkdir()
        for student_id, piece in graded_by.items():
            page = piece.folder / folder / f"{file_stem(student_id)}{suffix}"
            if page.is_file():
                shutil.copyfile(page, out / folder / page.name)
    _merge_gradebooks(slices, graded_by, out)
    return Merged(len(graded_by), sorted(set(first.everyone) - set(graded_by)), sorted(absent + unfinished))


def _submitted(folder: Path, student_id: str) -> float | None:
    """The submission time the shard's ledger recorded for `student_id`, if any."""
    try:
        entry = json.loads((folder / LEDGER / f"{file_stem(student_id)}.json").read_text(encoding="utf-8"))
        return float(entry["submitted"]) if entry.get("submitted") is not None else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _merge_gradebooks(slices: list[Slice], graded_by: dict[str, Slice], out: Path) -> None:
    """``out``/gradebook.db: a finished shard's gradebook (the assignment's cells and points, its
    own students) with every merged row's points recorded in it."""
    from autograde import gradebook

    template = next((piece.folder / "gradebook.db" for piece in slices
                     if piece.finished and (piece.folder / "gradebook.db").is_file()), None)
    (out / "gradebook.db").unlink(missing_ok=True)
    if template is None:
        return
    first = slices[0]
    columns = FIXED_COLUMNS + first.grade_ids
    outcomes = []
    for student_id, piece in sorted(graded_by.items()):
        row = dict(zip(columns, piece.rows[student_id]))
        outcomes.append(Outcome(student_id, restore(row["status"]), float(row["score"]), float(row["max_score"]),
                                {grade_id: float(row[grade_id]) for grade_id in first.grade_ids},
                                submitted=_submitted(piece.folder, student_id)))
    partial = out / ".gradebook.db.partial"
    shutil.copyfile(template, partial)
    try:
        gradebook.record(outcomes, f"sqlite:///{partial}", first.assignment, first.assignment, first.points)
        os.replace(partial, out / "gradebook.db")
    finally:
        partial.unlink(missing_ok=True)
