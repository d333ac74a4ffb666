"""Sigmoid layers: the lines every bound uses, and verify() on networks that have them.

The oracle is the network itself, evaluated densely: for one or two inputs a grid of
tens of thousands of points comes within a hair of the exact range (the networks are
small and smooth), and a spec placed inside that range by as little as 1e-7 of it
must never pass. The repair of a line (``verifier.sigmoid.repair``) is checked on its own
against float64's sigmoid, for any line, over intervals from 1e-12 wide to 1e5, far out in
the tails too, where auto-LiRPA's own lines (inputs clamped to [-500, 500]) are not valid;
alpha-CROWN's optimised lines against dense samples of a wider network.
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st
from torch import nn

from verifier import output_bounds, sigmoid, verify
from verifier.bounds import Bounder
from verifier.network import parse

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


# -- the lines ------------------------------------------------------------------------------

@SETTINGS
@given(k=st.floats(-0.1, 0.3), b=st.floats(-2, 2), lo=st.floats(-3000, 3000),
       width=st.sampled_from([0.0, 1e-12, 1e-8, 1e-6, 1e-4, 0.01, 0.5, 3.0, 20.0, 700.0, 1e5]),
       ts=st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_a_repaired_line_holds_everywhere_on_the_interval(k, b, lo, width, ts):
    """Any line at all, once repaired, is below (above) the sigmoid on the whole interval:
    at its ends, at random points and at the points where the sigmoid's slope is k."""
    lo_t = torch.tensor([lo], dtype=torch.float64)
    up_t = lo_t + width
    k_t, b_t = torch.tensor([k], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)
    bl = sigmoid.repair(k_t, b_t, lo_t, up_t, lower=True)
    bu = sigmoid.repair(k_t, b_t, lo_t, up_t, lower=False)
    x = torch.tensor([0.0, 1.0] + ts, dtype=torch.float64) * (up_t - lo_t) + lo_t
    s = 2 * k / (1 + math.sqrt(1 - 4 * k)) if 0 < k < 0.25 else 0.0
    if s > 0:
        x = torch.cat([x, torch.tensor([math.log(s / (1 - s)), -math.log(s / (1 - s))],
                                       dtype=torch.float64)])
    x = torch.minimum(torch.maximum(x, lo_t), up_t)
    sig = torch.sigmoid(x)
    assert (k_t * x + bl <= sig).all() and (sig <= k_t * x + bu).all(), (k, b, lo, width)


@SETTINGS
@given(lo=st.floats(-3000, 3000), width=st.sampled_from([0.0, 1e-12, 1e-8, 1e-6, 1e-4, 0.01, 0.5,
                                                          3.0, 20.0, 700.0, 1e5]))
def test_our_crown_lines_already_hold_so_repair_barely_moves_them(lo, width):
    lo_t = torch.tensor([lo], dtype=torch.float64)
    up_t = lo_t + width
    kl, bl, ku, bu = sigmoid.relaxation(lo_t, up_t)
    scale = 1 + lo_t.abs() + up_t.abs()
    # beyond repair's own margin, the lines need no move (a bug would show as a larger one)
    assert (bl - sigmoid.repair(kl, bl, lo_t, up_t, lower=True)
            <= 2 * sigmoid.MARGIN * (1 + kl.abs() * scale) + 1e-15).all()
    assert (sigmoid.repair(ku, bu, lo_t, up_t, lower=False) - bu
            <= 2 * sigmoid.MARGIN * (1 + ku.abs() * scale) + 1e-15).all()


def test_a_line_that_already_holds_moves_by_the_margin_only():
    """Tangents in the convex part are below the sigmoid and chords above: repair leaves them
    where they are, up to its rounding margin."""
    lo = torch.tensor([-6.0, -3.0, -1.0], dtype=torch.float64)
    up = torch.tensor([-2.0, -0.5, 0.0], dtype=torch.float64)
    mid = (lo + up) / 2
    k = torch.sigmoid(mid) * (1 - torch.sigmoid(mid))
    b = torch.sigmoid(mid) - k * mid
    assert ((b - sigmoid.repair(k, b, lo, up, lower=True)).abs() < 1e-10).all()
    chord = (torch.sigmoid(up) - torch.sigmoid(lo)) / (up - lo)
    bc = torch.sigmoid(lo) - chord * lo
    assert ((sigmoid.repair(chord, bc, lo, up, lower=False) - bc).abs() < 1e-10).all()
    # a line above the sigmoid, asked to be below, moves down by the most it is above
    assert sigmoid.repair(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64),
                          lo[:1], up[:1], lower=True).item() <= torch.sigmoid(lo[:1]).item()


def test_the_bounds_use_these_lines_far_out_in_the_tail():
    """y = -sigmoid(x) on [-1000, 0]: auto-LiRPA's own upper line of the sigmoid is the chord
    from -500 (its clamp), which is -0.5 at x = -1000, so its lower bound of y there was +0.5,
    above y's value (about 0)."""
    net = nn.Sequential(nn.Linear(1, 1), nn.Sigmoid(), nn.Linear(1, 1)).double()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.zero_()
        net[2].weight.fill_(-1.0)
        net[2].bias.zero_()
    bounder = Bounder(parse(net))
    lb = torch.tensor([[-1000.0]], dtype=torch.float64)
    ub = torch.tensor([[0.0]], dtype=torch.float64)
    L, _, (A, a) = bounder.bounds(lb, ub, linear=True)
    xs = torch.linspace(-1000, 0, 2001, dtype=torch.float64).unsqueeze(1)
    line = (xs @ A[0].T + a[0]).squeeze(1)
    assert (line <= -torch.sigmoid(xs).squeeze(1)).all()
    assert L.item() <= -0.5


# -- verify() ---------------------------------------------------------------------------------

@st.composite
def networks(draw):
    n_in = draw(st.integers(1, 2))
    hidden = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))
    acts = [draw(st.sampled_from(["sigmoid", "sigmoid", "relu"])) for _ in hidden]
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    scale = draw(st.sampled_from([1.0, 3.0, 10.0]))
    last = draw(st.booleans())           # a sigmoid on the output too
    g = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 16)))
    sizes = [n_in] + hidden + [1]
    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=g, dtype=dtype) * scale / a ** 0.5)
            lin.bias.copy_(torch.randn(b, generator=g, dtype=dtype))
        layers.append(lin)
        if k < len(hidden):
            layers.append(nn.Sigmoid() if acts[k] == "sigmoid" else nn.ReLU())
    if last:
        layers.append(nn.Sigmoid())
    if not any(isinstance(m, nn.Sigmoid) for m in layers):
        layers.insert(1, nn.Sigmoid())
    return nn.Sequential(*layers).eval(), n_in


def grid(lb, ub, n_in):
    """Tens of thousands of points of the box, its corners included."""
    per = 40001 if n_in == 1 else 201
    axes = [torch.linspace(lo, hi, per, dtype=torch.float64) for lo, hi in zip(lb, ub)]
    return torch.cartesian_prod(*axes).reshape(-1, n_in)


@SETTINGS
@given(case=networks(), data=st.data())
def test_every_pass_is_true_and_every_fail_is_real(case, data):
    net, n_in = case
    dtype = next(net.parameters()).dtype
    centre = data.draw(st.lists(st.floats(-2, 2), min_size=n_in, max_size=n_in))
    radius = data.draw(st.sampled_from([0.0, 0.01, 0.3, 1.5]))
    lb, ub = [c - radius for c in centre], [c + radius for c in centre]
    x = grid(lb, ub, n_in)
    with torch.no_grad():
        exact = net.double()(x).squeeze(1)
    net.to(dtype)
    lo_true, hi_true = exact.min().item(), exact.max().item()
    # the spec's upper end: just inside the range seen (must not pass), on it, or outside
    d = data.draw(st.sampled_from([-1e-7, -1e-4, -0.05, 0.0, 1e-4, 0.05]))
    hi = hi_true + d * max(hi_true - lo_true, 1e-3)
    spec = [(-math.inf, hi)]
    cexs: list = []
    result = verify(net, list(zip(lb, ub)), spec, cexs, timeout=2.0, progress=False)
    event(f"{result.status} at {d}")
    if result == "pass":
        assert hi_true <= hi + 1e-12 * (1 + abs(hi)), f"false pass: {hi_true} seen, spec <= {hi}"
        with torch.no_grad():
            assert not (net(x.to(dtype)).double() > hi).any() or result.rounding != "rigorous"
    elif result == "fail":
        for cex in cexs:
            c = cex.double().flatten()
            lo_x, hi_x = torch.tensor(lb, dtype=torch.float64), torch.tensor(ub, dtype=torch.float64)
            assert (c >= lo_x - 1e-7 * (1 + lo_x.abs())).all() and (c <= hi_x + 1e-7 * (1 + hi_x.abs())).all()
            with torch.no_grad():
                assert net(cex).double().item() > hi
    lo_b, hi_b = output_bounds(net, list(zip(lb, ub)))
    assert lo_b.item() <= lo_true + 1e-9 and hi_b.item() >= hi_true - 1e-9


def test_alpha_crown_bounds_of_a_sigmoid_network_hold_at_every_sample():
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(12, 40), nn.Sigmoid(), nn.Linear(40, 40), nn.Sigmoid(),
                        nn.Linear(40, 3)).double()
    with torch.no_grad():
        net[0].weight.mul_(4)
    box = [(-0.3, 0.3)] * 12
    lo_a, hi_a = output_bounds(net, box, method="alpha-CROWN")
    lo_c, hi_c = output_bounds(net, box)
    x = torch.rand(20000, 12, dtype=torch.float64) * 0.6 - 0.3
    x[:4096] = torch.sign(x[:4096]) * 0.3          # corners too
    with torch.no_grad():
        y = net(x)
    assert (y >= lo_a).all() and (y <= hi_a).all()
    assert (lo_a >= lo_c - 1e-9).all() and (hi_a <= hi_c + 1e-9).all()


def test_a_wide_float32_sigmoid_network_runs_as_traced_and_is_proved():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(20, 300), nn.Sigmoid(), nn.Linear(300, 300), nn.ReLU(),
                        nn.Linear(300, 2), nn.Sigmoid()).eval()
    box = [(-0.01, 0.01)] * 20
    with torch.no_grad():
        y = net(torch.zeros(1, 20))[0]
    r = verify(net, box, [(y[0].item() - 0.05, y[0].item() + 0.05), (0.0, 1.0)], progress=False)
    assert r == "pass", r.message
    r = verify(net, box, [(y[0].item() + 1e-3, 1.0), (0.0, 1.0)], [], progress=False)
    assert r == "fail"


def test_the_rigorous_rounding_bound_covers_float32_sigmoids():
    from verifier import rounding

    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(4, 64), nn.Sigmoid(), nn.Linear(64, 64), nn.Sigmoid(),
                        nn.Linear(64, 3))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.mul_(4)
    chain = parse(net)
    x = torch.rand(5000, 4) * 8 - 4
    with torch.no_grad():
        seen = (net(x).double() - chain.exact_logits(x)).abs().amax(0)
    err, _ = rounding.forward_error(chain, torch.full((1, 4), -4.0, dtype=torch.float64),
                                    torch.full((1, 4), 4.0, dtype=torch.float64))
    assert (seen <= err[0]).all() and (err[0] < 1e-2).all()


def test_a_sigmoid_network_is_not_split_on_relus():
    """Many free inputs take the ReLU-split search, which has no sigmoid lines: a network
    with a sigmoid takes input splitting (and ends unknown here, never wrong)."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 30), nn.Sigmoid(),
                        nn.Linear(30, 30), nn.ReLU(), nn.Linear(30, 1))
    x = torch.zeros(1, 40)
    with torch.no_grad():
        y = net(x).item()
    r = verify(net, [(-0.5, 0.5)] * 40, [(y - 0.02, math.inf)], [], timeout=3, progress=False)
    assert r in ("unknown", "fail", "pass")
    assert "ReLU BaB" not in (r.method or "")


@pytest.mark.parametrize("act", [torch.sigmoid, nn.functional.sigmoid, "method"])
def test_sigmoid_in_forward_is_read_in_every_spelling(act):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 4), nn.Linear(4, 1)

        def forward(self, x):
            h = self.a(x)
            return self.b(h.sigmoid() if act == "method" else act(h))

    chain = parse(Net())
    assert [m if isinstance(m, str) else "linear" for m in chain.layers] == \
        ["linear", "sigmoid", "linear"]
    assert verify(Net(), [(0, 1), (0, 1)], [(-1e3, 1e3)], progress=False) == "pass"
    lo, hi = output_bounds(Net(), [(0, 1), (0, 1)])
    assert torch.isfinite(lo).all() and torch.isfinite(hi).all()
