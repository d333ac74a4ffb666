"""Branch and bound on the input box: the search for boxes over few free inputs.

When CROWN cannot prove a constraint on the whole box, we cut the box in two
along one input dimension and bound each half; halves that are proved are done,
the others are cut again. Only dimensions with nonzero width are ever cut, and
the search state holds only those. (Over many free inputs, an image's ball,
halving one width of hundreds barely moves a bound: ``verifier.relu_bab`` splits
ReLUs there instead, and ``verifier.engine`` chooses.)

Each round (``_Search.run``, read top to bottom): select the ``batch`` worst
boxes (lowest certified slack: the likeliest to hide a counterexample), split
them all, try the children's centres on the network, bound all children in one
batched auto-LiRPA call, keep the open ones, run a short PGD inside the worst
boxes, and resize the batch to the time the round took.

Which dimension to cut: ``"smear"`` (default) cuts the dimension with the largest
width x |d bound / d box edge|, a gradient version of the "smear" heuristic of
ReluVal/Neurify. Near the root (a box less than 2k cuts deep, k the number of
dimensions that have width) the gradient is taken by autograd through all of
CROWN, the intermediate layers' bounds included: those first cuts decide how
fast everything below them closes. Deeper, it is taken through the linear lower
bound CROWN returns for each box (``A x + a``, auto-LiRPA's A matrices) with A and
a held fixed, which costs nothing next to the bounds, where the full backward
pass costs more than the bounds themselves. ``"smear-full"`` uses autograd at
every depth; ``"widest"`` cuts the widest dimension relative to the original box.

After ``settings.HARD_AFTER`` boxes the search may turn hard, for the searches
where the linear scores stall (a dimension that only matters through the
intermediate layers never gets cut) and CROWN's relaxation stays too loose for
boxes as large as the property allows: every box is bounded twice, by CROWN and
again from CROWN's bounds with the other lower line for unstable ReLUs
(``Bounder.bounds(..., second=True)``: the tighter of the two, neuron by neuron);
the children both passes leave open get alpha-CROWN with those ReLU-input bounds
held fixed (only the output's slopes optimised, ``settings.FIXED_STEPS`` steps),
and the children still open after that are scored by the full gradient at every
depth. From then on each round is light or hard, whichever proved more of the box per
second in the recent rounds of its kind (``_Search.choose``; the other is tried every
``settings.HARD_PROBE``-th round): where light rounds close boxes fast, the hard ones
only cost more. Easy searches never get there and cost what they did.

``bench/HISTORY.md`` keeps the measurements behind these choices;
``bench/bench_verify.py`` compares the heuristics.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from verifier import attack, rounding, settings
from verifier.context import Context


BRANCHINGS = ("smear", "smear-full", "widest")


def check_branching(branching) -> None:
    if branching not in BRANCHINGS:
        raise ValueError(f"branching must be one of {', '.join(map(repr, BRANCHINGS))}; "
                         f"got {branching!r}")


class Outcome:
    """``rigorous``: for a pass, whether every box was closed with the rigorous
    rounding margin (see ``verifier.rounding``)."""

    def __init__(self, status, boxes, *, cexs=(), worst=None, reason="", rigorous=True):
        self.status, self.boxes, self.cexs = status, boxes, list(cexs)
        self.worst, self.reason, self.rigorous = worst, reason, rigorous


def _full(base: torch.Tensor, free: torch.Tensor, sub: torch.Tensor) -> torch.Tensor:
    full = base.expand(sub.shape[0], -1).clone()
    full[:, free] = sub
    return full


def _progress_bar(progress):
    """tqdm on stdout (stderr would cost an nbgrader cell its points), shown
    only after 2 s unless ``progress=True``."""
    return tqdm(total=100.0, file=sys.stdout, disable=progress is False,
                delay=0 if progress else 2.0, desc="verify", leave=False,
                bar_format="{desc}: {percentage:3.0f}% of the box proved "
                           "|{bar:20}| {elapsed} {postfix}")


@dataclass
class Boxes:
    """The open boxes, B of them, over the ``free`` inputs only: ``lo``/``hi`` (B, k);
    ``cert``/``rcert`` (B, K) certified slacks (with the margin used, and with the
    rigorous one); ``depth`` (B,) cuts from the root; ``score`` (B, k) how much
    cutting each dimension promises; ``ref`` (B, 2, W) each box's ReLU-input
    bounds, for its children to start from (None once they no longer fit)."""
    lo: torch.Tensor
    hi: torch.Tensor
    cert: torch.Tensor
    rcert: torch.Tensor
    depth: torch.Tensor
    score: torch.Tensor
    ref: torch.Tensor | None

    def __len__(self) -> int:
        return self.lo.shape[0]


@dataclass
class Children:
    """The two halves of each selected box (left halves first), in full input
    coordinates too (``full_lo``/``full_hi``, (2T, n)), with their parents' slacks
    and ReLU-input bounds."""
    lo: torch.Tensor
    hi: torch.Tensor
    full_lo: torch.Tensor
    full_hi: torch.Tensor
    depth: torch.Tensor
    parent_cert: torch.Tensor
    parent_rcert: torch.Tensor
    ref: torch.Tensor | None


class _Search:
    """Input splitting, one round at a time: select, split, attack the centres,
    bound, keep the open children, attack inside the worst boxes, resize."""

    def __init__(self, ctx: Context, root_cert, root_rcert, branching: str):
        dev = self.dev = ctx.bounder.device
        self.ctx, self.branching = ctx, branching
        self.base_lb, self.base_ub = ctx.proof_lb.to(dev), ctx.proof_ub.to(dev)
        self.free = ((self.base_ub - self.base_lb) > 0).nonzero().flatten()
        self.k = self.free.numel()
        self.root_width = (self.base_ub - self.base_lb)[self.free]
        self.C = ctx.prop.rows(ctx.active).to(dev)
        self.use_grad = branching in ("smear", "smear-full") and self.k > 1
        self.width = ctx.bounder.intermediate_width
        # The root has no ReLU-input bounds to start from: rows of (-inf, inf).
        ref = torch.full((1, 2, self.width), float("inf"), dtype=torch.float64, device=dev)
        ref[:, 0] = -float("inf")
        lo, hi = self.base_lb[self.free].unsqueeze(0), self.base_ub[self.free].unsqueeze(0)
        self.open = Boxes(lo, hi, root_cert.to(dev), root_rcert.to(dev),
                          torch.zeros(1, dtype=torch.float64, device=dev),
                          (hi - lo) / self.root_width, ref)   # widest-first until gradients exist
        self.ref_budget = settings.REFERENCE_BYTES // max(1, 16 * self.width)
        self.cap = max(1, min(settings.MAX_BATCH, ctx.bounder.chunk_size(self.C.shape[0]) // 2))
        # Until a round is timed, a parent's cost is guessed from CROWN's on the whole box.
        self.per_parent = 2 * settings.ROUND_COST_FACTOR * ctx.bound_seconds
        left = ctx.deadline - time.monotonic()
        self.batch = max(1, min(settings.FIRST_BATCH,
                                int(0.5 * left / max(self.per_parent, 1e-9))))
        self.rigorous, self.proved, self.boxes = True, 0.0, 1
        # Per mode ("light", "hard"): the share of the box proved per second, and seconds
        # per parent, over recent rounds (``choose``, ``measure``).
        self.rate: dict = {}
        self.cost: dict = {}
        self.rounds = 0

    def outcome(self, status: str, **kw) -> Outcome:
        if status == "unknown":
            kw["worst"] = self.open.cert.amin(0)
        return Outcome(status, self.boxes, **kw)

    def run(self, max_boxes: int) -> Outcome:
        bar = _progress_bar(self.ctx.progress)
        try:
            while len(self.open):
                left = self.ctx.deadline - time.monotonic()
                if left <= 0:
                    return self.outcome("unknown", reason="time budget used up")
                if self.per_parent > left:
                    return self.outcome("unknown", reason="time budget used up (the next "
                                        f"round would take about {self.per_parent:.2g} s)")
                if len(self.open) > max_boxes:
                    return self.outcome("unknown", reason=f"more than {max_boxes} open boxes")
                t_round = time.monotonic()
                mode = self.choose()
                sel, keep = self.select(self.fits(mode, left))
                kids = self.split(sel)
                cexs = _attack_centres(self.ctx, kids.full_lo, kids.full_hi)
                if cexs:
                    return self.outcome("fail", cexs=cexs)
                c_cert, c_rcert, c_score, new_ref = self.bound(kids, hard=mode == "hard")
                proved_now = self.keep_open(keep, kids, c_cert, c_rcert, c_score, new_ref)
                self.measure(mode, time.monotonic() - t_round, sel.numel(), proved_now)
                if len(self.open):
                    cexs = _attack_boxes(self.ctx, self.base_lb, self.base_ub, self.free,
                                         self.open.lo, self.open.hi, self.open.cert,
                                         self.ctx.gen)
                    if cexs:
                        return self.outcome("fail", cexs=cexs)
                bar.update(100.0 * proved_now)
                bar.set_postfix_str(f"{self.boxes} boxes, {len(self.open)} open", refresh=False)
                self.resize(time.monotonic() - t_round, sel.numel())
            return Outcome("pass", self.boxes, rigorous=self.rigorous)
        finally:
            bar.close()

    def choose(self) -> str:
        """This round's mode: "light" before ``HARD_AFTER`` boxes; after, the mode that
        proved more of the box per second in recent rounds (one of each first, then as
        measured), the other one every ``HARD_PROBE``-th round so that its rate stays
        current: the hard bounds pay where light ones stall, and cost twice as much and
        more where they do not. (Counting closed children instead favours light rounds
        that close many small boxes deep down while the hard frontier stays open.)"""
        if self.boxes < settings.HARD_AFTER:
            return "light"
        if self.rounds == 0:    # the early rounds' big boxes say little about the later ones
            self.rate.clear()
        self.rounds += 1
        for mode in ("hard", "light"):
            if mode not in self.rate:
                return mode
        best = max(self.rate, key=self.rate.get)
        if self.rounds % settings.HARD_PROBE == 0:
            return "light" if best == "hard" else "hard"
        return best

    def fits(self, mode: str, left: float) -> int:
        """The batch, cut to what a round of ``mode`` does within ``MAX_ROUND`` seconds and
        half the time left (the rounds of the two modes cost differently)."""
        per = self.cost.get(mode, self.per_parent)
        return max(1, min(self.batch, int(min(settings.MAX_ROUND, 0.5 * left) / max(per, 1e-9))))

    def measure(self, mode: str, spent: float, parents: int, proved: float) -> None:
        """Moving averages of the share of the box proved per second and of the seconds
        per parent."""
        rate, per = proved / max(spent, 1e-9), spent / max(1, parents)
        self.rate[mode] = rate if mode not in self.rate else 0.5 * (self.rate[mode] + rate)
        self.cost[mode] = per if mode not in self.cost else 0.5 * (self.cost[mode] + per)

    def select(self, take: int):
        """The ``take`` boxes with the lowest certified slack (the likeliest to hide
        a counterexample), and a mask of the others."""
        n = len(self.open)
        sel = torch.topk(-self.open.cert.amin(1), min(n, take)).indices
        keep = torch.ones(n, dtype=torch.bool, device=self.dev)
        keep[sel] = False
        return sel, keep

    def split(self, sel: torch.Tensor) -> Children:
        """Cut each selected box in two halves along its best-scored dimension."""
        o = self.open
        take = sel.numel()
        dim = o.score[sel].argmax(1)
        rows = torch.arange(take, device=self.dev)
        p_lo, p_hi = o.lo[sel], o.hi[sel]
        mid = (p_lo[rows, dim] + p_hi[rows, dim]) / 2
        left_hi, right_lo = p_hi.clone(), p_lo.clone()
        left_hi[rows, dim] = mid
        right_lo[rows, dim] = mid
        c_lo, c_hi = torch.cat([p_lo, right_lo]), torch.cat([left_hi, p_hi])
        return Children(c_lo, c_hi, _full(self.base_lb, self.free, c_lo),
                        _full(self.base_ub, self.free, c_hi), o.depth[sel].repeat(2) + 1,
                        o.cert[sel].repeat(2, 1), o.rcert[sel].repeat(2, 1),
                        None if o.ref is None else o.ref[sel].repeat(2, 1, 1))

    def bound(self, kids: Children, hard: bool = False):
        """Certified slacks of the children, their branching scores and their
        ReLU-input bounds. Light: one CROWN pass, the gradient through all of CROWN
        near the root and through the linear bound deeper (two calls); ``hard``: the
        two relaxations, alpha-CROWN on the children still open and the full gradient
        for those still open after it."""
        ctx, C = self.ctx, self.C
        n_kids = kids.lo.shape[0]
        if hard:
            c_cert, c_rcert, _, new_ref = _bound(ctx, C, kids.full_lo, kids.full_hi, None,
                                                 kids.ref, second=True)
            _optimise(ctx, C, kids.full_lo, kids.full_hi, c_cert, c_rcert, kids.parent_cert,
                      new_ref)
            g = None
            if self.use_grad:    # the full gradient, only for the children still open
                g = torch.zeros_like(kids.full_lo)
                still = ~(torch.maximum(c_cert, kids.parent_cert) > 0).all(1)
                if still.any():
                    g[still] = _bound(ctx, C, kids.full_lo[still], kids.full_hi[still], "full",
                                      new_ref[still])[2]
        elif self.use_grad:
            full_grad = kids.depth <= 2 * self.k if self.branching == "smear" \
                else torch.ones_like(kids.depth, dtype=torch.bool)
            c_cert = torch.empty(n_kids, len(ctx.active), dtype=torch.float64, device=self.dev)
            c_rcert, g = torch.empty_like(c_cert), torch.empty_like(kids.full_lo)
            new_ref = torch.empty(n_kids, 2, self.width, dtype=torch.float64, device=self.dev)
            for group, how in ((full_grad, "full"), (~full_grad, "linear")):
                if group.any():
                    c_cert[group], c_rcert[group], g[group], new_ref[group] = _bound(
                        ctx, C, kids.full_lo[group], kids.full_hi[group], how,
                        None if kids.ref is None else kids.ref[group])
        else:
            c_cert, c_rcert, g, new_ref = _bound(ctx, C, kids.full_lo, kids.full_hi, None,
                                                 kids.ref)
        c_score = (kids.hi - kids.lo) / self.root_width
        if self.use_grad:    # widest-first where the gradient is all zero
            by_grad = (kids.hi - kids.lo) * g[:, self.free]
            c_score = torch.where(by_grad.amax(1, keepdim=True) > 0, by_grad, c_score)
        # A parent's proof holds on its children. (NaN never proves: NaN > 0 is false.)
        return (torch.maximum(c_cert, kids.parent_cert),
                torch.maximum(c_rcert, kids.parent_rcert), c_score, new_ref)

    def keep_open(self, keep, kids: Children, c_cert, c_rcert, c_score, new_ref) -> float:
        """Drop the proved children, put the others with the boxes not selected;
        returns the share of the root box proved this round."""
        done = (c_cert > 0).all(1)
        self.rigorous = self.rigorous and bool((c_rcert[done] > 0).all())
        proved_now = torch.exp2(-kids.depth[done]).sum().item()
        self.proved += proved_now
        self.boxes += kids.lo.shape[0]
        o, open_ = self.open, ~done
        ref = None
        if o.ref is not None:
            # Keep the open boxes' bounds while they fit in REFERENCE_BYTES; past that
            # every later box is bounded from scratch (slower, as tight).
            n_open = int(keep.sum()) + int(open_.sum())
            ref = torch.cat([o.ref[keep], new_ref[open_]]) if n_open <= self.ref_budget else None
        self.open = Boxes(torch.cat([o.lo[keep], kids.lo[open_]]),
                          torch.cat([o.hi[keep], kids.hi[open_]]),
                          torch.cat([o.cert[keep], c_cert[open_]]),
                          torch.cat([o.rcert[keep], c_rcert[open_]]),
                          torch.cat([o.depth[keep], kids.depth[open_]]),
                          torch.cat([o.score[keep], c_score[open_]]), ref)
        return proved_now

    def resize(self, spent: float, take: int) -> None:
        """Grow the batch while rounds are quick, but keep a round within half of
        what the budget has left (and within ``MAX_ROUND``): a round's cost grows
        faster than its size, and a round that ends past the deadline breaks the
        timeout."""
        if spent < settings.QUICK_ROUND and self.batch < self.cap:
            self.batch = min(self.cap, self.batch * 2)
        per_parent = self.per_parent = spent / take
        left = self.ctx.deadline - time.monotonic()
        self.batch = max(1, min(self.batch, int(min(settings.MAX_ROUND, 0.5 * left)
                                                / max(per_parent, 1e-9))))


def branch_and_bound(ctx: Context, root_cert: torch.Tensor, root_rcert: torch.Tensor, *,
                     branching: str = "smear", max_boxes: int | None = None) -> Outcome:
    """Prove ``ctx.active`` on the whole box by cutting it. ``root_cert``,
    ``root_rcert`` (1, K): their certified slacks on the whole box, with the margin
    used and with the rigorous margin."""
    search = _Search(ctx, root_cert, root_rcert, branching)
    if search.k == 0:
        return Outcome("unknown", 1, worst=root_cert[0],
                       reason="the box is a single point and its bound is too loose")
    return search.run(settings.MAX_BOXES if max_boxes is None else max_boxes)


def _optimise(ctx, C, full_lo, full_hi, c_cert, c_rcert, parent_cert, ref):
    """alpha-CROWN on the children still open, each box's ReLU-input bounds ``ref``
    held fixed (``Bounder.bounds``); raises ``c_cert``, ``c_rcert`` in place."""
    still = ~(torch.maximum(c_cert, parent_cert) > 0).all(1)
    if ctx.bounder.intermediate_width == 0 or not still.any():
        return
    a_cert, a_rcert = _bound(ctx, C, full_lo[still], full_hi[still], None, ref[still],
                             method="alpha-CROWN")[:2]
    c_cert[still] = torch.maximum(c_cert[still], a_cert)
    c_rcert[still] = torch.maximum(c_rcert[still], a_rcert)


def _bound(ctx, C, lo, hi, how, reference=None, second=False, method="CROWN"):
    """Certified slacks ``(cert, rcert)`` (B, len(active)) of the boxes ``lo <= x <= hi``
    (full inputs); with ``how`` = "full" or "linear" the branching gradient
    |d cert / d box edge| (B, n), else None; and the bounds of the ReLUs' inputs on
    each box (``Bounder.bounds``), found from ``reference``, their parents' bounds."""
    if reference is not None and not bool(torch.isfinite(reference).any()):
        # The root's children have no ReLU bounds yet: asked with none, auto-LiRPA bounds only
        # the neurons its interval pass leaves unstable; asked with infinite ones, all of them.
        reference = None
    if how == "full":
        lo, hi = lo.clone().requires_grad_(True), hi.clone().requires_grad_(True)
    got = ctx.bounder.bounds(lo, hi, C, method=method, grad=how == "full", linear=how == "linear",
                             reference=reference, intermediate=True, second=second)
    err, mag = rounding.forward_error(ctx.network, lo.detach(), hi.detach())
    cert, rcert = ctx.prop.certify(got[0], err, mag, ctx.active)
    g = None
    if how == "full":
        g_lo, g_hi = torch.autograd.grad(cert.amin(1).sum(), (lo, hi), allow_unused=True)
        g = sum(x.abs() for x in (g_lo, g_hi) if x is not None)
        g = g if torch.is_tensor(g) else torch.zeros_like(lo)
    elif how == "linear":
        g = _linear_score(ctx, got[2], lo, hi, err, mag)
    return cert.detach(), rcert.detach(), (None if g is None else g.detach()), got[-1]


def _linear_score(ctx, linear, full_lo, full_hi, err, mag):
    """|d cert / d box edge| through the linear bounds alone: each row's lower bound
    is ``A c - |A| r + a`` (c the box centre, r its half width), with A and a held
    fixed, so the intermediate layers' bounds are not differentiated (that costs
    more than the bounds themselves). The certificate is recomputed from this
    stand-in only for its gradient; the proof uses the real bounds."""
    A, a = linear
    lo = full_lo.detach().clone().requires_grad_(True)
    hi = full_hi.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        c, r = ((lo + hi) / 2).unsqueeze(-1), ((hi - lo) / 2).unsqueeze(-1)
        L = (A @ c).squeeze(-1) - (A.abs() @ r).squeeze(-1) + a
        cert, _ = ctx.prop.certify(L, err, mag, ctx.active)
        g_lo, g_hi = torch.autograd.grad(cert.amin(1).sum(), (lo, hi))
    return g_lo.abs() + g_hi.abs()


def _attack_centres(ctx, full_lo, full_hi):
    centres = ctx.box.clamp((full_lo.detach() + full_hi.detach()) / 2)
    s = attack.scores(ctx.network, ctx.prop, centres)
    bad = s < 1e-6
    if bad.any():
        return attack.confirm(ctx.net, ctx.prop, ctx.box, centres[bad], ctx.input_shape)
    return []


def _attack_boxes(ctx, base_lb, base_ub, free, lo, hi, cert, gen, n: int = 16):
    """PGD inside two kinds of open boxes: those with the worst bound, and those whose
    centre comes closest to breaking the property. A violation hidden in a tiny
    region (a score margin of 1e-4 or less) sits in boxes
    whose bound is far from the worst, but whose centres show it first. A few more
    starts come from a fresh sweep of the whole box (``attack.sweep``: its faces
    too), so the search for a counterexample never stops while the boxes shrink."""
    take = min(n, lo.shape[0])
    by_bound = torch.topk(-cert.amin(1), take).indices
    centres = ctx.box.clamp((_full(base_lb, free, lo) + _full(base_ub, free, hi)) / 2)
    by_centre = torch.topk(-attack.scores(ctx.network, ctx.prop, centres, ctx.active), take).indices
    idx = torch.unique(torch.cat([by_bound, by_centre]))
    b_lo = ctx.box.clamp(_full(base_lb, free, lo[idx]))
    b_hi = ctx.box.clamp(_full(base_ub, free, hi[idx]))
    r = torch.rand(b_lo.shape, generator=gen, dtype=torch.float64).to(b_lo.device)
    starts = ctx.box.clamp(b_lo.double() + r * (b_hi.double() - b_lo.double()))
    pool = attack.sweep(ctx.box, gen, 1024)
    best = pool[torch.topk(-attack.scores(ctx.network, ctx.prop, pool, ctx.active), 8).indices]
    whole = lambda edge: edge.expand(best.shape[0], -1)  # noqa: E731
    pts = attack.pgd(ctx.network, ctx.prop, ctx.box, torch.cat([starts, best]), steps=10,
                     lo=torch.cat([b_lo, whole(ctx.box.lo)]),
                     hi=torch.cat([b_hi, whole(ctx.box.hi)]), active=ctx.active)
    pts = torch.cat([pts, pool])
    s = attack.scores(ctx.network, ctx.prop, pts)
    if (s < 1e-6).any():
        return attack.confirm(ctx.net, ctx.prop, ctx.box, pts[s < 1e-6], ctx.input_shape)
    return []
