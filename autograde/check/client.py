"""The grader's handle on a check server (:mod:`autograde.check.server`): start it, send it jobs."""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

from autograde import python_module


class CheckServer:
    """One server process for `source`; :meth:`check` runs one job at a time, with a time limit."""

    def __init__(self, source: Path, environment: dict[str, str], log: Path):
        self.source, self.environment, self.log = source, environment, log
        self.process: subprocess.Popen | None = None
        self.pending = b""
        self.handover: socket.socket | None = None  # passes a job's call channel to the server

    def start(self) -> subprocess.Popen:
        if self.process is None or self.process.poll() is not None:
            if self.handover is not None:
                self.handover.close()
            self.handover, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            with open(self.log, "ab") as log, theirs:
                self.process = subprocess.Popen(
                    python_module("autograde.check.server") + [str(self.source), str(theirs.fileno())],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, bufsize=0,
                    env={**os.environ, **self.environment}, pass_fds=(theirs.fileno(),))
            self.pending = b""
        return self.process

    def _line(self, seconds: float) -> str | None:
        """The server's next answer line; None past `seconds` or at its end. Reads the pipe
        unbuffered: a buffered reader could hold the next line where ``select`` cannot see it."""
        deadline = time.monotonic() + seconds
        while b"\n" not in self.pending:
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.process.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode().strip()

    def check(self, job: dict, job_file: Path, timeout: float, channel: socket.socket | None = None
              ) -> list[dict] | None:
        """Run `job` (see the server's docstring); its results, or None on failure or time-out.
        `channel`, the connection to the submission's runner, goes to the check with the job."""
        job_file.write_text(json.dumps({**job, "channel": channel is not None}), encoding="utf-8")
        process = self.start()
        try:
            if channel is not None:
                socket.send_fds(self.handover, [b"c"], [channel.fileno()])
            process.stdin.write(f"{job_file}\n".encode())
            pid = self._line(300)  # the server may still be importing the prelude
            done = self._line(timeout) if pid else None
            if pid and done is None:
                os.kill(int(pid), signal.SIGKILL)
                self._line(30)
        except (OSError, ValueError):
            self.close()
            return None
        if not done or done != "done 0":
            return None
        return json.loads(Path(job["results"]).read_text(encoding="utf-8"))

    def close(self) -> None:
        if self.handover is not None:
            self.handover.close()
            self.handover = None
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
