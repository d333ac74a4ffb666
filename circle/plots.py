"""Pictures of the circle task: the circle, the data, specification boxes, a network's answer.

Every function draws on ``ax`` when given, else on the current axes (``plt.gca()``), so
several calls in one notebook cell stack on one picture as in the handout. Each returns the
``matplotlib.figure.Figure`` it drew on.
"""
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from torch import nn

from circle.geometry import CENTER, DOMAIN, RADIUS, inside_circle_many
from circle.sampling import net_outputs


def draw_circle(ax: Optional[Axes] = None) -> Figure:
    """Draw the true circle (centre (0.5, 0.5), radius 0.5) as a black outline."""
    ax = plt.gca() if ax is None else ax
    ax.add_patch(Circle(CENTER, RADIUS, fill=False, edgecolor="black", zorder=3))
    square_view(ax)
    return ax.figure


def draw_data(xs: np.ndarray, labels: Optional[Sequence[float]] = None,
              ax: Optional[Axes] = None) -> Figure:
    """Scatter the points ``xs`` (shape (N, 2)), coloured by label: inside (1) or outside (0).

    ``labels`` (shape (N,) or (N, 1); a label >= 0.5 means inside) defaults to the ground
    truth ``inside_circle``.
    """
    ax = plt.gca() if ax is None else ax
    xs = np.asarray(xs, dtype=float).reshape(-1, 2)
    inside = (inside_circle_many(xs) if labels is None
              else np.asarray(labels, dtype=float).reshape(-1)) >= 0.5
    if len(inside) != len(xs):
        raise ValueError(f"got {len(xs)} points but {len(inside)} labels")
    ax.scatter(xs[inside, 0], xs[inside, 1], marker=".", color="tab:blue", label="inside (1)")
    ax.scatter(xs[~inside, 0], xs[~inside, 1], marker=".", color="tab:orange",
               label="outside (0)")
    ax.legend(loc="upper right")
    square_view(ax)
    return ax.figure


def draw_spec(x1_bound: Sequence[float], x2_bound: Sequence[float],
              ax: Optional[Axes] = None, label: Optional[str] = None) -> Figure:
    """Draw the input box ``x1_bound`` x ``x2_bound`` of a specification as an outline.

    Each bound is a pair ``(lower, upper)``. ``label`` names the box in the legend.
    """
    ax = plt.gca() if ax is None else ax
    (a, b), (c, d) = x1_bound, x2_bound
    ax.plot([a, b, b, a, a], [c, c, d, d, c], label=label)
    if label is not None:
        ax.legend(loc="upper right")
    square_view(ax)
    return ax.figure


def plot_decision(net: nn.Module, ax: Optional[Axes] = None, resolution: int = 200) -> Figure:
    """Show the network's output over [0, 1.5]^2 as an image, with the true circle (black)
    and the network's own boundary, where its output crosses 0.5 (green, dashed).

    ``resolution`` is the number of grid points per side (the network runs on
    resolution**2 points at once).
    """
    if not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    ax = plt.gca() if ax is None else ax
    grid = np.linspace(*DOMAIN, resolution)
    x1, x2 = np.meshgrid(grid, grid)
    outputs = net_outputs(net, np.column_stack([x1.ravel(), x2.ravel()])).reshape(x1.shape)
    # Red says "inside" (output above 0.5), blue "outside"; 0.5 itself is white.
    norm = TwoSlopeNorm(0.5, vmin=min(0.0, outputs.min()), vmax=max(1.0, outputs.max()))
    image = ax.imshow(outputs, origin="lower", extent=(*DOMAIN, *DOMAIN), cmap="RdBu_r",
                      norm=norm)
    ax.figure.colorbar(image, ax=ax, label="network output")
    if outputs.min() < 0.5 < outputs.max():
        ax.contour(x1, x2, outputs, levels=[0.5], colors="limegreen", linestyles="--",
                   linewidths=2)
    draw_circle(ax)
    ax.set_title("network output (green dashed: output = 0.5)")
    return ax.figure


def square_view(ax: Axes) -> None:
    """Show the whole domain [0, 1.5]^2 (more if something drawn lies outside it), square."""
    drawn = ax.dataLim
    low, high = DOMAIN
    if np.isfinite(drawn.bounds).all():
        low = min(low, drawn.x0, drawn.y0)
        high = max(high, drawn.x1, drawn.y1)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
