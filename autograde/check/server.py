"""The check server: ``python -m autograde.check.server SOURCE HANDOVER``, one per grading thread.

It runs the source notebook's prelude once (importing torch, the kit, MNIST: seconds), then
reads job files, one path a line, on stdin. For each it forks a child: a fresh copy of a process
that has only ever run the instructor's code, never a submission's. The child runs the tests
(:func:`autograde.check.runner.run_tests`), writes the results file and exits; so nothing one
submission's check does reaches the next. The server answers on stdout: the child's pid, then
``done <exit code>``. The child's own output goes to the submission's log, not to the protocol.

A job with ``"channel": true`` comes with the connection to its submission's runner, passed on the
socket whose descriptor is HANDOVER (``SCM_RIGHTS``): the child holds it for calls
(:mod:`autograde.check.channel`) and the server closes its own copy, so the runner sees the
channel close when the child ends.

A job file is JSON: ``artifacts`` (folder), ``seed``, ``test_timeout`` (seconds per test),
``results`` (file to write), ``log`` (file to append output to), ``channel`` (bool),
``call_seconds`` and ``call_answer_bytes``.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import traceback
from pathlib import Path

from autograde.check.runner import prepare, run_tests


def _child(prepared, job: dict, connection: socket.socket | None) -> int:
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    channel = None
    if connection is not None:
        from autograde.check.channel import Channel

        channel = Channel(connection, job["call_seconds"], job["call_answer_bytes"], job["seed"])
    try:
        results = run_tests(prepared, Path(job["artifacts"]), job["seed"], job["test_timeout"], channel)
        Path(job["results"]).write_text(json.dumps(results), encoding="utf-8")
        return 0
    except Exception:
        traceback.print_exc()
        return 1


def serve(source: str, handover: socket.socket) -> None:
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints (an import's warning) go to the log, never into the answers
    prepared = prepare(source)
    for line in sys.stdin:
        job = json.loads(Path(line.strip()).read_text(encoding="utf-8"))
        connection = None
        if job.get("channel"):
            _, descriptors, _, _ = socket.recv_fds(handover, 1, 1)
            connection = socket.socket(fileno=descriptors[0]) if descriptors else None
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            handover.close()
            code = _child(prepared, job, connection)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        if connection is not None:
            connection.close()  # the child's now: the runner sees the channel close when it ends
        answer.write(f"{pid}\n")
        answer.flush()
        _, status = os.waitpid(pid, 0)
        answer.write(f"done {os.waitstatus_to_exitcode(status)}\n")
        answer.flush()


if __name__ == "__main__":
    serve(sys.argv[1], socket.socket(fileno=int(sys.argv[2])))
