"""What ``verify`` returns: a verdict a student can read, and the evidence behind it."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from termcolor import colored

STATUSES = ("pass", "fail", "unknown")
_COLOURS = {"pass": "green", "fail": "red", "unknown": "yellow"}


class VerificationResult:
    """``status`` is "pass" (proved), "fail" (counterexample found) or "unknown".

    ``result == "pass"`` compares the status; ``bool(result)`` is true only for
    a pass. ``lower``/``upper`` are the output bounds computed over the whole
    box (None if we found a counterexample before bounding), ``counterexamples``
    are inputs shaped for ``net(...)``, ``method`` says how the answer was
    reached, ``time`` is in seconds and ``message`` explains the verdict.

    ``rounding`` says what a pass proves: "rigorous" when it holds for the
    network as it runs, floating-point rounding included; "estimated" when the
    proof is for exact arithmetic and float rounding was bounded only by an
    estimate (the message then gives it); None for "fail" and "unknown".
    """

    def __init__(self, status: str, *, message: str = "", lower: torch.Tensor | None = None,
                 upper: torch.Tensor | None = None,
                 counterexamples: Iterable[torch.Tensor] | None = None, method: str = "",
                 time: float = 0.0, boxes: int = 0, rounding: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}; got {status!r}")
        self.status = status
        self.message = message
        self.lower = lower
        self.upper = upper
        self.counterexamples = list(counterexamples or [])
        self.method = method
        self.time = time
        self.boxes = boxes
        self.rounding = rounding

    def __eq__(self, other):
        if isinstance(other, str):
            return self.status == other
        if isinstance(other, VerificationResult):
            return self.status == other.status
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):  # equal to its status string, so hash like it
        return hash(self.status)

    def __bool__(self):
        return self.status == "pass"

    def verdict(self) -> str:
        head = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN"}[self.status]
        return f"{head}: {self.message} [{self.method}, {self.time:.2f} s]"

    def __str__(self):
        text = self.verdict()
        head, rest = text.split(":", 1)
        return colored(head, _COLOURS[self.status], attrs=["bold"]) + ":" + rest

    def __repr__(self):
        return (f"VerificationResult(status={self.status!r}, method={self.method!r}, "
                f"time={self.time:.3f}, counterexamples={len(self.counterexamples)})")

    def _repr_pretty_(self, p, cycle):
        p.text(self.verdict())
