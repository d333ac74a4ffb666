"""The ground truth of the circle task: which points lie inside the circle.

The circle has centre (0.5, 0.5) and radius 0.5. A point on the rim counts as inside.
"""
from typing import Sequence, Union

import numpy as np

CENTER = (0.5, 0.5)
RADIUS = 0.5
DOMAIN = (0.0, 1.5)  # training points are drawn from DOMAIN x DOMAIN

Point = Union[Sequence[float], np.ndarray]


def inside_circle(x: Point) -> int:
    """Return 1 if the point ``x = (x1, x2)`` lies inside the circle, else 0.

    "Inside" means ``(x1 - 0.5)**2 + (x2 - 0.5)**2 <= 0.5**2`` (the rim counts as inside).
    ``x`` is any pair of numbers: a tuple, a list, a numpy array or a tensor of length 2.
    """
    point = as_point(x)
    return int(((point - CENTER) ** 2).sum() <= RADIUS**2)


def as_point(x: Point) -> np.ndarray:
    """Check that ``x`` is one point (x1, x2) and return it as a float array of shape (2,).

    A batch of one point, shaped (1, 2) like ``verify``'s counterexamples, is accepted too.
    """
    if hasattr(x, "detach"):  # a torch tensor, maybe with requires_grad
        x = x.detach().cpu()
    try:
        point = np.asarray(x, dtype=float)
    except (TypeError, ValueError, RuntimeError):
        point = None
    if point is not None and point.shape == (1, 2):
        point = point[0]
    if point is None or point.shape != (2,) or not np.isfinite(point).all():
        raise ValueError(f"expected one point (x1, x2): two finite numbers, got {x!r}")
    return point


def inside_circle_many(xs: np.ndarray) -> np.ndarray:
    """Vectorised ``inside_circle``: ``xs`` of shape (N, 2) -> int array of shape (N,) of 0/1."""
    xs = np.asarray(xs, dtype=float)
    if xs.ndim != 2 or xs.shape[1] != 2:
        raise ValueError(f"expected points of shape (N, 2), got shape {xs.shape}")
    return (((xs - CENTER) ** 2).sum(axis=1) <= RADIUS**2).astype(int)

