"""Sound linear bounds through auto-LiRPA (CROWN, alpha-CROWN), many boxes at once.

``Bounder(network)`` wraps a float64 copy of the network's Linear/ReLU/Sigmoid chain in
one ``auto_LiRPA.BoundedModule``. ``Bounder.bounds(lb, ub, C)`` bounds ``C @ f(x)``
for every box ``lb[b] <= x <= ub[b]`` in a single ``compute_bounds`` call (the
boxes are the batch dimension), split into chunks only to cap memory.

Why float64: CROWN's arithmetic then adds rounding errors of about 1e-16
relative, far below the float32 rounding of the real network, which
``verifier.rounding`` bounds separately. float32 weights are exact in float64, so
the copy computes the same real-valued function as the user's network.
"""
from __future__ import annotations

import contextlib
import logging
import warnings

import torch

from verifier import compat, settings, sigmoid

compat.apply()
from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm  # noqa: E402

sigmoid.install()

METHODS = ("IBP", "CROWN", "alpha-CROWN")


@contextlib.contextmanager
def quiet():
    """auto-LiRPA may warn or log; a normal run must print nothing to stderr."""
    lirpa_logger = logging.getLogger("auto_LiRPA")
    level = lirpa_logger.level
    lirpa_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        lirpa_logger.setLevel(level)


@contextlib.contextmanager
def float64_default():
    """auto-LiRPA 0.3's alpha-CROWN casts its best bounds to torch's default dtype
    (round to nearest: unsound) and then mixes them with float64 ones (a crash).
    With float64 as the default for the call, both casts are no-ops."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def _by_unstable(reference: torch.Tensor) -> torch.Tensor:
    """An order of the boxes (B, 2, W) that puts boxes with the same unstable
    neurons (lower < 0 < upper) next to each other: a lexicographic sort of the
    unstable masks, 62 neurons to a sort key."""
    mask = (reference[:, 0] < 0) & (reference[:, 1] > 0)
    order = torch.arange(mask.shape[0], device=mask.device)
    weights = 2 ** torch.arange(62, dtype=torch.int64, device=mask.device)
    for start in reversed(range(0, mask.shape[1], 62)):
        bits = mask[order, start:start + 62].to(torch.int64)
        key = (bits * weights[: bits.shape[1]]).sum(1)
        order = order[torch.sort(key, stable=True).indices]
    return order


def _alpha_opts(steps: int, **more) -> dict:
    """auto-LiRPA's bound options for alpha-CROWN with ``steps`` steps. Early-stop
    patience beyond the step count: auto-LiRPA prints (to stdout) whenever it
    stops early, and so few steps are cheap anyway."""
    return {"optimize_bound_args": {"iteration": steps, "lr_alpha": 0.5, "keep_best": True,
                                    "early_stop_patience": steps + 1, **more}}


class Bounder:
    """CROWN, alpha-CROWN and IBP bounds of one network's chain, many boxes at once."""

    def __init__(self, network, alpha_iterations: int | None = None):
        self.network = network
        self.device = network.device
        self.n_in = network.n_in
        self.n_out = network.n_out
        widths = [m.out_features for m in network.layers if not isinstance(m, str)]
        # alpha-CROWN with given intermediate bounds (the "fixed" module below) starts the
        # ReLUs' slopes itself: for a network with a sigmoid such a call gets CROWN (alpha-CROWN
        # without reference bounds, as at the root, works for any network).
        self.relu_only = network.relu_only
        # Bytes one box costs in one CROWN pass, roughly: the A matrices of the
        # intermediate layers and of the output spec, in float64.
        self._box_cost = 8 * 4 * self.n_in * (sum(widths) + 1)
        core = network.double_copy()
        dummy = torch.zeros(1, self.n_in, dtype=torch.float64, device=self.device)
        opts = _alpha_opts(alpha_iterations or settings.ALPHA_ITERATIONS)
        self._make_module = lambda: BoundedModule(core, dummy, bound_opts=opts,
                                                  device=self.device)
        with quiet():
            self.module = self._make_module()
        # alpha-CROWN gets a module of its own, made at its first call: after an
        # alpha-CROWN call, auto-LiRPA 0.3's module keeps the optimisation's state,
        # and its CROWN passes from then on cost 2-2.5x as much, which would slow
        # every branch-and-bound round after alpha-CROWN at the root.
        self._alpha_module = None
        # The second relaxation's module (see ``bounds(..., second=True)``), made
        # at its first use, on a copy of the network of its own: sharing the
        # first module's parameters breaks the first pass's autograd graph.
        self._second_module = None
        self._make_second = lambda: BoundedModule(
            network.double_copy(), dummy, bound_opts={"relu": "zero-lb"}, device=self.device)
        fixed_opts = _alpha_opts(settings.FIXED_STEPS, init_alpha=False)   # we start the slopes
        self._fixed_module = None
        self._make_fixed = lambda: BoundedModule(
            network.double_copy(), dummy, bound_opts=fixed_opts, device=self.device)
        # The ReLUs' inputs: their bounds are the intermediate bounds a box's
        # children may start from (``bounds(..., reference=...)``).
        pre = [relu.inputs[0] for relu in self.module.relus]
        self._pre = [node.name for node in pre]
        self._pre_width = [int(node.output_shape[-1]) for node in pre]
        self.intermediate_width = sum(self._pre_width)

    def chunk_size(self, n_specs: int, budget_bytes: float | None = None) -> int:
        """Boxes per auto-LiRPA call that keep its A matrices within ``budget_bytes``."""
        budget_bytes = settings.CHUNK_BYTES if budget_bytes is None else budget_bytes
        per_box = self._box_cost + 8 * 4 * self.n_in * n_specs
        return max(1, int(budget_bytes // per_box))

    def bounds(self, lb: torch.Tensor, ub: torch.Tensor, C: torch.Tensor | None = None,
               method: str = "CROWN", upper: bool = False, grad: bool = False,
               linear: bool = False, reference: torch.Tensor | None = None,
               intermediate: bool = False, second: bool = False, pin_first: bool = False):
        """Bounds of ``C f(x)`` over each box; returns ``(L, U)`` of shape (B, k).

        ``lb, ub``: (B, n) float64. ``C``: (k, m) shared by all boxes, or None for
        the identity. ``U`` is None unless ``upper``. With ``grad`` the result
        keeps autograd history back to ``lb`` and ``ub`` (used by the branching
        heuristic); otherwise it runs under ``no_grad``. With ``linear`` it
        returns ``(L, U, (A, a))`` where ``A x + a`` (A: (B, k, n), a: (B, k)) is
        the linear lower bound of ``C f(x)`` on each box that ``L`` minimises.

        With ``intermediate`` the result ends with one more item: the bounds of
        every ReLU's input on each box, (B, 2, ``intermediate_width``) (lower,
        upper). Given back as ``reference`` for boxes inside those boxes (a box's
        children in branch and bound), they are intersected with the new bounds
        and tell auto-LiRPA which neurons are already stable, so it bounds only
        the others (its sparse intermediate bounds): children bounded this way
        (grouped, see ``_by_unstable``) cost a fraction of a CROWN pass from
        scratch, and their bounds are a little tighter on average (not everywhere: CROWN picks each ReLU's relaxation
        from its bounds). Sound because every point of the new box lies in the
        old one. Rows of ``-inf, inf`` stand for boxes with nothing to start from.

        With ``second`` (CROWN only) each box is bounded twice: once as above, then
        again with every unstable ReLU's lower line fixed at slope 0 (auto-LiRPA's
        "zero-lb"; CROWN's own choice is slope 1 where the upper end is the larger),
        starting from the bounds of the first pass. auto-LiRPA keeps, neuron by
        neuron and layer after layer, the tighter of the two, so the second pass's
        intermediate bounds are better than either relaxation's alone, and its
        output bound is at least as good as the better of the two (we take the
        larger lower bound). It closes boxes a second CROWN pass cannot.
        Both lines are valid lower bounds of the ReLU, so this is as sound as CROWN.
        Gradients (``grad``) and the linear bound (``linear``) are the first pass's.

        With ``pin_first`` (and a ``reference``) the first ReLU's input bounds are
        taken from ``reference`` as they are: auto-LiRPA computes that layer by
        interval arithmetic and would not intersect it with the reference, which
        loses a ReLU split's clamp there (``verifier.relu_bab``). Sound when the
        reference holds on each box, as above.

        With ``method="alpha-CROWN"`` and a ``reference``, the ReLUs' input bounds are
        held at ``reference`` (it must hold on each box: bounds found for that box
        or a box around it) and only the output's slopes are optimised,
        ``settings.FIXED_STEPS`` steps from CROWN's own relaxation for those bounds (a module
        of its own; we start its slopes ourselves, from ``reference``, where
        auto-LiRPA would first run a CROWN pass from scratch that costs more than
        the steps). As sound as CROWN for any slopes in [0, 1], and never looser
        than CROWN from the same ReLU-input bounds (it keeps the best step).
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {method!r}")
        lb = lb.to(self.device, torch.float64)
        ub = ub.to(self.device, torch.float64)
        if C is None:
            C = torch.eye(self.n_out, dtype=torch.float64, device=self.device)
        C = C.to(self.device, torch.float64)
        if reference is not None:
            reference = reference.to(self.device, torch.float64)
            if reference.shape != (lb.shape[0], 2, self.intermediate_width):
                raise ValueError(f"reference must have shape {(lb.shape[0], 2, self.intermediate_width)}; "
                                 f"got {tuple(reference.shape)}")
        step = self.chunk_size(C.shape[0])
        order = None
        if reference is not None and self._pre and lb.shape[0] > settings.GROUP:
            # auto-LiRPA bounds, for a whole chunk, every neuron that is unstable
            # in any of its boxes: chunks of boxes that share their unstable
            # neurons cost less.
            order, step = _by_unstable(reference), min(step, settings.GROUP)
            lb, ub, reference = lb[order], ub[order], reference[order]
        if second and method != "CROWN":
            raise ValueError(f"second applies to CROWN only; got method={method!r}")
        parts = [self._bounds(lb[s:s + step], ub[s:s + step], C, method, upper, grad, linear,
                              None if reference is None else reference[s:s + step], intermediate,
                              second, pin_first)
                 for s in range(0, lb.shape[0], step)]
        out = [torch.cat([p[0] for p in parts]),
               torch.cat([p[1] for p in parts]) if upper else None]
        if linear:
            out.append((torch.cat([p[2] for p in parts]), torch.cat([p[3] for p in parts])))
        if intermediate:
            out.append(torch.cat([p[-1] for p in parts]))
        if order is not None:
            back = torch.empty_like(order)
            back[order] = torch.arange(order.numel(), device=order.device)
            out = [x if x is None else tuple(y[back] for y in x) if isinstance(x, tuple)
                   else x[back] for x in out]
        return tuple(out)

    def _lazy(self, attr, make):
        if getattr(self, attr) is None:
            with quiet():
                setattr(self, attr, make())
        return getattr(self, attr)

    @property
    def alpha_module(self):
        """The bounded module alpha-CROWN runs on (not ``module``; see ``__init__``)."""
        return self._lazy("_alpha_module", self._make_module)

    @property
    def second_module(self):
        """The bounded module of ``bounds(..., second=True)``'s second pass."""
        return self._lazy("_second_module", self._make_second)

    @property
    def fixed_module(self):
        """The bounded module of alpha-CROWN with given intermediate bounds."""
        return self._lazy("_fixed_module", self._make_fixed)

    def _split(self, packed):
        """(B, 2, W) -> {node name: (lower (B, w), upper (B, w))}."""
        out, at = {}, 0
        for name, w in zip(self._pre, self._pre_width):
            out[name] = (packed[:, 0, at:at + w], packed[:, 1, at:at + w])
            at += w
        return out

    def _packed(self, B, module):
        """The ReLU inputs' bounds of the last call, (B, 2, W)."""
        if not self._pre:
            return torch.zeros(B, 2, 0, dtype=torch.float64, device=self.device)
        parts = []
        for name in self._pre:
            node = module[name]
            parts.append(torch.stack([node.lower.detach().reshape(B, -1),
                                      node.upper.detach().reshape(B, -1)], 1))
        return torch.cat(parts, 2)

    def _bounds(self, lb, ub, C, method, upper, grad, linear=False, reference=None,
                intermediate=False, second=False, pin_first=False):
        B = lb.shape[0]
        fixed = method == "alpha-CROWN" and reference is not None
        if fixed and (not self._pre or not self.relu_only):  # no ReLU, or not only ReLUs
            fixed, method = False, "CROWN"
        module = self.fixed_module if fixed \
            else self.alpha_module if method == "alpha-CROWN" else self.module
        ptb = PerturbationLpNorm(norm=float("inf"), x_L=lb, x_U=ub)
        x = BoundedTensor((lb + ub) / 2, ptb)
        Cb = C.unsqueeze(0).expand(B, -1, -1)
        grad_mode = torch.enable_grad() if (grad or method == "alpha-CROWN") \
            else torch.no_grad()
        extra = {}
        if linear:  # the input's A matrix of the output's lower bound
            out, inp = module.output_name[0], module.input_name[0]
            extra = {"return_A": True, "needed_A_dict": {out: [inp]}}
        if fixed:
            extra["intermediate_layer_bounds"] = {k: list(v) for k, v in self._split(reference).items()}
        elif reference is not None and self._pre:
            ref = self._split(reference)
            extra.update(reference_bounds=ref, aux_reference_bounds=ref)
            if pin_first:
                extra["intermediate_layer_bounds"] = {self._pre[0]: list(ref[self._pre[0]])}
        with quiet(), grad_mode, float64_default():
            if fixed:
                with torch.no_grad():
                    module.init_slope((x,), method="backward", c=Cb, bound_upper=False,
                                      intermediate_layer_bounds=extra["intermediate_layer_bounds"])
            got = module.compute_bounds(x=(x,), C=Cb, method=method, bound_lower=True,
                                        bound_upper=upper, **extra)
        L, U = got[0], got[1]
        assert L.dtype == torch.float64 and (U is None or U.dtype == torch.float64)
        if second and self._pre:
            ref = self._split(self._packed(B, module))
            module = self.second_module
            with quiet(), torch.no_grad(), float64_default():
                lo, hi = lb.detach(), ub.detach()
                x2 = BoundedTensor((lo + hi) / 2, PerturbationLpNorm(norm=float("inf"), x_L=lo, x_U=hi))
                L2, U2 = module.compute_bounds(
                    x=(x2,), C=Cb, method="CROWN",
                    bound_lower=True, bound_upper=upper, reference_bounds=ref,
                    aux_reference_bounds=ref)[:2]
            # The better bound, with the first pass's gradient.
            L = L + (torch.maximum(L.detach(), L2) - L.detach())
            if upper:
                U = U + (torch.minimum(U.detach(), U2) - U.detach())
        if not grad:
            L = L.detach()
            U = U.detach() if U is not None else None
        res = [L, U]
        if linear:
            coeffs = got[2][out][inp]
            A, a = coeffs["lA"], coeffs["lbias"]  # None where there is no term (no bias)
            A = torch.zeros(*L.shape, lb.shape[1], dtype=L.dtype, device=L.device) \
                if A is None else A.detach()
            a = a.detach().expand_as(L) if torch.is_tensor(a) else torch.full_like(L, float(a or 0.0))
            res += [A, a]
        if intermediate:
            res.append(self._packed(B, module))
        return res
