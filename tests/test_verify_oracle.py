"""verify() against an independent exact oracle (MILP, tests/milp_oracle.py).

Random small ReLU nets with fixed seeds; for each, the exact output range over a
box. Specs just outside the range must not fail (and should pass); specs cutting
just into it must not pass (and should fail, with real counterexamples).
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from milp_oracle import output_range
from verifier import settings, verify
from verify_nets import mlp

CONFIGS = [(2, 8, 8, 1), (3, 10, 10, 2), (2, 16, 16, 1), (4, 12, 12, 1),
           (2, 32, 32, 1), (3, 8, 8, 8, 1), (5, 10, 10, 2), (2, 20, 1)]
N_CASES = 32
DELTA = 0.005          # how far (relative to the exact range) specs sit from it


def _case(k):
    sizes = CONFIGS[k % len(CONFIGS)]
    net = mlp(sizes, seed=100 + k)
    rng = np.random.default_rng(k)
    n = sizes[0]
    c, w = rng.uniform(-1, 1, n), rng.uniform(0.2, 1.0, n)
    return net, sizes, c - w / 2, c + w / 2


def _check_cex(net, lb, ub, y_specs, cex):
    assert isinstance(cex, torch.Tensor) and cex.shape == (1, len(lb))
    assert cex.dtype == torch.float32
    x = cex.double().flatten().numpy()
    assert np.all(x >= lb) and np.all(x <= ub), "counterexample outside the box"
    with torch.no_grad():
        y = net(cex).double().flatten().numpy()
    assert any(y[i] < lo or y[i] > hi for i, (lo, hi) in enumerate(y_specs)), \
        "counterexample does not violate the spec when run"


@pytest.fixture(scope="module", params=["normal", "hard"])
def outcomes(request):
    """Every case twice: as verify() runs it, and with branch and bound's hard mode
    (two relaxations a box, the full gradient everywhere) from its first box on."""
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "hard":
            mp.setattr(settings, "HARD_AFTER", 0)
        return _outcomes()


def _outcomes():
    rows = []
    for k in range(N_CASES):
        net, sizes, lb, ub = _case(k)
        ranges = output_range(net, lb, ub)
        m = sizes[-1]
        i = k % m
        mn, _, mx, _ = ranges[i]
        d = DELTA * (mx - mn) + 1e-5
        keep = [(-math.inf, math.inf)] * m
        passing = list(keep)
        passing[i] = (mn - d, mx + d)
        failing = list(keep)
        failing[i] = (mn + d, math.inf) if k % 2 == 0 else (-math.inf, mx - d)
        for expect, ys in (("pass", passing), ("fail", failing)):
            cases = []
            res = verify(net, list(zip(lb, ub)), ys, cases, timeout=8, progress=False)
            rows.append((k, expect, res, cases, net, lb, ub, ys))
    return rows


def test_never_a_false_pass_and_fails_are_real(outcomes):
    for k, expect, res, cases, net, lb, ub, ys in outcomes:
        assert res.status in ("pass", "fail", "unknown")
        if expect == "fail":
            assert res != "pass", f"case {k}: FALSE PASS {res}"
        if expect == "pass":
            assert res != "fail", f"case {k}: false fail {res}"
        if res == "fail":
            assert cases and cases == res.counterexamples
            for cex in cases:
                _check_cex(net, lb, ub, ys, cex)


def test_most_cases_are_decided(outcomes):
    decided = sum(o[2].status != "unknown" for o in outcomes)
    assert len(outcomes) >= 60
    assert decided >= 0.9 * len(outcomes), f"only {decided}/{len(outcomes)} decided"


@pytest.mark.parametrize("k", [0, 1, 5])
def test_oracle_agrees_with_dense_sampling(k):
    """The oracle can be wrong too: compare it with 20,000 samples and its argmin/argmax."""
    net, sizes, lb, ub = _case(k)
    ranges = output_range(net, lb, ub)
    g = torch.Generator().manual_seed(k)
    x = torch.tensor(lb) + torch.rand(20000, len(lb), generator=g, dtype=torch.float64) \
        * torch.tensor(ub - lb)
    net64 = copy.deepcopy(net).double()
    with torch.no_grad():
        y = net64(x).numpy()
        for i, (mn, xmin, mx, xmax) in enumerate(ranges):
            span = mx - mn
            assert y[:, i].min() >= mn - 1e-7 * (1 + abs(mn))
            assert y[:, i].max() <= mx + 1e-7 * (1 + abs(mx))
            # sampling gets close to the extremes
            assert y[:, i].min() <= mn + 0.05 * span
            assert y[:, i].max() >= mx - 0.05 * span
            # the oracle's witnesses are in the box and reach its values
            for xv, v in ((xmin, mn), (xmax, mx)):
                assert np.all(xv >= lb - 1e-9) and np.all(xv <= ub + 1e-9)
                val = net64(torch.tensor(xv).unsqueeze(0)).numpy()[0, i]
                assert abs(val - v) <= 1e-6 * (1 + abs(v))


@pytest.mark.parametrize("k", range(0, N_CASES, 4))
def test_no_false_pass_on_a_razor_thin_violation(k):
    """The spec cuts into the exact range by only 1e-4 of it: never "pass"."""
    net, sizes, lb, ub = _case(k)
    mn, xmin, mx, xmax = output_range(net, lb, ub)[0]
    d = 1e-4 * (mx - mn)
    ys = [(mn + d, math.inf)] + [(-math.inf, math.inf)] * (sizes[-1] - 1)
    cases = []
    res = verify(net, list(zip(lb, ub)), ys, cases, timeout=3, progress=False)
    assert res != "pass", f"FALSE PASS {res}"
    for cex in cases:
        _check_cex(net, lb, ub, ys, cex)
