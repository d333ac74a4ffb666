"""Run the instructor's source notebook headless, to check it before students get it.

The notebook runs in a scratch folder holding only itself and its support files, on this venv's
Python (the ``python3`` kernelspec from :mod:`autograde.kernel`, without confinement). A cell
that raises, or that writes to stderr (nbgrader would give such a test cell zero), fails the check.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from autograde.course import copy_support_files, prepended_to
from autograde.kernel import KERNEL_NAME, write_kernelspec


@dataclass(frozen=True)
class ReferenceRun:
    """How the reference notebook ran: seconds taken and the problems found (empty when fine)."""

    seconds: float
    problems: list[str]


def _stderr_cells(notebook: nbformat.NotebookNode) -> list[str]:
    problems = []
    for number, cell in enumerate(notebook.cells, start=1):
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                first = output.text.strip().splitlines()[0] if output.text.strip() else ""
                problems.append(f"cell {number} wrote to stderr: {first[:120]}")
                break
    return problems


def run_reference(source: Path, kernel_log: Path, timeout: int = 600) -> ReferenceRun:
    """Execute `source` top to bottom in a scratch folder; `timeout` is per cell, in seconds.

    What the kernel process itself prints (start-up messages, a crash) goes to `kernel_log`.
    """
    notebook = nbformat.read(source, as_version=4)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autograde-reference-") as scratch:
        folder = Path(scratch) / "notebook"
        folder.mkdir()
        shutil.copyfile(source, folder / source.name)
        copy_support_files(source, folder)
        jupyter_path = write_kernelspec(Path(scratch) / "jupyter").parents[1]
        os.environ.setdefault("MPLBACKEND", "Agg")
        client = NotebookClient(notebook, timeout=timeout, kernel_name=KERNEL_NAME,
                                resources={"metadata": {"path": str(folder)}})
        kernel_log.parent.mkdir(parents=True, exist_ok=True)
        try:
            with prepended_to("JUPYTER_PATH", jupyter_path), \
                    open(kernel_log, "w", encoding="utf-8") as log:
                client.execute(stdout=log, stderr=log)
            problems = _stderr_cells(notebook)
        except CellExecutionError as error:
            problems = [f"a cell raised: {str(error).strip().splitlines()[-1][:300]}"]
        except DeadKernelError:
            problems = [f"the kernel died (see {kernel_log})"]
    return ReferenceRun(time.monotonic() - started, problems)
