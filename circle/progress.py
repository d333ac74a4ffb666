"""Cheap training progress: record the loss points d2l models report, show them sparingly.

``d2l.Module.training_step`` calls ``self.plot("loss", ...)`` on every batch, which hands a
point to ``model.board``. d2l's own ``ProgressBoard`` redraws a growing figure for every
averaged point; ``LossBoard`` only records it. What the student sees comes from a view:

- ``NotebookView`` (inside a Jupyter kernel): one figure, redrawn in place at most once per
  ``refresh_seconds``, and one line of text under it with the epoch and the latest losses,
  ending with the final loss curve and the final loss (as text, so it can be read, copied and
  searched in JupyterLab, not only seen in the picture);
- ``TextView`` (a script, a terminal, a test): one tqdm bar over the epochs, on stdout.
"""
import io
import sys
import time
from collections import OrderedDict
from typing import Callable, List, Optional, Tuple

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from tqdm.std import tqdm


class LossBoard:
    """Stands in for ``d2l.ProgressBoard``: keeps the averaged points, draws nothing.

    ``data`` maps a label ("train_loss", "val_loss") to a list of ``(epoch, value)`` points,
    each the mean of ``every_n`` raw points, as d2l's board computes them.
    """

    def __init__(self, on_point: Optional[Callable[[], None]] = None) -> None:
        self.data: "OrderedDict[str, List[Tuple[float, float]]]" = OrderedDict()
        self._raw: dict = {}
        self.on_point = on_point
        self.xlabel, self.ylabel, self.xlim = "epoch", None, None  # set by d2l, unused here

    def draw(self, x: float, y: float, label: str, every_n: int = 1) -> None:
        """Record point ``(x, y)`` under ``label``; every ``every_n`` points, keep their mean."""
        raw = self._raw.setdefault(label, [])
        raw.append((float(x), float(y)))
        if len(raw) < max(1, int(every_n)):
            return
        xs, ys = zip(*raw)
        self.data.setdefault(label, []).append((sum(xs) / len(xs), sum(ys) / len(ys)))
        raw.clear()
        if self.on_point is not None:
            self.on_point()

    def latest(self) -> str:
        """The last value of each curve, e.g. ``"train_loss 0.0312, val_loss 0.0407"``."""
        return ", ".join(f"{label} {points[-1][1]:.4f}" for label, points in self.data.items())


def plot_loss(board: LossBoard, ax: Optional[Axes] = None) -> Figure:
    """Draw the loss curves recorded in ``board`` against the epoch, on ``ax`` (default: the
    current axes); return the figure."""
    ax = plt.gca() if ax is None else ax
    for label, points in board.data.items():
        ax.plot([p[0] for p in points], [p[1] for p in points],
                linestyle="--" if label.startswith("val") else "-", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if board.data:
        ax.legend()
    return ax.figure


def new_loss_figure(board: LossBoard, title: str = "") -> Figure:
    """A loss-curve figure kept outside pyplot, so notebooks do not show it a second time."""
    figure = Figure(figsize=(4.5, 3.0), layout="tight")
    plot_loss(board, figure.add_subplot())
    figure.axes[0].set_title(title, fontsize=9)
    return figure


class NotebookView:
    """Shows the loss curve in a notebook output, redrawn at most once per ``refresh_seconds``
    (and less often if drawing is slow: drawing takes at most a fifth of the time), with a
    status line under it: ``"epoch 3/10: train_loss 0.0312"``, at the end
    ``"10 epochs in 4.2 s: train_loss 0.0105"``."""

    def __init__(self, board: LossBoard, max_epochs: int, refresh_seconds: float = 1.0) -> None:
        from IPython.display import display

        self.board, self.max_epochs, self.refresh_seconds = board, max_epochs, refresh_seconds
        self.epoch, self.started = 0, time.perf_counter()
        self.last_drawn, self.wait = self.started, refresh_seconds
        self.handle = display(_text(f"training for {max_epochs} epochs..."), display_id=True)
        self.status = None  # the text line under the picture, shown from the first drawing on

    def tick(self) -> None:
        """Redraw if the last drawing is older than ``refresh_seconds``."""
        if time.perf_counter() - self.last_drawn >= self.wait:
            self._draw(f"epoch {self.epoch}/{self.max_epochs}")

    def epoch_done(self, epoch: int) -> None:
        self.epoch = epoch
        self.tick()

    def close(self) -> Figure:
        return self._draw(f"{self.epoch} epochs in {time.perf_counter() - self.started:.1f} s")

    def _draw(self, status: str) -> Figure:
        start = time.perf_counter()
        line = f"{status}: {self.board.latest()}"
        figure = new_loss_figure(self.board, line)
        self.handle.update(_png(figure))
        if self.status is None:
            from IPython.display import display

            self.status = display(_text(line), display_id=True)
        else:
            self.status.update(_text(line))
        self.last_drawn = time.perf_counter()
        self.wait = max(self.refresh_seconds, 4 * (self.last_drawn - start))
        return figure


class TextView:
    """A tqdm bar over the epochs on stdout (nothing on stderr), the latest losses beside it."""

    def __init__(self, board: LossBoard, max_epochs: int) -> None:
        self.board, self.started = board, time.perf_counter()
        self.bar = tqdm(total=max_epochs, unit="epoch", file=sys.stdout, mininterval=1.0,
                        ncols=100, ascii=True, leave=True)

    def tick(self) -> None:
        """Nothing to do between epochs: the bar moves once per epoch."""

    def epoch_done(self, epoch: int) -> None:
        self.bar.set_postfix_str(self.board.latest(), refresh=False)
        self.bar.update(epoch - self.bar.n)

    def close(self) -> Figure:
        self.bar.close()
        seconds = time.perf_counter() - self.started
        return new_loss_figure(self.board, f"{self.bar.n} epochs in {seconds:.1f} s")


def _png(figure: Figure):
    from IPython.display import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return Image(data=buffer.getvalue(), format="png")


def _text(message: str):
    from IPython.display import Pretty

    return Pretty(message)  # plain text: JupyterLab, nbconvert and a terminal all show it as is
