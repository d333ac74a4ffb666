"""A ``d2l.Trainer`` that trains as fast as a plain PyTorch loop and still shows the loss.

Use it exactly like the handout's ``d2l.Trainer``::

    trainer = circle.Trainer(max_epochs=20)
    trainer.fit(model, data)      # model: a d2l.Module, data: a d2l.DataModule

The model's ``training_step`` / ``validation_step`` still call ``self.plot(...)``; during
``fit`` the model's board is a ``LossBoard`` that only records points (see
``circle.progress``). In a notebook the loss curve is redrawn in place about once a second,
with the epoch and the latest losses as a line of text under it; elsewhere a progress bar over
the epochs is printed to stdout. Either way, when ``fit`` ends
``trainer.figure`` holds the final loss curve (train loss, and validation loss when the data
has a validation set).
"""
from typing import Optional

from d2l import torch as d2l
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from circle.console import in_notebook
from circle.progress import LossBoard, NotebookView, TextView, plot_loss


class Trainer(d2l.Trainer):
    """``d2l.Trainer`` with a cheap progress display; same arguments, plus:

    ``live``: ``True`` redraws a figure in the notebook, ``False`` prints a progress bar to
    stdout, ``None`` (default) picks the figure inside a Jupyter kernel, the bar elsewhere.
    ``refresh_seconds``: the least time between two redraws of the live figure.
    """

    def __init__(self, max_epochs: int, num_gpus: int = 0, gradient_clip_val: float = 0,
                 live: Optional[bool] = None, refresh_seconds: float = 1.0) -> None:
        if not isinstance(max_epochs, int) or max_epochs < 1:
            raise ValueError(f"max_epochs must be a positive int, got {max_epochs!r}")
        super().__init__(max_epochs, num_gpus=num_gpus, gradient_clip_val=gradient_clip_val)
        self.live = in_notebook() if live is None else live
        self.refresh_seconds = refresh_seconds
        self.board: Optional[LossBoard] = None
        self.figure: Optional[Figure] = None

    def prepare_model(self, model: d2l.Module) -> None:
        """Give the model a recording board, then prepare it as d2l does."""
        model.board = self.board
        super().prepare_model(model)

    def fit(self, model: d2l.Module, data: d2l.DataModule) -> None:
        """Train ``model`` on ``data`` for ``max_epochs`` epochs; see the module doc."""
        if not isinstance(model, d2l.Module):
            raise TypeError("Trainer.fit expects a d2l.Module (with loss, configure_optimizers "
                            f"and forward), got {type(model).__name__}")
        self.board = LossBoard()
        self._view = (NotebookView(self.board, self.max_epochs, self.refresh_seconds)
                      if self.live else TextView(self.board, self.max_epochs))
        self.board.on_point = self._view.tick
        try:
            super().fit(model, data)
        finally:
            self.figure = self._view.close()

    def fit_epoch(self) -> None:
        """One epoch as in d2l (train, then validate if there is validation data)."""
        super().fit_epoch()
        self._view.epoch_done(self.epoch + 1)

    def plot_loss(self, ax: Optional[Axes] = None) -> Figure:
        """Draw the last fit's loss curves on ``ax`` (default: the current axes)."""
        if self.board is None:
            raise RuntimeError("nothing to plot yet: call trainer.fit(model, data) first")
        return plot_loss(self.board, ax)
