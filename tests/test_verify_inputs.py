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
    ("unsupported layer", dict(net=nn.Sequential(nn.Linear(2, 4), nn.GELU(), nn.Linear(4, 1))),
     TypeError, r"layer '1' \(GELU\)"),
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
    for x in (OK_X, tuple(OK_X), [[0.1, 0.2], [0.3, 0.4]], [(np.float32(0.1), 0.2), (0.3, 0.4)]):
        assert verify(NET, x, OK_Y, progress=False) == "pass"
    net3 = mlp((3, 8, 1), seed=0)
    x3 = OK_X + [(0.5, 0.6)]
    for x in (np.array(x3), torch.tensor(x3), [np.array(p) for p in x3]):
        assert verify(net3, x, OK_Y, progress=False) == "pass"
    assert verify(NET, OK_X, [(-math.inf, math.inf)], progress=False) == "pass"
    assert verify(NET, OK_X, np.array([[-np.inf, 10.0]]), progress=False) == "pass"


@pytest.mark.parametrize("x_specs", [
    np.array([[0.7, 0.7], [0.85, 0.85]]),                  # np.array([x_lb, x_ub])
    torch.tensor([[0.1, 0.2], [0.3, 0.4]]),
    [torch.tensor([0.7, 0.7]), torch.tensor([0.85, 0.85])],   # [x_lb, x_ub]
    [np.array([0.1, 0.2]), (0.3, 0.4)],
], ids=["array", "tensor", "list of tensors", "list with an array"])
def test_a_two_by_two_spec_that_reads_both_ways_is_refused(x_specs):
    """For a 2-input net, a 2 x 2 array is either two pairs or [lower, upper]:
    never guessed (a guess proved the wrong box), always explained."""
    with pytest.raises(ValueError, match=r"reads two ways.*list\(zip\(x_lb, x_ub\)\)"):
        verify(NET, x_specs, OK_Y, progress=False)


@pytest.mark.parametrize("x_specs", [{(0.1, 0.2), (0.3, 0.4)}, (p for p in OK_X),
                                     {0: (0.1, 0.2), 1: (0.3, 0.4)}])
def test_unordered_or_one_shot_containers_are_refused(x_specs):
    with pytest.raises(TypeError, match=r"list of \(lb, ub\) pairs"):
        verify(NET, x_specs, OK_Y, progress=False)


@pytest.mark.parametrize("y_specs", [[(math.inf, math.inf)], [(-math.inf, -math.inf)]])
def test_a_spec_no_output_can_meet_is_an_error(y_specs):
    with pytest.raises(ValueError, match=r"cannot hold for any finite value"):
        verify(NET, OK_X, y_specs, progress=False)


@pytest.mark.parametrize("shape", ["12", (1.0, 2), (True, 2), (1, -2), (), 12])
def test_input_shape_must_be_a_tuple_of_positive_ints(shape):
    with pytest.raises(TypeError, match=r"input_shape must be a tuple of positive ints"):
        verify(NET, OK_X, OK_Y, input_shape=shape, progress=False)


def test_input_shape_must_give_one_row_of_outputs():
    """(1, 1, 2) without Flatten gives outputs of shape (1, 1, m): softmax over dim 1
    would normalise a dimension of size 1. Refused with the rule, not a crash."""
    soft = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.Softmax(dim=1))
    for net, y in ((soft, [(0.2, 0.8)] * 2), (NET, OK_Y)):
        with pytest.raises(ValueError, match=r"gives \(1, 1, \d\); verify\(\) needs an output "
                                             r"of shape \(1, \d\)"):
            verify(net, OK_X, y, input_shape=(1, 1, 2), progress=False)
    with pytest.raises(ValueError, match=r"net\(x\) failed for x of shape \(2, 1\)"):
        verify(NET, OK_X, OK_Y, input_shape=(2, 1), progress=False)


def test_inputs_beyond_the_float32_range_are_an_error():
    with pytest.raises(ValueError, match=r"x_specs\[0\] = \(0, 1e\+300\) leaves the range of "
                                         r"float32"):
        verify(mlp((1, 4, 1), seed=0), [(0, 1e300)], [(0, 1)], progress=False)
