"""The check phase's entry point: ``python -m autograde.check.runner JOB``, in a fresh process.

``JOB`` (JSON, written by the grader) names the instructor's source notebook, the run's
artifacts folder, the challenge seed, a time limit per test and where to write the results.
For each test cell, in notebook order: seed random, numpy and torch; bind the names it reads to
objects rebuilt from that test's snapshot; run its whole source (visible and hidden parts) in
the namespace the kit's prelude made; record points when it raises nothing. Results are a JSON
list of ``{"grade_id", "points", "max_points", "passed", "message", "notes"}``.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import sys
import traceback
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
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:MAX_MESSAGE]


def _on_alarm(signum, frame):
    raise TestTimeout("the test ran past its time limit")


def check(job: dict) -> list[dict]:
    notebook = nbformat.read(job["source"], as_version=4)
    cells = source.tests(notebook)
    prelude, bound = source.prelude(notebook)
    names = source.names_read(cells, bound)
    namespace: dict = {"__name__": "__main__"}
    signal.signal(signal.SIGALRM, _on_alarm)
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        exec(compile(prelude, "<prelude>", "exec"), namespace)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    results = []
    for cell in cells:
        result = {"grade_id": cell.grade_id, "points": 0.0, "max_points": cell.points, "passed": False,
                  "message": "", "notes": []}
        _seed(0)
        try:
            values = artifacts.read_snapshot(Path(job["artifacts"]), cell.grade_id, names[cell.grade_id])
            for name, value in values.items():
                if isinstance(value, artifacts.Missing):
                    namespace.pop(name, None)
                    continue
                namespace[name], notes = rebuild.rebuild(value, job["seed"])
                result["notes"] += [f"{name}: {note}"[:MAX_MESSAGE] for note in notes]
            signal.alarm(job["test_timeout"])
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                exec(compile(cell.source, f"<{cell.grade_id}>", "exec"), namespace)
            result.update(points=cell.points, passed=True)
        except Exception as error:  # a failed test, an unreadable artifact, a time-out
            result["message"] = _message(error)
        finally:
            signal.alarm(0)
        results.append(result)
    return results


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    os.environ.update(job.get("environment", {}))
    try:
        results = check(job)
    except Exception:
        traceback.print_exc()
        raise SystemExit(1)
    Path(job["results"]).write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
