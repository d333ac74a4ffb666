"""Look for counterexamples: sample the box, then follow the gradient (PGD).

Everything here is deterministic by default: random numbers come from a local
``torch.Generator`` with a fixed seed, never from the global RNG, so calling
``verify`` does not change a student's ``torch.manual_seed`` stream.

A point only becomes a counterexample after ``confirm`` ran the *real* network
on it, shaped as the network takes it (``input_shape``) and in the network's own
dtype and device, and the output broke the property.
"""
from __future__ import annotations

import torch


class Box:
    """The search box in the network's dtype: every point we try lies in it.

    ``lo``/``hi`` are the smallest/largest ``dtype`` numbers inside [lb, ub], so
    a counterexample is inside the user's box even when compared in float64. An
    interval can hold no ``dtype`` number at all (lb = ub = 0.1 in float32):
    ``empty`` marks those dimensions. We still search at the nearest number
    there (it tells the network's behaviour near the box), but ``confirm`` never
    reports a point outside [lb, ub], so such a box can have no counterexample.
    """

    def __init__(self, lb: torch.Tensor, ub: torch.Tensor, dtype, device):
        lo, hi = lb.to(dtype), ub.to(dtype)
        up = torch.tensor(float("inf"), dtype=dtype)
        down = torch.tensor(float("-inf"), dtype=dtype)
        lo = torch.where(lo.double() < lb, torch.nextafter(lo, up), lo)
        hi = torch.where(hi.double() > ub, torch.nextafter(hi, down), hi)
        self.empty = lo > hi
        lo = torch.where(self.empty, lb.to(dtype), lo)
        hi = torch.where(self.empty, lb.to(dtype), hi)
        self.lo, self.hi = lo.to(device), hi.to(device)
        self.lb, self.ub = lb.to(device), ub.to(device)
        self.dtype, self.device = dtype, device

    def contains(self, x: torch.Tensor) -> torch.Tensor:
        """Which points (K, n) lie in [lb, ub], compared exactly (in float64)?"""
        xd = x.to(self.device).double()
        return ((xd >= self.lb) & (xd <= self.ub)).all(1)

    def clamp(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(x.to(self.dtype), self.hi), self.lo)

    def uniform(self, k: int, gen: torch.Generator, lo=None, hi=None) -> torch.Tensor:
        lo = self.lo if lo is None else lo
        hi = self.hi if hi is None else hi
        r = torch.rand(k, lo.shape[-1], generator=gen, dtype=torch.float64).to(self.device)
        return self.clamp(lo.double() + r * (hi.double() - lo.double()))


def samples(box: Box, gen: torch.Generator, n_random: int = 32,
            max_corners: int = 256) -> torch.Tensor:
    """The centre, corners of the box (all of them when few) and random points."""
    lo, hi = box.lo.double(), box.hi.double()
    free = (hi > lo).nonzero().flatten()
    k = free.numel()
    pts = [((lo + hi) / 2).unsqueeze(0)]
    if k > 0:
        if 2 ** k <= max_corners:
            bits = torch.arange(2 ** k).unsqueeze(1) >> torch.arange(k)
            bits = (bits & 1).to(torch.float64).to(box.device)
        else:
            bits = torch.randint(0, 2, (max_corners, k), generator=gen).double().to(box.device)
        corners = lo.repeat(bits.shape[0], 1)
        corners[:, free] = lo[free] + bits * (hi[free] - lo[free])
        pts.append(corners)
        pts.append(box.uniform(n_random, gen).double())
    return box.clamp(torch.cat(pts))


def sweep(box: Box, gen: torch.Generator, n: int = 1024, on_face: float = 0.3) -> torch.Tensor:
    """``n`` random points of the box: half uniform, half with each coordinate
    moved to a bound with probability ``on_face`` (to the lower or the upper one
    alike). Counterexamples often sit on the box's faces, where the
    uniform points almost never go (a property broken only near one face is
    found by PGD from the best few of these where hundreds of thousands of
    uniform points miss it)."""
    x = box.uniform(n, gen)
    half = n // 2
    u = torch.rand(n - half, x.shape[1], generator=gen, dtype=torch.float64).to(box.device)
    x[half:] = torch.where(u < on_face / 2, box.lo, torch.where(u < on_face, box.hi, x[half:]))
    return x


def scores(network, prop, x: torch.Tensor, active: list[int] | None = None) -> torch.Tensor:
    """min slack over constraints at points ``x`` (no gradient)."""
    with torch.no_grad():
        return prop.objective(network.logits(x).double(), active)


def targets(network, prop, x: torch.Tensor, active: list[int]) -> torch.Tensor:
    """For each start (R, n), which of ``active`` to chase: the constraints in turn,
    the closest to breaking first, so one nearly broken constraint is not hidden
    behind another whose slack is smaller but cannot go below zero."""
    with torch.no_grad():
        closest = prop.slacks(network.logits(x).double(), active).amin(0)
    order = torch.argsort(closest)
    return order.repeat(x.shape[0] // len(active) + 1)[: x.shape[0]].to(x.device)


def pgd(network, prop, box: Box, starts: torch.Tensor, *, steps: int = 30,
        lo=None, hi=None, active=None, aim=None) -> torch.Tensor:
    """Projected sign-gradient descent from ``starts`` (R, n), each start on the
    slack of one constraint of ``active`` (``aim`` (R,): its position in ``active``;
    by default see ``targets``).

    ``lo``/``hi`` (R, n) optionally restrict each start to a sub-box. Returns
    every point visited whose slack went negative, plus the final points.
    """
    active = list(range(len(prop.constraints))) if active is None else active
    lo = box.lo.expand_as(starts) if lo is None else lo
    hi = box.hi.expand_as(starts) if hi is None else hi
    width = (hi - lo).to(box.dtype)
    x = starts.to(box.dtype).clone()
    aim = (targets(network, prop, x, active) if aim is None else aim.to(x.device)).unsqueeze(1)
    found = []
    for t in range(steps):
        x.requires_grad_(True)
        with torch.enable_grad():
            own = prop.slacks(network.logits(x).double(), active).gather(1, aim)[:, 0]
            (g,) = torch.autograd.grad(torch.nan_to_num(own).sum(), x)
        x = x.detach()
        bad = own.detach() < 0
        if bad.any():
            found.append(x[bad])
        step = 0.2 * (1 - t / steps) + 0.01          # fraction of the width
        x = x - step * width * torch.sign(g)
        x = torch.maximum(torch.minimum(x, hi), lo)
    return torch.cat(found + [x.detach()])


def image_attack(network, prop, box: Box, gen: torch.Generator, active: list, *,
                 restarts: int, steps: int) -> torch.Tensor:
    """PGD for boxes over many inputs (an image's L-infinity ball): ``restarts``
    random starts per constraint of ``active``, the constraints closest to
    breaking at the box's centre first (for a robustness property: the runner-up
    classes), each start chasing its own constraint for ``steps`` steps. Returns
    the points visited that broke their constraint, and the final points."""
    centre = box.clamp((box.lo.double() + box.hi.double()) / 2).unsqueeze(0)
    with torch.no_grad():
        closest = prop.slacks(network.logits(centre).double(), active)[0]
    order = torch.argsort(closest)
    aim = order.repeat_interleave(restarts)
    starts = box.uniform(aim.numel(), gen)
    starts[::restarts] = centre          # one start per target from the centre
    return pgd(network, prop, box, starts, steps=steps, active=active, aim=aim)


def confirm(net: torch.nn.Module, prop, box: Box, points: torch.Tensor, input_shape: tuple,
            limit: int = 5) -> list:
    """Run the real network on the most promising points of the box, one at a
    time, as a student would, and keep those whose output breaks the property.

    This is the only way a counterexample is made: a point outside [lb, ub]
    (see ``Box.empty``) is never one."""
    points = points[box.contains(points)]
    if points.numel() == 0:
        return []
    network = prop.network
    s = scores(network, prop, points)
    order = torch.argsort(s)
    out = []
    with torch.no_grad():
        for idx in order[: 4 * limit].tolist():
            if s[idx] >= 1e-6 * (1 + abs(float(s[idx]))):
                break
            cex = points[idx].detach().clone().reshape(input_shape)
            y = net(cex)
            if prop.violations(y):
                if not any(torch.equal(cex, c) for c in out):
                    out.append(cex)
                if len(out) >= limit:
                    break
    return out
