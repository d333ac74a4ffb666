"""Bad arguments to verify(): the right exception, with a message that helps."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from verifier import output_bounds, verify, verify_robustness
from verify_nets import mlp

NET = mlp((2, 8, 1), seed=0)
OK_X = [(0.1, 0.2), (0.3, 0.4)]
OK_Y = [(-10.0, 10.0)]

BAD = [
    # (description, kwargs overriding the good call, exception, message regex)
    ("net not a module", dict(net=lambda x: x), TypeError, r"torch\.nn\.Module"),
    ("too few x pairs", dict(x_specs=[(0, 1)]), ValueError, r"1 \(lb, ub\) pairs.*expected 2"),
    ("too many x pairs", dict(x_specs=[(0, 1)] * 3), ValueError, r"expected 2 pairs"),
    ("pair of length 3", dict(x_specs=[(0, 1, 2), (0, 1)]), ValueError,
     r"x_specs\[0\].*length 2"),
    ("pair is a number", dict(x_specs=[0.5, (0, 1)]), TypeError, r"x_specs\[0\] must be a pair"),
    ("lb > ub", dict(x_specs=[(0, 1), (0.5, 0.4)]), ValueError, r"x_specs\[1\] has lb > ub"),
    ("NaN in x", dict(x_specs=[(0, math.nan), (0, 1)]), ValueError, r"x_specs\[0\] ub is NaN"),
    ("inf in x", dict(x_specs=[(0, 1), (-math.inf, 1)]), ValueError,
     r"x_specs\[1\].*infinite"),
    ("string bound", dict(x_specs=[("a", 1), (0, 1)]), TypeError, r"x_specs\[0\] lb must be a number"),
    ("x_specs a string", dict(x_specs="0,1"), TypeError, r"list of \(lb, ub\) pairs"),
    ("x_specs None", dict(x_specs=None), TypeError, r"list of \(lb, ub\) pairs"),
    ("array of wrong shape", dict(x_specs=np.zeros((2, 3))), ValueError, r"shape \(n, 2\)"),
    ("tensor of wrong shape", dict(x_specs=torch.zeros(4)), ValueError, r"shape \(n, 2\)"),
    ("bounds as rows, not pairs", dict(x_specs=torch.zeros(2, 5)), ValueError,
     r"got shape \(2, 5\).*transpose it with \.T"),
    ("y length", dict(y_specs=[(0, 1), (0, 1)]), ValueError, r"network has 1 outputs"),
    ("y lb > ub", dict(y_specs=[(1, 0)]), ValueError, r"y_specs\[0\] has lb > ub"),
    ("NaN in y", dict(y_specs=[(math.nan, 1)]), ValueError, r"y_specs\[0\] lb is NaN"),
    ("counterexamples not a list", dict(counterexamples=()), TypeError,
     r"counterexamples must be a list"),
    ("timeout negative", dict(timeout=-1), ValueError, r"timeout must be a positive"),
    ("bad method", dict(method="DeepPoly"), ValueError, r"method must be one of"),
    ("bad input_shape", dict(input_shape=(1, 3)), ValueError, r"input_shape.*2 inputs"),
    ("bad progress", dict(progress="yes"), TypeError, r"progress must be"),
    ("unsupported layer", dict(net=nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1))),
     TypeError, r"layer '1' \(Sigmoid\)"),
    ("nested unsupported layer",
     dict(net=nn.Sequential(nn.Linear(2, 4), nn.Sequential(nn.ReLU(), nn.Tanh()), nn.Linear(4, 1))),
     TypeError, r"layer '1\.1' \(Tanh\)"),
    ("softmax not last",
     dict(net=nn.Sequential(nn.Linear(2, 4), nn.Softmax(dim=1), nn.Linear(4, 1))),
     TypeError, r"Softmax must be the last layer"),
    ("no linear layer", dict(net=nn.Sequential(nn.ReLU())), TypeError, r"without any nn\.Linear"),
]


@pytest.mark.parametrize("desc,override,exc,pattern", BAD, ids=[b[0] for b in BAD])
def test_bad_input(desc, override, exc, pattern, capfd):
    args = dict(net=NET, x_specs=OK_X, y_specs=OK_Y, progress=False)
    args.update(override)
    with pytest.raises(exc, match=pattern):
        verify(args.pop("net"), args.pop("x_specs"), args.pop("y_specs"), **args)
    assert capfd.readouterr().err == ""


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)

    def forward(self, x):
        return self.a(x) + x


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.a(x)
        return x


@pytest.mark.parametrize("net,pattern", [(Residual(), r"operation 'add'"),
                                         (Branchy(), r"could not trace Branchy")])
def test_custom_forward_that_is_not_a_chain(net, pattern):
    with pytest.raises(TypeError, match=pattern):
        verify(net, OK_X, [(-1, 1), (-1, 1)])


def test_robustness_bad_label():
    net = mlp((2, 8, 3), seed=0)
    with pytest.raises(ValueError, match=r"label must be in 0\.\.2"):
        verify_robustness(net, OK_X, 3)
    with pytest.raises(TypeError, match=r"label must be an integer"):
        verify_robustness(net, OK_X, 1.5)


def test_output_bounds_bad_input():
    with pytest.raises(ValueError, match=r"expected 2 pairs"):
        output_bounds(NET, [(0, 1)])


def test_accepted_spec_containers():
    for x in (OK_X, tuple(OK_X), np.array(OK_X), torch.tensor(OK_X), [[0.1, 0.2], [0.3, 0.4]],
              [np.array([0.1, 0.2]), torch.tensor([0.3, 0.4])]):
        assert verify(NET, x, OK_Y, progress=False) == "pass"
    assert verify(NET, OK_X, [(-math.inf, math.inf)], progress=False) == "pass"
    assert verify(NET, OK_X, np.array([[-np.inf, 10.0]]), progress=False) == "pass"
