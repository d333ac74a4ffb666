"""Running the kit's notebooks headless, shared by the notebook tests and the browser tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "lab3.ipynb"
ASSETS = ROOT / "assets"
CELL_TIMEOUT_SECONDS = 600


def execute(path: Path) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` headless (cwd: its folder), going on after errors."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_SECONDS, allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def execute_reference(folder: Path) -> nbformat.NotebookNode:
    """The reference notebook, executed in `folder` holding only it and ``assets/``."""
    shutil.copy(NOTEBOOK, folder / "lab3.ipynb")
    shutil.copytree(ASSETS, folder / "assets")
    return execute(folder / "lab3.ipynb")
