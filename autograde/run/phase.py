"""Prepare a submission's box and run it in the sandbox (the grader's side of the run phase).

What comes out of :func:`execute` is a folder: ``artifacts/`` (JSON and ``.npz`` written by the
exporter), ``run/executed.ipynb`` and ``run/journal.json`` (written by the runner). The grader
reads them as untrusted data (:mod:`autograde.artifacts`, :mod:`autograde.feedback`).

Box layout (``BOX`` is ``/submission`` inside bubblewrap, the box's own path without it)::

    job.json      what the runner does, written by the grader
    work/         the kernel's folder: the notebook, assets/, home/ (writable by the kernel)
    artifacts/    the exporter's files (writable by the kernel)
    run/          the executed notebook and the journal (not writable by the kernel)

With a run user (:class:`~autograde.run.sandbox.RunAs`), the box stays root's (``job.json`` too)
and its four folders become that user's; every process of that user is killed when the run ends.
Whoever runs it, what the grader reads afterwards (``artifacts/``, ``run/``) holds only regular
files: links, FIFOs and the like are removed first (a link planted there would make the grader
read a file of its choosing).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Protocol

import nbformat
from nbformat import NotebookNode

import labseed
from autograde import python_module
from autograde.run import sandbox, wire
from autograde.run.notebook import run_notebook
from autograde.run.sandbox import Limits, RunAs, RunReport

NOTEBOOK = "notebook.ipynb"
RUN_FOLDERS = ("work", "artifacts", "run", "tmp")  # the folders a run user owns
READ_BACK = ("artifacts", "run")  # the folders the grader reads after the run


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


def reachable_by(path: Path, run_as: RunAs) -> None:
    """Raise PermissionError unless `run_as` may pass through every folder above `path`."""
    for folder in path.parents:
        info = folder.stat()
        if not (info.st_mode & stat.S_IXOTH or (info.st_uid == run_as.uid and info.st_mode & stat.S_IXUSR)
                or (info.st_gid == run_as.gid and info.st_mode & stat.S_IXGRP)):
            raise PermissionError(f"the run user {run_as.name} cannot reach {path}: {folder} is closed to it "
                                  f"(mode {stat.filemode(info.st_mode)}); grade from a folder it can pass through")


def hand_over(box: Path, run_as: RunAs) -> None:
    """Give the box's four folders (and everything in them) to `run_as`; the box itself and
    ``job.json`` stay root's, readable."""
    reachable_by(box, run_as)
    os.chmod(box, 0o755)
    for folder in RUN_FOLDERS:
        for directory, subfolders, files in os.walk(box / folder):
            for entry in [directory, *(os.path.join(directory, f) for f in subfolders + files)]:
                os.lchown(entry, run_as.uid, run_as.gid)
        os.chmod(box / folder, 0o700)


def disarm(folder: Path) -> int:
    """Remove everything under `folder` that is not a plain folder or a regular file with one
    link (never following a link); returns how many were removed."""
    removed = 0
    for directory, subfolders, files in os.walk(folder):
        for name in subfolders + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode) or (stat.S_ISREG(info.st_mode) and info.st_nlink == 1):
                continue
            os.unlink(path)
            removed += 1
            if name in subfolders:
                subfolders.remove(name)
    return removed


_chosen: dict[tuple, sandbox.Mode] = {}  # (run user, MNIST folder, AUTOGRADE_* choice) -> the mode found to work


def _mode_key(run_as: RunAs | None, data_dir: Path | None) -> tuple:
    return (run_as, str(data_dir), os.environ.get(sandbox.SANDBOX_VARIABLE), os.environ.get(sandbox.BWRAP_VARIABLE))


def _try_mode(mode: sandbox.Mode, folder: Path, limits: Limits, data_dir: Path | None, run_as: RunAs | None,
              modules: str) -> str | None:
    """Start Python in `mode` (as `run_as`) and import `modules`; None when that worked, else
    what it said. `folder` is scratch space (removed after)."""
    for name in RUN_FOLDERS:
        (folder / name).mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-I", "-c", f"import {modules}"]
    env = dict(os.environ)
    if mode.sandboxed:
        environment = _environment(sandbox.BOX, "/tmp", limits, sandbox.DATA if data_dir else None)
        command = sandbox.bwrap_command(mode, folder, data_dir, limits.shm_bytes, environment, command)
        env = {"PATH": "/usr/bin:/bin"}
    try:
        if run_as is not None:
            hand_over(folder, run_as)
        done = subprocess.run(sandbox.as_user(command, run_as), cwd=folder, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=300)
    except subprocess.TimeoutExpired:
        return "Python did not start within 300 s"
    except OSError as error:  # a bwrap program that cannot be started at all
        return str(error)
    finally:
        if run_as is not None:
            from autograde.run import processes

            processes.kill_user(run_as.uid)
        shutil.rmtree(folder, ignore_errors=True)
    if done.returncode == 0:
        return None
    return " / ".join((done.stdout + done.stderr).strip().splitlines()[-3:]) or f"exit status {done.returncode}"


def preflight(folder: Path, limits: Limits, data_dir: Path | None, run_as: RunAs | None = None,
              modules: str = "autograde.run.runner") -> sandbox.Mode:
    """Choose the sandbox mode by trying: start Python the way a run does in each mode
    (:func:`autograde.run.sandbox.candidate_modes`, best first), as `run_as`, and import
    `modules`; the first mode where that works is the one every run of this process uses
    (:func:`execute`), and is returned. Raise RuntimeError, with what each mode printed, when
    none works.

    A Python or venv the run user cannot read (one under /root), or one the sandbox does not
    bind (an interpreter reached through a link into /tmp), or a container where bubblewrap
    cannot mount /proc, would otherwise give every submission of a batch zero points for the
    grader's own set-up. `folder` is scratch space (removed after)."""
    try:
        modes = sandbox.candidate_modes()
    except ValueError as error:  # a misspelt AUTOGRADE_SANDBOX
        raise RuntimeError(str(error)) from None
    failures = []
    for mode in modes:
        said = _try_mode(mode, folder, limits, data_dir, run_as, modules)
        if said is None:
            if failures:  # a better mode failed: the chosen one says why it is not that one
                mode = dataclasses.replace(mode, reason=mode.reason or f"bubblewrap failed: {failures[0][1][:200]}")
            _chosen[_mode_key(run_as, data_dir)] = mode
            return mode
        failures.append((mode, said))
    who = f" as {run_as.name}" if run_as else ""
    tried = "; ".join(f"{_DESCRIBED[mode.name]}: {said}" for mode, said in failures) or "no mode allowed"
    raise RuntimeError(f"the run phase cannot start Python ({sys.executable}){who} in any sandbox mode "
                       f"({sandbox.SANDBOX_VARIABLE}={sandbox.sandbox_choice()}): {tried}. "
                       "Install Python and the kit where every user can read them (the system's python3 "
                       "and a venv outside /root, for instance), then grade again")


_DESCRIBED = {"bwrap": "in bubblewrap", "bwrap-hostproc": "in bubblewrap with the host's /proc",
              "none": "without bubblewrap"}


def chosen_mode(scratch: Path, limits: Limits, data_dir: Path | None, run_as: RunAs | None) -> sandbox.Mode:
    """The mode :func:`preflight` chose for `run_as` and `data_dir`; chosen now (in `scratch`) if
    it has not run in this process."""
    mode = _chosen.get(_mode_key(run_as, data_dir))
    return mode if mode is not None else preflight(scratch, limits, data_dir, run_as)


class RunSettings(Protocol):
    """What :func:`execute` reads of a submission's job (:class:`autograde.jobs.Job` is one)."""

    released: NotebookNode  # the released notebook: its provided cells and tests
    names: dict[str, list[str]]  # test id -> the names the exporter snapshots for it
    seed: int  # the challenge seed
    limits: Limits
    assets: list[Path]
    data_dir: Path | None
    matplotlib_config: Path | None
    name: str  # names this run's cgroup
    run_as: RunAs | None


CHANNEL = "/channel"  # where the channel's folder appears inside the sandbox
CHANNEL_SOCKET = "socket"


@contextlib.contextmanager
def channel_listener(run_as: RunAs | None) -> Iterator[socket.socket]:
    """A Unix socket listening in a fresh folder of its own (a short path: socket paths are
    limited to about 100 bytes), which only `run_as` (or this user) may connect to; the folder is
    bound read-only into the sandbox, so nothing in the box can replace the socket."""
    folder = Path(tempfile.mkdtemp(prefix="autograde-call-"))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(folder / CHANNEL_SOCKET))
        listener.listen(1)
        os.chmod(folder, 0o711)
        os.chmod(folder / CHANNEL_SOCKET, 0o600)
        if run_as is not None:
            os.chown(folder / CHANNEL_SOCKET, run_as.uid, run_as.gid)
        yield listener
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


def _accept(listener: socket.socket, process: subprocess.Popen, deadline: float) -> socket.socket | None:
    """The runner's connection once it says it is ready; None when it ends (or the time is up)
    without doing so. Wakes on either event (a pidfd where the system has them, else a short poll)."""
    try:
        ended = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd (macOS, old Linux): poll
        ended = None
    try:
        while time.monotonic() < deadline and process.poll() is None:
            waiting = [listener] + ([ended] if ended is not None else [])
            ready, _, _ = select.select(waiting, [], [], min(0.05 if ended is None else 5.0,
                                                             max(0.0, deadline - time.monotonic())))
            if listener not in ready:
                continue
            connection, _ = listener.accept()
            try:
                meta, _, _ = wire.receive(connection, 0, time.monotonic() + 10)
                if meta.get("ready") is True:
                    return connection
            except wire.WireError:
                pass
            connection.close()
        return None
    finally:
        if ended is not None:
            os.close(ended)


def execute(box: Path, submitted: NotebookNode, settings: RunSettings, log: Path,
            during: Callable[[socket.socket], None] | None = None) -> RunReport:
    """Run `submitted` (tests replaced by exporters) in a sandbox rooted at the empty folder `box`.

    The sandbox mode is the one :func:`preflight` chose (tried now if it has not run); the
    first of the returned notes names it. The box is under the run's disk quota and file limit
    (:class:`~autograde.run.sandbox.Quota`); the caller removes it (:func:`remove_box`) once
    graded. `log` gets what the runner and the kernel print. Every process of the run executes as
    ``settings.run_as`` when given, and none of its processes is left when this returns.

    With `during`, the run offers calls (:mod:`autograde.run.serve`): when the notebook has
    finished and its exports kept objects for calls, `during` is called with the connected
    channel while the kernel is still alive, and the run ends when it returns.
    """
    limits, run_as, data_dir = settings.limits, settings.run_as, settings.data_dir
    mode = chosen_mode(box.parent / f"{box.name}-preflight", limits, data_dir, run_as)
    binary = mode.binary
    root = sandbox.BOX if binary else str(box)
    tmp = "/tmp" if binary else str(box / "tmp")
    quota = sandbox.Quota.make(box, limits.disk_bytes, limits.max_files)
    prepare_box(box, run_notebook(submitted, settings.released, settings.names, f"{root}/artifacts", settings.seed),
                settings.assets, settings.matplotlib_config)
    if run_as is not None:
        hand_over(box, run_as)
    cgroup = sandbox.Cgroup.create(settings.name, limits.memory_bytes, limits.max_processes)
    notes = [mode.note]
    if cgroup is None:
        notes.append("memory: RLIMIT_DATA only (no writable cgroup memory controller); shared mappings escape it")
    writable = [f"{root}/work", f"{root}/artifacts", tmp] + (["/dev/shm"] if binary else [])
    call_seconds = limits.call_budget_seconds if during else 0
    job = {"notebook": f"work/{NOTEBOOK}", "cwd": "work", "executed": "run/executed.ipynb",
           "journal": "run/journal.json", "cell_timeout": limits.cell_timeout,
           "budget_seconds": limits.budget_seconds, "max_output_bytes": limits.max_output_bytes,
           "kernel": {"writable": writable, "memory_bytes": None if cgroup else limits.memory_bytes,
                      "file_bytes": limits.file_bytes, "cpu_seconds": limits.budget_seconds + call_seconds + 60,
                      "seed": labseed.SEED, "threads": limits.threads}}
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(channel_listener(run_as)) if during else None
        channel_folder = Path(listener.getsockname()).parent if listener else None
        if listener is not None:
            job["calls"] = {"channel": f"{CHANNEL}/{CHANNEL_SOCKET}" if binary else listener.getsockname(),
                            "artifacts": "artifacts", "budget_seconds": limits.call_budget_seconds,
                            "max_answer_bytes": limits.call_answer_bytes, "seed": settings.seed}
        (box / "job.json").write_text(json.dumps(job), encoding="utf-8")
        os.chmod(box / "job.json", 0o644)
        environment = _environment(root, tmp, limits, sandbox.DATA if binary and data_dir else
                                   (str(data_dir) if data_dir else None))
        runner = python_module("autograde.run.runner") + [root]

        def rendezvous(process: subprocess.Popen) -> None:
            ends = time.monotonic() + limits.budget_seconds + sandbox.KILL_GRACE_SECONDS
            connection = _accept(listener, process, ends)
            if connection is not None:
                with connection:
                    during(connection)

        box_run = sandbox.BoxRun(log, limits, cgroup, box, quota=quota, extra_seconds=call_seconds,
                                 rendezvous=rendezvous if listener else None)
        from autograde.run import processes

        if binary:
            binds = [(str(channel_folder), CHANNEL)] if channel_folder else []
            command = sandbox.bwrap_command(mode, box, data_dir, limits.shm_bytes, environment, runner, binds)
            seconds, killed = box_run.run(sandbox.as_user(command, run_as), {"PATH": "/usr/bin:/bin"})
        else:
            token = processes.new_token()
            seconds, killed = box_run.run(sandbox.as_user(runner, run_as),
                                          {**environment, processes.TOKEN_VARIABLE: token},
                                          sweep=lambda: processes.kill_marked(token))
    if run_as is not None:
        swept, alive = processes.kill_user(run_as.uid)
        with open(log, "a", encoding="utf-8") as output:
            output.write(f"[autograde] run as {run_as.name} ({run_as.uid}:{run_as.gid}), "
                         f"{_DESCRIBED[mode.name]}; {swept} leftover processes killed\n")
        if alive:
            raise RuntimeError(f"processes of the run user {run_as.name} outlived the run: {alive}")
    for folder in READ_BACK:
        disarm(box / folder)
    if cgroup is not None and cgroup.hit_memory_limit:
        notes.append(f"memory limit ({limits.memory_bytes // sandbox.MiB} MiB) reached")
    if quota.reached:
        notes.append(quota.reached + (" (the run was stopped)" if not quota.mounted else ""))
    with open(log, "a", encoding="utf-8") as output:
        output.write(f"[autograde] {mode.note}; disk quota by {quota.mode}"
                     + (f"; cgroup v{cgroup.version}" if cgroup else "; no cgroup") + "\n")
    return RunReport(seconds, killed, bool(binary), notes, disk_limit_reached=bool(quota.reached))


def remove_box(box: Path) -> None:
    """Remove a run's box once its submission is graded: its tmpfs unmounted (if it has one), its
    files deleted."""
    if os.path.ismount(box):
        sandbox.Quota(box, 0, 0, mounted=True).release()
    else:
        shutil.rmtree(box, ignore_errors=True)
