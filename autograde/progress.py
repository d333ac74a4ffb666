"""Progress of a grading batch: a bar on a terminal, one line per submission anywhere else.

When stdout is not a terminal (CI, ``nohup``, a log file) a bar's carriage returns make an
unreadable log; :class:`LineProgress` prints instead one line per finished submission with the
count done, its row, and the time left estimated from the submissions graded so far.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

from autograde.jobs import Outcome
from autograde.report import shown


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class LineProgress:
    """``[3/12] alice: ok, 6/6 (7.1 s); about 1 min 10 s left`` per finished submission.

    The time left is the time since grading started (:meth:`start`; before that, since this
    object was made) per submission that ran, times the submissions left; rows that needed no
    run (an unreadable hand-in, a refused link) take no time and do not count."""

    def __init__(self, total: int, stream: TextIO):
        self.total, self.stream = total, stream
        self.done = self.ran = 0
        self.started = time.monotonic()

    def start(self) -> None:
        """Grading starts now (the preparation before it is not part of the estimate)."""
        self.started = time.monotonic()

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        self.ran += outcome.seconds > 0
        elapsed = time.monotonic() - self.started
        if self.done == self.total:
            tail = f"all done in {duration(elapsed)}"
        elif self.ran:
            tail = f"about {duration(elapsed / self.ran * (self.total - self.done))} left"
        else:
            tail = "time left not known yet"
        print(f"[{self.done}/{self.total}] {shown(outcome.student_id, 40)}: {outcome.status}, "
              f"{outcome.score:g}/{outcome.max_score:g} ({outcome.seconds:.1f} s); {tail}",
              file=self.stream, flush=True)

    def close(self) -> None:
        pass


class BarProgress:
    """tqdm's bar, for a terminal."""

    def __init__(self, total: int, stream: TextIO):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="grading", unit="notebook", file=stream, dynamic_ncols=True)

    def start(self) -> None:
        pass

    def __call__(self, outcome: Outcome) -> None:
        self.bar.update(1)
        self.bar.set_postfix_str(f"{shown(outcome.student_id, 40)}: {outcome.status}")

    def close(self) -> None:
        self.bar.close()


def progress(total: int, stream: TextIO | None = None) -> LineProgress | BarProgress:
    """A bar when `stream` (stdout by default) is a terminal, else one line per submission."""
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return BarProgress(total, stream) if isatty is not None and isatty() else LineProgress(total, stream)
