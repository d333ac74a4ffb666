"""The kernel that runs the instructor's reference notebook: this venv's Python running ipykernel.

:func:`write_kernelspec` writes a ``python3`` kernelspec into a private Jupyter data directory;
put that directory first on ``JUPYTER_PATH`` and the notebook gets this kernel, whatever
kernelspecs the user has installed. (Student notebooks run elsewhere: :mod:`autograde.run`.)
"""
from __future__ import annotations

import json
from pathlib import Path

from autograde import python_module

KERNEL_NAME = "python3"


def write_kernelspec(jupyter_path: Path) -> Path:
    """Write the ``python3`` kernel's spec under `jupyter_path`/kernels/python3; return its folder."""
    folder = jupyter_path / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    package_root = str(Path(__file__).resolve().parents[1])
    spec = {
        # the kernel's working directory is not put on sys.path first (python_module)
        "argv": python_module("ipykernel_launcher") + ["-f", "{connection_file}"],
        "display_name": "Python 3 (autograde reference)",
        "language": "python",
        "env": {"PYTHONPATH": package_root},
        "metadata": {"debugger": False},
    }
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return folder
