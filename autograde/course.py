"""nbgrader course directories, made on the fly from the instructor's source notebook.

nbgrader wants a course directory: ``source/<name>/<name>.ipynb``, a gradebook, and the other
steps' folders. The instructor's source notebook (and the ``assets/`` folder next to it) is the
whole source of truth: :func:`generate_assignment` rebuilds the student version and the
gradebook from it (seconds of work, much of it nbgrader running ``alembic`` for a new gradebook), and
:func:`cached_course` keeps the result under a fingerprint of those files, so a second run with
the same source reuses it and a changed source never does.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from importlib.metadata import version

from traitlets.config import Config

from autograde.stubs import name_the_todos

SUPPORT_FOLDERS = ("assets",)  # folders next to the source notebook that students also get


class CourseError(RuntimeError):
    """The source notebook cannot be turned into an assignment; the message says why."""


def default_source() -> Path:
    """The kit's instructor notebook: lab3.ipynb at the repository root."""
    return Path(__file__).resolve().parents[1] / "lab3.ipynb"


@dataclass(frozen=True)
class Course:
    """A course directory holding one assignment named after its notebook (``lab3``)."""

    root: Path
    name: str

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"

    @property
    def source_folder(self) -> Path:
        return self.root / "source" / self.name

    @property
    def release_folder(self) -> Path:
        return self.root / "release" / self.name

    def config(self) -> Config:
        """nbgrader configuration pointing at this directory (no config file is read)."""
        config = Config()
        config.CourseDirectory.root = str(self.root)
        config.CourseDirectory.db_url = self.db_url
        return config

    def api(self, config: Config | None = None):
        """nbgrader's Python API (``NbGraderAPI``) on this course; `config` is merged over :meth:`config`."""
        from nbgrader.apps import NbGraderAPI  # imported here: a cached assignment never needs it
        from nbgrader.coursedir import CourseDirectory

        merged = self.config()
        if config is not None:
            merged.merge(config)
        return NbGraderAPI(coursedir=CourseDirectory(config=merged), config=merged)


def check_source(source: Path) -> nbformat.NotebookNode:
    """Read the instructor notebook; raise CourseError if it is missing or not a valid notebook."""
    if not source.is_file():
        raise CourseError(f"source notebook not found: {source}")
    try:
        notebook = nbformat.read(source, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises several types for damaged files
        raise CourseError(f"{source} is not a valid notebook: {error}") from error
    if not any("nbgrader" in cell.get("metadata", {}) for cell in notebook.cells):
        raise CourseError(f"{source} has no nbgrader cells: is it the instructor's source notebook?")
    return notebook


def copy_support_files(source: Path, destination: Path) -> None:
    """Copy the folders a student needs next to the notebook (``assets/``) into `destination`."""
    for folder in SUPPORT_FOLDERS:
        if (source.parent / folder).is_dir():
            shutil.copytree(source.parent / folder, destination / folder, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".*"))


def make_course(source: Path, root: Path) -> Course:
    """Lay out a course directory at `root` with `source` as its only assignment."""
    course = Course(root=root, name=source.stem)
    course.source_folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, course.source_folder / source.name)
    copy_support_files(source, course.source_folder)
    return course


@contextlib.contextmanager
def prepended_to(variable: str, folder: Path):
    """Put `folder` first on the search-path environment variable `variable` while inside."""
    saved = os.environ.get(variable)
    os.environ[variable] = os.pathsep.join(filter(None, [str(folder), saved]))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = saved


def generate_assignment(course: Course) -> str:
    """Run ``nbgrader generate_assignment``: student version and gradebook; return nbgrader's log."""
    stray_output = io.StringIO()
    with contextlib.redirect_stderr(stray_output), contextlib.redirect_stdout(stray_output), \
            prepended_to("PATH", Path(sys.executable).parent):  # a new gradebook runs `alembic`
        result = course.api().generate_assignment(course.name, force=True, create=True)
    log = result.get("log", "") + stray_output.getvalue()
    if not result["success"]:
        raise CourseError(f"nbgrader generate_assignment failed:\n{log}\n{result.get('error', '')}")
    return log


def release(source: Path, out: Path, workdir: Path, repo_url: str | None = None) -> Path:
    """Write the student repository into `out` (the student notebook, its support files, and
    :mod:`autograde.student_repo`'s packages, README and set-up); return the notebook's path.

    `workdir` is an empty scratch directory for the temporary course. A source whose tests cannot
    be graded, or that refers to files missing beside it, stops here (CourseError naming each
    problem; see :mod:`autograde.source_check`), before any student sees it.
    """
    from autograde import source_check, student_repo

    check_source(source)
    problems = source_check.check(source).problems
    if problems:
        raise CourseError(f"{source} is not ready for students:\n" + "\n".join(f"  - {p}" for p in problems))
    course = make_course(source, workdir)
    generate_assignment(course)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(course.release_folder, out, dirs_exist_ok=True)
    student = nbformat.read(out / source.name, as_version=4)
    nbformat.write(name_the_todos(student), out / source.name)  # each stub says what is missing
    student_repo.write(out, out / source.name, repo_url)
    return out / source.name


def default_cache() -> Path:
    """Where generated assignments are kept between runs: $XDG_CACHE_HOME/autograde."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "autograde"


def fingerprint(source: Path) -> str:
    """A hash of the source notebook, its support files and the nbgrader version."""
    digest = hashlib.sha256(version("nbgrader").encode())
    files = [source] + sorted(p for folder in SUPPORT_FOLDERS if (source.parent / folder).is_dir()
                              for p in (source.parent / folder).rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(source.parent)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:24]


def cached_course(source: Path, cache: Path) -> Course:
    """The generated course for `source`, from `cache` if it is there, else generated into it."""
    folder = cache / f"{source.stem}-{fingerprint(source)}"
    course = Course(root=folder, name=source.stem)
    if not (course.release_folder / source.name).is_file():
        cache.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=cache))
        try:
            generate_assignment(make_course(source, scratch))
            try:
                os.replace(scratch, folder)  # atomic: a concurrent run sees all or nothing
            except OSError:  # another run got there first
                pass
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return course
