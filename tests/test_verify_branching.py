"""The branching heuristics of verify()'s branch and bound (verifier/bab.py).

``branching="smear"`` scores a deep box's dimensions with the input coefficients of the
linear lower bound that CROWN computed for it (``Bounder.bounds(..., linear=True)``), and
``"smear-full"`` with autograd through all of CROWN at every depth. Whichever cuts, a pass must be a proof
and a fail must be real: all three heuristics are checked here against the exact MILP range.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from milp_oracle import output_range
from verifier import network as network_mod, output_bounds, verify, verify_robustness
from verify_nets import mlp


@pytest.mark.parametrize("bias", [True, False])
def test_the_linear_bound_is_the_one_its_lower_bound_minimises(bias):
    torch.manual_seed(3)
    net = mlp([3, 12, 12, 4], seed=7)
    if not bias:
        net = nn.Sequential(*[nn.Linear(m.in_features, m.out_features, bias=False) if isinstance(m, nn.Linear)
                              else m for m in net])
    bounder = network_mod.cached(net).bounder()
    lo = torch.rand(6, 3, dtype=torch.float64) - 0.5
    hi = lo + torch.rand(6, 3, dtype=torch.float64) * 0.8
    C = torch.randn(2, 4, dtype=torch.float64)
    L, _, (A, a) = bounder.bounds(lo, hi, C, linear=True)
    assert A.shape == (6, 2, 3) and a.shape == (6, 2)
    centre, radius = (lo + hi) / 2, (hi - lo) / 2
    minimum = (A @ centre.unsqueeze(-1)).squeeze(-1) - (A.abs() @ radius.unsqueeze(-1)).squeeze(-1) + a
    torch.testing.assert_close(minimum, L, rtol=0, atol=1e-9)
    # ... and it is a lower bound of C f(x) at points inside each box
    x = lo.unsqueeze(1) + torch.rand(6, 200, 3, dtype=torch.float64) * (hi - lo).unsqueeze(1)
    with torch.no_grad():
        y = net.double()(x) @ C.T
    below = torch.einsum("bkn,bpn->bpk", A, x) + a.unsqueeze(1)
    assert (below <= y + 1e-9).all()


@pytest.mark.parametrize("branching", ["smear", "smear-full", "widest"])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_heuristic_proves_near_the_exact_maximum_and_refutes_below_it(branching, seed):
    net = mlp([2, 16, 16, 1], seed=seed)
    box = [(-1.0, 1.0), (-1.0, 1.0)]
    (_, _, top, _), = output_range(net, *zip(*box))
    gap = 0.02 * max(1.0, abs(top))
    proof = verify(net, box, [(-float("inf"), top + gap)], timeout=60, branching=branching, progress=False)
    assert proof == "pass" and "BaB" in proof.method, proof.message  # the box had to be cut
    cexs = []
    assert verify(net, box, [(-float("inf"), top - gap)], cexs, timeout=60, branching=branching,
                  progress=False) == "fail"
    with torch.no_grad():
        assert net(cexs[0]).item() > top - gap


def test_an_unknown_heuristic_is_refused():
    net = mlp([2, 4, 2], seed=0)
    with pytest.raises(ValueError, match="branching must be one of 'smear', 'smear-full', 'widest'"):
        verify(net, [(0, 1), (0, 1)], [(0, 1), (0, 1)], branching="deepest")
    with pytest.raises(ValueError, match="branching must be one of"):
        verify_robustness(net, [(0, 1), (0, 1)], 0, branching="deepest")


def _children(lo, hi, dim):
    mid = (lo[:, dim] + hi[:, dim]) / 2
    left_hi, right_lo = hi.clone(), lo.clone()
    left_hi[:, dim], right_lo[:, dim] = mid, mid
    return torch.cat([lo, right_lo]), torch.cat([left_hi, hi])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_children_bounded_from_their_parents_bounds_are_sound_and_no_looser(seed):
    """``Bounder.bounds(..., reference=...)``: a box's children start from its ReLU
    bounds (only neurons unstable there are bounded again; boxes are grouped by
    their unstable neurons). The bounds must hold at every sampled point of each
    child, and about as tight as bounding the children from scratch: tighter on
    average, though not everywhere, since CROWN's choice of relaxation for a ReLU
    depends on its bounds and a tighter choice for one neuron can loosen the end."""
    torch.manual_seed(seed)
    net = mlp([3, 20, 20, 20, 4], seed=seed)
    bounder = network_mod.cached(net).bounder()
    n = 300                                    # more than one group of boxes
    lo = torch.rand(n, 3, dtype=torch.float64) * 2 - 1
    hi = lo + torch.rand(n, 3, dtype=torch.float64) * 0.5
    C = torch.randn(3, 4, dtype=torch.float64)
    _, _, parents = bounder.bounds(lo, hi, C, intermediate=True)
    assert parents.shape == (n, 2, bounder.intermediate_width) == (n, 2, 60)
    c_lo, c_hi = _children(lo, hi, torch.randint(0, 3, (1,)).item())
    ref = torch.cat([parents, parents])
    ref[::7, 0], ref[::7, 1] = -float("inf"), float("inf")    # some with nothing to start from
    L_ref, _, inter = bounder.bounds(c_lo, c_hi, C, reference=ref, intermediate=True)
    L_new, _ = bounder.bounds(c_lo, c_hi, C)
    assert (L_ref - L_new).mean() >= 0
    assert (L_ref >= L_new - 1e-9).float().mean() > 0.97
    # intermediate bounds of each child lie within its parent's, and hold at its points
    # (auto-LiRPA intersects as max(ref, l) - l + l: exact up to float64 rounding)
    assert (inter[:, 0] >= ref[:, 0] - 1e-12).all() and (inter[:, 1] <= ref[:, 1] + 1e-12).all()
    x = c_lo.unsqueeze(1) + torch.rand(2 * n, 100, 3, dtype=torch.float64) * (c_hi - c_lo).unsqueeze(1)
    with torch.no_grad():
        y = net.double()(x) @ C.T
    assert (y >= L_ref.unsqueeze(1) - 1e-9).all()
    with torch.no_grad():
        h1 = net.double()[0](x)
        h2 = net.double()[:3](x)
    pre = torch.cat([h1, h2], -1)
    assert (pre >= inter[:, 0, :40].unsqueeze(1) - 1e-9).all()
    assert (pre <= inter[:, 1, :40].unsqueeze(1) + 1e-9).all()


def _points_and_corners(lo, hi, n):
    """(B, n + 2^d, d): n uniform points in each box lo <= x <= hi, then its corners
    (only the points past 8 dimensions)."""
    d = lo.shape[1]
    x = lo.unsqueeze(1) + torch.rand(lo.shape[0], n, d, dtype=torch.float64) * (hi - lo).unsqueeze(1)
    if d > 8:
        return x
    corners = torch.stack([torch.where(torch.tensor([(c >> i) & 1 for i in range(d)], dtype=torch.bool),
                                       hi, lo) for c in range(2 ** d)], 1)
    return torch.cat([x, corners], 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_second_relaxation_is_sound_and_never_looser(seed):
    """``Bounder.bounds(..., second=True)``: a second CROWN pass with every unstable
    ReLU's lower line at slope 0, from the first pass's bounds. Its output bounds
    and ReLU-input bounds must hold at every sampled point, be no looser than the
    first pass's anywhere, and be tighter somewhere (else the pass does nothing)."""
    torch.manual_seed(seed)
    net = mlp([3, 20, 20, 20, 4], seed=10 + seed)
    bounder = network_mod.cached(net).bounder()
    n = 200
    lo = torch.rand(n, 3, dtype=torch.float64) * 2 - 1
    hi = lo + torch.rand(n, 3, dtype=torch.float64) * 0.4
    C = torch.randn(3, 4, dtype=torch.float64)
    _, _, ref = bounder.bounds(lo, hi, C, intermediate=True)
    ref[::5, 0], ref[::5, 1] = -float("inf"), float("inf")    # some with nothing to start from
    L1, U1, in1 = bounder.bounds(lo, hi, C, upper=True, reference=ref, intermediate=True)
    L2, U2, in2 = bounder.bounds(lo, hi, C, upper=True, reference=ref, intermediate=True,
                                 second=True)
    assert (L2 >= L1).all() and (U2 <= U1).all()
    assert (L2 > L1 + 1e-6).any() and (U2 < U1 - 1e-6).any()
    # (auto-LiRPA intersects as max(ref, l) - l + l: exact up to float64 rounding)
    assert (in2[:, 0] >= in1[:, 0] - 1e-12).all() and (in2[:, 1] <= in1[:, 1] + 1e-12).all()
    assert ((in2[:, 0] > in1[:, 0] + 1e-6) | (in2[:, 1] < in1[:, 1] - 1e-6)).any()
    x = _points_and_corners(lo, hi, 300)
    with torch.no_grad():
        y = net.double()(x) @ C.T
        pre = torch.cat([net.double()[0](x), net.double()[:3](x), net.double()[:5](x)], -1)
    assert (y >= L2.unsqueeze(1) - 1e-9).all() and (y <= U2.unsqueeze(1) + 1e-9).all()
    assert (pre >= in2[:, 0].unsqueeze(1) - 1e-9).all() and (pre <= in2[:, 1].unsqueeze(1) + 1e-9).all()
    # the gradient (branching's score) is the first pass's, and is there
    lo_g, hi_g = lo[:8].clone().requires_grad_(True), hi[:8].clone().requires_grad_(True)
    Lg, _ = bounder.bounds(lo_g, hi_g, C, grad=True, second=True)
    torch.testing.assert_close(Lg.detach(), bounder.bounds(lo[:8], hi[:8], C, second=True)[0])
    g = torch.autograd.grad(Lg.sum(), (lo_g, hi_g))
    assert all(torch.isfinite(t).all() for t in g) and any(t.abs().sum() > 0 for t in g)
    with pytest.raises(ValueError, match="second applies to CROWN only"):
        bounder.bounds(lo, hi, C, method="IBP", second=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_with_the_intermediate_bounds_held_is_sound_and_tighter(seed):
    """``Bounder.bounds(..., method="alpha-CROWN", reference=R)``: alpha-CROWN with
    every ReLU input's bounds held at R (what the hard mode runs on the boxes both
    CROWN passes leave open). Its bounds must hold at every sampled point and
    corner, R must come back as it went in, and from the same ReLU-input bounds
    as a CROWN pass it must be no looser than CROWN anywhere, and tighter on many
    boxes (its first step is CROWN's own relaxation, and it keeps the best)."""
    torch.manual_seed(seed)
    net = mlp([3, 20, 20, 20, 4], seed=20 + seed)
    bounder = network_mod.cached(net).bounder()
    n = 200                                    # more than one group of boxes
    lo = torch.rand(n, 3, dtype=torch.float64) * 2 - 1
    hi = lo + torch.rand(n, 3, dtype=torch.float64) * 0.4
    C = torch.randn(3, 4, dtype=torch.float64)
    _, _, parents = bounder.bounds(lo, hi, C, intermediate=True, second=True)
    L_crown, _, ref = bounder.bounds(lo, hi, C, reference=parents, intermediate=True)
    held = ref.clone()
    L_alpha, _, inter = bounder.bounds(lo, hi, C, method="alpha-CROWN", reference=ref,
                                       intermediate=True)
    assert torch.equal(ref, held) and torch.equal(inter, held)
    assert (L_alpha >= L_crown - 1e-9).all()
    assert (L_alpha > L_crown + 1e-4).float().mean() > 0.2
    x = _points_and_corners(lo, hi, 300)
    with torch.no_grad():
        y = net.double()(x) @ C.T
    assert (y >= L_alpha.unsqueeze(1) - 1e-9).all()
    # the same boxes one at a time give the same bounds (the alphas start afresh per call)
    one = torch.cat([bounder.bounds(lo[i:i + 1], hi[i:i + 1], C, method="alpha-CROWN",
                                    reference=ref[i:i + 1])[0] for i in range(5)])
    torch.testing.assert_close(one, L_alpha[:5], rtol=0, atol=1e-6)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=3, max_size=6), n_rows=st.integers(1, 4),
       width=st.sampled_from([1e-3, 0.05, 0.5, 2.0]), seed=st.integers(0, 2 ** 16))
def test_alpha_with_the_intermediate_bounds_held_holds_on_any_network(sizes, n_rows, width, seed):
    """The same as above, with hypothesis choosing the layers (one to four hidden
    layers of 1 to 12 neurons), the boxes' width and the rows of C: the bounds
    hold at sampled points and corners, and are never looser than CROWN's from
    the same ReLU-input bounds."""
    g = torch.Generator().manual_seed(seed)
    net = mlp(sizes, seed=seed)
    bounder = network_mod.cached(net).bounder()
    n_in = sizes[0]
    lo = torch.rand(16, n_in, generator=g, dtype=torch.float64) * 2 - 1
    hi = lo + torch.rand(16, n_in, generator=g, dtype=torch.float64) * width
    C = torch.randn(n_rows, sizes[-1], generator=g, dtype=torch.float64)
    _, _, parents = bounder.bounds(lo, hi, C, intermediate=True, second=True)
    L_crown, _, ref = bounder.bounds(lo, hi, C, reference=parents, intermediate=True)
    L_alpha, _ = bounder.bounds(lo, hi, C, method="alpha-CROWN", reference=ref)
    assert (L_alpha >= L_crown - 1e-9).all()
    x = _points_and_corners(lo, hi, 200)
    with torch.no_grad():
        y = net.double()(x) @ C.T
    assert (y >= L_alpha.unsqueeze(1) - 1e-9).all()


@pytest.mark.parametrize("branching", ["smear", "widest"])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_hard_mode_proves_near_the_exact_maximum_and_refutes_below_it(branching, seed,
                                                                           monkeypatch):
    """Branch and bound may turn hard (both relaxations, the full gradient at every
    depth) after ``settings.HARD_AFTER`` boxes; here from the first round on."""
    from verifier import settings as knobs
    monkeypatch.setattr(knobs, "HARD_AFTER", 0)
    net = mlp([2, 16, 16, 1], seed=seed)
    box = [(-1.0, 1.0), (-1.0, 1.0)]
    (_, _, top, _), = output_range(net, *zip(*box))
    gap = 0.01 * max(1.0, abs(top))
    proof = verify(net, box, [(-float("inf"), top + gap)], timeout=60, branching=branching,
                   progress=False)
    assert proof == "pass" and "BaB" in proof.method, proof.message
    cexs = []
    assert verify(net, box, [(-float("inf"), top - gap)], cexs, timeout=60, branching=branching,
                  progress=False) == "fail"
    with torch.no_grad():
        assert net(cexs[0]).item() > top - gap


def test_after_hard_after_each_round_takes_the_mode_that_proved_more_per_second():
    """``_Search.choose``: light before ``HARD_AFTER`` boxes; then hard first, then the mode
    with the higher measured rate, the other one every ``HARD_PROBE``-th round."""
    from types import SimpleNamespace

    from verifier import bab, settings as knobs
    s = SimpleNamespace(boxes=knobs.HARD_AFTER - 1, rounds=0, rate={}, cost={}, per_parent=0.01,
                        batch=64)
    assert bab._Search.choose(s) == "light" and s.rounds == 0
    bab._Search.measure(s, "light", 1.0, 64, 0.5)      # early rounds: forgotten at the switch
    s.boxes = knobs.HARD_AFTER
    assert bab._Search.choose(s) == "hard"
    bab._Search.measure(s, "hard", 1.0, 16, 0.04)     # hard proves four times as much a second
    assert bab._Search.choose(s) == "light"
    bab._Search.measure(s, "light", 1.0, 64, 0.01)
    picks = [bab._Search.choose(s) for _ in range(2 * knobs.HARD_PROBE)]
    assert picks.count("light") == 2 and picks.count("hard") == 2 * knobs.HARD_PROBE - 2
    bab._Search.measure(s, "light", 1.0, 64, 0.5)     # now light does better
    bab._Search.measure(s, "light", 1.0, 64, 0.5)
    assert bab._Search.choose(s) == "light"
    # a round is sized by its own mode's cost: hard parents cost four times light ones here
    assert bab._Search.fits(s, "hard", 100.0) < bab._Search.fits(s, "light", 100.0)


def test_a_reference_of_the_wrong_shape_is_refused():
    bounder = network_mod.cached(mlp([3, 5, 2], seed=0)).bounder()
    lo = torch.zeros(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="reference must have shape"):
        bounder.bounds(lo, lo + 1, reference=torch.zeros(4, 2, 6, dtype=torch.float64))


def test_alpha_crown_runs_at_the_root_only_for_wide_boxes():
    """Few free inputs: straight to branch and bound (cheaper than alpha-CROWN's
    optimisation). Many (an L-inf ball over an image): alpha-CROWN first."""
    from verifier.settings import ALPHA_MIN_FREE
    narrow = mlp([2, 16, 16, 1], seed=0)
    box = [(-1.0, 1.0), (-1.0, 1.0)]
    (_, _, top, _), = output_range(narrow, *zip(*box))
    r = verify(narrow, box, [(-float("inf"), top + 0.05 * max(1.0, abs(top)))], timeout=60, progress=False)
    assert r == "pass" and r.method.startswith("CROWN"), r.method
    k = ALPHA_MIN_FREE + 4
    wide = mlp([k, 24, 24, 1], seed=1)
    wbox = [(-0.1, 0.1)] * k
    crown, alpha = (output_bounds(wide, wbox, method=m)[1][0] for m in ("CROWN", "alpha-CROWN"))
    assert alpha < crown                      # a bound only alpha-CROWN proves:
    r = verify(wide, wbox, [(-float("inf"), (crown + alpha) / 2)], timeout=60, progress=False)
    assert r == "pass" and r.method == "alpha-CROWN", r.method


def test_alpha_crown_leaves_the_crown_module_as_it_was():
    """alpha-CROWN runs on a copy of its own: auto-LiRPA 0.3 leaves the slopes it
    optimised on the module it ran on, and that module's later CROWN passes cost
    2-2.5x as much (the slowdown is measured, not tested; the state is)."""
    net = mlp([4, 16, 16, 3], seed=2)
    bounder = network_mod.cached(net).bounder()
    lo = torch.rand(8, 4, dtype=torch.float64) - 0.5
    hi = lo + 0.5
    before, _ = bounder.bounds(lo, hi)
    alpha, _ = bounder.bounds(lo[:3], hi[:3], method="alpha-CROWN")
    assert all(not relu.alpha for relu in bounder.module.relus)
    assert any(relu.alpha for relu in bounder.alpha_module.relus)
    after, _ = bounder.bounds(lo, hi)
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    assert (alpha >= before[:3] - 1e-9).all()
