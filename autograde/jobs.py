"""What the batch hands the grading of one submission (:class:`Job`) and gets back (:class:`Outcome`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from autograde.collect import Submission
from autograde.run.sandbox import MiB, Limits, RunAs  # noqa: F401  (re-exported for the CLI)


@dataclass(frozen=True)
class Job:
    """Everything one submission's grading needs; only `workspace` is written to."""

    submission: Submission
    source: Path  # the instructor's notebook, read by the check phase only
    released: NotebookNode
    names: dict[str, list[str]]  # test id -> names it reads (what the run exports)
    assets: list[Path]
    matplotlib_config: Path | None
    data_dir: Path | None
    workspace: Path
    limits: Limits
    seed: int  # the challenge seed
    name: str  # unique per run: names the cgroup
    test_timeout: int = 600
    show_hidden_tests: bool = False
    run_as: RunAs | None = None  # the unprivileged user the run phase executes as (None: this process's user)


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
    results: list[dict] = field(default_factory=list)  # the check phase's, one per test run (see check.runner)
    submitted: float | None = None  # the submitted file's modification time (epoch seconds), if known
