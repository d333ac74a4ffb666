"""Find the submissions in a folder: ``<student>.ipynb`` files or ``<student>/<name>.ipynb`` folders.

The folder is untrusted input (an ``unzip`` of students' archives keeps their links). Every
student found gets a :class:`Submission`, gradable or not, so the grade table never loses a row:

- a symbolic link is never followed, wherever it is (a ``<student>.ipynb`` link, a linked
  student folder, a link inside a folder): the student gets a row whose status is
  ``link refused``, with no points;
- a ``<student>.ipynb`` that is no regular file (a FIFO, a device) gets the row ``not a regular
  file``, and is never opened;
- a notebook that is the instructor's own source file (a hard link) gets ``link refused`` too;
- a folder without a notebook, or with several candidates, is kept with its problem.

Only names are looked at here (``lstat``), never a file's content, so no problem or note can
quote one.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

_SKIPPED = (".", "__")  # hidden files, .ipynb_checkpoints, __pycache__, __MACOSX
LINK_REFUSED = "link refused"
NOT_REGULAR = "not a regular file"


@dataclass(frozen=True)
class Submission:
    """One student's hand-in. `notebook` is None when nothing gradable was found (see `problem`).

    `modified` is the modification time (epoch seconds) of the submitted notebook, or of the
    entry that stood for it when there is none; None when it could not be read."""

    student_id: str
    notebook: Path | None
    problem: str = ""
    notes: tuple[str, ...] = ()
    modified: float | None = None


def _visible(name: str) -> bool:
    return not name.startswith(_SKIPPED)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _mtime(path: Path) -> float | None:
    info = _lstat(path)
    return info.st_mtime if info else None


def _candidates(folder: Path) -> tuple[list[Path], list[Path]]:
    """(regular .ipynb files, .ipynb links) under `folder`, hidden parts skipped, no link followed."""
    regular, links = [], []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if _visible(d))
        here = Path(root)
        for name in sorted(files) + [d for d in dirs if os.path.islink(here / d)]:
            if not (_visible(name) and name.endswith(".ipynb")):
                continue
            info = _lstat(here / name)
            if info is None:
                continue
            if stat.S_ISLNK(info.st_mode):
                links.append(here / name)
            elif stat.S_ISREG(info.st_mode):
                regular.append(here / name)
    return sorted(regular), sorted(links)


def _refused(student_id: str, what: str, entry: Path) -> Submission:
    return Submission(student_id, None, problem=f"{LINK_REFUSED}: {what} is a symbolic link (links are never "
                                                f"followed)", modified=_mtime(entry))


def _from_folder(folder: Path, name: str) -> Submission:
    student = folder.name
    expected = folder / f"{name}.ipynb"
    info = _lstat(expected)
    if info is not None and stat.S_ISLNK(info.st_mode):
        return _refused(student, f"{student}/{name}.ipynb", expected)
    if info is not None and stat.S_ISREG(info.st_mode):
        return Submission(student, expected, modified=info.st_mtime)
    regular, links = _candidates(folder)
    refused = tuple(f"{LINK_REFUSED}: {p.relative_to(folder)} (a symbolic link)" for p in links)
    if len(regular) == 1:
        found = regular[0].relative_to(folder)
        return Submission(student, regular[0], notes=(f"graded {found} (expected {name}.ipynb)",) + refused,
                          modified=_mtime(regular[0]))
    if not regular and links:
        listing = ", ".join(str(p.relative_to(folder)) for p in links)
        return Submission(student, None, problem=f"{LINK_REFUSED}: {student}/ holds only symbolic links to "
                                                 f"notebooks ({listing}); links are never followed",
                          modified=_mtime(folder))
    if not regular:
        return Submission(student, None, problem=f"no notebook: {student}/ holds no .ipynb file",
                          modified=_mtime(folder))
    listing = ", ".join(str(p.relative_to(folder)) for p in regular)
    return Submission(student, None, problem=f"several notebooks: {listing}; expected {student}/{name}.ipynb",
                      notes=refused, modified=_mtime(folder))


def _same_file(info: os.stat_result, protected: list[os.stat_result]) -> bool:
    return any((info.st_dev, info.st_ino) == (other.st_dev, other.st_ino) for other in protected)


def find_submissions(folder: Path, name: str, protected: Iterable[Path] = ()) -> list[Submission]:
    """The submissions in `folder`, sorted by student id; `name` is the notebook's stem (``lab3``).

    A notebook that is the same file as one of `protected` (the instructor's source notebook,
    hard-linked into the folder) is refused like a link."""
    guarded = [info for info in (_lstat(Path(p)) for p in protected) if info is not None]
    by_student: dict[str, Submission] = {}
    entries = sorted(p for p in folder.iterdir() if _visible(p.name))
    kinds = {p: _lstat(p) for p in entries}
    for path in entries:
        info = kinds[path]
        if info is not None and stat.S_ISDIR(info.st_mode):
            by_student[path.name] = _from_folder(path, name)
    for path in entries:
        info = kinds[path]
        if info is None or stat.S_ISDIR(info.st_mode):
            continue
        is_link = stat.S_ISLNK(info.st_mode)
        if path.suffix != ".ipynb" and not is_link:
            continue  # a stray file (notes.txt): not a submission
        student_id = path.stem if path.suffix == ".ipynb" else path.name
        if is_link:
            found = _refused(student_id, path.name, path)
        elif not stat.S_ISREG(info.st_mode):
            found = Submission(student_id, None, problem=f"{NOT_REGULAR}: {path.name} (not opened)",
                               modified=info.st_mtime)
        else:
            found = Submission(student_id, path, modified=info.st_mtime)
        if student_id in by_student:
            kept = by_student[student_id]
            by_student[student_id] = Submission(
                kept.student_id, kept.notebook, kept.problem,
                kept.notes + (f"also found {path.name}, not graded: the folder {student_id}/ wins",), kept.modified)
        else:
            by_student[student_id] = found
    for student_id, found in by_student.items():
        info = _lstat(found.notebook) if found.notebook is not None else None
        if info is not None and _same_file(info, guarded):
            by_student[student_id] = Submission(
                student_id, None, problem=f"{LINK_REFUSED}: {found.notebook.relative_to(folder)} is the "
                                          f"instructor's source notebook (a hard link)", modified=info.st_mtime)
    return [by_student[student_id] for student_id in sorted(by_student)]
