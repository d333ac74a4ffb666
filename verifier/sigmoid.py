"""The linear relaxation of a sigmoid that every bound of the kit uses.

CROWN replaces each activation by two lines, one below and one above the function
on the interval [l, u] its input is known to lie in. auto-LiRPA 0.3's own lines
for a sigmoid come from a table of tangent points precomputed in float32 at steps
of 0.01, and its inputs are clamped to [-500, 500] first: for an input bound below
-500 its upper line lies below the sigmoid (by up to 0.5), and the float32 table is
only as exact as float32. A proof cannot rest on that, so ``install()`` replaces
both of auto-LiRPA's sigmoid bounds (the lines, and the interval one) by these,
which hold for the exact function and are widened by a margin for float64's
rounding:

* ``u <= 0`` (sigmoid is convex there): the chord above, the tangent at the middle
  below;
* ``l >= 0`` (concave): the chord below, the tangent at the middle above;
* ``l < 0 < u``, or an interval too narrow for a chord: both lines with the
  smallest slope ``m`` the sigmoid has on [l, u] (``min(s'(l), s'(u))``, its
  derivative rises up to 0 and falls after), the lower through (l, s(l)) and the
  upper through (u, s(u)): ``s(x) - s(l) >= m (x - l)`` and ``s(u) - s(x) >= m (u - x)``;
* an infinite end: the constant lines s(l) and s(u) (the sigmoid is increasing).

No alpha-CROWN slopes: ``verifier.bounds`` runs CROWN on any network with a sigmoid.
"""
from __future__ import annotations

import torch

#: Safety margin added to each line's intercept, relative to the size of the terms
#: that make it: float64's sigmoid and the line's arithmetic are within a few ulps.
MARGIN = 1e-13


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


def interval(lo: torch.Tensor, up: torch.Tensor):
    """[sigmoid(lo), sigmoid(up)], widened by float64's rounding (and kept in [0, 1])."""
    return ((torch.sigmoid(lo) - 1e-15).clamp(min=0), (torch.sigmoid(up) + 1e-15).clamp(max=1))


def install() -> None:
    """Make auto-LiRPA's ``BoundSigmoid`` use ``relaxation`` and ``interval``."""
    from auto_LiRPA.operators.activation import BoundSigmoid

    def bound_relax(self, x):
        self.lw, self.lb, self.uw, self.ub = relaxation(x.lower, x.upper)

    def interval_propagate(self, *v):
        return interval(v[0][0], v[0][1])

    BoundSigmoid.bound_relax = bound_relax
    BoundSigmoid.interval_propagate = interval_propagate
