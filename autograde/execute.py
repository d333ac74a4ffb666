"""nbgrader's Execute step, made to survive what a submission can do to it.

:class:`GuardedExecute` replaces nbgrader's ``Execute`` in the autograde pipeline. It changes three
things and records each in a journal (one JSON object per line) so the grade table can say why:

* a cell that runs past the timeout is interrupted, as in nbgrader, and recorded (``timeout``);
  if the kernel ignores the interrupt, the notebook stops there instead of failing as a whole;
* a kernel that dies (``os._exit``, a crash, the grader's wall-clock limit) no longer aborts the
  whole notebook either (``kernel_died``). In both cases the cells not run get an error output,
  so the tests that passed before keep their points;
* a cell's output is capped at ``max_output_bytes``: what comes after is dropped, with a note on
  the same stream. Errors and results are always kept, so a capped test cannot gain points.
"""
from __future__ import annotations

import json
from typing import Any

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

_ALWAYS_KEPT = {"error", "execute_result"}


class GuardedExecute(Execute):
    """Execute a notebook in the grading kernel; keep going when the kernel dies; cap outputs."""

    max_output_bytes = Integer(1_000_000, help="Most bytes of output kept per cell.").tag(config=True)
    journal = Unicode("", help="File to append events to (JSON lines); empty: no journal.").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):
        self._stopped = ""  # why the cells left are not run, once the kernel is gone or stuck
        self._output_bytes: dict[int, int] = {}
        self._truncated: set[tuple[int, str]] = set()
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        if cell.cell_type != "code":
            return cell, resources
        if self._stopped:
            cell.outputs = [_error_output("NotRun", f"not run: {self._stopped} in an earlier cell")]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stop(cell, index, "kernel_died", "KernelDied", "the kernel died")
        except CellTimeoutError:  # still busy after the interrupt: nothing more can run
            self._stop(cell, index, "timeout", "CellTimeoutError", "the kernel ignored the interrupt")
        return cell, resources

    def _stop(self, cell: NotebookNode, index: int, event: str, ename: str, reason: str) -> None:
        self._stopped = reason
        self.shutdown_kernel = "immediate"  # a stuck kernel would not answer a polite shutdown
        self._record(event, cell, index)
        cell.outputs.append(_error_output(ename, f"{reason} while running this cell"))

    def on_cell_executed(self, **kwargs: Any) -> None:
        super().on_cell_executed(**kwargs)
        if kwargs["execute_reply"]["content"].get("ename") == "CellTimeoutError":
            self._record("timeout", kwargs["cell"], kwargs["cell_index"])

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int):
        msg_type = msg["msg_type"]
        used = self._output_bytes.get(cell_index, 0) + len(json.dumps(msg["content"]))
        self._output_bytes[cell_index] = used
        if used <= self.max_output_bytes or msg_type in _ALWAYS_KEPT:
            return super().output(outs, msg, display_id, cell_index)
        stream = msg["content"].get("name", "stdout") if msg_type == "stream" else "stdout"
        if (cell_index, stream) not in self._truncated:
            self._truncated.add((cell_index, stream))
            outs.append(new_output("stream", name=stream,
                                   text=f"\n[output cut by the grader after {self.max_output_bytes} bytes]\n"))
            self._record("output_truncated", self.nb.cells[cell_index], cell_index)
        return None

    def _record(self, event: str, cell: NotebookNode, index: int) -> None:
        if not self.journal:
            return
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        with open(self.journal, "a", encoding="utf-8") as journal:
            journal.write(json.dumps({"event": event, "cell": grade_id or f"cell {index + 1}"}) + "\n")


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def read_journal(path: str) -> list[dict[str, str]]:
    """The events :class:`GuardedExecute` recorded, in order (an empty list if there is no file)."""
    try:
        with open(path, encoding="utf-8") as journal:
            return [json.loads(line) for line in journal if line.strip()]
    except FileNotFoundError:
        return []
