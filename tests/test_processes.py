"""The process sweeps of the run phase (``autograde/run/processes.py``, through psutil): a process
whose environment carries a run's token is found and killed, children included, and nothing
else is; a user's processes are found by user id, zombies left out."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from autograde.run import processes

SLEEPER = ("import subprocess, sys, time; "  # a process that starts a child, both sleeping
           "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)")


def start(token: str | None) -> subprocess.Popen:
    environment = {key: value for key, value in os.environ.items() if key != processes.TOKEN_VARIABLE}
    if token is not None:
        environment[processes.TOKEN_VARIABLE] = token
    return subprocess.Popen([sys.executable, "-c", SLEEPER], env=environment)


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_marked_processes_and_their_children_are_found_and_killed_and_no_other():
    token, other = processes.new_token(), processes.new_token()
    marked, unmarked, foreign = start(token), start(None), start(other)
    try:
        assert wait_for(lambda: len(processes.marked_processes(token)) == 2)  # the process and its child
        # the other run's child too, before the sweep: on a loaded machine it can start late
        assert wait_for(lambda: len(processes.marked_processes(other)) == 2)
        assert marked.pid in processes.marked_processes(token)
        assert unmarked.pid not in processes.marked_processes(token)
        assert processes.marked_processes(token[:-1]) == []  # the whole token, not a prefix
        assert processes.kill_marked(token, spare=None) >= 2
        marked.wait(timeout=10)
        assert wait_for(lambda: processes.marked_processes(token) == [])
        assert unmarked.poll() is None and foreign.poll() is None
        assert len(processes.marked_processes(other)) == 2
    finally:
        for process in (marked, unmarked, foreign):
            process.kill()
            process.wait()
        processes.kill_marked(other)


def test_a_spared_process_is_not_killed():
    token = processes.new_token()
    process = start(token)
    try:
        assert wait_for(lambda: len(processes.marked_processes(token)) == 2)
        processes.kill_marked(token, spare=process.pid)
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()
        processes.kill_marked(token)


def test_a_users_processes_are_found_by_user_id_and_zombies_are_not():
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert wait_for(lambda: zombie.pid not in processes.user_processes(os.getuid()))  # exited, not reaped
        assert os.getpid() in processes.user_processes(os.getuid())
        assert os.getpid() not in processes.user_processes(os.getuid() + 12345)
    finally:
        zombie.wait()
