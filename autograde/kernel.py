"""The grading kernel: this venv's Python running ipykernel, confined before any student code runs.

:func:`write_kernelspec` writes a ``python3`` kernelspec into a private Jupyter data directory;
put that directory first on ``JUPYTER_PATH`` and every notebook asking for ``python3`` gets this
kernel, whatever kernelspecs the user has installed. The kernel reads its confinement from
the environment the grading worker sets (see :mod:`autograde.run.confine`):

* ``AUTOGRADE_WRITABLE``: directories it may write beneath, joined with ``os.pathsep``;
* ``AUTOGRADE_MEMORY_BYTES``, ``AUTOGRADE_FILE_BYTES``, ``AUTOGRADE_CPU_SECONDS``: its limits.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from autograde.run import confine as sandbox

KERNEL_NAME = "python3"
CONFINEMENT_VARIABLES = ("AUTOGRADE_WRITABLE", "AUTOGRADE_MEMORY_BYTES", "AUTOGRADE_FILE_BYTES",
                         "AUTOGRADE_CPU_SECONDS")


def write_kernelspec(jupyter_path: Path) -> Path:
    """Write the grading kernel's spec under `jupyter_path`/kernels/python3; return its folder."""
    folder = jupyter_path / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    package_root = str(Path(__file__).resolve().parents[1])
    spec = {
        # -P: the kernel's working directory (the student's folder) is not put on sys.path first.
        "argv": [sys.executable, "-P", "-m", "autograde.kernel", "-f", "{connection_file}"],
        "display_name": "Python 3 (autograde sandbox)",
        "language": "python",
        "env": {"PYTHONPATH": package_root},
        "metadata": {"debugger": False},
    }
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return folder


def main() -> None:
    """Confine this process as the environment says, then become an IPython kernel."""
    settings = {name: os.environ.pop(name, "") for name in CONFINEMENT_VARIABLES}
    if settings["AUTOGRADE_WRITABLE"]:
        problems = sandbox.confine(
            writable=[Path(p) for p in settings["AUTOGRADE_WRITABLE"].split(os.pathsep)],
            memory_bytes=int(settings["AUTOGRADE_MEMORY_BYTES"]),
            file_bytes=int(settings["AUTOGRADE_FILE_BYTES"]),
            cpu_seconds=int(settings["AUTOGRADE_CPU_SECONDS"]),
        )
        for problem in problems:  # the kernel's own stderr goes to the grading log, not to a cell
            print(f"[autograde kernel] not enforced: {problem}", file=sys.stderr)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
