"""The result object, accepted network forms, caching and determinism."""
from __future__ import annotations

import itertools
import time

import torch
from torch import nn

from verifier import VerificationResult, output_bounds, verify
from verify_nets import MNISTModle, mlp

X = [(0.4, 0.6), (0.4, 0.6)]


def _range(net):
    lo, hi = output_bounds(net, X)
    return float(lo[0]), float(hi[0])


def test_result_behaviour_pass_and_fail():
    net = mlp((2, 16, 16, 1), seed=1)
    lo, hi = _range(net)
    res = verify(net, X, [(lo - 1, hi + 1)])
    assert res == "pass" and not res != "pass" and res != "fail" and bool(res)
    assert res.status == "pass" and "PASS" in str(res) and "PASS" in res.verdict()
    assert "status='pass'" in repr(res) and "\x1b" not in repr(res)
    assert res.lower.shape == (1,) and res.lower[0] <= res.upper[0]
    assert res.method == "CROWN" and res.time >= 0 and res.counterexamples == []
    assert hash(res) == hash("pass")

    cases = ["already here"]
    res = verify(net, X, [(hi + 0.1, hi + 1)], cases)
    assert res == "fail" and not res and "FAIL" in str(res)
    assert cases[0] == "already here" and len(cases) > 1
    assert all(c.shape == (1, 2) and c.dtype == torch.float32 for c in cases[1:])
    assert res.counterexamples == cases[1:]
    assert "breaking y[0] >= " in res.message


def _hard_case():
    """A deep net, a wide box, and a spec 20% of the range below the sampled
    minimum: too hard to prove or refute in a second or two."""
    net = mlp((5, 50, 50, 50, 50, 50, 50, 1), seed=2)
    g = torch.Generator().manual_seed(0)
    corners = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=5)))
    x = torch.cat([torch.rand(20000, 5, generator=g) * 2 - 1, corners])
    with torch.no_grad():
        y = net(x)
    t = float(y.min()) - 0.2 * float(y.max() - y.min())
    return net, [(-1.0, 1.0)] * 5, [(t, float("inf"))]


def test_unknown_says_what_is_left():
    net, box, spec = _hard_case()
    res = verify(net, box, spec, timeout=1.5, progress=False)
    assert res == "unknown" and not res and "UNKNOWN" in str(res)
    assert "could not prove y[0] >= " in res.message and "lower bound" in res.message
    assert "no counterexample found" in res.message and "boxes" in res.message
    assert res.time < 6


def test_a_network_slow_to_run_keeps_to_the_budget():
    """On a wide network one point costs milliseconds: the attacks before the search and its
    first round are sized by what a pass measured, not by counts fit for small networks (which
    took 5 s and more past a 3 s budget). A bound on the whole box cannot be cut short, so the
    overrun allowed is measured against one ``output_bounds``, about two CROWN passes."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 3000), nn.ReLU(), nn.Linear(3000, 3000), nn.ReLU(),
                        nn.Linear(3000, 3000), nn.ReLU(), nn.Linear(3000, 1))
    box = [(0.0, 100.0)]
    with torch.no_grad():
        y = net(torch.linspace(0, 100, 2001).unsqueeze(1))
    spec = [(float(y.min()) - 0.2 * float(y.max() - y.min()), float("inf"))]
    output_bounds(net, box)                 # reads the network, once
    began = time.monotonic()
    output_bounds(net, box)
    one_pass = time.monotonic() - began
    res = verify(net, box, spec, timeout=3, progress=False)
    assert res != "pass" or res.lower[0] >= spec[0][0]
    assert res.time < 3 + one_pass + 1.5, (res.time, one_pass)


def test_pretty_print():
    class P:
        def __init__(self):
            self.out = ""

        def text(self, s):
            self.out += s

    p = P()
    VerificationResult("unknown", message="m", method="CROWN", time=1.0)._repr_pretty_(p, False)
    assert p.out.startswith("UNKNOWN: m")


def test_network_forms_agree():
    base = mlp((2, 8, 8, 1), seed=3)
    lin1, relu, lin2, _, lin3 = base
    nested = nn.Sequential(nn.Sequential(lin1, relu), nn.Flatten(), nn.Sequential(lin2, nn.ReLU()),
                           lin3)

    class D2LStyle(MNISTModle.__mro__[1]):   # d2l.Module: forward() is self.net(X)
        def __init__(self):
            super().__init__()
            self.net = base

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = base

        def forward(self, x):
            x = torch.flatten(x, 1)
            return self.layers(x).relu() if False else self.layers(x)

    want = output_bounds(base, X)
    for net in (nested, D2LStyle(), Custom()):
        got = output_bounds(net, X)
        assert torch.allclose(got[0], want[0]) and torch.allclose(got[1], want[1])


def test_cache_follows_weight_changes():
    net = mlp((2, 8, 1), seed=4)
    lo, hi = _range(net)
    assert verify(net, X, [(lo - 0.01, hi + 0.01)]) == "pass"
    with torch.no_grad():
        net[2].bias += 10.0          # in place: the version counter changes
    assert verify(net, X, [(lo - 0.01, hi + 0.01)]) == "fail"
    net.load_state_dict(mlp((2, 8, 1), seed=4).state_dict())
    assert verify(net, X, [(lo - 0.01, hi + 0.01)]) == "pass"


def test_deterministic_and_leaves_global_rng_alone():
    net = mlp((2, 16, 16, 1), seed=5)
    lo, hi = _range(net)
    spec = [((lo + hi) / 2, hi + 1)]
    torch.manual_seed(123)
    a = verify(net, X, spec, timeout=5)
    after = torch.rand(3)
    torch.manual_seed(123)
    b = verify(net, X, spec, timeout=5)
    assert torch.equal(after, torch.rand(3))
    assert a.status == b.status == "fail"
    assert all(torch.equal(x, y) for x, y in zip(a.counterexamples, b.counterexamples))


def test_float_box_corners_are_covered():
    """float32(0.7) < 0.7: points a student writes at the corner are proved too."""
    net = mlp((2, 8, 1), seed=6)
    box = [(0.7, 0.85), (0.7, 0.85)]
    lo, hi = output_bounds(net, box)
    res = verify(net, box, [(float(lo[0]) - 1e-3, float(hi[0]) + 1e-3)])
    assert res == "pass"
    with torch.no_grad():
        y = net(torch.tensor([[0.7, 0.7], [0.85, 0.85], [0.7, 0.85]]))
    assert torch.all(y.double() >= lo - 1e-3) and torch.all(y.double() <= hi + 1e-3)


def test_no_parameter_grads_and_float64_nets():
    net = mlp((2, 8, 1), seed=7)
    lo, hi = _range(net)
    verify(net, X, [((lo + hi) / 2, hi)], timeout=2)
    assert all(p.grad is None for p in net.parameters())
    net64 = mlp((2, 8, 1), seed=7).double()
    res = verify(net64, X, [(lo - 0.01, hi + 0.01)])
    assert res == "pass"
    res = verify(net64, X, [(hi + 0.01, hi + 1)])
    assert res == "fail" and res.counterexamples[0].dtype == torch.float64
