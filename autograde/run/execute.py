"""Execute the run notebook: nbclient, with time limits, output caps and a journal of events.

:class:`GuardedClient` is nbclient's ``NotebookClient`` with four changes, each recorded as an
event (``timeout``, ``kernel_died``, ``budget_spent``, ``output_truncated``):

* a cell gets at most ``cell_timeout`` seconds and never more than what is left of the whole
  run's budget (``deadline``, a ``time.monotonic()`` value); past it the kernel is interrupted;
* a kernel that dies or ignores the interrupt stops the run there; the cells left get an error
  output saying why, and the run still ends normally;
* a student cell that raises does not stop the run (their error is theirs to read);
* each cell keeps at most ``max_output_bytes`` of output, whatever the output type (stream,
  result, display data, error); what comes after is dropped, with one note.
"""
from __future__ import annotations

import json
import time
from typing import Any

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output
from traitlets import Float, Integer, List


def error_output(ename: str, evalue: str) -> NotebookNode:
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class GuardedClient(NotebookClient):
    """Run every code cell under the run's limits; see the module docstring."""

    cell_timeout = Integer(600, help="Most seconds one cell may run.").tag(config=True)
    deadline = Float(0.0, help="time.monotonic() when the whole run must end (0: none).").tag(config=True)
    max_output_bytes = Integer(1_000_000, help="Most bytes of output kept per cell.").tag(config=True)
    events = List(help="What happened, as {'event': ..., 'cell': ...} dicts, in order.")

    def __init__(self, nb: NotebookNode, **kwargs: Any):
        super().__init__(nb, **kwargs)
        self.allow_errors = True
        self.interrupt_on_timeout = True
        self.error_on_timeout = {"ename": "CellTimeoutError", "evalue": "the cell ran past its time limit",
                                 "traceback": ["CellTimeoutError: the cell ran past its time limit"]}
        self.timeout_func = self._cell_limit
        self._stopped = ""
        self.kernel_started = False  # True once the kernel has answered (see the runner's retries)
        self._output_bytes: dict[int, int] = {}
        self._truncated: set[int] = set()

    def _cell_limit(self, cell: NotebookNode) -> int:
        if not self.deadline:
            return self.cell_timeout
        return max(1, min(self.cell_timeout, int(self.deadline - time.monotonic())))

    async def async_start_new_kernel_client(self):
        client = await super().async_start_new_kernel_client()
        self.kernel_started = True
        return client

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:
        if cell.cell_type != "code":
            return cell
        if not self._stopped and self.deadline and time.monotonic() >= self.deadline:
            self._stop(cell, cell_index, "budget_spent", "TimeoutError", "the run's time budget was spent")
            return cell
        if self._stopped:
            cell.outputs = [error_output("NotRun", f"not run: {self._stopped} in an earlier cell")]
            return cell
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except DeadKernelError:
            self._stop(cell, cell_index, "kernel_died", "KernelDied", "the kernel died")
        except CellTimeoutError:  # still busy after the interrupt: nothing more can run
            self._stop(cell, cell_index, "timeout", "CellTimeoutError", "the kernel ignored the interrupt")
        return cell

    def _stop(self, cell: NotebookNode, index: int, event: str, ename: str, reason: str) -> None:
        self._stopped = reason
        self.shutdown_kernel = "immediate"  # a stuck kernel would not answer a polite shutdown
        self._record(event, index)
        cell.outputs = [error_output(ename, f"{reason} while running this cell")]

    def on_cell_executed(self, **kwargs: Any) -> None:  # nbclient hook, called after each cell
        if (kwargs.get("execute_reply") or {}).get("content", {}).get("ename") == "CellTimeoutError":
            self._record("timeout", kwargs["cell_index"])

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int):
        used = self._output_bytes.get(cell_index, 0) + len(json.dumps(msg["content"]))
        self._output_bytes[cell_index] = used
        if used <= self.max_output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if cell_index not in self._truncated:
            self._truncated.add(cell_index)
            outs.append(new_output("stream", name="stdout",
                                   text=f"\n[output cut by the grader after {self.max_output_bytes} bytes]\n"))
            self._record("output_truncated", cell_index)
        return None

    def _record(self, event: str, index: int) -> None:
        self.events.append({"event": event, "cell": index})
