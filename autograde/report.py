"""What the instructor gets: ``grades.csv``, ``feedback/<student>.html``, ``logs/<student>.log``.

The CSV holds only what grading decides (no times, no paths), so grading the same folder twice
writes the same file. ``feedback/`` and ``logs/`` are replaced on each run: they always match
the CSV beside them.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

from autograde.jobs import Outcome

FIXED_COLUMNS = ["student_id", "score", "max_score", "status"]


def _number(value: float) -> str:
    return f"{value:g}"


def write_csv(outcomes: list[Outcome], grade_ids: list[str], path: Path) -> None:
    """One row per submission: fixed columns, one column per graded cell, then notes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FIXED_COLUMNS + grade_ids + ["notes"])
        for outcome in outcomes:
            writer.writerow([outcome.student_id, _number(outcome.score), _number(outcome.max_score),
                             outcome.status]
                            + [_number(outcome.cells.get(grade_id, 0.0)) for grade_id in grade_ids]
                            + ["; ".join(outcome.notes)])


def publish_files(outcomes: list[Outcome], out: Path) -> None:
    """Copy each submission's feedback and log into `out`/feedback and `out`/logs."""
    for folder in ("feedback", "logs"):
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / folder).mkdir(parents=True)
    for outcome in outcomes:
        if outcome.feedback is not None and outcome.feedback.is_file():
            shutil.copyfile(outcome.feedback, out / "feedback" / f"{outcome.student_id}.html")
        if outcome.log is not None and outcome.log.is_file():
            shutil.copyfile(outcome.log, out / "logs" / f"{outcome.student_id}.log")


def summary_table(outcomes: list[Outcome]) -> str:
    """A plain-text table: student, score, status, notes (cut to fit a terminal)."""
    rows = [("student", "score", "status", "seconds", "notes")]
    for outcome in outcomes:
        notes = "; ".join(outcome.notes)
        rows.append((outcome.student_id, f"{_number(outcome.score)}/{_number(outcome.max_score)}",
                     outcome.status, f"{outcome.seconds:.1f}", notes[:70] + ("..." if len(notes) > 70 else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
