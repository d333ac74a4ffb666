"""``verify`` bounds exactly what ``net(x)`` runs, whatever grad mode the caller is in.

Students wrap cells in ``torch.no_grad()`` and ``torch.inference_mode()``; the search and the
attack need gradients. And ``net.forward = other.forward`` makes ``net(x)`` run another
network than the class's ``forward``, which is what tracing reads.
"""
from __future__ import annotations

import contextlib

import pytest
import torch
from milp_oracle import output_range
from torch import nn
from verify_nets import mlp

from verifier import output_bounds, verify, verify_robustness

MODES = {
    "default": contextlib.nullcontext,
    "no_grad": torch.no_grad,
    "inference_mode": torch.inference_mode,
    "set_grad_enabled(False)": lambda: torch.set_grad_enabled(False),
}


def _questions():
    """A property proved only after branching, one refuted, and a robustness question."""
    net = mlp([2, 16, 16, 1], seed=0)
    box = [(-1.0, 1.0), (-1.0, 1.0)]
    (_, _, top, _), = output_range(net, *zip(*box))
    gap = 0.02 * max(1.0, abs(top))
    return net, box, top, gap


@pytest.mark.parametrize("mode", list(MODES))
def test_the_verdicts_are_the_same_in_every_grad_mode(mode):
    net, box, top, gap = _questions()
    classifier = mlp([3, 12, 12, 3], seed=4)
    point = [(0.1 - 0.05, 0.1 + 0.05), (-0.2 - 0.05, -0.2 + 0.05), (0.3 - 0.05, 0.3 + 0.05)]
    with torch.no_grad():
        label = int(classifier(torch.tensor([[0.1, -0.2, 0.3]])).argmax())
    with MODES[mode]():
        proof = verify(net, box, [(-float("inf"), top + gap)], timeout=60, progress=False)
        cexs = []
        refuted = verify(net, box, [(-float("inf"), top - gap)], cexs, timeout=60, progress=False)
        robust = verify_robustness(classifier, point, label, timeout=60, progress=False)
        lo, hi = output_bounds(net, box)
        # tensors made inside the mode (inference tensors, under inference_mode) serve as specs
        again = verify_robustness(classifier, torch.tensor(point), label, timeout=60,
                                  progress=False)
    assert proof == "pass" and "BaB" in proof.method, proof.message
    assert refuted == "fail" and cexs and net(cexs[0]).item() > top - gap
    assert again.status == robust.status
    baseline = verify_robustness(classifier, point, label, timeout=60, progress=False)
    assert robust.status == baseline.status
    torch.testing.assert_close((lo, hi), output_bounds(net, box))
    assert lo.item() <= top <= hi.item()


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))

    def forward(self, x):
        return self.body(x)


def test_a_forward_assigned_to_the_network_object_is_refused():
    net, other = mlp([2, 8, 1], seed=1), mlp([2, 8, 1], seed=2)
    with torch.no_grad():   # other: the same function but 10 higher at one corner's side
        other[2].bias += 10.0
    net.forward = other.forward
    x = torch.zeros(1, 2)
    assert not torch.allclose(net(x), net[2](net[1](net[0](x))))   # net(x) runs other
    with pytest.raises(TypeError, match=r"the network \(Sequential\) with a forward assigned to the "
                                        r"object itself \(m.forward = f\)"):
        verify(net, [(-1.0, 1.0)] * 2, [(-100.0, 100.0)], timeout=10, progress=False)


def test_a_forward_assigned_to_a_submodule_is_refused():
    net = Wrapper()
    net.body.forward = lambda x: torch.zeros(x.shape[0], 1)
    with pytest.raises(TypeError, match=r"module 'body' \(Sequential\) with a forward "
                                        r"assigned to the object itself"):
        output_bounds(net, [(-1.0, 1.0)] * 2)
