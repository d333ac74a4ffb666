"""Sigmoid layers in the bounds: auto-LiRPA's lines, each moved until it provably holds.

CROWN replaces each activation by two lines, one below and one above the function on the
interval [l, u] its input is known to lie in; alpha-CROWN optimises where those lines touch.
auto-LiRPA 0.3's lines for a sigmoid are not safe for a proof as they come: it clamps the
inputs to [-500, 500] first (for an input bound below -500 its upper line dips under the
function, by up to 0.5), and its tangent points come from a table computed in float32.

So ``install()`` keeps auto-LiRPA's choice of lines (CROWN's, and alpha-CROWN's optimised
ones) and then checks each line against the exact function on the whole interval and moves
it (``repair``): the largest amount ``k x + b - s(x)`` takes on [l, u] is at an end or where
the sigmoid's slope equals ``k`` (``s' = s (1 - s) = k`` at ``x = +-log(s / (1 - s))``,
``s = 2k / (1 + sqrt(1 - 4k))``), so four points decide it; the intercept moves down by that
amount (up, for an upper line) plus a margin for float64's rounding. Whatever lines
auto-LiRPA picks, the bound is sound. The interval bound of a sigmoid (``interval``) is
widened for rounding too.
"""
from __future__ import annotations

import torch

#: Margin added to each line's intercept, relative to the size of the terms that make it:
#: float64's sigmoid and the line's arithmetic are within a few ulps.
MARGIN = 1e-12


def repair(k: torch.Tensor, b: torch.Tensor, lo: torch.Tensor, up: torch.Tensor,
           lower: bool) -> torch.Tensor:
    """The intercept that makes ``k x + b`` a line below (``lower``) or above the sigmoid on
    every [lo, up] (broadcast against ``k`` and ``b``)."""
    kk = k.clamp(min=0.0, max=0.25)
    root = torch.sqrt((1 - 4 * kk).clamp(min=0.0))
    s = (2 * kk / (1 + root)).clamp(min=1e-300, max=0.5)    # the smaller s with s (1 - s) = k
    x = torch.log(s) - torch.log1p(-s)                      # where the slope is k (and at -x)
    sign = 1.0 if lower else -1.0
    worst = None
    for c in (lo, up, torch.minimum(torch.maximum(x, lo), up),
              torch.minimum(torch.maximum(-x, lo), up)):
        gap = sign * (k * c + b - torch.sigmoid(c))
        worst = gap if worst is None else torch.maximum(worst, gap)
    shift = worst.clamp(min=0.0) + MARGIN * (1 + k.abs() * (1 + lo.abs() + up.abs()))
    shift = torch.where(torch.isnan(shift), torch.full_like(shift, float("inf")), shift)
    return b - shift if lower else b + shift


def interval(lo: torch.Tensor, up: torch.Tensor):
    """[sigmoid(lo), sigmoid(up)], widened by float64's rounding (and kept in [0, 1])."""
    return ((torch.sigmoid(lo) - 1e-15).clamp(min=0), (torch.sigmoid(up) + 1e-15).clamp(max=1))


def install() -> None:
    """Make auto-LiRPA's ``BoundSigmoid`` repair its lines and widen its interval bound."""
    from auto_LiRPA.operators.activation import BoundSigmoid

    if getattr(BoundSigmoid, "_lab3_repaired", False):
        return
    own = BoundSigmoid.bound_relax_impl

    def bound_relax(self, x):
        for name in ("d_lower", "d_upper"):     # its float32 tables, in the bounds' dtype
            table = getattr(self, name)
            if table.dtype != x.lower.dtype:
                setattr(self, name, table.to(x.lower.dtype))
        own(self, x, torch.sigmoid, self.dsigmoid)
        self.lb = repair(self.lw, self.lb, x.lower, x.upper, lower=True)
        self.ub = repair(self.uw, self.ub, x.lower, x.upper, lower=False)

    def interval_propagate(self, *v):
        return interval(v[0][0], v[0][1])

    BoundSigmoid.bound_relax = bound_relax
    BoundSigmoid.interval_propagate = interval_propagate
    BoundSigmoid._lab3_repaired = True
