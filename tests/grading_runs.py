"""What the grading tests share: running the instructor's CLI, and looking at what it left."""
from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from autograde import crafted


FIXTURE = Path(__file__).parent / "fixtures" / "lab3.ipynb"


def instructor_folder(root: Path) -> Path:
    """``root/instructor`` holding a copy of the fixture notebook and its assets; returns the
    notebook's path (the ``--source`` of the CLI)."""
    instructor = root / "instructor"
    instructor.mkdir()
    shutil.copyfile(FIXTURE, instructor / "lab3.ipynb")
    shutil.copytree(FIXTURE.parent / "assets", instructor / "assets")
    return instructor / "lab3.ipynb"


def autograde(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m autograde ARGS`` in ``cwd``, output captured."""
    return subprocess.run([sys.executable, "-m", "autograde", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def processes_with(marker: str) -> list[int]:
    """Pids of the processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


CLASS_LIMITS = ("--timeout", "30", "--submission-timeout", "60")  # also the Gradescope zip's limits


def read_rows(grades: Path) -> dict[str, dict]:
    """grades.csv as {student_id: row}."""
    with open(grades, newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def grade_class(root: Path) -> dict:
    """Release the fixture and grade a small class: two real notebooks (``perfect``, ``blank``) and
    four that need no run (a damaged file, two folders without a notebook, one with two). Their ids
    fall in all three slices of ``--shard K/3`` (``no_notebook`` 1; ``perfect``, ``empty`` 2; the
    rest 3), so a three-way split grades each real notebook once."""
    source = instructor_folder(root)
    released = autograde("release", "--out", root / "release", "--source", source, cwd=root)
    assert released.returncode == 0, released.stderr
    source_nb = nbformat.read(source, as_version=4)
    release_nb = nbformat.read(root / "release" / "lab3.ipynb", as_version=4)
    subs = root / "submissions"
    crafted.write_submission(crafted.perfect(source_nb, release_nb), subs / "perfect.ipynb")
    crafted.write_submission(crafted.blank(source_nb, release_nb), subs / "blank.ipynb")
    crafted.write_submission(crafted.damaged_json(release_nb), subs / "damaged_json.ipynb")
    for folder in ("empty", "no_notebook"):
        (subs / folder).mkdir()
    crafted.write_submission(release_nb, subs / "two_notebooks" / "a.ipynb")
    crafted.write_submission(release_nb, subs / "two_notebooks" / "b.ipynb")
    result = autograde("grade", subs, "--out", root / "out", "--source", source, "--workers", "2", *CLASS_LIMITS,
                       "--cache", root / "cache", cwd=root)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return {"root": root, "source": source, "subs": subs, "out": root / "out", "cache": root / "cache",
            "rows": read_rows(root / "out" / "grades.csv"), "source_nb": source_nb, "release_nb": release_nb}


def release_for_grading(source: Path, root: Path) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """``autograde release --out root/release --source SOURCE`` (it must succeed); the source and
    the released notebook, read."""
    released = autograde("release", "--out", root / "release", "--source", source, cwd=root)
    assert released.returncode == 0, released.stdout + released.stderr
    return nbformat.read(source, as_version=4), nbformat.read(root / "release" / "lab3.ipynb", as_version=4)
