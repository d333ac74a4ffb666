"""Branch and bound on ReLU splits, for boxes with many free inputs (MNIST balls).

Cutting the input box in two halves one of 784 widths at a time: CROWN's bound
barely moves. What makes the bound loose is the unstable ReLUs (pre-activation
bounds l < 0 < u), each replaced by a triangle of lines. This search splits
those instead: a subproblem ("domain") is the input box plus a sign for some
neurons, z_i >= 0 (active: ReLU(z_i) = z_i) or z_i <= 0 (inactive: 0). The two
children of a split together cover their parent, so proving every leaf proves
the box.

How a domain is bounded (beta-CROWN's idea, in two passes):

* the pre-activation bounds of every ReLU start from the whole box (CROWN and
  alpha-CROWN through auto-LiRPA, ``verifier.bounds``) and hold on every domain;
  a split clamps the split neuron's bounds to [max(l, 0), u] or [l, min(u, 0)],
  which holds on the child because the child only has the points where the sign
  is right;
* after a split, CROWN re-bounds every layer after it from those clamped bounds
  (``_refine``: auto-LiRPA's reference bounds, intersected layer by layer, the
  first layer pinned), so the split tightens everything downstream;
* then one linear backward pass from the property's rows (``_backward``), with
  the lower line of each unstable ReLU at a slope alpha in [0, 1] (alpha-CROWN)
  and a multiplier beta >= 0 per split neuron: on a domain ``s z >= 0`` (s = +1
  or -1), so ``f >= f - beta s z`` and any lower bound of the right-hand side
  over the box is one of ``f`` on the domain. Any alpha in [0, 1] and beta >= 0
  give a sound bound; ``settings.BETA_STEPS`` steps of Adam, started from the
  parent's alpha and beta, choose good ones, and only the constraints a domain
  still has open are bounded;
* every bound is in float64 and becomes a proof through ``Property.certify``, with
  the same rounding margins as every other proof of the kit; a child keeps the
  better of its own slack and its parent's (its points are its parent's).

A domain whose clamped bounds cross (some l > u, beyond float64 rounding) is
empty: no input of the box reaches those signs, and it needs no proof.

Which neuron to split: the one whose triangle costs the bound most, BaBSR's
estimate ``|lambda| u (-l) / (u - l)`` (lambda: the backward pass's coefficient
on the ReLU's output, where negative: that is where the upper line's intercept
enters the bound), times ``settings.RELU_LAYER_GAIN`` for each ReLU layer after
the neuron's. The estimate counts only what the split's own triangle costs the
final bound; a split in an early layer also narrows the bounds of every layer
after it (``_refine``), and through them their triangles, which the estimate
does not see. Without the gain the search splits the last layer, where the
estimate is largest, deep down a path whose bound hardly moves.

Between rounds the search tries each domain's own bound minimiser (the box
corner that the linear bound picks) on the real network, and every few rounds a
targeted PGD (``attack.image_attack``); a counterexample ends it as "fail".
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from verifier import attack, rounding, settings
from verifier.context import Context


@dataclass
class Outcome:
    """What the search ended with; ``worst`` (len(active),) the lowest certified
    slack among the open domains when it did not prove everything."""
    status: str                     # "pass", "fail" or "unknown"
    boxes: int                      # domains bounded
    cexs: list = field(default_factory=list)
    worst: torch.Tensor | None = None
    reason: str = ""
    rigorous: bool = True


@dataclass
class Domains:
    """Open subproblems, B of them. ``lower[j]``, ``upper[j]`` (B, n_j): bounds of the
    j-th ReLU's input on each domain (split neurons clamped); ``cert`` (B, K) the
    certified slacks found so far; ``depth`` (B,) how many splits."""
    lower: list
    upper: list
    cert: torch.Tensor
    rcert: torch.Tensor
    depth: torch.Tensor
    sign: list                      # (B, n_j) int8: +1 active, -1 inactive, 0 not split
    alpha: list                     # (B, K, n_j) float32: the slopes the bound ended with
    beta: list                      # (B, K, n_j) float32: the split multipliers, likewise

    def __len__(self) -> int:
        return self.cert.shape[0]

    def take(self, idx: torch.Tensor) -> "Domains":
        return Domains([x[idx] for x in self.lower], [x[idx] for x in self.upper],
                       self.cert[idx], self.rcert[idx], self.depth[idx],
                       [x[idx] for x in self.sign], [x[idx] for x in self.alpha],
                       [x[idx] for x in self.beta])

    @staticmethod
    def cat(parts: list) -> "Domains":
        parts = [p for p in parts if len(p)]
        n = len(parts[0].lower)

        def each(name):
            return [torch.cat([getattr(p, name)[j] for p in parts]) for j in range(n)]
        return Domains(each("lower"), each("upper"),
                       torch.cat([p.cert for p in parts]), torch.cat([p.rcert for p in parts]),
                       torch.cat([p.depth for p in parts]), each("sign"), each("alpha"),
                       each("beta"))


class Chain:
    """The network's Linear/ReLU chain in float64, for ``_backward``: ``steps`` is a
    list of ``("affine", W, b)`` and ``("relu", j)``, j counting the ReLUs."""

    def __init__(self, network, device):
        if not network.relu_only:
            raise ValueError("the ReLU-split search needs a network whose activations are all ReLUs")
        self.steps, j = [], 0
        for layer in network.layers:
            if layer == "relu":
                self.steps.append(("relu", j))
                j += 1
            else:
                b = None if layer.bias is None else layer.bias.to(device, torch.float64)
                self.steps.append(("affine", layer.weight.to(device, torch.float64), b))
        self.n_relu = j


def _relax(lo, up):
    """The triangle of an unstable ReLU: upper line slope and intercept, and masks."""
    active, inactive = lo >= 0, up <= 0
    unstable = ~(active | inactive)
    den = torch.where(unstable, up - lo, torch.ones_like(up))
    su = torch.where(unstable, up / den, active.to(up.dtype))
    iu = torch.where(unstable, -su * lo, torch.zeros_like(up))
    return active, unstable, su, iu


def _backward(chain: Chain, C, x_lo, x_hi, lower, upper, alpha, beta, sign):
    """Lower bounds (B, K) of ``C f(x)`` on each domain, and the coefficients
    lambda (B, K, n_j) on each ReLU's output (for the branching score).

    ``C`` (B, K, m) the rows of each domain; ``x_lo``, ``x_hi`` (n,) the input box; ``lower``/``upper`` per ReLU
    (B, n_j); ``alpha`` per ReLU (B, K, n_j) in [0, 1]; ``beta`` per ReLU (B, K, n_j)
    >= 0, used where ``sign`` (B, n_j) is nonzero."""
    A = C
    const = torch.zeros(C.shape[:2], dtype=C.dtype, device=C.device)
    lam = [None] * chain.n_relu
    for step in reversed(chain.steps):
        if step[0] == "affine":
            _, W, b = step
            if b is not None:
                const = const + A @ b
            A = A @ W
            continue
        j = step[1]
        lam[j] = A
        lo, up = lower[j].unsqueeze(1), upper[j].unsqueeze(1)
        active, unstable, su, iu = _relax(lo, up)
        slope_lo = torch.where(unstable, alpha[j], active.to(A.dtype))
        pos, neg = A.clamp(min=0), A.clamp(max=0)
        const = const + (neg * iu).sum(-1)
        A = pos * slope_lo + neg * su
        s = sign[j].unsqueeze(1).to(A.dtype)
        A = A - beta[j] * s           # f - beta s z: s z >= 0 on the domain
    centre, radius = (x_lo + x_hi) / 2, (x_hi - x_lo) / 2
    bound = A @ centre - A.abs() @ radius + const
    return bound, lam, A


def _minimiser(A, x_lo, x_hi):
    """The box corner where the linear bound ``A x`` (B, K, n) is lowest, per row."""
    return torch.where(A > 0, x_lo, x_hi)


class Search:
    """One ReLU-splitting search: the set-up, then ``run`` round after round."""

    def __init__(self, ctx: Context, root_cert, root_rcert, reference):
        self.ctx = ctx
        bounder = ctx.bounder
        self.dev = bounder.device
        self.chain = Chain(ctx.network, self.dev)
        self.C = ctx.prop.rows(ctx.active).to(self.dev, torch.float64)
        # Which constraint of ``ctx.active`` each row of C belongs to.
        self.single_rows = all(ctx.prop.constraints[k].rows.shape[0] == 1 for k in ctx.active)
        self.row_owner = torch.cat([torch.full((ctx.prop.constraints[k].rows.shape[0],), i)
                                    for i, k in enumerate(ctx.active)]).to(self.dev)
        self.x_lo = ctx.proof_lb.to(self.dev, torch.float64)
        self.x_hi = ctx.proof_ub.to(self.dev, torch.float64)
        self.err, self.mag = rounding.forward_error(ctx.network, self.x_lo.unsqueeze(0),
                                                    self.x_hi.unsqueeze(0))
        widths = [w for w in bounder._pre_width]
        lower, upper, at = [], [], 0
        for w in widths:
            lower.append(reference[:, 0, at:at + w].to(self.dev, torch.float64))
            upper.append(reference[:, 1, at:at + w].to(self.dev, torch.float64))
            at += w
        self.widths = widths
        K = self.C.shape[0]
        # CROWN's own slopes to start: 1 where the upper end is the larger.
        alpha = [(u > -l).to(torch.float32).unsqueeze(1).expand(1, K, w).clone()
                 for l, u, w in zip(lower, upper, widths)]
        self.open = Domains(lower, upper, root_cert.to(self.dev), root_rcert.to(self.dev),
                            torch.zeros(1, dtype=torch.float64, device=self.dev),
                            [torch.zeros(1, w, dtype=torch.int8, device=self.dev)
                             for w in widths], alpha, [torch.zeros_like(a) for a in alpha])
        self.boxes, self.rounds, self.proved = 1, 0, 0.0
        self.batch = self._batch()
        self.rigorous = True
        self.split_layer = torch.zeros(0, dtype=torch.long, device=self.dev)

    # -- one round ------------------------------------------------------------
    def run(self, max_domains: int | None = None) -> Outcome:
        # Open domains are capped by the memory they hold: bounds (float64) and
        # slopes and multipliers (float32, one per row and neuron).
        width, K = sum(self.widths), self.C.shape[0]
        per_domain = 16 * width + 8 * K * width + 64
        max_domains = min(max_domains or settings.RELU_MAX_DOMAINS,
                          int(settings.RELU_STORE_BYTES // per_domain))
        # The root's own bound first, with beta-CROWN's optimiser (no split yet).
        root = self.open
        cert, rcert, lam, cex = self._bound(root, settings.BETA_ROOT_STEPS)
        if cex:
            return Outcome("fail", self.boxes, cexs=cex)
        root.cert, root.rcert = torch.maximum(root.cert, cert), torch.maximum(root.rcert, rcert)
        if (root.cert > 0).all():
            return Outcome("pass", self.boxes, rigorous=bool((root.rcert > 0).all()))
        self.open = root
        scores = self._scores(root, lam)
        while len(self.open):
            if time.monotonic() > self.ctx.deadline:
                return self._unknown("time budget used up")
            if len(self.open) > max_domains:
                return self._unknown(f"more than {max_domains} open subproblems")
            t_round = time.monotonic()
            picked, rest, picked_scores, rest_scores = self._select(scores)
            children = self._split(picked, picked_scores)
            if children is None:        # no unstable ReLU left where the bound fails
                return self._unknown("a subproblem with every ReLU fixed stays unproved")
            children = self._drop_empty(self._refine(children))
            if len(children):
                cert, rcert, lam, cex = self._bound(children)
                if cex:
                    return Outcome("fail", self.boxes, cexs=cex)
                children.cert = torch.maximum(children.cert, cert)
                children.rcert = torch.maximum(children.rcert, rcert)
                done = (children.cert > 0).all(1)
                self.rigorous = self.rigorous and bool((children.rcert[done] > 0).all())
                self.proved += torch.exp2(-children.depth[done]).sum().item()
                keep = (~done).nonzero().flatten()
                kept = children.take(keep)
                kept_scores = self._scores(kept, [(n[keep], a[keep]) for n, a in lam])
            else:
                kept, kept_scores = children, None
            self.open = Domains.cat([rest, kept]) if len(rest) or len(kept) else kept
            scores = torch.cat([s for s in (rest_scores, kept_scores) if s is not None]) \
                if len(self.open) else None
            self.rounds += 1
            self._resize(time.monotonic() - t_round, len(picked))
            if len(self.open) and self.rounds % settings.RELU_ATTACK_EVERY == 0:
                cex = self._attack()
                if cex:
                    return Outcome("fail", self.boxes, cexs=cex)
        return Outcome("pass", self.boxes, rigorous=self.rigorous)

    def _unknown(self, reason: str) -> Outcome:
        return Outcome("unknown", self.boxes, worst=self.open.cert.amin(0), reason=reason)

    def _select(self, scores):
        """The ``RELU_BATCH`` domains with the lowest certified slack, and the rest."""
        n = len(self.open)
        take = min(n, self.batch)
        worst = self.open.cert.amin(1)
        sel = torch.topk(-worst, take).indices
        keep = torch.ones(n, dtype=torch.bool, device=self.dev)
        keep[sel] = False
        rest = keep.nonzero().flatten()
        return (self.open.take(sel), self.open.take(rest), scores[sel], scores[rest])

    def _resize(self, spent: float, take: int) -> None:
        """Keep the next round within ``MAX_ROUND`` seconds and half of what the budget
        has left (a round that ends past the deadline breaks the timeout); grow it
        back towards ``_batch`` while rounds are quick."""
        per = spent / max(1, take)
        left = self.ctx.deadline - time.monotonic()
        fits = int(min(settings.MAX_ROUND, 0.5 * left) / max(per, 1e-9))
        self.batch = max(1, min(self._batch(), 2 * self.batch, fits))

    def _batch(self) -> int:
        """Domains per round: ``RELU_BATCH``, fewer where their backward pass would
        take more than ``RELU_MEMORY_BYTES`` (the A matrices, with autograd's copies)."""
        K = self.C.shape[0]
        widest = max([self.x_lo.numel()] + self.widths)
        per_domain = 8 * K * widest * (4 * len(self.chain.steps) + 4)
        return max(1, min(settings.RELU_BATCH, int(settings.RELU_MEMORY_BYTES // per_domain) // 2))

    def _scores(self, doms: Domains, weights: list) -> torch.Tensor:
        """BaBSR-like score of every neuron (B, sum n_j), -inf where it cannot be split:
        the upper line's intercept u (-l) / (u - l) times the weight the bound puts
        on it (``_weights``), plus a small share of the triangle for every unstable
        neuron, so that one whose coefficient is positive can still be chosen; times
        ``RELU_LAYER_GAIN`` per ReLU layer after the neuron's (the module's docstring
        says why)."""
        out = []
        for j, (neg, both) in enumerate(weights):
            lo, up = doms.lower[j], doms.upper[j]
            unstable = (lo < 0) & (up > 0)
            gap = torch.where(unstable, up * (-lo) / torch.where(unstable, up - lo, 1.0), 0.0)
            # At most 64 layers' worth: a float power overflows past a few hundred.
            gain = settings.RELU_LAYER_GAIN ** min(len(weights) - 1 - j, 64)
            s = (neg + 1e-4 * both) * gap * gain
            out.append(torch.where(unstable, s, torch.full_like(s, -float("inf"))))
        return torch.cat(out, 1)

    def _split(self, doms: Domains, scores: torch.Tensor):
        """Two children per domain: the best neuron active, then inactive."""
        best = scores.argmax(1)
        if not torch.isfinite(scores.gather(1, best.unsqueeze(1))).all():
            return None
        B = len(doms)
        rows = torch.arange(B, device=self.dev)
        left, right = doms.take(rows), doms.take(rows)   # copies
        at = 0
        for j, w in enumerate(self.widths):
            here = (best >= at) & (best < at + w)
            if here.any():
                r, i = rows[here], best[here] - at
                left.lower[j][r, i] = left.lower[j][r, i].clamp(min=0)
                left.sign[j][r, i] = 1
                right.upper[j][r, i] = right.upper[j][r, i].clamp(max=0)
                right.sign[j][r, i] = -1
            at += w
        children = Domains.cat([left, right])
        children.depth = children.depth + 1
        layer = torch.zeros(B, dtype=torch.long, device=self.dev)
        for j, w in enumerate(self.widths):
            layer[(best >= sum(self.widths[:j])) & (best < sum(self.widths[:j + 1]))] = j
        self.split_layer = layer.repeat(2)
        return children

    def _refine(self, doms: Domains) -> Domains:
        """Re-bound every ReLU's input on each domain with CROWN, from the domain's
        clamped bounds (auto-LiRPA intersects its new bounds with them, layer after
        layer, so a split tightens everything after it; ``Bounder.bounds``). The
        CROWN bound of the property on the domain is kept too."""
        # A split in the last ReLU layer has nothing after it to tighten.
        redo = (self.split_layer < len(self.widths) - 1).nonzero().flatten()
        if redo.numel() == 0:
            return doms
        if redo.numel() < len(doms):
            part = self._refine_all(doms.take(redo))
            for j in range(len(self.widths)):
                doms.lower[j][redo], doms.upper[j][redo] = part.lower[j], part.upper[j]
            doms.cert[redo], doms.rcert[redo] = part.cert, part.rcert
            return doms
        return self._refine_all(doms)

    def _refine_all(self, doms: Domains) -> Domains:
        ctx = self.ctx
        B = len(doms)
        packed = torch.stack([torch.cat(doms.lower, 1), torch.cat(doms.upper, 1)], 1)
        L, _, new = ctx.bounder.bounds(self.x_lo.expand(B, -1), self.x_hi.expand(B, -1), self.C,
                                       reference=packed, intermediate=True, pin_first=True)
        new = new.to(self.dev, torch.float64)
        # Never looser than what the domain had (the first layer comes back as given).
        lower = torch.maximum(new[:, 0], packed[:, 0])
        upper = torch.minimum(new[:, 1], packed[:, 1])
        at = 0
        for j, w in enumerate(self.widths):
            doms.lower[j], doms.upper[j] = lower[:, at:at + w], upper[:, at:at + w]
            at += w
        cert, rcert = ctx.prop.certify(L.to(self.dev), self.err.expand(B, -1),
                                       self.mag.expand(B, -1), ctx.active)
        doms.cert = torch.maximum(doms.cert, cert)
        doms.rcert = torch.maximum(doms.rcert, rcert)
        return doms

    def _drop_empty(self, doms: Domains) -> Domains:
        """Drop the domains whose bounds cross beyond float64 rounding: no input has
        those signs. Their share of the box counts as proved."""
        empty = torch.zeros(len(doms), dtype=torch.bool, device=self.dev)
        for lo, up in zip(doms.lower, doms.upper):
            tol = 1e-9 * (1 + lo.abs() + up.abs())
            empty |= (lo > up + tol).any(1)
        if empty.any():
            self.proved += torch.exp2(-doms.depth[empty]).sum().item()
        return doms.take((~empty).nonzero().flatten())

    # -- bounding -------------------------------------------------------------
    def _bound(self, doms: Domains, steps: int | None = None):
        """Certified slacks ``(cert, rcert)`` (B, len(active)) of each domain after
        ``steps`` (``BETA_STEPS``) steps of Adam on the slopes and split multipliers,
        starting from the parent's (the best step kept, pair by pair; the domains' ``alpha``,
        ``beta`` are set to it), the branching weights per ReLU (``_weights``), and
        any counterexample met at the bounds' minimisers.

        Only the constraints a domain still has open are bounded (when every
        constraint is one row of C, as for a VNN-LIB robustness property); the
        others are proved already and keep their slack."""
        steps = settings.BETA_STEPS if steps is None else steps
        B, K = len(doms), len(self.ctx.active)
        self.boxes += B
        if self.single_rows:
            b, k = (~(doms.cert > 0)).nonzero(as_tuple=True)
            C = self.C[k].unsqueeze(1)
            alpha = [a[b, k].unsqueeze(1).double().requires_grad_(True) for a in doms.alpha]
            beta = [x[b, k].unsqueeze(1).double().requires_grad_(True) for x in doms.beta]
        else:
            b, k = torch.arange(B, device=self.dev), None
            C = self.C.unsqueeze(0).expand(B, -1, -1)
            alpha = [a.double().requires_grad_(True) for a in doms.alpha]
            beta = [x.double().requires_grad_(True) for x in doms.beta]
        P = b.numel()
        lower, upper = [x[b] for x in doms.lower], [x[b] for x in doms.upper]
        sign = [x[b] for x in doms.sign]
        opt = torch.optim.Adam(alpha + beta, lr=settings.BETA_LR)
        err, mag = self.err.expand(P, -1), self.mag.expand(P, -1)
        rows = torch.arange(P, device=self.dev)
        best = best_r = lam_best = None
        keep_a = [a.detach().float() for a in alpha]
        keep_b = [x.detach().float() for x in beta]
        for step in range(steps + 1):
            with torch.enable_grad():
                L, lam, A = _backward(self.chain, C, self.x_lo, self.x_hi, lower, upper,
                                      alpha, beta, sign)
                if k is not None:   # the pair's own column; +inf elsewhere proves nothing new
                    full = torch.full((P, K), float("inf"), dtype=L.dtype, device=self.dev)
                    L = full.index_put((rows, k), L[:, 0])
                cert, rcert = self.ctx.prop.certify(L, err, mag, self.ctx.active)
            if best is None:
                best, best_r = cert.detach().clone(), rcert.detach().clone()
                lam_best = [x.detach() for x in lam]
            else:
                better = cert.detach().amin(1) > best.amin(1)
                best = torch.where(better.unsqueeze(1), cert.detach(), best)
                best_r = torch.where(better.unsqueeze(1), rcert.detach(), best_r)
                b3 = better.view(-1, 1, 1)
                lam_best = [torch.where(b3, x.detach(), y) for x, y in zip(lam, lam_best)]
                keep_a = [torch.where(b3, x.detach().float(), y) for x, y in zip(alpha, keep_a)]
                keep_b = [torch.where(b3, x.detach().float(), y) for x, y in zip(beta, keep_b)]
            A_last = A.detach()
            if step == steps or bool((best > 0).all()) or time.monotonic() > self.ctx.deadline:
                break       # the best step so far is as sound as any
            loss = -cert.clamp(max=1e-3).nan_to_num(0.0).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for a in alpha:
                    a.clamp_(0, 1)
                for x in beta:
                    x.clamp_(min=0)
        # Back from pairs to domains.
        if k is not None:
            out = torch.full((B, K), -float("inf"), dtype=best.dtype, device=self.dev)
            out_r = out.clone()
            out[b, k], out_r[b, k] = best[rows, k], best_r[rows, k]
            for j in range(len(self.widths)):
                doms.alpha[j][b, k] = keep_a[j][:, 0]
                doms.beta[j][b, k] = keep_b[j][:, 0]
            weights = [self._weights(lam_best[j], b, B) for j in range(len(self.widths))]
        else:
            out, out_r = best, best_r
            doms.alpha, doms.beta = keep_a, keep_b
            open_rows = (~(doms.cert > 0))[:, self.row_owner].to(torch.float64).unsqueeze(-1)
            weights = [self._weights(x * open_rows, b, B) for x in lam_best]
        cex = self._try_minimisers(A_last, best)
        return out, out_r, weights, cex

    @staticmethod
    def _weights(lam, b, B):
        """Per domain and neuron: (the summed |lambda| where lambda < 0, the summed
        |lambda|), from the pairs' coefficients (P, r, n_j) of domains ``b``."""
        neg = lam.clamp(max=0).abs().sum(1)
        both = lam.abs().sum(1)
        zero = torch.zeros(B, lam.shape[-1], dtype=lam.dtype, device=lam.device)
        return zero.index_add(0, b, neg), zero.index_add(0, b, both)

    # -- counterexamples ----------------------------------------------------------
    def _try_minimisers(self, A, cert):
        """Run the network at the box corners where the open domains' linear bounds
        (``A x``, one per row) are lowest: where the bound says the property is
        closest to breaking."""
        open_ = ~(cert > 0).all(1)
        if not open_.any():
            return []
        pts = self.ctx.box.clamp(_minimiser(A[open_], self.x_lo, self.x_hi).flatten(0, 1))
        s = attack.scores(self.ctx.network, self.ctx.prop, pts, self.ctx.active)
        if (s < 1e-6).any():
            return attack.confirm(self.ctx.net, self.ctx.prop, self.ctx.box, pts[s < 1e-6],
                                  self.ctx.input_shape)
        return []

    def _attack(self):
        ctx = self.ctx
        pts = attack.image_attack(ctx.network, ctx.prop, ctx.box, ctx.gen, ctx.active,
                                  restarts=max(1, settings.IMAGE_RESTARTS // 2),
                                  steps=settings.IMAGE_STEPS // 2)
        s = attack.scores(ctx.network, ctx.prop, pts, ctx.active)
        if (s < 1e-6).any():
            return attack.confirm(ctx.net, ctx.prop, ctx.box, pts[s < 1e-6], ctx.input_shape)
        return []


def relu_branch_and_bound(ctx: Context, root_cert: torch.Tensor, root_rcert: torch.Tensor,
                          reference: torch.Tensor) -> Outcome:
    """Prove ``ctx.active`` on the whole box by splitting ReLUs.

    ``root_cert``, ``root_rcert`` (1, K): the certified slacks found on the whole box;
    ``reference`` (1, 2, W): bounds of every ReLU's input on the whole box
    (``Bounder.bounds(..., intermediate=True)``)."""
    if ctx.bounder.intermediate_width == 0:
        return Outcome("unknown", 1, worst=root_cert[0], reason="the network has no ReLU to split")
    return Search(ctx, root_cert, root_rcert, reference).run()
