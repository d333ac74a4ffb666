"""verify()'s search for counterexamples before and beside branch and bound
(verifier/attack.py).

A violation that lives only on a face of the box, away from its corners, is what
ACAS Xu phi7 on network 1_9 looks like (it breaks only near rho = 0): uniform points
almost never land there, and where the network is flat PGD has no gradient to follow.
``attack.sweep`` puts half of its points on faces; these tests build such a network by
hand and check that the attack phase, not the box splitting, finds the violation.
"""
from __future__ import annotations

import torch
from torch import nn

from verifier import attack, verify

DELTA = 1e-3


def face_bump() -> nn.Sequential:
    """y = relu(1 - x0 / DELTA) + relu(1 - 10 |x1 - 0.5|) on [0, 1]^5: y >= 1.5 only
    where x0 < DELTA / 2 and x1 is near 0.5 (a sliver of the face x0 = 0, touching no
    corner); the other three inputs do nothing. Everywhere else the first term is 0
    and has no gradient."""
    first, second, out = nn.Linear(5, 3), nn.Linear(3, 2), nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.zero_()
        first.weight[0, 0], first.weight[1, 1], first.weight[2, 1] = -1 / DELTA, 1.0, -1.0
        first.bias.copy_(torch.tensor([1.0, -0.5, 0.5]))
        second.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, -10.0, -10.0]]))
        second.bias.copy_(torch.tensor([0.0, 1.0]))
        out.weight.fill_(1.0)
        out.bias.zero_()
    return nn.Sequential(first, nn.ReLU(), second, nn.ReLU(), out)


BOX = [(0.0, 1.0)] * 5


def test_the_bump_is_where_the_docstring_says():
    net = face_bump()
    with torch.no_grad():
        assert net(torch.tensor([[0.0, 0.5, 0.3, 0.3, 0.3]])).item() == 2.0
        assert net(torch.tensor([[2 * DELTA, 0.5, 0.3, 0.3, 0.3]])).item() == 1.0
        corners = torch.cartesian_prod(*[torch.tensor([0.0, 1.0])] * 5)
        assert net(corners).max().item() == 1.0
        uniform = torch.rand(100_000, 5, generator=torch.Generator().manual_seed(0))
        assert (net(uniform) >= 1.5).float().mean().item() < 1e-4


def test_a_violation_on_a_face_is_found_by_the_attack_not_by_splitting():
    cexs = []
    result = verify(face_bump(), BOX, [(-float("inf"), 1.5)], cexs, timeout=30, progress=False)
    assert result == "fail", result
    assert "BaB" not in result.method, result.method
    x = cexs[0].flatten()
    assert x[0].item() < DELTA / 2 and all(0.0 <= v <= 1.0 for v in x.tolist())
    with torch.no_grad():
        assert face_bump()(cexs[0]).item() > 1.5


def test_a_sweep_stays_in_its_box_and_puts_half_its_points_on_faces():
    lo, hi = torch.tensor([-1.0, 0.0, 2.0]), torch.tensor([1.0, 0.5, 2.0])
    box = attack.Box(lo.double(), hi.double(), torch.float32, "cpu")
    x = attack.sweep(box, torch.Generator().manual_seed(1), 1000)
    assert x.shape == (1000, 3) and x.dtype == torch.float32
    assert bool(box.contains(x).all())
    on_face = ((x == box.lo) | (x == box.hi))[:, :2]
    assert on_face[:500].sum().item() == 0           # the uniform half
    assert 0.2 < on_face[500:].float().mean().item() < 0.4
    same = attack.sweep(box, torch.Generator().manual_seed(1), 1000)
    assert torch.equal(x, same)                       # deterministic given the generator
