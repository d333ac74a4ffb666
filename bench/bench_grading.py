"""Benchmark: ``python -m autograde grade --workers 2`` against plain sequential nbgrader.

Both grade the same N submissions (perfect, partial and blank, crafted from the fixture notebook
in tests/fixtures). The peer is what an instructor runs by hand in one course directory:
``nbgrader autograde lab3`` (timed), then ``nbgrader generate_feedback lab3`` (timed apart,
because ``autograde grade`` writes feedback too). ``nbgrader generate_assignment`` is set-up for
the peer and not timed; for ``autograde grade`` it is timed, once with an empty cache (cold) and
once with the assignment cached (warm). The scores of both must agree.

``--work-seconds W`` adds to the notebook a cell that keeps the CPU busy for W seconds, as the
real lab's training cells do; with W = 0 a submission is mostly kernel start-up.

    python bench/bench_grading.py [--submissions 6] [--workers 2] [--work-seconds 0]
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from autograde import crafted

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "lab3.ipynb"
KINDS = ("perfect", "partial", "blank")
BUSY_CELL = """\
import time
started = time.process_time()
while time.process_time() - started < {seconds}:
    pass"""


def _run(command: list[str], cwd: Path) -> float:
    """Run `command` (output discarded); return its wall time in seconds."""
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def make_source(folder: Path, work_seconds: float) -> Path:
    """The fixture notebook (with its assets) in `folder`, plus a busy cell when asked."""
    folder.mkdir(parents=True)
    shutil.copytree(FIXTURE.parent / "assets", folder / "assets")
    notebook = nbformat.read(FIXTURE, as_version=4)
    if work_seconds > 0:
        cell = new_code_cell(BUSY_CELL.format(seconds=work_seconds))
        cell.pop("id", None)
        notebook.cells.insert(2, cell)
    nbformat.write(notebook, folder / "lab3.ipynb")
    return folder / "lab3.ipynb"


def make_submissions(source: Path, folder: Path, count: int) -> list[str]:
    """`count` crafted submissions <kind>_<i>.ipynb in `folder`; returns the student ids."""
    released = subprocess.run([sys.executable, "-m", "autograde", "release", "--out", str(folder.parent / "release"),
                               "--source", str(source)], check=True, capture_output=True, text=True)
    assert "wrote" in released.stdout
    source_nb = nbformat.read(source, as_version=4)
    release_nb = nbformat.read(folder.parent / "release" / "lab3.ipynb", as_version=4)
    students = [f"{KINDS[i % len(KINDS)]}_{i}" for i in range(count)]
    for student in students:
        kind = student.rsplit("_", 1)[0]
        crafted.write_submission(crafted.MAKERS[kind](source_nb, release_nb), folder / f"{student}.ipynb")
    return students


def time_autograde(source: Path, submissions: Path, out: Path, cache: Path, workers: int) -> tuple[float, dict]:
    seconds = _run([sys.executable, "-m", "autograde", "grade", str(submissions), "--out", str(out),
                    "--source", str(source), "--workers", str(workers), "--cache", str(cache)], cwd=out.parent)
    with open(out / "grades.csv", newline="") as handle:
        return seconds, {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}


def phase_seconds(out: Path) -> tuple[float, float]:
    """Mean seconds of the run phase and of the check phase per submission, from the logs."""
    found = [re.search(r"\[autograde\] run ([0-9.]+) s, check ([0-9.]+) s", log.read_text(errors="replace"))
             for log in (out / "logs").glob("*.log")]
    pairs = [(float(m.group(1)), float(m.group(2))) for m in found if m]
    return (sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)) if pairs else (0.0, 0.0)


def time_nbgrader(source: Path, submissions: Path, students: list[str], course: Path) -> tuple[float, float, dict]:
    """Plain nbgrader in one course directory: (autograde seconds, feedback seconds, scores)."""
    (course / "source" / "lab3").mkdir(parents=True)
    shutil.copyfile(source, course / "source" / "lab3" / "lab3.ipynb")
    shutil.copytree(source.parent / "assets", course / "source" / "lab3" / "assets")
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    _run([nbgrader, "generate_assignment", "lab3"], cwd=course)
    for student in students:
        target = course / "submitted" / student / "lab3"
        target.mkdir(parents=True)
        shutil.copyfile(submissions / f"{student}.ipynb", target / "lab3.ipynb")
    autograde_seconds = _run([nbgrader, "autograde", "lab3"], cwd=course)
    feedback_seconds = _run([nbgrader, "generate_feedback", "lab3"], cwd=course)
    _run([nbgrader, "export"], cwd=course)
    with open(course / "grades.csv", newline="") as handle:
        return autograde_seconds, feedback_seconds, {row["student_id"]: float(row["score"])
                                                     for row in csv.DictReader(handle)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--submissions", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-seconds", type=float, default=5.0,
                        help="CPU seconds of work per notebook, like the lab's training cells")
    args = parser.parse_args([] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        root = Path(scratch)
        source = make_source(root / "instructor", args.work_seconds)
        students = make_submissions(source, root / "submissions", args.submissions)
        cold, ours = time_autograde(source, root / "submissions", root / "out-cold", root / "cache", args.workers)
        warm, _ = time_autograde(source, root / "submissions", root / "out-warm", root / "cache", args.workers)
        one_run, one_check = phase_seconds(root / "out-warm")
        peer_grade, peer_feedback, theirs = time_nbgrader(source, root / "submissions", students, root / "course")
    if ours != theirs:
        raise SystemExit(f"scores differ: autograde {ours} vs nbgrader {theirs}")
    peer_total = peer_grade + peer_feedback
    print(f"{args.submissions} submissions, {args.work_seconds:g} s of work each, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end; scores agree ({sorted(set(ours.values()))})")
    print(f"  nbgrader autograde, sequential          {peer_grade:6.1f} s")
    print(f"  nbgrader autograde + generate_feedback  {peer_total:6.1f} s")
    print(f"  autograde grade --workers {args.workers} (cold cache)  {cold:6.1f} s")
    print(f"  autograde grade --workers {args.workers} (warm cache)  {warm:6.1f} s")
    print(f"  speed-up vs autograde alone:    {peer_grade / cold:4.2f}x cold, {peer_grade / warm:4.2f}x warm")
    print(f"  speed-up vs autograde+feedback: {peer_total / cold:4.2f}x cold, {peer_total / warm:4.2f}x warm")
    n = args.submissions
    print(f"  per submission: nbgrader {peer_grade / n:.2f} s (sequential), "
          f"autograde grade {warm * args.workers / n:.2f} s of a worker (warm), "
          f"of which run {one_run:.2f} s and check {one_check:.2f} s "
          f"(check = {100 * one_check / max(one_run, 1e-9):.0f}% of the run)")


if __name__ == "__main__":
    main(sys.argv[1:])
