"""Prepare a submission's box and run it in the sandbox (the grader's side of the run phase).

What comes out of :func:`execute` is a folder: ``artifacts/`` (JSON and ``.npz`` written by the
exporter), ``run/executed.ipynb`` and ``run/journal.json`` (written by the runner). The grader
reads them as untrusted data (:mod:`autograde.artifacts`, :mod:`autograde.feedback`).

Box layout (``BOX`` is ``/submission`` inside bubblewrap, the box's own path without it)::

    job.json      what the runner does, written by the grader
    work/         the kernel's folder: the notebook, assets/, home/ (writable by the kernel)
    artifacts/    the exporter's files (writable by the kernel)
    run/          the executed notebook and the journal (not writable by the kernel)
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograde import python_module
from autograde.run import sandbox
from autograde.run.notebook import run_notebook
from autograde.run.sandbox import Limits, RunReport

NOTEBOOK = "notebook.ipynb"


def _environment(root: str, tmp: str, limits: Limits, data_dir: str | None) -> dict[str, str]:
    home = f"{root}/work/home"
    threads = str(limits.threads)
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8", "HOME": home, "TMPDIR": tmp, "IPYTHONDIR": f"{home}/.ipython",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.config/matplotlib",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
        **({"LAB3_DATA_DIR": data_dir} if data_dir else {}),
    }


def prepare_box(box: Path, notebook: NotebookNode, assets: list[Path], matplotlib_config: Path | None) -> None:
    """Lay out the box: the notebook and its support folders in work/, a home, empty outputs."""
    for folder in ("work/home/.config/matplotlib", "artifacts", "run", "tmp"):
        (box / folder).mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, box / "work" / NOTEBOOK)
    for folder in assets:
        shutil.copytree(folder, box / "work" / folder.name, dirs_exist_ok=True)
    for font_cache in (matplotlib_config.glob("fontlist-*.json") if matplotlib_config else []):
        shutil.copyfile(font_cache, box / "work/home/.config/matplotlib" / font_cache.name)


def execute(box: Path, submitted: NotebookNode, released: NotebookNode, names: dict[str, list[str]], seed: int,
            limits: Limits, assets: list[Path], data_dir: Path | None, matplotlib_config: Path | None,
            name: str, log: Path) -> RunReport:
    """Run `submitted` (tests replaced by exporters) in a sandbox rooted at the empty folder `box`.

    `name` names this run's cgroup; `log` gets what the runner and the kernel print.
    """
    binary = sandbox.bwrap_binary()
    root = sandbox.BOX if binary else str(box)
    tmp = "/tmp" if binary else str(box / "tmp")
    prepare_box(box, run_notebook(submitted, released, names, f"{root}/artifacts", seed), assets, matplotlib_config)
    cgroup = sandbox.Cgroup.create(name, limits.memory_bytes, limits.max_processes)
    notes = [] if binary else ["not sandboxed: bubblewrap cannot run here (Landlock and rlimits only)"]
    if cgroup is None:
        notes.append("memory: RLIMIT_DATA only (no writable cgroup v1 memory controller); shared mappings escape it")
    writable = [f"{root}/work", f"{root}/artifacts", tmp] + (["/dev/shm"] if binary else [])
    job = {"notebook": f"work/{NOTEBOOK}", "cwd": "work", "executed": "run/executed.ipynb",
           "journal": "run/journal.json", "cell_timeout": limits.cell_timeout,
           "budget_seconds": limits.budget_seconds, "max_output_bytes": limits.max_output_bytes,
           "kernel": {"writable": writable, "memory_bytes": None if cgroup else limits.memory_bytes,
                      "file_bytes": limits.file_bytes, "cpu_seconds": limits.budget_seconds + 60}}
    (box / "job.json").write_text(json.dumps(job), encoding="utf-8")
    environment = _environment(root, tmp, limits, sandbox.DATA if binary and data_dir else
                               (str(data_dir) if data_dir else None))
    runner = python_module("autograde.run.runner") + [root]
    if binary:
        command = sandbox.bwrap_command(binary, box, data_dir, limits.shm_bytes, environment, runner)
        seconds, killed = sandbox.run_in_box(command, log, limits, cgroup, {"PATH": "/usr/bin:/bin"}, box)
    else:
        from autograde.run import processes

        token = processes.new_token()
        seconds, killed = sandbox.run_in_box(runner, log, limits, cgroup,
                                             {**environment, processes.TOKEN_VARIABLE: token}, box,
                                             sweep=lambda: processes.kill_marked(token))
    if cgroup is not None and cgroup.hit_memory_limit:
        notes.append(f"memory limit ({limits.memory_bytes // sandbox.MiB} MiB) reached")
    return RunReport(seconds, killed, bool(binary), notes)
