"""``verify``, ``verify_robustness`` and ``output_bounds``: the parts put together.

The order of work, cheapest first:

1. check the arguments (``verifier.specs``) and read the network
   (``verifier.network``, cached per network object until its weights change);
2. try the box's centre, corners and a few random points (a counterexample
   ends the search: "fail");
3. CROWN on the whole box (proved: "pass");
4. PGD from several starts: random points, and the best of a sweep that puts
   half its points on the box's faces (``attack.sweep``);
   over many free inputs (an image's ball) also a targeted PGD with restarts,
   aimed at the classes closest to winning (``attack.image_attack``);
5. alpha-CROWN on the constraints CROWN left open, when the box has more than
   ``settings.ALPHA_MIN_FREE`` free dimensions (below that, cutting the box is
   cheaper);
6. branch and bound, with attacks between rounds, until everything is proved, a
   counterexample turns up or the time budget runs out ("unknown", saying what is
   left): on ReLU splits (``verifier.relu_bab``) when the box has more than
   ``settings.RELU_SPLIT_MIN_FREE`` free inputs, else on the input box
   (``verifier.bab``).

Counterexamples have shape ``input_shape`` if given, else ``(1, n)`` with ``n``
the first Linear layer's ``in_features``: that is what the lab's networks take
(the circle net takes (N, 2); the MNIST net flattens, so (1, 784) works). They
are float tensors in the network's dtype, on its device.
"""
from __future__ import annotations

import functools
import math
import numbers
import time
from collections.abc import Sequence

import torch

from verifier import attack, bab, network as network_mod, outputs, property as property_mod
from verifier import relu_bab, rounding, softmax, specs
from verifier import settings
from verifier.bounds import METHODS
from verifier.context import Context
from verifier.result import VerificationResult
from verifier.specs import XSpecs, YSpecs


def _any_grad_mode(fn):
    """Run ``fn`` in PyTorch's default grad mode, whatever the caller's: students wrap cells in
    ``torch.no_grad()``, ``torch.inference_mode()`` or ``set_grad_enabled(False)``, and the
    attack and the search need gradients. The verdict is the same inside those as outside."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.inference_mode(False), torch.enable_grad():
            return fn(*args, **kwargs)
    return wrapper


def _check_options(counterexamples, timeout, input_shape, n_in, progress):
    if counterexamples is not None and not isinstance(counterexamples, list):
        raise TypeError("counterexamples must be a list (counterexamples found are "
                        f"appended to it) or None; got {type(counterexamples).__name__}")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) \
            or math.isnan(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")
    if progress not in (None, True, False):
        raise TypeError(f"progress must be True, False or None (auto); got {progress!r}")
    if input_shape is None:
        return (1, n_in)
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if not isinstance(input_shape, (tuple, list)) or not input_shape or any(
            isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
            for s in input_shape):
        raise TypeError(f"input_shape must be a tuple of positive ints such as (1, {n_in}); "
                        f"got {input_shape!r}")
    shape = tuple(int(s) for s in input_shape)
    if math.prod(shape) != n_in:
        raise ValueError(f"input_shape {shape} has {math.prod(shape)} elements but the "
                         f"network's first Linear layer takes {n_in} inputs")
    return shape


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _input_box(network, x_specs):
    """``x_specs`` -> ``(lb, ub)`` float64 and the box a proof must cover (see
    ``rounding.float_enclosure``)."""
    lb, ub = specs.parse_spec(x_specs, network.n_in, "x_specs", allow_inf=False,
                              what="inputs")
    big = torch.finfo(network.dtype).max
    out = (lb.abs() > big) | (ub.abs() > big)
    if out.any():
        i = int(out.nonzero()[0])
        raise ValueError(f"x_specs[{i}] = ({lb[i].item():g}, {ub[i].item():g}) leaves the "
                         f"range of {_name(network.dtype)} numbers "
                         f"(about ±{big:.3g}), which the network computes in")
    return (lb, ub) + rounding.float_enclosure(lb, ub, network.dtype)


def _setup(net, x_specs, counterexamples, timeout, input_shape, progress, seed):
    t0 = time.monotonic()
    network = network_mod.cached(net)
    shape = _check_options(counterexamples, timeout, input_shape, network.n_in, progress)
    lb, ub, proof_lb, proof_ub = _input_box(network, x_specs)
    return Context(t0=t0, deadline=t0 + float(timeout), net=net, network=network,
                   input_shape=shape, progress=progress, lb=lb, ub=ub, proof_lb=proof_lb,
                   proof_ub=proof_ub, box=attack.Box(lb, ub, network.dtype, network.device),
                   gen=torch.Generator().manual_seed(seed))


def _report_rows(network, pairs=False):
    """C rows whose bounds we report: the outputs, plus logit differences for
    softmax (or when ``pairs``, for a robustness margin)."""
    m = network.n_out
    eye = torch.eye(m, dtype=torch.float64)
    if not (network.softmax or pairs):
        return eye, None
    pairs, idx = softmax.pair_rows(m)
    return torch.cat([eye, pairs]), idx


def _output_bounds(network, L, U, idx):
    m = network.n_out
    lo, hi = L[:, :m], U[:, :m]
    if not network.softmax:
        return lo, hi
    return softmax.softmax_bounds(lo, hi, L[:, m:], U[:, m:], idx)


def _finish(ctx, status, message, method, counterexamples, cexs=(), boxes=0,
            rigorous=True):
    cexs = list(cexs)
    if counterexamples is not None:
        counterexamples.extend(cexs)
    rounding_ = None
    if status == "pass":
        rounding_ = "rigorous" if rigorous else "estimated"
        if not rigorous:
            message += (f"; this proves it for exact arithmetic: the rounding of "
                        f"{_name(ctx.network.dtype)} was only estimated (at most "
                        f"{ctx.prop.estimate(ctx.active):.2g} at the points tried), as the "
                        "rigorous bound, which grows with width and depth, is too loose "
                        "for this network")
    return VerificationResult(status, message=message, lower=ctx.lower, upper=ctx.upper,
                              counterexamples=cexs, method=method,
                              time=time.monotonic() - ctx.t0, boxes=boxes,
                              rounding=rounding_)


def _pass_message(ctx):
    """Proved on the whole box at once: show the bounds that did it."""
    c = ctx.prop.constraints
    if c and c[0].kind == "argmax":
        return f"label {c[0].i} stays the argmax for every input in the box"
    parts = [f"{lo:.4g} <= y[{i}] <= {hi:.4g}" for i, (lo, hi) in
             enumerate(zip(ctx.lower.tolist(), ctx.upper.tolist()))]
    shown = ", ".join(parts[:3]) + (", ..." if len(parts) > 3 else "")
    return f"proved for every input in the box ({shown})"


def _fail_message(ctx, cex):
    with torch.no_grad():
        y = ctx.net(cex)
    broken = ctx.prop.violations(y)
    x = cex.flatten()
    xs = ", ".join(f"{v:.4g}" for v in x[:4].tolist()) + (", ..." if x.numel() > 4 else "")
    if broken[0].kind in ("linear", "clause"):
        ys = ", ".join(f"{v:.6g}" for v in y.flatten()[:6].tolist())
        return f"counterexample x = [{xs}] gives y = [{ys}], which {broken[0].describe(y)}"
    return f"counterexample x = [{xs}] {broken[0].describe(y)}"


def _gap_message(ctx, worst, boxes, cex_note):
    parts = []
    for k, w in zip(ctx.active, worst.tolist()):
        if w <= 0:
            c = ctx.prop.constraints[k]
            parts.append(f"{c}: {c.bound_text(w)}")
    gap = "; ".join(parts[:3]) + ("; ..." if len(parts) > 3 else "")
    empty = ctx.box.empty.nonzero().flatten().tolist()
    if empty:
        i = empty[0]
        cex_note = (f"no counterexample can exist: x_specs[{i}] = ({ctx.lb[i].item():.9g}, "
                    f"{ctx.ub[i].item():.9g}) holds no {_name(ctx.network.dtype)} number, so the "
                    "network can take no input of the box")
    return f"could not prove {gap} after {boxes} boxes; {cex_note}"


def _run(ctx, constraints, counterexamples, *, method, branching, alpha):
    """The search shared by ``verify`` and ``verify_robustness``."""
    network = ctx.network
    ctx.prop = prop = property_mod.Property(constraints, network)
    ctx.lower = ctx.upper = None
    everything = list(range(len(constraints)))

    # 1. Cheap samples; they also check that the network runs as traced, and
    #    measure its float error (for proof margins).
    pts = attack.samples(ctx.box, ctx.gen)
    prop.observe(network_mod.check_runs_as_traced(ctx.net, network, pts, ctx.input_shape))
    cexs = attack.confirm(ctx.net, prop, ctx.box, pts, ctx.input_shape) if constraints else []
    if cexs:
        return _finish(ctx, "fail", _fail_message(ctx, cexs[0]), "sampling",
                       counterexamples, cexs)

    # 2. CROWN on the whole box, in one call: the report rows (outputs, and for
    #    softmax all logit differences), both sides. Every constraint row is one
    #    of them or its negative (lower bound of -r = -upper bound of r).
    bounder = ctx.bounder = network.bounder()
    rep, idx = _report_rows(network, pairs=any(c.kind == "argmax" for c in constraints))
    plb, pub = ctx.proof_lb.unsqueeze(0), ctx.proof_ub.unsqueeze(0)
    first = "IBP" if method == "IBP" else "CROWN"
    crown_time = time.monotonic()
    L, U = bounder.bounds(plb, pub, rep, method=first, upper=True)
    crown_time = ctx.bound_seconds = time.monotonic() - crown_time
    m = network.n_out
    lo, hi = _output_bounds(network, L, U, idx) if network.softmax else (L[:, :m], U[:, :m])
    ctx.lower, ctx.upper = lo[0].cpu(), hi[0].cpu()
    if not constraints:
        return _finish(ctx, "pass", "no output bound to check (all are infinite)",
                       first, counterexamples)
    lower_of = {tuple(r.tolist()): L[:, k] for k, r in enumerate(rep)}
    lower_of.update({tuple((-r).tolist()): -U[:, k] for k, r in enumerate(rep)})
    rows = prop.rows(everything)
    if all(tuple(r.tolist()) in lower_of for r in rows):
        con_L = torch.stack([lower_of[tuple(r.tolist())] for r in rows], 1) \
            if rows.shape[0] else L[:, :0]
    else:  # general output properties: rows of their own
        con_L, _ = bounder.bounds(plb, pub, rows, method=first)
    err, mag = rounding.forward_error(network, plb, pub)
    cert, rcert = prop.certify(con_L, err, mag, everything)
    # Open unless proved; a NaN certificate proves nothing (NaN > 0 is false).
    ctx.active = [k for k in everything if not cert[0, k] > 0]
    if not ctx.active:
        ctx.active = everything
        return _finish(ctx, "pass", _pass_message(ctx), first, counterexamples,
                       rigorous=bool((rcert > 0).all()))
    cert, rcert = cert[:, ctx.active], rcert[:, ctx.active]
    fixed = [k for k in ctx.active if prop.constraints[k].rows.shape[0] == 0]
    if fixed:  # e.g. a softmax over one output, which is exactly 1 everywhere
        c = prop.constraints[fixed[0]]
        return _finish(ctx, "unknown", f"{c} does not hold in exact arithmetic (the "
                       "output is the same for every input), yet the network's float "
                       "output meets it, so there is no counterexample to show", first,
                       counterexamples)

    # 3. PGD, each start chasing one open constraint; at least one start each.
    out = _attack_root(ctx, pts, counterexamples)
    if out is not None:
        return out

    # 4. alpha-CROWN on what is left, when the box is wide and it fits the
    #    budget (with few free inputs, cutting the box is cheaper).
    used, reference = first, None
    left = ctx.deadline - time.monotonic()
    relu_split = _splits_relus(ctx)
    if alpha and method != "IBP" and any(isinstance(m, str) for m in network.layers) \
            and ctx.free > settings.ALPHA_MIN_FREE \
            and (80 * crown_time < 0.25 * left or relu_split and 80 * crown_time < left):
        La, _, reference = bounder.bounds(plb, pub, prop.rows(ctx.active), method="alpha-CROWN",
                                          intermediate=True)
        cert_a, rcert_a = prop.certify(La, err, mag, ctx.active)
        cert, rcert = torch.maximum(cert, cert_a), torch.maximum(rcert, rcert_a)
        used = "alpha-CROWN"
        if (cert > 0).all():
            return _finish(ctx, "pass", "proved for every input in the box, with "
                           "alpha-CROWN's tighter bounds", used, counterexamples,
                           rigorous=bool((rcert > 0).all()))

    # 5. Branch and bound: on ReLU splits for wide boxes, else on the input box.
    if relu_split and method != "IBP":
        if reference is None:
            reference = bounder.bounds(plb, pub, prop.rows(ctx.active), intermediate=True)[-1]
        out = relu_bab.relu_branch_and_bound(ctx, cert, rcert, reference)
        label = f"{used} + ReLU BaB ({out.boxes} subproblems)"
        done = f"after splitting {out.boxes} subproblems on the signs of ReLUs"
    else:
        out = bab.branch_and_bound(ctx, cert, rcert, branching=branching)
        label = f"{used} + BaB ({out.boxes} boxes)"
        done = f"after splitting it into {out.boxes} boxes"
    if out.status == "pass":
        return _finish(ctx, "pass", f"proved for every input in the box, {done}", label,
                       counterexamples, boxes=out.boxes, rigorous=out.rigorous)
    if out.status == "fail":
        return _finish(ctx, "fail", _fail_message(ctx, out.cexs[0]), label + ", attack",
                       counterexamples, out.cexs, boxes=out.boxes)
    spent = time.monotonic() - ctx.t0
    note = f"no counterexample found in {spent:.3g} s ({out.reason})"
    return _finish(ctx, "unknown", _gap_message(ctx, out.worst, out.boxes, note), label,
                   counterexamples, boxes=out.boxes)


def _splits_relus(ctx: Context) -> bool:
    """Which search: ReLU splits where the box has many free inputs (an image's
    ball, where halving one input of hundreds barely moves a bound), input splits
    where it has few (ACAS Xu's five, where each cut shrinks the box a lot). The
    ReLU-split search needs every activation to be a ReLU."""
    return ctx.free > settings.RELU_SPLIT_MIN_FREE and ctx.bounder.intermediate_width > 0 \
        and ctx.network.relu_only


def _attack_root(ctx: Context, pts: torch.Tensor, counterexamples):
    """PGD on the whole box before any search: from random points and from the best
    of a sweep (``attack.sweep``); on wide boxes also the targeted, restarted attack
    of ``attack.image_attack``. A confirmed counterexample ends the run."""
    network, prop = ctx.network, ctx.prop
    # The attack fits its share of the time left. What one point costs through the network
    # is measured on the samples: on small networks the defaults fit easily, while one of
    # thousands of neurons a layer can take milliseconds a point.
    began = time.monotonic()
    attack.scores(network, prop, pts, ctx.active)
    per_point = max((time.monotonic() - began) / pts.shape[0], 1e-9)
    share = settings.ROOT_ATTACK_SHARE * max(ctx.deadline - time.monotonic(), 0.0)
    sweep = int(min(settings.SWEEP_POINTS, max(16, 0.3 * share / per_point)))
    pool = torch.cat([pts, attack.sweep(ctx.box, ctx.gen, sweep)])
    starts = torch.cat([attack.samples(ctx.box, ctx.gen, n_random=15, max_corners=0),
                        pool[torch.argsort(attack.scores(network, prop, pool, ctx.active))[:32]]])
    if starts.shape[0] < len(ctx.active):
        starts = starts.repeat(len(ctx.active) // starts.shape[0] + 1, 1)
    # A PGD step costs about three passes per start (forward and backward).
    steps = _fit_steps(settings.ROOT_PGD_STEPS, 0.4 * share, 3 * per_point * starts.shape[0])
    found = [attack.pgd(network, prop, ctx.box, starts, steps=steps, active=ctx.active)]
    if ctx.free > settings.IMAGE_MIN_FREE:
        starts = settings.IMAGE_RESTARTS * len(ctx.active)
        steps = _fit_steps(settings.IMAGE_STEPS, 0.3 * share, 3 * per_point * starts)
        found.append(attack.image_attack(network, prop, ctx.box, ctx.gen, ctx.active,
                                         restarts=settings.IMAGE_RESTARTS, steps=steps))
    cexs = attack.confirm(ctx.net, prop, ctx.box, torch.cat(found + [pool]), ctx.input_shape)
    if cexs:
        return _finish(ctx, "fail", _fail_message(ctx, cexs[0]), "PGD attack",
                       counterexamples, cexs)
    return None


def _fit_steps(default: int, seconds: float, per_step: float) -> int:
    """``default`` attack steps, or fewer (at least 4) when they do not fit in ``seconds``."""
    return int(min(default, max(4, seconds / max(per_step, 1e-9))))


@_any_grad_mode
def verify(net: torch.nn.Module, x_specs: XSpecs, y_specs: YSpecs,
           counterexamples: list[torch.Tensor] | None = None, *, timeout: float = 30.0,
           input_shape: Sequence[int] | None = None, method: str = "alpha-CROWN",
           branching: str = "smear", progress: bool | None = None,
           seed: int = 0) -> VerificationResult:
    """Check that every input in the box ``x_specs`` gives outputs within ``y_specs``.

    ``x_specs``: one ``(lb, ub)`` pair per input (finite); ``y_specs``: one
    ``(lb, ub)`` pair per output (``±inf`` allowed), or a property built from
    ``verifier.Y`` such as ``(Y[0] <= Y[1]) | (Y[2] >= 0.5)`` (see
    ``verifier.outputs``). The answer is "pass" only
    when proved with sound bounds, "fail" only with a counterexample the real
    network confirms (also appended to ``counterexamples`` when a list is given),
    else "unknown" with what is left unproved. ``timeout`` in seconds;
    ``method`` the strongest bound used before branching ("CROWN" skips
    alpha-CROWN, which runs only on boxes with more than ``settings.ALPHA_MIN_FREE``
    free inputs anyway; "IBP" uses interval bounds only); ``branching`` which input
    dimension a box is cut along ("smear", "smear-full" or "widest"; see
    ``verifier.bab``); ``progress`` shows a progress bar on stdout (None: only
    when a run takes over 2 s).
    """
    ctx = _setup(net, x_specs, counterexamples, timeout, input_shape, progress, seed)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    bab.check_branching(branching)
    return _run(ctx, _constraints(ctx.network, y_specs), counterexamples, method=method,
                branching=branching, alpha=method == "alpha-CROWN")


def _constraints(network, y_specs: YSpecs) -> list:
    """``y_specs`` (per-output bounds or a ``verifier.Y`` formula) as constraints."""
    if isinstance(y_specs, outputs.Formula):
        return property_mod.from_formula(y_specs, network.n_out, network.softmax)
    ylb, yub = specs.parse_spec(y_specs, network.n_out, "y_specs", allow_inf=True,
                                what="outputs")
    return property_mod.from_y_specs(ylb, yub, network.softmax)


#: Distinct C rows ``prove_boxes`` bounds in one call; questions needing more are left to ``verify``.
MANY_ROWS = 64
#: Points ``prove_boxes`` runs the network at, for its float error.
MANY_POINTS = 30_000


@_any_grad_mode
def prove_boxes(net: torch.nn.Module, questions: Sequence[tuple[XSpecs, YSpecs]],
                chunk: int = 1024) -> list[str | None]:
    """Which of many ``(x_specs, y_specs)`` questions about one network CROWN proves outright.

    A VNN-COMP file may ask one network thousands of questions, each on a box of its own
    (nn4sys: up to 60,000 one-input intervals). ``verify`` on each costs milliseconds of set-up
    apiece; here up to ``chunk`` boxes share one CROWN call, on the C rows their properties need
    (at most ``MANY_ROWS`` distinct ones). Per question: ``"rigorous"`` when proved for every
    input of the box with the rigorous rounding margin (so for the float network too),
    ``"estimated"`` when proved with the estimated one, as ``verify`` would say "pass" (the
    float errors are observed at the ends and centres of the boxes, up to ``MANY_POINTS``
    points), None when not proved this way: ask ``verify``, which searches further and finds
    counterexamples. Boxes and properties are checked as ``verify`` checks them."""
    network = network_mod.cached(net)
    boxes, props, cols, index, found = [], [], [], {}, [None] * len(questions)
    for x_specs, y_specs in questions:
        lb, ub, plb, pub = _input_box(network, x_specs)
        prop = property_mod.Property(_constraints(network, y_specs), network)
        boxes.append((lb, ub, plb, pub))
        props.append(prop)
        # Where each of its C rows sits among the distinct ones; None when some constraint
        # has no rows (a fixed output), which ``verify`` treats on its own.
        bounded = prop.constraints and all(c.rows.shape[0] for c in prop.constraints)
        cols.append([index.setdefault(tuple(r.tolist()), len(index))
                     for r in prop.rows(list(range(len(prop.constraints))))]
                    if bounded else None)
    if not questions or not index or len(index) > MANY_ROWS:
        return found
    # The network must run as traced (``verify``'s check), and its float error seen there
    # is the estimate a proof may use, as in ``verify``.
    step = max(1, 3 * len(boxes) // MANY_POINTS)
    pts = torch.stack([p for lb, ub, _, _ in boxes[::step] for p in (lb, ub, (lb + ub) / 2)])
    seen = network_mod.check_runs_as_traced(net, network, pts.to(network.dtype),
                                            (1, network.n_in))
    rows = torch.tensor(list(index), dtype=torch.float64)
    bounder = network.bounder()
    for start in range(0, len(questions), chunk):
        part = range(start, min(start + chunk, len(questions)))
        plb = torch.stack([boxes[i][2] for i in part])
        pub = torch.stack([boxes[i][3] for i in part])
        L, _ = bounder.bounds(plb, pub, rows, method="CROWN")
        err, mag = rounding.forward_error(network, plb, pub)
        L, err, mag = L.cpu(), err.cpu(), mag.cpu()
        for b, i in enumerate(part):
            if cols[i] is None:
                continue
            prop = props[i]
            prop.observe(seen)
            cert, rcert = prop.certify(L[b:b + 1, cols[i]], err[b:b + 1], mag[b:b + 1],
                                       list(range(len(prop.constraints))))
            if (cert > 0).all():
                found[i] = "rigorous" if (rcert > 0).all() else "estimated"
    return found


@_any_grad_mode
def verify_robustness(net: torch.nn.Module, x_specs: XSpecs, label: int,
                      counterexamples: list[torch.Tensor] | None = None, *,
                      timeout: float = 30.0, input_shape: Sequence[int] | None = None,
                      branching: str = "smear", progress: bool | None = None,
                      seed: int = 0) -> VerificationResult:
    """Check that ``label`` stays the network's argmax for every input in the box.

    The specification is the margin form auto-LiRPA's examples use: lower bounds
    of z[label] - z[j] for every other class j (C rows e_label - e_j, on the
    logits; a final softmax keeps the order). "fail" comes with inputs the real
    network classifies otherwise.
    """
    ctx = _setup(net, x_specs, counterexamples, timeout, input_shape, progress, seed)
    bab.check_branching(branching)
    label = specs.parse_label(label, ctx.network.n_out)
    if ctx.network.n_out < 2:
        raise ValueError("verify_robustness needs a classifier with at least 2 outputs")
    constraints = property_mod.robustness(label, ctx.network.n_out, ctx.network.softmax)
    return _run(ctx, constraints, counterexamples, method="alpha-CROWN",
                branching=branching, alpha=True)


@_any_grad_mode
def output_bounds(net: torch.nn.Module, x_specs: XSpecs,
                  method: str = "CROWN") -> tuple[torch.Tensor, torch.Tensor]:
    """Sound ``(lower, upper)`` bounds (1-D float64 tensors) on every output over the box.

    For a network ending in softmax these bound the probabilities, from CROWN
    bounds on the logits and on their differences (see ``verifier.softmax``).
    These are bounds of the exact function; the float network can differ from
    it by rounding (about 1e-6 for float32). A bound that cannot be computed
    (the arithmetic overflowed) is returned as -inf / +inf, never NaN.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    network = network_mod.cached(net)
    lb, ub, plb, pub = _input_box(network, x_specs)
    box = attack.Box(lb, ub, network.dtype, network.device)
    pts = attack.samples(box, torch.Generator().manual_seed(0), n_random=8, max_corners=16)
    network_mod.check_runs_as_traced(net, network, pts, (1, network.n_in))
    bounder = network.bounder()
    rep, idx = _report_rows(network)
    plb, pub = plb.unsqueeze(0), pub.unsqueeze(0)
    if method == "alpha-CROWN":
        # alpha-CROWN optimises lower bounds only: ask for -C's lower bounds too.
        L, _ = bounder.bounds(plb, pub, torch.cat([rep, -rep]), method=method)
        L, U = L[:, :rep.shape[0]], -L[:, rep.shape[0]:]
    else:
        L, U = bounder.bounds(plb, pub, rep, method=method, upper=True)
    lo, hi = _output_bounds(network, L, U, idx)
    lo, hi = lo[0].cpu(), hi[0].cpu()
    return (torch.where(torch.isnan(lo), -math.inf, lo),
            torch.where(torch.isnan(hi), math.inf, hi))
