"""Time one headless execution of the reference notebook (`python -m bench notebook`).

The notebook runs as nbgrader and the tests run it: nbclient, kernel ``python3``, in a
temporary folder holding only ``lab3.ipynb`` and ``assets/``. The peer is the budget the kit
promises: the whole notebook in 60 s on a 2-core machine. Prints the total against that
budget and the slowest cells.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 60.0
SLOWEST = 8


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """How long ``cell`` ran, from the timing nbclient records in its metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end.rstrip("Z")) - datetime.fromisoformat(start.rstrip("Z"))
            ).total_seconds()


def run_once() -> tuple[float, nbformat.NotebookNode]:
    """Execute the reference notebook once; return (wall seconds, executed notebook)."""
    with tempfile.TemporaryDirectory() as work:
        shutil.copy(ROOT / "lab3.ipynb", Path(work) / "lab3.ipynb")
        shutil.copytree(ROOT / "assets", Path(work) / "assets")
        nb = nbformat.read(Path(work) / "lab3.ipynb", as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, kernel_name="python3", timeout=600,
                       resources={"metadata": {"path": work}}).execute()
        return time.perf_counter() - start, nb


def main() -> None:
    seconds, nb = run_once()
    print(f"{'reference notebook, headless':<34}{seconds:8.1f} s")
    print(f"{'budget':<34}{BUDGET_SECONDS:8.1f} s")
    print(f"{'ratio (run / budget)':<34}{seconds / BUDGET_SECONDS:8.2f}")
    cells = sorted((c for c in nb.cells if c.cell_type == "code"), key=cell_seconds, reverse=True)
    print(f"slowest cells (of {len(cells)} code cells):")
    for cell in cells[:SLOWEST]:
        print(f"  {cell.id:<28}{cell_seconds(cell):8.2f} s")


if __name__ == "__main__":
    main()
