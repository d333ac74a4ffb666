"""Gradescope's ``results.json`` for one graded submission (:func:`results_document`).

One test per graded cell, always visible with its points; a failure in a visible part shows its
assertion message, a failure in a hidden part (``### BEGIN HIDDEN TESTS``) only says so, so no
hidden test's code, message or reference value reaches a student. When the autograder itself
fails, :func:`failure_document` still gives a result: no points and a clear message.
"""
from __future__ import annotations

from autograde.check import source as check_source
from autograde.jobs import Outcome

MAX_OUTPUT = 2_000  # characters of one test's output
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_FAILED = "failed a hidden test (hidden tests do not show their message)"
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


def hidden_lines(test_source: str) -> set[int]:
    """The lines (from 1) of a test cell between its hidden-test markers, markers included."""
    hidden, inside = set(), False
    for number, line in enumerate(test_source.splitlines(), start=1):
        if HIDDEN_BEGIN in line:
            inside = True
        if inside:
            hidden.add(number)
        if HIDDEN_END in line:
            inside = False
    return hidden


def _cut(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + " [...]"


def test_output(cell: check_source.TestCell, result: dict | None, outcome: Outcome) -> str:
    """What a student reads under one test: never a hidden part's message."""
    if result is None:
        reason = outcome.notes[0] if outcome.notes else ""
        return _cut(f"not graded: {outcome.status}" + (f" ({reason})" if reason else ""))
    if result["passed"]:
        text = "passed"
    elif set(result.get("lines") or []) & hidden_lines(cell.source):
        text = HIDDEN_FAILED
    else:
        text = result["message"] or "failed"
    return _cut("\n".join([text, *result.get("notes", [])]))


def results_document(outcome: Outcome, tests: list[check_source.TestCell], seconds: float) -> dict:
    """Gradescope's results.json for one graded submission."""
    results = {result["grade_id"]: result for result in outcome.results}
    entries = [{"name": cell.grade_id, "score": float(outcome.cells.get(cell.grade_id, 0.0)),
                "max_score": cell.points,
                "status": "passed" if results.get(cell.grade_id, {}).get("passed") else "failed",
                "output": test_output(cell, results.get(cell.grade_id), outcome),
                "output_format": "text", "visibility": "visible"} for cell in tests]
    summary = f"Score: {outcome.score:g} / {outcome.max_score:g} ({outcome.status})"
    return {"score": float(outcome.score), "output": _cut("\n".join([summary, *outcome.notes])),
            "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden",
            "execution_time": round(seconds), "tests": entries}


def failure_document(tests: list[check_source.TestCell], seconds: float) -> dict:
    """results.json when the autograder itself failed: no points, a clear message."""
    message = "The autograder failed while grading this submission; your course staff can see why in its log."
    return {"score": 0.0, "output": message, "output_format": "text", "visibility": "visible",
            "stdout_visibility": "hidden", "execution_time": round(seconds),
            "tests": [{"name": cell.grade_id, "score": 0.0, "max_score": cell.points, "status": "failed",
                       "output": "not graded: autograder error", "output_format": "text", "visibility": "visible"}
                      for cell in tests]}
