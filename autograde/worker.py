"""Grade one submission: read it, run it (sandboxed), check it (trusted), write its feedback.

:func:`grade` composes the phases, in order:

1. :func:`~autograde.notebook_checks.read_submission`: is it a notebook at all;
2. :func:`autograde.run.phase.execute`: the run phase, in the submission's own box;
3. :func:`check`: the check phase, in a fresh fork of a check server (:mod:`autograde.check.server`):
   after the run, or, when the run kept objects for calls, while its kernel is still alive (on a
   copy of its exports, with the call channel);
4. :func:`run_status`: the row's status and notes, from the runner's journal;
5. :func:`autograde.feedback.render`: the page, from the executed notebook and the results;
6. :func:`autograde.run.phase.remove_box`: the box goes as soon as the page is written.

Nothing the run wrote is imported or executed here: the journal and the results are JSON, the
executed notebook is escaped text.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import stat
import time
import traceback
from pathlib import Path

import nbformat

from autograde import artifacts, feedback
from autograde.check.client import CheckServer
from autograde.run import phase
from autograde.check import source as check_source
from autograde.jobs import Job, Outcome
from autograde.notebook_checks import InvalidSubmission, find_tampering, read_submission

MAX_RUN_FILE_BYTES = 50_000_000
CHECK_GRACE_SECONDS = 120


def _read_json(path: Path, default):
    try:
        if path.stat().st_size > MAX_RUN_FILE_BYTES:
            return default
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return default


def run_status(job: Job, journal: object, report: phase.RunReport) -> tuple[str, list[str]]:
    """The row's status and notes, from the runner's journal (only statuses, never points)."""
    events = [e for e in journal if isinstance(e, dict)] if isinstance(journal, list) else []

    def cells_with(event: str) -> list[str]:
        return list(dict.fromkeys(f"cell {int(e.get('cell', 0)) + 1}" for e in events
                                  if e.get("event") == event and isinstance(e.get("cell"), int)))

    notes = list(report.notes)
    if cells_with("timeout"):
        notes.append(f"cell time limit ({job.limits.cell_timeout} s) hit in {', '.join(cells_with('timeout'))}")
    if cells_with("budget_spent") or report.killed:
        notes.append(f"stopped after {job.limits.budget_seconds} s (submission time limit)")
    if cells_with("kernel_died"):
        notes.append(f"kernel died in {cells_with('kernel_died')[0]}")
    if cells_with("output_truncated"):
        notes.append(f"output cut in {', '.join(cells_with('output_truncated'))}")
    failed_starts = [e for e in events if e.get("event") == "kernel_start_failed"]
    errors = [str(e.get("message", ""))[:300] for e in events if e.get("event") == "error"]
    if failed_starts and not errors:
        notes.append(f"the kernel started on try {len(failed_starts) + 1} "
                     f"(before: {str(failed_starts[0].get('message', ''))[:200]})")
    notes += [f"the run failed: {message}" for message in errors]
    if report.disk_limit_reached:
        return "disk limit reached", notes
    if cells_with("timeout") or cells_with("budget_spent") or report.killed:
        return "timeout", notes
    if cells_with("kernel_died"):
        return "kernel died", notes
    if errors:
        return "error", notes
    if not any(e.get("event") == "finished" for e in events):
        return "error", notes + ["the run ended without finishing its notebook"]
    return "ok", notes


def check_environment(matplotlib_config: Path | None, data_dir: Path | None) -> dict[str, str]:
    """The check server's environment: one thread, no display, the batch's MNIST folder."""
    return {"MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "PYTHONWARNINGS": "ignore",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            **({"MPLCONFIGDIR": str(matplotlib_config)} if matplotlib_config else {}),
            **({"LAB3_DATA_DIR": str(data_dir)} if data_dir else {})}


def _check_folder(job: Job) -> Path:
    folder = job.workspace / "check"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # the check's files are the grader's alone, whoever ran the notebook
    return folder


def copy_exports(source: Path, target: Path, max_bytes: int) -> None:
    """Copy the regular files directly in `source` to `target`, never following a link, at most
    `max_bytes` each (larger ones are left out, and the reader says so): the run's kernel is still
    alive during calls, so the check reads a copy that nothing in the box can change."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(source):
        try:
            descriptor = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
                continue
            data = handle.read(max_bytes + 1)
        if len(data) <= max_bytes:
            (target / entry.name).write_bytes(data)


def check(job: Job, log: Path, servers: "queue.Queue[CheckServer]", exports: Path | None = None,
          channel: socket.socket | None = None) -> list[dict] | None:
    """Run the check phase on a server's fresh fork, on the exports in `exports` (the box's by
    default), with the call `channel` if given; its results, or None if it failed."""
    folder = _check_folder(job)
    spec = {"artifacts": str(exports or job.workspace / "box" / "artifacts"), "seed": job.seed,
            "test_timeout": job.test_timeout, "results": str(folder / "results.json"), "log": str(log),
            "call_seconds": min(job.limits.call_seconds, job.test_timeout),
            "call_answer_bytes": job.limits.call_answer_bytes}
    server = servers.get()
    try:
        return server.check(spec, folder / "job.json", job.test_timeout * max(1, len(job.names)) + CHECK_GRACE_SECONDS,
                            channel)
    finally:
        servers.put(server)


class _CheckDuringRun:
    """The check phase as the run's call channel opens (see :func:`autograde.run.phase.execute`)."""

    def __init__(self, job: Job, log: Path, servers: "queue.Queue[CheckServer]"):
        self.job, self.log, self.servers = job, log, servers
        self.results: list[dict] | None = None
        self.ran = False
        self.seconds = 0.0

    def __call__(self, channel: socket.socket) -> None:
        started = time.monotonic()
        exports = _check_folder(self.job) / "exports"
        shutil.rmtree(exports, ignore_errors=True)
        copy_exports(self.job.workspace / "box" / "artifacts", exports, artifacts.MAX_NPZ_BYTES)
        self.ran = True
        self.results = check(self.job, self.log, self.servers, exports, channel)
        self.seconds = time.monotonic() - started


def render_feedback(student_id: str, score: float, max_score: float, results: list[dict], notes: list[str],
                    box: Path, hidden: dict[str, str] | None) -> str:
    """The feedback page; the executed notebook is read as plain JSON (never validated, imported or
    rendered as a template), and left out if it is missing or odd."""
    executed = _read_json(box / "run" / "executed.ipynb", None)
    try:
        return feedback.render(student_id, score, max_score, results, notes,
                               nbformat.from_dict(executed) if isinstance(executed, dict) else None, hidden)
    except Exception:  # a notebook shaped in a way the page does not expect
        return feedback.render(student_id, score, max_score, results, notes, None, hidden)


def grade(job: Job, servers: "queue.Queue[CheckServer]") -> Outcome:
    """Grade `job`'s submission in `job.workspace`; never raises (a failure is a row)."""
    started = time.monotonic()
    job.workspace.mkdir(parents=True, exist_ok=True)
    log = job.workspace / "grading.log"
    log.touch()
    if job.run_as is not None:  # the run user passes through to its box, sees nothing else here
        job.workspace.chmod(0o711)
        log.chmod(0o600)
    student_id = job.submission.student_id
    test_points = {cell.grade_id: cell.points for cell in check_source.tests(
        nbformat.read(job.source, as_version=4))}
    max_score = sum(test_points.values())
    zero = {grade_id: 0.0 for grade_id in test_points}
    notes = list(job.submission.notes)
    try:
        submitted = read_submission(job.submission.notebook)
    except InvalidSubmission as error:
        return Outcome(student_id, "invalid notebook", 0.0, max_score, zero, notes + [str(error)], log=log)
    box = job.workspace / "box"
    try:
        notes += find_tampering(submitted, job.released)
        during = _CheckDuringRun(job, log, servers)
        report = phase.execute(box, submitted, job, log, during)
        status, run_notes = run_status(job, _read_json(box / "run" / "journal.json", []), report)
        check_started = time.monotonic()
        results = during.results if during.ran else check(job, log, servers)
        check_seconds = during.seconds if during.ran else time.monotonic() - check_started
        with open(log, "a", encoding="utf-8") as output:
            output.write(f"[autograde] run {report.seconds:.2f} s, check {check_seconds:.2f} s"
                         f"{' (with calls, during the run)' if during.ran else ''}, "
                         f"{'sandboxed' if report.sandboxed else 'not sandboxed'}\n")
        if results is None:
            status, results = "error", []
            run_notes.append("the check phase failed (see the log)")
    except Exception:
        with open(log, "a", encoding="utf-8") as output:
            traceback.print_exc(file=output)
        phase.remove_box(box)
        return Outcome(student_id, "error", 0.0, max_score, zero,
                       notes + [f"grader error: {traceback.format_exc().strip().splitlines()[-1]}"], log=log,
                       seconds=time.monotonic() - started)
    cells = {**zero, **{r["grade_id"]: float(r["points"]) for r in results}}
    score = sum(cells.values())
    hidden = ({c.grade_id: c.source for c in check_source.tests(nbformat.read(job.source, as_version=4))}
              if job.show_hidden_tests else None)
    page = job.workspace / "feedback.html"
    page.write_text(render_feedback(student_id, score, max_score, results, run_notes + notes, box, hidden),
                    encoding="utf-8", errors="replace")  # a student id may hold bytes of a name that are not UTF-8
    phase.remove_box(box)
    return Outcome(student_id, status, score, max_score, cells, run_notes + notes, feedback=page, log=log,
                   seconds=time.monotonic() - started, results=results)
