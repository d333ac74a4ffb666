"""Training and testing points for the circle task, and the d2l ``DataModule`` over them."""
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from d2l import torch as d2l

from circle.geometry import DOMAIN, Point


def gen_data(num: int, seed: Optional[int] = None) -> np.ndarray:
    """Draw ``num`` points uniformly from the square [0, 1.5] x [0, 1.5].

    Returns a float array of shape (num, 2), one point (x1, x2) per row. The same ``seed``
    gives the same points; ``seed=None`` draws fresh ones every call from numpy's global
    generator, which ``np.random.seed`` (the notebook's set-up cell) fixes.
    """
    return _uniform_box(num, DOMAIN, DOMAIN, seed)


def gen_test(num: int, x1_bound: Sequence[float], x2_bound: Sequence[float],
             seed: Optional[int] = None) -> np.ndarray:
    """Draw ``num`` testing points uniformly from the box ``x1_bound`` x ``x2_bound``.

    Each bound is a pair ``(lower, upper)`` with ``lower <= upper``. Returns a float array of
    shape (num, 2). The same ``seed`` gives the same points; ``seed=None`` draws from numpy's
    global generator, as :func:`gen_data` does.
    """
    return _uniform_box(num, _check_bound("x1_bound", x1_bound),
                        _check_bound("x2_bound", x2_bound), seed)


class CircleData(d2l.DataModule):
    """The circle points with their labels, served in mini-batches for ``trainer.fit``.

    ``xs`` has shape (N, 2); ``y_fn`` maps one point to its label (e.g. ``inside_circle``).
    Labels are stored as ``Y`` of shape (N, 1), float32, to match a network with one output.
    ``val_fraction`` of the points (chosen at random with ``seed``) are held out for
    validation; with the default 0.0 there is no validation set.

    ``get_dataloader(True)`` yields shuffled ``[X, Y]`` batches of the training points, with
    X of shape (batch, 2) and Y of shape (batch, 1); ``get_dataloader(False)`` yields the
    validation points in order, or returns ``None`` when there are none (``d2l.Trainer`` then
    skips validation).
    """

    def __init__(self, xs: np.ndarray, y_fn: Callable[[Point], float], batch_size: int = 100,
                 val_fraction: float = 0.0, seed: Optional[int] = 0) -> None:
        super().__init__()
        self.X = torch.as_tensor(np.asarray(xs), dtype=torch.float32)
        if self.X.ndim != 2 or self.X.shape[1] != 2 or len(self.X) == 0:
            raise ValueError(f"xs must have shape (N, 2) with N >= 1, got {tuple(self.X.shape)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        self.n = len(self.X)
        self.batch_size = batch_size
        ys = [float(y_fn(x)) for x in np.asarray(xs)]
        self.Y = torch.tensor(ys, dtype=torch.float32).reshape(-1, 1)
        self.dataset = torch.utils.data.TensorDataset(self.X, self.Y)
        order = torch.randperm(self.n, generator=_generator(seed))
        n_val = int(round(val_fraction * self.n))
        self.val_indices = order[:n_val].sort().values
        self.train_indices = order[n_val:].sort().values

    def get_dataloader(self, train: bool) -> Optional[torch.utils.data.DataLoader]:
        """Training batches (shuffled) if ``train``, else validation batches or ``None``."""
        indices = self.train_indices if train else self.val_indices
        if len(indices) == 0:
            return None
        part = torch.utils.data.TensorDataset(self.X[indices], self.Y[indices])
        order = (torch.utils.data.RandomSampler(part) if train
                 else torch.utils.data.SequentialSampler(part))
        # Whole batches are sliced out of the tensors at once (no per-point collate), which
        # keeps an epoch over a few thousand points in the millisecond range.
        batches = torch.utils.data.BatchSampler(order, self.batch_size, drop_last=False)
        return torch.utils.data.DataLoader(part, batch_size=None, sampler=batches)


def _uniform_box(num: int, x1_bound: Sequence[float], x2_bound: Sequence[float],
                 seed: Optional[int]) -> np.ndarray:
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
        raise ValueError(f"num must be a non-negative int, got {num!r}")
    low, high = (x1_bound[0], x2_bound[0]), (x1_bound[1], x2_bound[1])
    if seed is None:  # numpy's global generator: seeded by the set-up cell, and by the grader
        return np.random.uniform(low, high, size=(int(num), 2))
    return np.random.default_rng(seed).uniform(low, high, size=(int(num), 2))


def _check_bound(name: str, bound: Sequence[float]) -> tuple:
    try:
        lower, upper = (float(b) for b in bound)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (lower, upper) of numbers, "
                         f"got {bound!r}") from None
    if not (np.isfinite(lower) and np.isfinite(upper) and lower <= upper):
        raise ValueError(f"{name} must be finite with lower <= upper, got {bound!r}")
    return lower, upper


def _generator(seed: Optional[int]) -> torch.Generator:
    """A generator seeded with `seed`, or, for None, with a number drawn from torch's default
    generator (which ``torch.manual_seed`` fixes)."""
    generator = torch.Generator()
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    generator.manual_seed(seed)
    return generator
