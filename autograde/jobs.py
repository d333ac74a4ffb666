"""What the batch hands a grading worker (:class:`Job`) and what it gets back (:class:`Outcome`).

Plain data, cheap to import: the batch process never needs nbgrader itself when the assignment
is already cached; only the workers (forked from a server that imported it once) do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from autograde.collect import Submission
from autograde.course import Course

MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Seconds, bytes, threads."""

    cell_timeout: int = 120
    wall_seconds: int = 600
    memory_bytes: int = 4096 * MiB
    file_bytes: int = 1024 * MiB
    max_output_bytes: int = 1 * MiB
    threads: int = 1


@dataclass(frozen=True)
class Job:
    """Everything a worker needs; paths are absolute and only `workspace` is written to."""

    submission: Submission
    template: Course  # holds gradebook.db and source/<name>/ (support files), made by the batch
    released_notebook: Path
    jupyter_path: Path  # holds the grading kernelspec
    matplotlib_config: Path
    data_dir: Path | None  # MNIST, provisioned once by the batch; kernels only read it
    workspace: Path
    limits: Limits
    token: str


@dataclass
class Outcome:
    """The grade of one submission, as the grade table shows it."""

    student_id: str
    status: str
    score: float = 0.0
    max_score: float = 0.0
    cells: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    feedback: Path | None = None
    log: Path | None = None
    seconds: float = 0.0


def run_worker(job: Job, pipe) -> None:
    """Entry point of a worker process (see :func:`autograde.worker.run`)."""
    from autograde.worker import run

    run(job, pipe)
