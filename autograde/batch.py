"""Grade a folder of submissions in parallel, one worker process per submission.

:func:`grade_folder` prepares what every worker shares (the assignment generated from the
source notebook, or taken from the cache; the grading kernelspec; a matplotlib font cache), then
runs the workers, at most ``workers`` at a time. Workers are forked from a server that has nbgrader already imported, so a
submission costs its kernel's start-up and its own execution, not an interpreter start. Each
worker gets a hard deadline on top of its own wall-clock watchdog: past it, its process group and
every process carrying its token are killed, and the row says so.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat

from autograde import processes
from autograde.collect import Submission, find_submissions
from autograde.course import Course, cached_course, check_source
from autograde.kernel import write_kernelspec
from autograde.jobs import Job, Limits, Outcome, run_worker

KILL_GRACE_SECONDS = 60  # past the worker's own watchdog, before the batch kills it


@dataclass(frozen=True)
class Assignment:
    """What every worker shares for one batch."""

    template: Course
    released_notebook: Path
    grade_ids: list[str]  # graded cells, in notebook order
    max_score: float
    jupyter_path: Path
    matplotlib_config: Path
    data_dir: Path | None


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


def prepare_assignment(source: Path, run_dir: Path, cache: Path) -> Assignment:
    """The assignment (student version, gradebook) generated from `source`, via `cache`."""
    check_source(source)
    template = cached_course(source, cache)
    released = template.release_folder / source.name
    cells = graded_cells(nbformat.read(released, as_version=4))
    return Assignment(template=template, released_notebook=released,
                      grade_ids=[grade_id for grade_id, _ in cells],
                      max_score=sum(points for _, points in cells),
                      jupyter_path=write_kernelspec(run_dir / "jupyter").parents[1],
                      matplotlib_config=prepare_matplotlib(cache / "matplotlib"),
                      data_dir=prepare_data())


def unreadable(submission: Submission, assignment: Assignment) -> Outcome:
    """The row of a hand-in with nothing to grade."""
    return Outcome(submission.student_id, submission.problem.split(":")[0], 0.0, assignment.max_score,
                   {grade_id: 0.0 for grade_id in assignment.grade_ids},
                   [submission.problem, *submission.notes])


def run_job(job: Job, context) -> Outcome:
    """Run one worker process and wait for its outcome; kill it past its hard deadline."""
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=run_worker, args=(job, sender), name=f"grade {job.submission.student_id}")
    worker.start()
    sender.close()
    outcome, killed = None, False
    if receiver.poll(job.limits.wall_seconds + KILL_GRACE_SECONDS):
        try:
            outcome = receiver.recv()
        except EOFError:  # the worker died without a word
            pass
    else:
        killed = True
    receiver.close()
    worker.join(timeout=10 if outcome else 0)
    if worker.is_alive():
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.join()
    processes.kill_marked(job.token)
    if outcome is not None:
        return outcome
    log = job.workspace / "grading.log"
    if killed:
        note = f"killed after {job.limits.wall_seconds + KILL_GRACE_SECONDS} s: no result"
        return Outcome(job.submission.student_id, "timeout", notes=[note], log=log)
    return Outcome(job.submission.student_id, "error",
                   notes=[f"grading process ended with code {worker.exitcode} and no result"], log=log)


def grade_folder(submissions_folder: Path, source: Path, limits: Limits, workers: int, run_dir: Path,
                 cache: Path, on_done: Callable[[Outcome], None] = lambda outcome: None
                 ) -> tuple[Assignment, list[Outcome]]:
    """Grade every submission in `submissions_folder`; outcomes sorted by student id.

    `run_dir` is an empty scratch folder (workspaces, logs and feedback stay there until the
    caller publishes them); `cache` keeps generated assignments between runs. `on_done` is
    called as each submission finishes, e.g. for progress.
    Raises CourseError when the source notebook cannot be made into an assignment.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["autograde._preload"])
    multiprocessing.forkserver.ensure_running()  # imports nbgrader meanwhile, on another core
    assignment = prepare_assignment(source, run_dir, cache)
    submissions = find_submissions(submissions_folder, assignment.template.name)
    outcomes = [unreadable(s, assignment) for s in submissions if s.notebook is None]
    for outcome in outcomes:
        on_done(outcome)
    (run_dir / "work").mkdir()
    jobs = [Job(submission=s, template=assignment.template, released_notebook=assignment.released_notebook,
                jupyter_path=assignment.jupyter_path, matplotlib_config=assignment.matplotlib_config,
                data_dir=assignment.data_dir, workspace=run_dir / "work" / f"{index:04d}", limits=limits, token=processes.new_token())
            for index, s in enumerate(submissions) if s.notebook is not None]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for future in as_completed([pool.submit(run_job, job, context) for job in jobs]):
            outcome = future.result()
            on_done(outcome)
            outcomes.append(outcome)
    for outcome in outcomes:  # a worker killed before reporting has no maximum yet
        outcome.max_score = outcome.max_score or assignment.max_score
        outcome.cells = {grade_id: outcome.cells.get(grade_id, 0.0) for grade_id in assignment.grade_ids}
    return assignment, sorted(outcomes, key=lambda outcome: outcome.student_id)
