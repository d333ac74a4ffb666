"""Sigmoid layers in the bounds: auto-LiRPA's lines, each moved until it provably holds.

CROWN replaces each activation by two lines, one below and one above the function on the
interval [l, u] its input is known to lie in; alpha-CROWN optimises where those lines touch.
auto-LiRPA 0.3's lines for a sigmoid are not safe for a proof as they come: it clamps the
inputs to [-500, 500] first (for an input bound below -500 its upper line dips under the
function, by up to 0.5), and its tangent points come from a table computed in float32.

So ``install()`` gives CROWN lines of our own (``relaxation``: chord and middle tangent on
one side of 0; across 0, two lines of the smallest slope the sigmoid has there, through its
values at the ends), keeps alpha-CROWN's optimised lines, and then checks every line against the exact
function on the whole interval and moves it (``repair``): the largest amount
``k x + b - s(x)`` takes on [l, u] is at an end or where the sigmoid's slope equals ``k``
(``s' = s (1 - s) = k`` at ``x = +-log(s / (1 - s))``, ``s = 2k / (1 + sqrt(1 - 4k))``), so
four points decide it; the intercept moves down by that amount (up, for an upper line) plus a
margin for float64's rounding. Whatever lines auto-LiRPA picks, the bound is sound; ours only
make CROWN's tighter than auto-LiRPA's own (ERAN's sigmoid network, instances 56 and 7955: CROWN
proves them with ours, alpha-CROWN is needed with auto-LiRPA's). The interval bound of a sigmoid (``interval``) is
widened for rounding too.
"""
from __future__ import annotations

import torch

#: Margin added to each line's intercept, relative to the size of the terms that make it:
#: float64's sigmoid and the line's arithmetic are within a few ulps.
MARGIN = 1e-12


def _slope(x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s)


def relaxation(lo: torch.Tensor, up: torch.Tensor):
    """Lines ``kl x + bl <= sigmoid(x) <= ku x + bu`` for every x in [lo, up] (elementwise,
    float64): ``(kl, bl, ku, bu)``."""
    finite = torch.isfinite(lo) & torch.isfinite(up)
    lo_f = torch.where(finite, lo, torch.zeros_like(lo))
    up_f = torch.where(finite, up, torch.zeros_like(up))
    ylo, yup = torch.sigmoid(lo_f), torch.sigmoid(up_f)
    width = up_f - lo_f
    scale = 1 + lo_f.abs() + up_f.abs()
    narrow = width <= 1e-6 * scale
    chord = (yup - ylo) / torch.where(narrow, torch.ones_like(width), width)
    mid = (lo_f + up_f) / 2
    k_mid = _slope(mid)
    b_mid = torch.sigmoid(mid) - k_mid * mid
    b_chord = ylo - chord * lo_f
    m = torch.minimum(_slope(lo_f), _slope(up_f))
    convex = (up_f <= 0) & ~narrow
    concave = (lo_f >= 0) & ~narrow
    # Across 0 (and on a sliver): the two lines of slope m, nearly flat on a wide interval.
    # Tangents there (auto-LiRPA's choice) carry the previous layers' looseness along with their
    # slope: on ERAN's sigmoid network these lines prove at the root what tangents leave open.
    kl = torch.where(convex, k_mid, torch.where(concave, chord, m))
    bl = torch.where(convex, b_mid, torch.where(concave, b_chord, ylo - m * lo_f))
    ku = torch.where(convex, chord, torch.where(concave, k_mid, m))
    bu = torch.where(convex, b_chord, torch.where(concave, b_mid, yup - m * up_f))
    # Rounding: each line is off by a few ulps of its largest term on [lo, up].
    bl = bl - MARGIN * (1 + kl.abs() * scale)
    bu = bu + MARGIN * (1 + ku.abs() * scale)
    # An infinite end (bounds that CROWN could not make finite): constant lines.
    zero = torch.zeros_like(lo)
    kl, ku = torch.where(finite, kl, zero), torch.where(finite, ku, zero)
    bl = torch.where(finite, bl, torch.sigmoid(lo).nan_to_num(0.0))
    bu = torch.where(finite, bu, torch.sigmoid(up).nan_to_num(1.0))
    return kl, bl, ku, bu


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
        if self.opt_stage is not None:      # alpha-CROWN: its start ("init") and its steps
            for name in ("d_lower", "d_upper"):     # its float32 tables, in the bounds' dtype
                table = getattr(self, name)
                if table.dtype != x.lower.dtype:
                    setattr(self, name, table.to(x.lower.dtype))
            own(self, x, torch.sigmoid, self.dsigmoid)
        if self.opt_stage not in ("opt", "reuse"):  # CROWN, and alpha-CROWN's first pass
            self.lw, self.lb, self.uw, self.ub = relaxation(x.lower, x.upper)
        self.lb = repair(self.lw, self.lb, x.lower, x.upper, lower=True)
        self.ub = repair(self.uw, self.ub, x.lower, x.upper, lower=False)

    def interval_propagate(self, *v):
        return interval(v[0][0], v[0][1])

    BoundSigmoid.bound_relax = bound_relax
    BoundSigmoid.interval_propagate = interval_propagate
    BoundSigmoid._lab3_repaired = True
