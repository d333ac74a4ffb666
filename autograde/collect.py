"""Find the submissions in a folder: ``<student>.ipynb`` files or ``<student>/<name>.ipynb`` folders.

Every student found gets a :class:`Submission`, gradable or not, so the grade table never loses
a row: a folder without a notebook, or with several candidates, is kept with its problem.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_SKIPPED = (".", "__")  # hidden files, .ipynb_checkpoints, __pycache__, __MACOSX


@dataclass(frozen=True)
class Submission:
    """One student's hand-in. `notebook` is None when nothing gradable was found (see `problem`)."""

    student_id: str
    notebook: Path | None
    problem: str = ""
    notes: tuple[str, ...] = ()


def _visible(path: Path) -> bool:
    return not path.name.startswith(_SKIPPED)


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb")
                  if p.is_file() and all(_visible(part) for part in p.relative_to(folder).parents
                                         if part != Path(".")) and _visible(p))


def _from_folder(folder: Path, name: str) -> Submission:
    expected = folder / f"{name}.ipynb"
    if expected.is_file():
        return Submission(folder.name, expected)
    candidates = _notebooks_in(folder)
    if len(candidates) == 1:
        found = candidates[0].relative_to(folder)
        return Submission(folder.name, candidates[0], notes=(f"graded {found} (expected {name}.ipynb)",))
    if not candidates:
        return Submission(folder.name, None, problem=f"no notebook: {folder.name}/ holds no .ipynb file")
    listing = ", ".join(str(p.relative_to(folder)) for p in candidates)
    return Submission(folder.name, None,
                      problem=f"several notebooks: {listing}; expected {folder.name}/{name}.ipynb")


def find_submissions(folder: Path, name: str) -> list[Submission]:
    """The submissions in `folder`, sorted by student id; `name` is the notebook's stem (``lab3``)."""
    by_student: dict[str, Submission] = {}
    entries = sorted(p for p in folder.iterdir() if _visible(p))
    for path in (p for p in entries if p.is_dir()):
        by_student[path.name] = _from_folder(path, name)
    for path in (p for p in entries if p.is_file() and p.suffix == ".ipynb"):
        student_id = path.stem
        if student_id in by_student:
            kept = by_student[student_id]
            by_student[student_id] = Submission(
                kept.student_id, kept.notebook, kept.problem,
                kept.notes + (f"also found {path.name}, not graded: the folder {student_id}/ wins",))
        else:
            by_student[student_id] = Submission(student_id, path)
    return [by_student[student_id] for student_id in sorted(by_student)]
