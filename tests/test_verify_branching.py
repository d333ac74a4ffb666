"""The branching heuristics of verify()'s branch and bound (verifier/bab.py).

``branching="smear"`` scores a deep box's dimensions with the input coefficients of the
linear lower bound that CROWN computed for it (``Bounder.bounds(..., linear=True)``), and
``"smear-full"`` with autograd through all of CROWN at every depth. Whichever cuts, a pass must be a proof
and a fail must be real: all three heuristics are checked here against the exact MILP range.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from milp_oracle import output_range
from verifier import network as network_mod, verify, verify_robustness
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
