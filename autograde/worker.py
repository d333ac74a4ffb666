"""Grade one submission in its own process, course directory, gradebook and sandbox.

:func:`run` is the body of a worker process. Its steps, in order:

1. :func:`prepare_workspace`: a private copy of the course (gradebook, ``source/<name>/assets``,
   never the instructor notebook) and an empty sandbox folder;
2. :func:`place_submission`: read and check the notebook, note edited test cells, repair its
   nbgrader metadata, put it where nbgrader looks (``submitted/student/<name>/<name>.ipynb``);
3. :func:`enter_sandbox`: replace the environment (home, temp, Jupyter paths, thread counts, the
   confinement the kernel applies to itself) and confine this process's own writes;
4. :func:`autograde`: ``nbgrader autograde`` with :class:`~autograde.execute.GuardedExecute`,
   under a wall-clock watchdog that kills the kernel (cells not run score zero);
5. ``nbgrader generate_feedback``, then :func:`read_scores` from the gradebook.

Everything the worker prints goes to its log file; it sends an :class:`Outcome` back on a pipe.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute
from traitlets.config import Config

from autograde import processes, sandbox
from autograde.course import SUPPORT_FOLDERS, Course
from autograde.execute import GuardedExecute, read_journal
from autograde.jobs import Job, Outcome
from autograde.kernel import KERNEL_NAME
from autograde.notebook_checks import InvalidSubmission, find_tampering, read_submission, repair_metadata

STUDENT = "student"  # the id nbgrader sees: each submission has a gradebook of its own


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def course(self) -> Path:
        return self.root / "course"

    @property
    def sandbox(self) -> Path:
        return self.root / "sandbox"

    @property
    def log(self) -> Path:
        return self.root / "grading.log"

    @property
    def journal(self) -> Path:
        return self.root / "events.jsonl"


def prepare_workspace(job: Job) -> tuple[Workspace, Course]:
    """Copy the gradebook and support files into a fresh course directory; make the sandbox."""
    space = Workspace(job.workspace)
    course = Course(root=space.course, name=job.template.name)
    course.source_folder.mkdir(parents=True)
    shutil.copyfile(job.template.root / "gradebook.db", course.root / "gradebook.db")
    for folder in SUPPORT_FOLDERS:
        if (job.template.source_folder / folder).is_dir():
            shutil.copytree(job.template.source_folder / folder, course.source_folder / folder)
    for folder in ("home", "tmp", "autograded", "jupyter/runtime", "jupyter/config"):
        (space.sandbox / folder).mkdir(parents=True, exist_ok=True)
    return space, course


def place_submission(job: Job, course: Course) -> list[str]:
    """Check the notebook and put a repaired copy where nbgrader looks; return notes on tampering."""
    submitted = read_submission(job.submission.notebook)
    released = nbformat.read(job.released_notebook, as_version=4)
    notes = find_tampering(submitted, released)
    destination = course.root / "submitted" / STUDENT / course.name / f"{course.name}.ipynb"
    destination.parent.mkdir(parents=True)
    nbformat.write(repair_metadata(submitted, released), destination)
    return [f"test cells restored: {', '.join(notes)}"] if notes else []


def sandbox_environment(job: Job, space: Workspace) -> dict[str, str]:
    """The whole environment of the worker and its kernel: nothing inherited but PATH and locale."""
    home, jupyter = space.sandbox / "home", space.sandbox / "jupyter"
    threads = str(job.limits.threads)
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(space.sandbox / "tmp"),
        "IPYTHONDIR": str(home / ".ipython"),
        "JUPYTER_PATH": str(job.jupyter_path),
        "JUPYTER_DATA_DIR": str(jupyter),
        "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(job.matplotlib_config),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        processes.TOKEN_VARIABLE: job.token,
        "AUTOGRADE_WRITABLE": str(space.sandbox),
        "AUTOGRADE_MEMORY_BYTES": str(job.limits.memory_bytes),
        "AUTOGRADE_FILE_BYTES": str(job.limits.file_bytes),
        "AUTOGRADE_CPU_SECONDS": str(job.limits.wall_seconds + 30),
        **({"LAB3_DATA_DIR": str(job.data_dir)} if job.data_dir else {}),
    }


def enter_sandbox(job: Job, space: Workspace) -> list[str]:
    """Switch to the sandbox environment and confine this worker's writes to its workspace."""
    os.environ.clear()
    os.environ.update(sandbox_environment(job, space))
    tempfile.tempdir = None  # forget a temp folder chosen before: TMPDIR now points into the sandbox
    os.chdir(space.root)
    return sandbox.confine([space.root], memory_bytes=job.limits.memory_bytes,
                           file_bytes=job.limits.file_bytes, cpu_seconds=job.limits.wall_seconds + 60)


def autograde_config(job: Job, space: Workspace) -> Config:
    """nbgrader settings for this submission: sandbox paths, our Execute step, restored cells."""
    config = Config()
    config.CourseDirectory.autograded_directory = str(space.sandbox / "autograded")
    config.OverwriteCells.add_missing_cells = True
    config.Autograde.autograde_preprocessors = [
        GuardedExecute if step is Execute else step for step in Autograde.class_traits()["autograde_preprocessors"].default()]
    config.GuardedExecute.timeout = job.limits.cell_timeout
    config.GuardedExecute.kernel_name = KERNEL_NAME
    config.GuardedExecute.max_output_bytes = job.limits.max_output_bytes
    config.GuardedExecute.journal = str(space.journal)
    return config


def autograde(job: Job, course: Course, config: Config) -> tuple[dict, bool]:
    """Run ``nbgrader autograde``; return nbgrader's result and whether the wall clock ran out."""
    ran_out = threading.Event()

    def stop_kernel() -> None:
        ran_out.set()
        processes.kill_marked(job.token, spare=os.getpid())

    watchdog = threading.Timer(job.limits.wall_seconds, stop_kernel)
    watchdog.start()
    try:
        result = course.api(config).autograde(course.name, STUDENT, force=True, create=True)
    finally:
        watchdog.cancel()
        processes.kill_marked(job.token, spare=os.getpid())  # whatever the kernel left running
    return result, ran_out.is_set()


def read_scores(course: Course) -> tuple[float, float, dict[str, float]]:
    """Total score, maximum and score per graded cell (by grade_id), from the gradebook."""
    with Gradebook(course.db_url) as gradebook:
        submission = gradebook.find_submission(course.name, STUDENT)
        cells = {grade.name: float(grade.score) for notebook in submission.notebooks
                 for grade in notebook.grades}
        return float(submission.score), float(submission.max_score), cells


def execution_status(job: Job, result: dict, wall_clock_hit: bool, events: list[dict]) -> tuple[str, list[str]]:
    """The row's status and notes, from nbgrader's result and the execution journal."""
    def cells_with(event: str) -> list[str]:
        return list(dict.fromkeys(e["cell"] for e in events if e["event"] == event))

    notes = []
    if cells_with("timeout"):
        notes.append(f"cell time limit ({job.limits.cell_timeout} s) hit in {', '.join(cells_with('timeout'))}")
    if wall_clock_hit:
        notes.append(f"stopped after {job.limits.wall_seconds} s (submission time limit)")
    if cells_with("kernel_died") and not wall_clock_hit:
        notes.append(f"kernel died in {cells_with('kernel_died')[0]}")
    if cells_with("output_truncated"):
        notes.append(f"output cut in {', '.join(cells_with('output_truncated'))}")
    if cells_with("timeout") or wall_clock_hit:
        return "timeout", notes
    if cells_with("kernel_died"):
        return "kernel died", notes
    if not result["success"]:
        last_line = (result.get("error") or "nbgrader failed").strip().splitlines()[-1]
        return "error", [f"nbgrader autograde failed: {last_line}"] + notes
    return "ok", notes


def grade(job: Job, space: Workspace, course: Course) -> Outcome:
    """Steps 2 to 5 of the module docstring, for a workspace already prepared."""
    started = time.monotonic()
    student_id = job.submission.student_id
    notes = list(job.submission.notes)
    try:
        notes += place_submission(job, course)
    except InvalidSubmission as error:
        return Outcome(student_id, "invalid notebook", *zero_scores(course), notes + [str(error)])
    unenforced = enter_sandbox(job, space)
    notes += [f"not enforced: {problem}" for problem in unenforced]
    config = autograde_config(job, space)
    result, wall_clock_hit = autograde(job, course, config)
    print(result.get("log", ""), result.get("error", ""), sep="\n", flush=True)
    status, status_notes = execution_status(job, result, wall_clock_hit, read_journal(str(space.journal)))
    feedback = course.api(config).generate_feedback(course.name, STUDENT, force=True)
    print(feedback.get("log", ""), feedback.get("error", ""), sep="\n", flush=True)
    score, max_score, cells = read_scores(course)
    feedback_file = course.root / "feedback" / STUDENT / course.name / f"{course.name}.html"
    return Outcome(student_id, status, score, max_score, cells, status_notes + notes,
                   feedback=feedback_file if feedback_file.is_file() else None,
                   seconds=time.monotonic() - started)


def zero_scores(course: Course) -> tuple[float, float, dict[str, float]]:
    """Zero points in every graded cell, with the assignment's maximum: the row of a failed hand-in."""
    with Gradebook(course.db_url) as gradebook:
        assignment = gradebook.find_assignment(course.name)
        cells = {cell.name: 0.0 for notebook in assignment.notebooks for cell in notebook.grade_cells}
        return 0.0, float(assignment.max_score), cells


def run(job: Job, pipe) -> None:
    """Worker process body: grade `job` and send the :class:`Outcome` on `pipe`."""
    os.setsid()  # a process group of its own, so the batch can kill it and all it started
    space, course = prepare_workspace(job)
    log = os.open(space.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        outcome = grade(job, space, course)
    except Exception:
        traceback.print_exc()
        outcome = Outcome(job.submission.student_id, "error", *zero_scores(course),
                          [f"grader error: {traceback.format_exc().strip().splitlines()[-1]}"])
    sys.stdout.flush()
    sys.stderr.flush()
    outcome.log = space.log
    pipe.send(outcome)
    pipe.close()
