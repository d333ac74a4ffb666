"""Grade one submission: read it, run it (sandboxed), check it (trusted), write its feedback.

:func:`grade` composes the phases, in order:

1. :func:`~autograde.notebook_checks.read_submission`: is it a notebook at all;
2. :func:`autograde.run.phase.execute`: the run phase, in the submission's own box;
3. :func:`run_status`: the row's status and notes, from the runner's journal;
4. :func:`check`: the check phase, in a fresh fork of a check server (:mod:`autograde.check.server`);
5. :func:`autograde.feedback.render`: the page, from the executed notebook and the results;
6. :func:`autograde.run.phase.remove_box`: the box goes as soon as the page is written.

Nothing the run wrote is imported or executed here: the journal and the results are JSON, the
executed notebook is escaped text.
"""
from __future__ import annotations

import json
import queue
import time
import traceback
from pathlib import Path

import nbformat

from autograde import feedback
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


def check(job: Job, log: Path, servers: "queue.Queue[CheckServer]") -> list[dict] | None:
    """Run the check phase on a server's fresh fork; its results, or None if it failed."""
    folder = job.workspace / "check"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # the check's files are the grader's alone, whoever ran the notebook
    spec = {"artifacts": str(job.workspace / "box" / "artifacts"), "seed": job.seed,
            "test_timeout": job.test_timeout, "results": str(folder / "results.json"), "log": str(log)}
    server = servers.get()
    try:
        return server.check(spec, folder / "job.json", job.test_timeout * max(1, len(job.names)) + CHECK_GRACE_SECONDS)
    finally:
        servers.put(server)


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
        report = phase.execute(job.workspace / "box", submitted, job.released, job.names, job.seed, job.limits,
                             job.assets, job.data_dir, job.matplotlib_config, job.name, log, job.run_as)
        status, run_notes = run_status(job, _read_json(box / "run" / "journal.json", []), report)
        check_started = time.monotonic()
        results = check(job, log, servers)
        with open(log, "a", encoding="utf-8") as output:
            output.write(f"[autograde] run {report.seconds:.2f} s, check {time.monotonic() - check_started:.2f} s, "
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
