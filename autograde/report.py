"""What the instructor gets: ``grades.csv``, ``feedback/<student>.html``, ``logs/<student>.log``.

The CSV holds only what grading decides (no times, no paths), so grading the same folder twice
writes the same file. Its text cells are neutralised against formula injection and long ids
get shortened file names (both in :mod:`autograde.ledger`, which writes these files as each
submission finishes).
"""
from __future__ import annotations

from pathlib import Path

from autograde.jobs import Outcome
from autograde.ledger import FIXED_COLUMNS, table_bytes, write_atomic

__all__ = ["FIXED_COLUMNS", "write_csv", "summary_table", "shown"]

SHOWN_ID = 40  # characters of a student id the summary table shows


def write_csv(outcomes: list[Outcome], grade_ids: list[str], path: Path) -> None:
    """One row per submission: fixed columns, one column per graded cell, then notes."""
    write_atomic(path, table_bytes(outcomes, grade_ids))


def shown(text: str, limit: int | None = None) -> str:
    """`text` as a terminal can print it (undecodable bytes of a file name replaced), cut to `limit`."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if limit is None or len(text) <= limit else text[:limit - 3] + "..."


def summary_table(outcomes: list[Outcome]) -> str:
    """A plain-text table: student, score, status, notes (cut to fit a terminal)."""
    rows = [("student", "score", "status", "seconds", "notes")]
    for outcome in outcomes:
        rows.append((shown(outcome.student_id, SHOWN_ID), f"{outcome.score:g}/{outcome.max_score:g}",
                     outcome.status, f"{outcome.seconds:.1f}", shown("; ".join(outcome.notes), 73)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
