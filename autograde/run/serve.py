"""The runner's side of the call channel: after the notebook, answer the check's calls.

When the job names a channel (a Unix socket the grader listens on, see
:mod:`autograde.run.phase`) and the exports kept objects for calls (their ``remotes`` count),
the runner keeps the kernel alive after the last cell, connects, says it is ready, and carries out
one request at a time until the check closes the channel or the calls' time budget is spent:

* the request is written to the box's temporary folder and the kernel runs
  :func:`autograde.run.calls.answer` on it, as a hidden cell (not in the executed notebook, not
  in the kernel's history), under the call's time limit; past it the kernel is interrupted;
* the answer files are sent back as they are, at most ``max_answer_bytes``; the check reads
  them with the untrusting reader;
* a kernel that dies or ignores the interrupt answers every later call with ``dead``.

Replies' ``status``: ``ok`` (document and arrays follow), ``raised`` is inside the document,
``timeout``, ``dead``, ``budget`` (the calls' budget is spent), ``error`` (no answer written).
"""
from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell
from traitlets import Float, Integer, Unicode

from autograde.run import wire
from autograde.run.execute import GuardedClient

SERVE_KEY = "serve"  # metadata.autograde.serve marks the runner's last cell
MAX_REQUEST_BYTES = 64 << 20
IDLE_SECONDS = 5  # after a call's time-out, for the interrupted kernel to take a trivial cell


def serve_cell() -> NotebookNode:
    """The marker the runner appends: where the calls are answered (removed before writing)."""
    cell = new_code_cell("pass", metadata={"autograde": {SERVE_KEY: True}})
    del cell["id"]
    return cell


def is_serve_cell(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("autograde", {})
    return isinstance(meta, dict) and meta.get(SERVE_KEY) is True


def remotes_exported(folder: Path) -> bool:
    """Whether any snapshot in `folder` kept objects in the kernel for calls."""
    for path in folder.glob("*.json"):
        try:
            if path.stat().st_size < 16 << 20 and json.loads(path.read_text(encoding="utf-8")).get("remotes"):
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False


def _read_capped(path: Path, limit: int) -> bytes | None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(limit + 1)
    return data if len(data) <= limit else None


class ServingClient(GuardedClient):
    """:class:`GuardedClient` that answers calls at the serve cell (see the module docstring)."""

    channel = Unicode("", help="The Unix socket to connect to; empty: no calls.").tag(config=True)
    artifacts = Unicode("", help="The exporter's folder (to see whether anything was kept for calls).")
    scratch = Unicode("", help="A folder the kernel can read and write, for requests and answers.")
    call_budget = Float(0.0, help="Seconds all calls together may take.").tag(config=True)
    max_answer_bytes = Integer(16 << 20, help="Most bytes of one answer.").tag(config=True)
    seed = Integer(0, help="The challenge seed, for networks in answers.").tag(config=True)

    def __init__(self, nb: NotebookNode, **kwargs: Any):
        super().__init__(nb, **kwargs)
        self._call_limit: int | None = None
        self._call_error = ""  # the error name of the last call's execute reply
        self.served = 0

    def on_cell_executed(self, **kwargs: Any) -> None:
        if self._call_limit is None:
            return super().on_cell_executed(**kwargs)
        self._call_error = str((kwargs.get("execute_reply") or {}).get("content", {}).get("ename") or "")

    def _cell_limit(self, cell: NotebookNode) -> int:
        return self._call_limit if self._call_limit is not None else super()._cell_limit(cell)

    def _record(self, event: str, index: int) -> None:
        if self._call_limit is None:  # a call's time-out or long output is the call's, not the notebook's
            super()._record(event, index)

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:
        if not is_serve_cell(cell):
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if self.channel and not self._stopped and remotes_exported(Path(self.artifacts)):
            await self._serve(cell_index)
            self.nb.cells[cell_index] = cell  # each call's hidden cell took its place
        return cell

    async def _serve(self, index: int) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.channel)
        except OSError:
            sock.close()
            return
        ends = time.monotonic() + self.call_budget
        dead = ""
        with sock:
            try:
                wire.send(sock, {"ready": True})
                while True:
                    meta, document, arrays = wire.receive(sock, MAX_REQUEST_BYTES, ends + 1)
                    left = ends - time.monotonic()
                    if dead:
                        wire.send(sock, {"id": meta.get("id"), "status": "dead", "message": dead})
                        continue
                    if left <= 0:
                        wire.send(sock, {"id": meta.get("id"), "status": "budget",
                                         "message": f"the calls' time budget ({self.call_budget:g} s) is spent"})
                        continue
                    seconds = min(float(meta.get("seconds") or 60), left)
                    reply, answer = await self._call(index, document, arrays, seconds)
                    if reply["status"] == "dead":
                        dead = reply["message"]
                    wire.send(sock, {"id": meta.get("id"), **reply}, *answer)
            except wire.WireError:  # the check closed the channel: done
                return

    async def _idle(self, index: int) -> bool:
        """Whether the kernel, interrupted, runs a trivial cell within IDLE_SECONDS."""
        self._call_limit, self._call_error = IDLE_SECONDS, ""
        try:
            await NotebookClient.async_execute_cell(self, new_code_cell("pass"), index, store_history=False)
        except Exception:  # dead, or nbclient could not talk to it
            return False
        finally:
            self._call_limit = None
        return self._call_error == ""

    async def _call(self, index: int, document: bytes, arrays: bytes, seconds: float) -> tuple[dict, tuple]:
        self.served += 1
        base = Path(self.scratch) / f"autograde-call-{self.served}"
        request_json, request_npz = Path(f"{base}.request.json"), Path(f"{base}.request.npz")
        answer_json, answer_npz = Path(f"{base}.answer.json"), Path(f"{base}.answer.npz")
        request_json.write_bytes(document)
        request_npz.write_bytes(arrays)
        cell = new_code_cell(f"__import__('autograde.run.calls', fromlist=['_']).answer({str(base)!r}, {self.seed})")
        self._call_limit, self._call_error = max(1, math.ceil(seconds)), ""
        self._output_bytes[index] = 0
        try:
            await NotebookClient.async_execute_cell(self, cell, index, store_history=False)
        except DeadKernelError:
            return {"status": "dead", "message": "the kernel died during a call"}, ()
        except CellTimeoutError:
            return {"status": "dead", "message": "the kernel ignored the interrupt after a call's time limit"}, ()
        except Exception as error:  # the kernel's messages broke nbclient (its own sockets written over)
            return {"status": "dead", "message": f"the kernel stopped talking properly ({type(error).__name__})"}, ()
        finally:
            self._call_limit = None
            for path in (request_json, request_npz):
                path.unlink(missing_ok=True)
        names = [self._call_error] if self._call_error else []
        try:
            if "CellTimeoutError" in names:
                message = f"the call ran past its time limit ({seconds:.0f} s)"
                if not await self._idle(index):
                    return {"status": "dead", "message": message + " and the kernel ignored the interrupt"}, ()
                return {"status": "timeout", "message": message}, ()
            answer = (_read_capped(answer_json, self.max_answer_bytes), _read_capped(answer_npz, self.max_answer_bytes))
            if answer[0] is None or answer[1] is None or len(answer[0]) + len(answer[1]) > self.max_answer_bytes:
                said = f" ({names[0]})" if names else ""
                return {"status": "error", "message": f"the call wrote no answer the grader accepts{said}"}, ()
            return {"status": "ok"}, answer
        finally:
            for path in (answer_json, answer_npz):
                path.unlink(missing_ok=True)
