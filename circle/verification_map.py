"""A map of what ``verify()`` can prove about a circle network, tile by tile.

The square [0, 1.5]^2 is cut into ``tiles`` x ``tiles`` boxes. A box wholly inside the circle
should give "inside" (y >= 0.5) everywhere, a box wholly outside should give "outside"
(y < 0.5); ``verify()`` checks each such box. Boxes that cross the circle's rim hold both
kinds of points, so no single output bound is right for them: they are left grey.
"""
import math
from typing import List, NamedTuple, Optional, Tuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from torch import nn

from circle.geometry import CENTER, DOMAIN, RADIUS
from circle.plots import square_view, draw_circle

Box = Tuple[Tuple[float, float], Tuple[float, float]]

COLOURS = {"pass": "tab:green", "fail": "tab:red", "unknown": "gold", "mixed": "lightgrey"}

# "y >= 0.5" and "y < 0.5" as y_specs. verify() checks lb <= y <= ub, so the "outside" spec
# is really y <= 0.5: an output of exactly 0.5 would pass it (a float32 network hitting 0.5
# exactly on a whole tile is not a practical worry).
INSIDE_SPEC = [[0.5, math.inf]]
OUTSIDE_SPEC = [[-math.inf, 0.5]]


class Tile(NamedTuple):
    """One box of the map and what was found about it."""
    box: Box        # ((x1_lb, x1_ub), (x2_lb, x2_ub))
    region: str     # "inside", "outside" or "mixed" (crosses the rim)
    status: str     # "pass", "fail", "unknown", or "mixed" when not verified


def tile_region(box: Box) -> str:
    """Say whether ``box`` lies wholly "inside" the circle, wholly "outside", or is "mixed"."""
    (a, b), (c, d) = box
    corners = np.array([[a, c], [a, d], [b, c], [b, d]])
    if (((corners - CENTER) ** 2).sum(axis=1) <= RADIUS**2).all():  # the disc is convex
        return "inside"
    nearest = np.clip(CENTER, [a, c], [b, d])  # the box's point closest to the centre
    if ((nearest - CENTER) ** 2).sum() > RADIUS**2:
        return "outside"
    return "mixed"


def verify_tiles(net: nn.Module, tiles: int = 6, timeout_per_tile: float = 2.0) -> List[Tile]:
    """Run ``verify()`` on every tile wholly inside or outside the circle; see module doc.

    Returns one ``Tile`` per box, row by row from the bottom left. The outside property
    "y < 0.5" is checked as ``y_specs = [[-inf, 0.5]]``, i.e. y <= 0.5, since verify's bounds
    are inclusive. ``timeout_per_tile`` is in seconds.
    """
    from verifier import verify  # imported here: it loads auto-LiRPA, which takes a while

    if not isinstance(tiles, int) or tiles < 1:
        raise ValueError(f"tiles must be a positive int, got {tiles!r}")
    edges = np.linspace(*DOMAIN, tiles + 1)
    found = []
    for j in range(tiles):
        for i in range(tiles):
            box = ((float(edges[i]), float(edges[i + 1])), (float(edges[j]), float(edges[j + 1])))
            region = tile_region(box)
            status = "mixed"
            if region != "mixed":
                y_specs = INSIDE_SPEC if region == "inside" else OUTSIDE_SPEC
                result = verify(net, list(box), y_specs, timeout=timeout_per_tile, progress=False)
                status = result.status
            found.append(Tile(box, region, status))
    return found


def plot_verification_map(net: nn.Module, tiles: int = 6, ax: Optional[Axes] = None,
                          timeout_per_tile: float = 2.0) -> Figure:
    """Colour each tile of [0, 1.5]^2 by what ``verify()`` says about the network there.

    Green: proven ("pass"); red: a counterexample was found ("fail"); yellow: "unknown"
    within ``timeout_per_tile`` seconds; grey: the tile crosses the circle's rim and is not
    verified. See ``verify_tiles`` for the specifications used. Draws on ``ax`` (default: the
    current axes) and returns its figure.
    """
    found = verify_tiles(net, tiles, timeout_per_tile)
    ax = plt.gca() if ax is None else ax
    for tile in found:
        (a, b), (c, d) = tile.box
        ax.add_patch(Rectangle((a, c), b - a, d - c, facecolor=COLOURS[tile.status],
                               edgecolor="white", linewidth=0.5))
    draw_circle(ax)
    counts = {status: sum(t.status == status for t in found) for status in COLOURS}
    ax.legend(handles=[Patch(color=colour, label=f"{status} ({counts[status]})")
                       for status, colour in COLOURS.items()],
              loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_title(f"verify() on {tiles}x{tiles} tiles")
    square_view(ax)
    return ax.figure
