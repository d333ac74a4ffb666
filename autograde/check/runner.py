"""Run the instructor's tests against one submission's artifacts (the check phase proper).

:func:`prepare` reads the source notebook and runs its prelude (the kit's helpers, fresh);
:func:`run_tests` then, for each test cell in notebook order: seeds random, numpy and torch;
binds the names it reads to objects rebuilt from that test's snapshot; runs its whole source
(visible and hidden parts); records the points when it raises nothing. Results are a list of
``{"grade_id", "points", "max_points", "passed", "message", "notes", "lines"}``; ``lines`` are the
lines of the test cell (from 1) on the failed test's traceback, outermost first (empty when it
stopped outside the cell's own code, e.g. on an unreadable artifact), so that a page can tell a
failure in a hidden part from one in a visible part. Both run in the check server
(:mod:`autograde.check.server`), never in a process that saw student code.
"""
from __future__ import annotations

import contextlib
import io
import random
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograde import artifacts
from autograde.check import rebuild, source

MAX_MESSAGE = 500


class TestTimeout(Exception):
    """A test ran past its time limit."""


def _seed(seed: int) -> None:
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def _message(error: BaseException) -> str:
    """``Type: message``, once: a reason that already names its type (one raised again from a
    run's report, say) is not prefixed twice."""
    kind, text = type(error).__name__, str(error)
    if not text:
        return kind
    return (text if text.startswith(f"{kind}: ") else f"{kind}: {text}")[:MAX_MESSAGE]


def _failed_lines(error: BaseException, grade_id: str) -> list[int]:
    """The lines of the test cell's own code on `error`'s traceback, outermost first."""
    return [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == f"<{grade_id}>"]


def _on_alarm(signum, frame):
    raise TestTimeout("the test ran past its time limit")


@dataclass
class Prepared:
    """The source notebook's tests, the names each reads, and the namespace its prelude made."""

    cells: list[source.TestCell]
    names: dict[str, list[str]]
    namespace: dict


def prepare(source_path: str) -> Prepared:
    notebook = nbformat.read(source_path, as_version=4)
    cells = source.tests(notebook)
    prelude, bound = source.prelude(notebook)
    namespace: dict = {"__name__": "__main__"}
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        for statement in prelude:  # one that fails (no MNIST here) leaves its name unbound
            try:
                exec(compile(statement, "<prelude>", "exec"), namespace)
            except Exception:
                traceback.print_exc(file=sys.__stderr__)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    return Prepared(cells, source.names_read(cells, bound), namespace)


def run_tests(prepared: Prepared, artifacts_folder: Path, seed: int, test_timeout: int, channel=None) -> list[dict]:
    """Every test cell against the artifacts in `artifacts_folder`; `seed` is the challenge seed;
    `channel` (:class:`autograde.check.channel.Channel`, or None) carries calls into the
    student's kernel."""
    namespace = dict(prepared.namespace)
    signal.signal(signal.SIGALRM, _on_alarm)
    quiet = io.StringIO()
    results = []
    for cell in prepared.cells:
        result = {"grade_id": cell.grade_id, "points": 0.0, "max_points": cell.points, "passed": False,
                  "message": "", "notes": [], "lines": []}
        _seed(0)
        try:
            values = artifacts.read_snapshot(artifacts_folder, cell.grade_id, prepared.names[cell.grade_id])
            for name, value in values.items():
                if isinstance(value, artifacts.Missing):
                    namespace.pop(name, None)
                    continue
                namespace[name], notes = rebuild.rebuild(value, seed, channel)
                result["notes"] += [f"{name}: {note}"[:MAX_MESSAGE] for note in notes]
            signal.alarm(test_timeout)
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                exec(compile(cell.source, f"<{cell.grade_id}>", "exec"), namespace)
            result.update(points=cell.points, passed=True)
        except Exception as error:  # a failed test, an unreadable artifact, a time-out
            result["message"] = _message(error)
            result["lines"] = _failed_lines(error, cell.grade_id)
        finally:
            signal.alarm(0)
        results.append(result)
    return results
