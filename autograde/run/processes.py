"""Find and stop every process one submission started, where bubblewrap cannot run.

(In the sandbox the PID namespace does this: when the runner ends, every process of the run
ends with it.) Each run puts a random token in its environment; the kernel and anything it starts
inherit it. :func:`kill_marked` kills every process whose environment carries the token
(psutil reads the environments, on Linux from ``/proc``, on macOS through the kernel). A process
that replaces its own environment (``execve`` with a clean one) escapes this sweep; its
``RLIMIT_CPU`` (see :mod:`autograde.run.confine`) still ends it once it has used its CPU budget,
and, when the run phase has a user of its own, :func:`kill_user` finds it by its user id.
"""
from __future__ import annotations

import os
import secrets
import signal
import time

import psutil

TOKEN_VARIABLE = "AUTOGRADE_TOKEN"


def new_token() -> str:
    """A fresh random token to mark one submission's processes."""
    return secrets.token_hex(16)


def marked_processes(token: str) -> list[int]:
    """Ids of the live processes whose environment carries `token` (where psutil can read other
    processes' environments: Linux, macOS for one's own processes; a process it may not read is
    skipped)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(TOKEN_VARIABLE) == token:
                found.append(process.pid)
        except (psutil.Error, OSError):  # gone, not ours, or a zombie
            continue
    return found


def _sigkill(pids: list[int]) -> int:
    """SIGKILL each of `pids`; returns how many were signalled (one gone meanwhile, or not ours,
    is skipped)."""
    signalled = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            signalled += 1
        except (ProcessLookupError, PermissionError):
            pass
    return signalled


def kill_marked(token: str, spare: int | None = None, rounds: int = 5) -> int:
    """SIGKILL the processes carrying `token` (except `spare`), again until none is left.

    Returns how many processes were signalled. Several rounds catch children forked meanwhile.
    """
    killed = 0
    for _ in range(rounds):
        victims = [pid for pid in marked_processes(token) if pid != spare]
        if not victims:
            break
        killed += _sigkill(victims)
    return killed


def user_processes(uid: int) -> list[int]:
    """Ids of the live processes (zombies excepted) with `uid` as a real, effective or saved user
    id (psutil; on Linux the filesystem user id follows the effective one unless a process sets
    it apart with ``setfsuid``, which needs the privilege the run user lacks)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                continue
            if uid in process.uids():
                found.append(process.pid)
        except (psutil.Error, OSError):  # gone meanwhile
            continue
    return found


def kill_user(uid: int, patience: float = 30.0) -> tuple[int, list[int]]:
    """SIGKILL every process of `uid` until none is left or `patience` seconds have passed.

    For a user that exists only to run submissions (the run phase's user, see
    :mod:`autograde.run.become`): a process that escaped every other sweep (a clean environment,
    its own session) still carries its user id. Returns (processes signalled, those still alive).
    """
    killed, deadline = 0, time.monotonic() + patience
    while True:
        victims = user_processes(uid)
        if not victims or time.monotonic() > deadline:
            return killed, victims
        killed += _sigkill(victims)
        time.sleep(0.05)
