"""The run phase's entry point: ``python -m autograde.run.runner BOX``, inside the sandbox.

``BOX/job.json`` (written by the grader) says what to run and under which limits; paths in it
are relative to ``BOX``. The runner writes a kernelspec for :mod:`autograde.run.kernel` into its
private temporary folder, executes the notebook with :class:`GuardedClient`, and writes the
executed notebook and the journal of events. The student's kernel cannot write where these go
(see the ``writable`` folders it is given). Nothing else leaves the sandbox but what the
exporter cells wrote (see :mod:`autograde.run.export`).
"""
from __future__ import annotations

import atexit
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

# jsonschema (under nbformat) imports its optional IRI format checker, rfc3987_syntax, which
# builds a grammar for 0.7 s; notebooks have no IRI fields. Every submission pays this import
# in its own sandbox, so it is skipped here (jsonschema treats the checker as absent).
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402

from autograde import python_module  # noqa: E402
from autograde.run.execute import GuardedClient  # noqa: E402
from autograde.run.kernel import CONFINE_VARIABLE  # noqa: E402
from autograde.run.serve import ServingClient, is_serve_cell, serve_cell  # noqa: E402

KERNEL_NAME = "autograde-run"


def write_kernelspec(folder: Path, confinement: dict) -> None:
    """A kernelspec named KERNEL_NAME under `folder`/kernels, starting :mod:`autograde.run.kernel`."""
    spec_folder = folder / "kernels" / KERNEL_NAME
    spec_folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": python_module("autograde.run.kernel") + ["-f", "{connection_file}"],
            "display_name": "Python 3 (autograde run)", "language": "python",
            "env": {CONFINE_VARIABLE: json.dumps(confinement)}, "metadata": {"debugger": False}}
    (spec_folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")


KERNEL_STARTS = 3  # tries to start the kernel before the run is given up as an error


def execute(make_client: Callable[[], GuardedClient], deadline: float, starts: int = KERNEL_STARTS) -> list[dict]:
    """Execute the notebook of the clients `make_client` returns; the journal's events.

    A kernel that dies or stays silent before its first cell is started again, with new ports,
    up to `starts` times while the run has time left: out of the sandbox's own network
    namespace (``AUTOGRADE_SANDBOX=none``), two kernels starting at once can pick the same
    free port, and the one that binds it second exits. Each failed start is a
    ``kernel_start_failed`` event; once the kernel has started, a failure ends the run."""
    events: list[dict] = []
    for attempt in range(1, starts + 1):
        client = make_client()
        try:
            client.execute()
        except Exception:  # the kernel would not start, or nbclient failed: say so, keep what ran
            message = traceback.format_exc().strip().splitlines()[-1][:500]
            if client.kernel_started:
                events += [*client.events, {"event": "error", "cell": -1, "message": message}]
                return events
            atexit.unregister(client._cleanup_kernel)  # nbclient leaves it registered when the start fails
            events.append({"event": "kernel_start_failed", "cell": -1, "attempt": attempt, "message": message})
            if attempt == starts or time.monotonic() >= deadline:
                events.append({"event": "error", "cell": -1, "message": f"the kernel did not start: {message}"})
                return events
        else:
            return events + client.events
    return events


def run(box: Path) -> None:
    started = time.monotonic()
    job = json.loads((box / "job.json").read_text(encoding="utf-8"))
    notebook = nbformat.read(box / job["notebook"], as_version=4)
    jupyter = Path(tempfile.mkdtemp(prefix="jupyter-"))
    write_kernelspec(jupyter, job["kernel"])
    os.environ.update({"JUPYTER_PATH": str(jupyter), "JUPYTER_DATA_DIR": str(jupyter / "data"),
                       "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"), "JUPYTER_CONFIG_DIR": str(jupyter / "config")})
    deadline = started + job["budget_seconds"]
    calls = job.get("calls")
    if calls:
        notebook.cells.append(serve_cell())

    def make_client() -> GuardedClient:
        settings = dict(kernel_name=KERNEL_NAME, cell_timeout=job["cell_timeout"], deadline=deadline,
                        max_output_bytes=job["max_output_bytes"], startup_timeout=120, shutdown_kernel="immediate",
                        resources={"metadata": {"path": str(box / job["cwd"])}})
        if not calls:
            return GuardedClient(notebook, **settings)
        return ServingClient(notebook, channel=calls["channel"], artifacts=str(box / calls["artifacts"]),
                             scratch=tempfile.gettempdir(), call_budget=calls["budget_seconds"],
                             max_answer_bytes=calls["max_answer_bytes"], seed=calls["seed"], **settings)

    events = execute(make_client, deadline)
    events.append({"event": "finished", "cell": -1, "seconds": round(time.monotonic() - started, 1)})
    notebook.cells = [cell for cell in notebook.cells if not is_serve_cell(cell)]
    nbformat.write(notebook, box / job["executed"])
    (box / job["journal"]).write_text(json.dumps(events), encoding="utf-8")


if __name__ == "__main__":
    run(Path(sys.argv[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # everything is written; skip waiting on zmq's teardown (about a second)
