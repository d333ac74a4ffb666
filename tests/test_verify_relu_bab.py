"""Branch and bound on ReLU splits (verifier/relu_bab.py), the search for boxes over
many free inputs.

Soundness by construction (every split's two children cover their parent) and
against the exact MILP oracle on small networks with 20 to 40 inputs, where
``verify`` picks this search by itself. ``VERIFY_RELU_EXAMPLES`` raises the number
of hypothesis examples (a handful by default, to keep ``make test`` short).
"""
from __future__ import annotations

import math
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from milp_oracle import output_range
from verifier import property as property_mod, relu_bab
from verifier import verify, verify_robustness
from verifier.engine import _setup
from verify_nets import mlp

EXAMPLES = int(os.environ.get("VERIFY_RELU_EXAMPLES", "4"))


def _box(n, seed, half=0.15):
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, n)
    return c - half, c + half


def _pre_activations(net, x):
    """Every ReLU's input at points x (N, n), float64, layer by layer."""
    out, h = [], x.double()
    for m in net:
        if isinstance(m, torch.nn.Linear):
            h = torch.nn.functional.linear(h, m.weight.double(), m.bias.double())
        else:
            out.append(h)
            h = torch.relu(h)
    return out


def _search(net, lb, ub):
    ctx = _setup(net, list(zip(lb, ub)), None, 30.0, None, False, 0)
    ctx.prop = property_mod.Property(property_mod.robustness(0, 2, False), ctx.network)
    ctx.active = [0]
    ctx.bounder = ctx.network.bounder()
    C = ctx.prop.rows([0])
    plb, pub = ctx.proof_lb.unsqueeze(0), ctx.proof_ub.unsqueeze(0)
    _, _, ref = ctx.bounder.bounds(plb, pub, C, intermediate=True)
    cert = torch.full((1, 1), -1.0, dtype=torch.float64)
    return ctx, relu_bab.Search(ctx, cert, cert.clone(), ref)


def _inside(doms, pre, j_count, tol=1e-9):
    """(N, B): does point n satisfy domain b's bounds and signs?"""
    ok = torch.ones(pre[0].shape[0], len(doms), dtype=torch.bool)
    for j in range(j_count):
        z = pre[j].unsqueeze(1)                             # (N, 1, n_j)
        lo, up = doms.lower[j].unsqueeze(0), doms.upper[j].unsqueeze(0)
        s = doms.sign[j].unsqueeze(0)
        fits = (z >= lo - tol) & (z <= up + tol)
        fits &= (s != 1) | (z >= 0)
        fits &= (s != -1) | (z <= 0)
        ok &= fits.all(-1)
    return ok


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_split_covers_its_parent(seed):
    """Three rounds of splits on random neurons (after re-bounding each child, as the
    search does): every sampled point of a parent lies in one of its two children,
    and every point of the box in some leaf."""
    net = mlp([24, 12, 12, 2], seed=seed)
    lb, ub = _box(24, seed)
    _, search = _search(net, lb, ub)
    g = torch.Generator().manual_seed(seed)
    x = torch.tensor(lb) + torch.rand(4000, 24, generator=g, dtype=torch.float64) \
        * torch.tensor(ub - lb)
    pre = _pre_activations(net, x)
    J = len(search.widths)
    doms = search.open
    assert _inside(doms, pre, J).all()
    for _ in range(3):
        width = sum(search.widths)
        scores = torch.rand(len(doms), width, generator=g, dtype=torch.float64)
        unstable = torch.cat([(lo < 0) & (up > 0) for lo, up in zip(doms.lower, doms.upper)], 1)
        scores = torch.where(unstable, scores, torch.full_like(scores, -math.inf))
        parents = _inside(doms, pre, J)
        kids = search._split(doms, scores)
        assert kids is not None
        kids = search._refine(kids)
        inside = _inside(kids, pre, J)
        B = len(doms)
        covered = inside[:, :B] | inside[:, B:]
        assert covered[parents].all(), "a point of a parent lies in neither child"
        doms = kids
    assert _inside(doms, pre, J).any(1).all()


def test_a_split_scores_more_the_more_layers_it_tightens(monkeypatch):
    """Two neurons with the same triangle and the same weight in the bound: the one in
    the earlier layer (whose split narrows the later layer's bounds too) scores
    ``RELU_LAYER_GAIN`` times more, and is the one split; with a gain of 1 they tie."""
    net = mlp([24, 12, 12, 2], seed=3)
    lb, ub = _box(24, 3)
    _, search = _search(net, lb, ub)
    doms = search.open
    for j in range(2):
        doms.lower[j] = torch.full_like(doms.lower[j], -1.0)
        doms.upper[j] = torch.full_like(doms.upper[j], 2.0)
    same = [(torch.ones(1, 12, dtype=torch.float64), torch.ones(1, 12, dtype=torch.float64))] * 2
    for gain in (1.0, 5.0):
        monkeypatch.setattr(relu_bab.settings, "RELU_LAYER_GAIN", gain)
        scores = search._scores(doms, same)
        assert torch.allclose(scores[:, :12], gain * scores[:, 12:])
    assert int(scores.argmax()) < 12
    # A network hundreds of ReLU layers deep: the gain stops growing (a float power of
    # it would overflow), and every unstable neuron keeps a finite score.
    deep = SimpleNamespace(lower=[torch.full((1, 2), -1.0, dtype=torch.float64)] * 500,
                           upper=[torch.full((1, 2), 2.0, dtype=torch.float64)] * 500)
    two = torch.ones(1, 2, dtype=torch.float64)
    scores = search._scores(deep, [(two, two)] * 500)
    assert torch.isfinite(scores).all() and int(scores.argmax()) < 2


@pytest.fixture(scope="module")
def oracle_runs():
    """Four wide-input nets (20 to 40 inputs, two hidden layers), each with a bound
    just above its exact maximum and one just below: (expect, result, cexs, net, t)."""
    rows = []
    for k in range(4):
        sizes = [[20, 16, 16, 1], [32, 12, 12, 1], [40, 10, 10, 1]][k % 3]
        net = mlp(sizes, seed=200 + k, scale=2.0)
        lb, ub = _box(sizes[0], k, half=0.3)
        ((mn, _, mx, _),) = output_range(net, lb, ub)
        d = 0.01 * (mx - mn) + 1e-5
        for expect, t in (("pass", mx + d), ("fail", mx - d)):
            cexs = []
            r = verify(net, list(zip(lb, ub)), [(-math.inf, t)], cexs, timeout=15,
                       progress=False)
            rows.append((expect, r, cexs, net, t))
    return rows


def test_the_relu_search_is_never_wrong_against_the_milp_oracle(oracle_runs):
    """A bound just above the exact maximum is never refuted, one just below it is
    never proved, and every counterexample really breaks it."""
    for expect, r, cexs, net, t in oracle_runs:
        assert r.status in (expect, "unknown"), (expect, r.message)
        if r == "fail":
            with torch.no_grad():
                assert net(cexs[0]).item() > t


def test_the_relu_search_decides_the_wide_oracle_cases(oracle_runs):
    """Most of them are decided (a loaded machine may leave a few open), and the
    proofs that needed a search used ReLU splits, not input splits."""
    decided = [r for expect, r, *_ in oracle_runs if r.status == expect]
    assert len(decided) >= 5, [r.message for _, r, *_ in oracle_runs]
    for r in decided:
        if r == "pass" and "BaB" in r.method:
            assert "ReLU BaB" in r.method, r.method


def test_the_search_is_chosen_by_the_number_of_free_inputs():
    """A wide box over 24 inputs goes to the ReLU search, two inputs to input splits."""
    wide = mlp([24, 16, 16, 1], seed=7, scale=2.0)
    lb, ub = _box(24, 7, half=0.3)
    ((_, _, mx, _),) = output_range(wide, lb, ub)
    r = verify(wide, list(zip(lb, ub)), [(-math.inf, mx + 0.01 * abs(mx) + 1e-3)], timeout=10,
               progress=False)
    assert r.status != "fail", r.message
    assert "ReLU BaB" in r.method, r.method
    narrow = mlp([2, 16, 16, 1], seed=0)
    ((_, _, top, _),) = output_range(narrow, [-1, -1], [1, 1])
    r = verify(narrow, [(-1.0, 1.0)] * 2, [(-math.inf, top + 0.01)], timeout=30, progress=False)
    assert r == "pass" and "ReLU" not in r.method, r.method


@hsettings(max_examples=EXAMPLES, deadline=None,
           suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(18, 40), width=st.integers(6, 16),
       where=st.floats(-0.05, 0.05))
def test_a_relu_search_pass_is_never_contradicted_by_the_exact_maximum(seed, n, width, where):
    """Specs near the exact maximum (a little above or below it): a pass only above,
    a fail only below."""
    net = mlp([n, width, width, 1], seed=seed, scale=2.0)
    lb, ub = _box(n, seed, half=0.25)
    ((mn, _, mx, _),) = output_range(net, lb, ub)
    t = mx + where * (mx - mn + 1e-3)
    r = verify(net, list(zip(lb, ub)), [(-math.inf, t)], timeout=5, progress=False)
    if r == "pass":
        assert t >= mx, (t, mx, r.message)
    if r.status == "fail":
        assert t < mx, (t, mx, r.message)


def test_the_image_attack_stays_in_the_box_and_finds_a_runner_up():
    """The targeted attack of image boxes (random restarts per class, the closest
    classes first) returns only points of the box, and on a ball wide enough to
    change the class it finds an input that the real network classifies otherwise."""
    from verifier import attack, network as network_mod
    from verifier.property import Property, robustness

    net = mlp([100, 32, 10], seed=3)
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(100, generator=g, dtype=torch.float64)
    with torch.no_grad():
        label = int(net(x0.float().unsqueeze(0)).argmax())
    lb, ub = (x0 - 0.5).clamp(min=0), (x0 + 0.5).clamp(max=1)
    network = network_mod.cached(net)
    prop = Property(robustness(label, 10, False), network)
    box = attack.Box(lb, ub, torch.float32, torch.device("cpu"))
    pts = attack.image_attack(network, prop, box, torch.Generator().manual_seed(0), [0],
                              restarts=4, steps=20)
    assert box.contains(pts).all()
    cexs = attack.confirm(net, prop, box, pts, (1, 100))
    assert cexs
    with torch.no_grad():
        assert int(net(cexs[0]).argmax()) != label
    r = verify_robustness(net, list(zip(lb.tolist(), ub.tolist())), label, timeout=20,
                          progress=False)
    assert r == "fail", r.message
