"""Property-based soundness of verify(): hypothesis builds the networks, boxes and specs.

Every answer is checked against something that shares no code with ``verifier``:

* a "pass" against the exact output range from the MILP oracle
  (``tests/milp_oracle.py``) where the network has no softmax, and against dense
  evaluation of the real network (corners, the oracle's extreme points, random
  points) always; with ``rounding == "rigorous"`` the float network itself must
  meet the spec there;
* a "fail" by its counterexamples: each lies in the box, runs through
  ``net(cex)`` and breaks the spec;
* inputs that cannot be verified (NaN weights, hooks, subclassed layers, low
  precision, outputs of the wrong shape) must raise the documented error.

The generators cover what a user can build: float32 and float64 weights, with or
without biases, plain or nested Sequentials, a module with ``forward`` and a
Flatten, a final softmax (over one output too), degenerate boxes, specs within
1e-7 of the exact range, infinite sides, and weights edited in place after a
first ``verify``. ``derandomize`` keeps CI runs repeatable; a failure shrinks to
a small case that belongs in ``test_verify_no_false_pass.py``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st
from torch import nn
from torch.nn.utils import parametrize

from milp_oracle import output_range
from verifier import output_bounds, verify

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
TIMEOUT = 1.5   # seconds per verify(): "unknown" is a fine answer, a wrong one is not


class Wrapped(nn.Module):
    """A user's own module: Flatten in forward, the layers in ``self.net``."""

    def __init__(self, seq, softmax):
        super().__init__()
        self.net, self.softmax = seq, softmax

    def forward(self, x):
        y = self.net(nn.Flatten()(x))
        return nn.Softmax(dim=1)(y) if self.softmax else y


@st.composite
def networks(draw, max_in=3):
    n_in = draw(st.integers(1, max_in))
    hidden = draw(st.lists(st.integers(1, 8), min_size=0, max_size=2))
    n_out = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    bias = draw(st.booleans())
    scale = draw(st.sampled_from([0.5, 1.5, 4.0]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 16)))
    sizes = [n_in] + hidden + [n_out]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        lin = nn.Linear(a, b, bias=bias, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=g, dtype=dtype) * scale / a ** 0.5)
            if bias:
                lin.bias.copy_(torch.randn(b, generator=g, dtype=dtype) * 0.5)
        layers += [lin, nn.ReLU()]
    core = nn.Sequential(*layers[:-1])          # the oracle reads this one
    softmax = draw(st.booleans())
    form = draw(st.sampled_from(["plain", "nested", "wrapped"]))
    if form == "wrapped":
        net = Wrapped(core, softmax)
    elif form == "nested":
        net = nn.Sequential(nn.Flatten(), nn.Sequential(*core), *([nn.Softmax(dim=1)] * softmax))
    else:
        net = nn.Sequential(*core, *([nn.Softmax(dim=1)] * softmax))
    return net, core, softmax


@st.composite
def boxes(draw, n):
    lb, ub = [], []
    for _ in range(n):
        c = draw(st.floats(-2, 2, allow_nan=False))
        w = draw(st.sampled_from([0.0, 1e-6, 0.05, 0.5, 2.0]))
        lb.append(c - w / 2)
        ub.append(c + w / 2)
    return np.array(lb), np.array(ub)


def dense_points(lb, ub, extra=(), k=400, seed=0):
    """Corners (up to 64), the given extreme points and ``k`` random points, float64."""
    rng = np.random.default_rng(seed)
    n = lb.size
    pts = [lb + rng.random((k, n)) * (ub - lb), ((lb + ub) / 2)[None]]
    bits = np.array([[(i >> j) & 1 for j in range(n)] for i in range(min(2 ** n, 64))])
    pts.append(lb + bits * (ub - lb))
    pts += [np.clip(np.asarray(e, float)[None], lb, ub) for e in extra]
    return np.concatenate(pts)


def float_points(pts, lb, ub, dtype):
    """Points rounded to ``dtype`` and kept only where still inside [lb, ub]."""
    x = torch.tensor(pts, dtype=torch.float64).to(dtype)
    inside = ((x.double() >= torch.tensor(lb)) & (x.double() <= torch.tensor(ub))).all(1)
    return x[inside]


def violates(y: torch.Tensor, y_specs) -> torch.Tensor:
    """Which rows of real outputs (K, m) break the spec, compared as verify() says a
    student compares: below lb (above ub) both in float64 and in the output's dtype,
    and NaN breaks any finite bound."""
    y64 = y.double()
    bad = torch.zeros(y.shape[0], dtype=torch.bool)
    for i, (lo, hi) in enumerate(y_specs):
        v, v64 = y[:, i], y64[:, i]
        if math.isfinite(lo):
            own = torch.tensor(lo, dtype=y.dtype).double()
            bad |= ((v64 < lo) & (v64 < own)) | torch.isnan(v)
        if math.isfinite(hi):
            own = torch.tensor(hi, dtype=y.dtype).double()
            bad |= ((v64 > hi) & (v64 > own)) | torch.isnan(v)
    return bad


def spec_near(draw, lo_true, hi_true):
    """One (lb, ub) pair at a drawn distance from the true range [lo_true, hi_true]:
    outside it (should pass), inside it (should fail), on it, or infinite."""
    width = max(hi_true - lo_true, 1e-3)
    def side(true, sign):
        kind = draw(st.sampled_from(["inf", "out", "out", "in", "on"]))
        if kind == "inf":
            return sign * math.inf
        d = draw(st.sampled_from([1e-7, 1e-4, 0.02, 0.3])) * width
        return {"out": true + sign * d, "in": true - sign * d, "on": true}[kind]
    lo, hi = side(lo_true, -1.0), side(hi_true, 1.0)
    if lo > hi:
        lo, hi = hi, lo
    if lo == math.inf or hi == -math.inf:     # unsatisfiable: a ValueError, tested elsewhere
        return (-math.inf, math.inf)
    return (lo, hi)


def check_answer(net, core, softmax, lb, ub, y_specs, result, cexs):
    dtype = next(core.parameters()).dtype
    assert result.status in ("pass", "fail", "unknown")
    event(f"{result.status} {result.rounding or ''}".strip())
    if result == "fail":
        assert cexs and len(cexs) == len(result.counterexamples)
        for cex in cexs:
            x = cex.double().flatten().numpy()
            assert np.all(x >= lb) and np.all(x <= ub), "counterexample outside the box"
            with torch.no_grad():
                y = net(cex)
            assert y.shape == (1, len(y_specs))
            assert violates(y, y_specs).all(), "counterexample meets the spec when run"
        return
    assert cexs == []
    if result != "pass":
        return
    extremes = []
    if not softmax:
        for i, (mn, xmin, mx, xmax) in enumerate(output_range(core, lb, ub)):
            lo, hi = y_specs[i]
            assert mn >= lo - 1e-9 * (1 + abs(lo)) and mx <= hi + 1e-9 * (1 + abs(hi)), \
                f"false pass: output {i} ranges over [{mn}, {mx}] exactly, spec {y_specs[i]}"
            extremes += [xmin, xmax]
    x = float_points(dense_points(lb, ub, extremes), lb, ub, dtype)
    if x.shape[0] == 0:
        return
    with torch.no_grad():
        y = net(x)
    exact = torch.tensor(y_specs).double()
    y64 = core.double()(x.double()) if not softmax else None
    core.to(dtype)
    if y64 is not None:   # the exact function (float64) at the points: always in spec
        assert ((y64 >= exact[:, 0] - 1e-9 * (1 + exact[:, 0].abs())) &
                (y64 <= exact[:, 1] + 1e-9 * (1 + exact[:, 1].abs()))).all()
    if result.rounding == "rigorous" or softmax:
        assert not violates(y, y_specs).any(), "a rigorous pass contradicted by net(x)"


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_every_pass_is_true_and_every_fail_is_real(data):
    net, core, softmax = data.draw(networks())
    n = core[0].in_features
    lb, ub = data.draw(boxes(n))
    m = core[-1].out_features
    dtype = next(core.parameters()).dtype
    if softmax:
        x = float_points(dense_points(lb, ub, k=200), lb, ub, dtype)
        with torch.no_grad():
            y = net(x).double() if x.shape[0] else torch.full((1, m), 0.5)
        ranges = list(zip(y.amin(0).tolist(), y.amax(0).tolist()))
    else:
        ranges = [(mn, mx) for mn, _, mx, _ in output_range(core, lb, ub)]
    y_specs = [spec_near(data.draw, lo, hi) for lo, hi in ranges]
    cexs = []
    result = verify(net, list(zip(lb.tolist(), ub.tolist())), y_specs, cexs,
                    timeout=TIMEOUT, progress=False)
    check_answer(net, core, softmax, lb, ub, y_specs, result, cexs)


EDITS = {
    "scale .data": lambda lin: lin.weight.data.mul_(-2.0),
    "copy_": lambda lin: lin.weight.data.copy_(torch.flip(lin.weight.data, [0, 1])),
    "normal_": lambda lin: lin.weight.data.normal_(),
    "bias fill_": lambda lin: lin.bias.data.fill_(3.0) if lin.bias is not None
    else lin.weight.data.add_(1.0),
}


@SETTINGS
@given(data=st.data(), edit=st.sampled_from(sorted(EDITS)))
def test_weights_edited_after_a_verify_are_bounded_as_edited(data, edit):
    net, core, softmax = data.draw(networks())
    n = core[0].in_features
    lb, ub = data.draw(boxes(n))
    x_specs = list(zip(lb.tolist(), ub.tolist()))
    verify(net, x_specs, [(-math.inf, math.inf)] * core[-1].out_features, timeout=TIMEOUT,
           progress=False)
    output_bounds(net, x_specs)                       # both calls fill the cache
    target = core[data.draw(st.integers(0, len(core) // 2)) * 2]
    with torch.no_grad():
        EDITS[edit](target)
    if softmax:
        # Probabilities: the sound bounds must contain what the edited net computes.
        lo, hi = output_bounds(net, x_specs)
        x = float_points(dense_points(lb, ub, k=100), lb, ub, next(core.parameters()).dtype)
        with torch.no_grad():
            y = net(x).double()
        assert (y >= lo - 1e-6).all() and (y <= hi + 1e-6).all()
        return
    ranges = output_range(core, lb, ub)
    lo, hi = output_bounds(net, x_specs)
    for i, (mn, _, mx, _) in enumerate(ranges):
        assert lo[i] <= mn + 1e-9 * (1 + abs(mn)) and hi[i] >= mx - 1e-9 * (1 + abs(mx))
    y_specs = [spec_near(data.draw, mn, mx) for mn, _, mx, _ in ranges]
    cexs = []
    result = verify(net, x_specs, y_specs, cexs, timeout=TIMEOUT, progress=False)
    check_answer(net, core, softmax, lb, ub, y_specs, result, cexs)


class OwnReLU(nn.ReLU):
    def forward(self, x):
        return torch.relu(x) * 1.0001


class OwnLinear(nn.Linear):
    pass     # same forward, but not the class we read: refused all the same


def _hook(net, core):
    core[0].register_forward_hook(lambda m, i, o: o + 1)


def _pre_hook(net, core):
    core[-1].register_forward_pre_hook(lambda m, i: (i[0] * 2,))


def _weight_norm(net, core):
    class Double(nn.Module):
        def forward(self, w):
            return 2 * w
    parametrize.register_parametrization(core[0], "weight", Double())


def _nan(net, core):
    with torch.no_grad():
        core[0].weight[0, 0] = math.nan


def _inf_bias(net, core):
    with torch.no_grad():
        if core[0].bias is None:
            core[0].weight[0, 0] = math.inf
        else:
            core[0].bias[0] = -math.inf


def _low_precision(net, core):
    net.to(torch.bfloat16)


def _replace(net, old, new):
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if child is old:
                setattr(parent, name, new)


def _subclass(net, core):
    relus = [m for m in core if type(m) is nn.ReLU]
    if relus:
        _replace(net, relus[0], OwnReLU())
        return
    old = core[0]
    new = OwnLinear(old.in_features, old.out_features, bias=old.bias is not None,
                    dtype=old.weight.dtype)
    new.load_state_dict(old.state_dict())
    _replace(net, old, new)


DEFECTS = {"forward hook": (_hook, TypeError, r"forward hooks"),
           "pre-hook": (_pre_hook, TypeError, r"forward hooks"),
           "parametrization": (_weight_norm, TypeError, r"parametrizations"),
           "NaN weight": (_nan, ValueError, r"NaN weights"),
           "infinite weight or bias": (_inf_bias, ValueError, r"infinite (weights|biases)"),
           "bfloat16": (_low_precision, TypeError, r"float32 and float64 networks"),
           "subclassed layer": (_subclass, TypeError, r"a subclass of nn\.(ReLU|Linear)")}


@SETTINGS
@given(data=st.data(), defect=st.sampled_from(sorted(DEFECTS)))
def test_a_network_that_cannot_be_bounded_as_it_runs_is_refused(data, defect, capfd):
    net, core, softmax = data.draw(networks())
    lb, ub = data.draw(boxes(core[0].in_features))
    x_specs = list(zip(lb.tolist(), ub.tolist()))
    y_specs = [(-1.0, 1.0)] * core[-1].out_features
    make, exc, pattern = DEFECTS[defect]
    make(net, core)
    for call in (lambda: verify(net, x_specs, y_specs, timeout=TIMEOUT, progress=False),
                 lambda: output_bounds(net, x_specs)):
        with pytest.raises(exc, match=pattern):
            call()
    assert capfd.readouterr().err == ""


@SETTINGS
@given(data=st.data(), shape=st.sampled_from(["(1, n)", "(1, 1, n)", "(1, n, 1)", "(n, 1)"]))
def test_input_shape_is_honoured_or_refused(data, shape):
    """With a Flatten first, (1, 1, n) and (1, n, 1) are one input; without it,
    only (1, n) gives one row of outputs: anything else is a ValueError."""
    net, core, softmax = data.draw(networks())
    n = core[0].in_features
    lb, ub = data.draw(boxes(n))
    input_shape = {"(1, n)": (1, n), "(1, 1, n)": (1, 1, n), "(1, n, 1)": (1, n, 1),
                   "(n, 1)": (n, 1)}[shape]
    flattens = not isinstance(net, nn.Sequential) or isinstance(net[0], nn.Flatten)
    ok = input_shape == (1, n) or (flattens and input_shape[0] == 1)
    x_specs = list(zip(lb.tolist(), ub.tolist()))
    y_specs = [(-math.inf, 0.0)] * core[-1].out_features
    if not ok:
        with pytest.raises(ValueError, match=r"net\(x\)"):
            verify(net, x_specs, y_specs, input_shape=input_shape, timeout=TIMEOUT,
                   progress=False)
        return
    cexs = []
    result = verify(net, x_specs, y_specs, cexs, input_shape=input_shape, timeout=TIMEOUT,
                    progress=False)
    for cex in cexs:
        assert cex.shape == input_shape
    check_answer(net, core, softmax, lb, ub, y_specs, result,
                 [c.reshape(1, n) if flattens else c for c in cexs])
