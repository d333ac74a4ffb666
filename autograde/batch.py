"""Grade a folder of submissions in parallel, at most ``workers`` at a time.

:func:`grade_submissions` (or :func:`grade_folder`, which lists the folder first) prepares what
every submission shares (the student version generated from the source notebook, or taken from
the cache; the names each test reads; a matplotlib font cache; MNIST), then grades each
submission in a thread of its own (:func:`autograde.worker.grade`).
The work itself happens in child processes: the sandboxed run, and the check in a fresh fork of
one of the batch's check servers (one per worker, started at once so their imports overlap the
first runs). No grading code runs in a process that saw a submission; the batch opens no network
socket (each run's call channel is a Unix socket in a folder of its own, see
:mod:`autograde.run.phase`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import queue
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat

from autograde.check import source as check_source
from autograde.check.client import CheckServer
from autograde.collect import Submission, find_submissions
from autograde.course import SUPPORT_FOLDERS, CourseError, cached_course, check_source as read_source, fingerprint
from autograde.jobs import Job, Limits, Outcome, RunAs
from autograde.run import phase
from autograde.worker import check_environment, grade


@dataclass(frozen=True)
class Assignment:
    """What every worker shares for one batch."""

    source: Path
    released: nbformat.NotebookNode
    grade_ids: list[str]  # graded cells, in notebook order
    points: dict[str, float]  # grade_id -> its points
    max_score: float
    names: dict[str, list[str]]  # test id -> names it reads
    matplotlib_config: Path
    data_dir: Path | None
    fingerprint: str
    gradebook: Path  # the generated assignment's nbgrader gradebook (read only: copied to record grades)


def graded_cells(notebook: nbformat.NotebookNode) -> list[tuple[str, float]]:
    """(grade_id, points) of each graded cell, in notebook order."""
    return [(cell.metadata.nbgrader["grade_id"], float(cell.metadata.nbgrader.get("points", 0)))
            for cell in notebook.cells if cell.get("metadata", {}).get("nbgrader", {}).get("grade")]


def prepare_matplotlib(folder: Path) -> Path:
    """Build matplotlib's font cache once in `folder`, so no kernel prints "building the font cache"."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.glob("fontlist-*.json")):
        return folder
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"],
                   env={**os.environ, "MPLCONFIGDIR": str(folder), "MPLBACKEND": "Agg"},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return folder


def prepare_data() -> Path | None:
    """Provision MNIST once for the batch, so no kernel rebuilds it in its own sandbox.

    Kernels get the folder as ``LAB3_DATA_DIR``; they can read it but not write it, and
    ``mnist_tools`` only checks files that are already there. None when it cannot be had: then
    each kernel tries on its own, and fails (and loses points) the way a student's would.
    """
    try:
        from mnist_tools.provision import MNISTUnavailableError, default_root, provision_mnist
    except ImportError:
        return None
    try:
        return provision_mnist(default_root())
    except MNISTUnavailableError:
        return None


def prepare_assignment(source: Path, cache: Path, matplotlib_config: Path, data_dir: Path | None) -> Assignment:
    """The assignment (student version, tests, names they read) generated from `source`, via `cache`;
    `matplotlib_config` and `data_dir` (see :func:`prepare_matplotlib`, :func:`prepare_data`) are shared."""
    notebook = read_source(source)
    template = cached_course(source, cache)
    released = nbformat.read(template.release_folder / source.name, as_version=4)
    cells = graded_cells(released)
    _, bound = check_source.prelude(notebook)
    return Assignment(source=source, released=released, grade_ids=[grade_id for grade_id, _ in cells],
                      points=dict(cells), max_score=sum(points for _, points in cells),
                      names=check_source.names_read(check_source.tests(notebook), bound),
                      matplotlib_config=matplotlib_config, data_dir=data_dir,
                      fingerprint=fingerprint(source), gradebook=template.root / "gradebook.db")


def unreadable(submission: Submission, assignment: Assignment) -> Outcome:
    """The row of a hand-in with nothing to grade."""
    return Outcome(submission.student_id, submission.problem.split(":")[0], 0.0, assignment.max_score,
                   {grade_id: 0.0 for grade_id in assignment.grade_ids},
                   [submission.problem, *submission.notes])


def challenge_seed(assignment: Assignment, student_id: str) -> int:
    """The challenge seed: fixed for a source and a student (regrading gives the same grades),
    unknown to a student, who never sees the source notebook."""
    digest = hashlib.sha256(f"{assignment.fingerprint}/{student_id}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass(frozen=True)
class Batch:
    """How a batch grades: what every submission's grading shares, handed on whole."""

    source: Path  # the instructor's notebook
    limits: Limits
    cache: Path  # generated assignments, kept between runs
    workers: int = 1
    show_hidden_tests: bool = False
    run_as: RunAs | None = None  # the unprivileged user the run phase executes as


def grade_folder(submissions_folder: Path, batch: Batch, run_dir: Path,
                 on_done: Callable[[Outcome], None] = lambda outcome: None,
                 keep: Callable[[str], bool] = lambda student_id: True) -> tuple[Assignment, list[Outcome]]:
    """Grade every submission in `submissions_folder` whose student id passes `keep` (all by
    default); see :func:`grade_submissions`."""
    submissions = [s for s in find_submissions(submissions_folder, batch.source.stem, protected=[batch.source])
                   if keep(s.student_id)]
    return grade_submissions(submissions, batch, run_dir, on_done)


def grade_submissions(submissions: list[Submission], batch: Batch, run_dir: Path,
                      on_done: Callable[[Outcome], None] = lambda outcome: None,
                      on_ready: Callable[[Assignment], None] = lambda assignment: None
                      ) -> tuple[Assignment, list[Outcome]]:
    """Grade `submissions` (as :func:`autograde.collect.find_submissions` found them); outcomes
    sorted by student id.

    `run_dir` is an empty scratch folder (boxes, logs and feedback stay there until the caller
    publishes them). `on_done` is called as each submission finishes, e.g. for progress;
    `on_ready` once the assignment is prepared, before any grading (it may raise CourseError to
    stop the batch before it starts). With ``batch.run_as`` the run phase executes as that user,
    one submission at a time (they share the user, whose processes are all killed after each
    run); `run_dir` must then be reachable by that user. Raises CourseError when the source
    notebook cannot be made into an assignment.
    """
    source, limits, run_as = batch.source, batch.limits, batch.run_as
    workers = 1 if run_as is not None else batch.workers
    read_source(source)  # a source that is no notebook at all stops here, before any process starts
    matplotlib_config, data_dir = prepare_matplotlib(batch.cache / "matplotlib"), prepare_data()
    if run_as is not None:
        (run_dir / "work").mkdir(parents=True, exist_ok=True)
        for folder in (run_dir, run_dir / "work"):
            folder.chmod(0o711)
    gradable = sum(s.notebook is not None for s in submissions)
    servers: queue.Queue = queue.Queue()
    try:
        # The check servers import their prelude while nbgrader generates the assignment (on a
        # cold cache, seconds that would otherwise come before the first run)
        for index in range(min(max(1, workers), gradable)):
            server = CheckServer(source, check_environment(matplotlib_config, data_dir),
                                 run_dir / f"check-server-{index}.log")
            server.start()
            servers.put(server)
        # The preflight (Python starts in the sandbox, as the run user) runs meanwhile too: a grader
        # set up so that no run can start stops here, before it gives every submission a zero.
        preflight = ThreadPoolExecutor(max_workers=1)
        started = preflight.submit(phase.preflight, run_dir / "preflight", limits, data_dir, run_as)
        preflight.shutdown(wait=False)
        assignment = prepare_assignment(source, batch.cache, matplotlib_config, data_dir)
        try:
            started.result()
        except (RuntimeError, OSError) as error:  # OSError: a run_dir the run user cannot reach
            raise CourseError(str(error)) from None
        on_ready(assignment)
        outcomes = _grade_all(submissions, assignment, dataclasses.replace(batch, workers=workers), run_dir,
                              servers, on_done)
    finally:
        while not servers.empty():
            servers.get().close()
    return assignment, sorted(outcomes, key=lambda outcome: outcome.student_id)


def _grade_all(submissions: list[Submission], assignment: Assignment, batch: Batch, run_dir: Path,
               servers: queue.Queue, on_done: Callable[[Outcome], None]) -> list[Outcome]:
    """Grade each submission (the unreadable ones get their row at once); outcomes in the order done,
    each completed (every graded cell, the maximum, the submission's time) before `on_done` sees it."""
    def finished(outcome: Outcome, submission: Submission) -> Outcome:
        outcome.max_score = outcome.max_score or assignment.max_score
        outcome.cells = {grade_id: outcome.cells.get(grade_id, 0.0) for grade_id in assignment.grade_ids}
        outcome.submitted = submission.modified
        on_done(outcome)
        return outcome

    outcomes = [finished(unreadable(s, assignment), s) for s in submissions if s.notebook is None]
    source = batch.source
    assets = [source.parent / folder for folder in SUPPORT_FOLDERS if (source.parent / folder).is_dir()]
    prefix = f"autograde-{os.getpid()}-{os.urandom(4).hex()}"
    jobs = [Job(submission=s, source=source, released=assignment.released, names=assignment.names, assets=assets,
                matplotlib_config=assignment.matplotlib_config, data_dir=assignment.data_dir,
                workspace=run_dir / "work" / f"{index:04d}", limits=batch.limits,
                seed=challenge_seed(assignment, s.student_id), name=f"{prefix}-{index:04d}",
                show_hidden_tests=batch.show_hidden_tests, run_as=batch.run_as)
            for index, s in enumerate(submissions) if s.notebook is not None]
    with ThreadPoolExecutor(max_workers=max(1, batch.workers)) as pool:
        running = {pool.submit(grade, job, servers): job.submission for job in jobs}
        for future in as_completed(running):
            outcomes.append(finished(future.result(), running[future]))
    return outcomes
