"""Hand-built inputs that once got a false "pass" (or a crash, or a fail outside the box).

Each test is one way a curious student can hold ``verify`` wrong; the name says
what must hold instead. The property-based suite (``test_verify_properties.py``)
goes looking for more of the same kinds.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from verifier import output_bounds, rounding, verify, verify_robustness
from verify_nets import MNISTModle, mlp


def identity_net(n=1, dtype=torch.float32):
    lin = nn.Linear(n, n, bias=False, dtype=dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(n, dtype=dtype))
    return nn.Sequential(lin)


X01 = [(0.0, 1.0)]


# -- 1. a stale network ------------------------------------------------------------

@pytest.mark.parametrize("edit", [
    lambda w: w.data.mul_(-1),              # d2l-style: through .data
    lambda w: w.data.copy_(-w.data),
    lambda w: w.data.__imul__(-1),          # w.data *= -1
    lambda w: w.data.normal_(mean=-5.0, std=0.01),
], ids=["mul_", "copy_", "*=", "normal_"])
def test_weights_edited_in_place_are_verified_anew(edit):
    net = identity_net()
    assert verify(net, X01, [(-0.5, 1.5)], progress=False) == "pass"
    edit(net[0].weight)
    assert verify(net, X01, [(-0.5, 1.5)], progress=False) == "fail"
    lo, hi = output_bounds(net, X01)
    assert hi.item() < 0.5


def test_a_forward_that_switches_on_an_attribute_is_traced_anew():
    class Switch(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(1, 1), nn.Linear(1, 1)
            with torch.no_grad():
                for lin, w in ((self.a, 1.0), (self.b, -1.0)):
                    lin.weight.fill_(w)
                    lin.bias.zero_()
            self.use_b = False

        def forward(self, x):
            return self.b(x) if self.use_b else self.a(x)

    net = Switch()
    assert verify(net, X01, [(-0.5, 1.5)], progress=False) == "pass"
    net.use_b = True
    assert verify(net, X01, [(-0.5, 1.5)], progress=False) == "fail"


def test_pruning_is_refused_not_bounded_as_the_unpruned_layer():
    net = nn.Sequential(nn.Linear(2, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False))
    assert verify(net, [(0, 1), (0, 1)], [(-100, 100)], progress=False) == "pass"
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    with pytest.raises(TypeError, match=r"forward hooks on module '0' \(Linear\)"):
        verify(net, [(0, 1), (0, 1)], [(-100, 100)], progress=False)


# -- 2. NaN and overflow -------------------------------------------------------------

def test_nan_weights_are_an_error_not_a_proof():
    net = identity_net()
    with torch.no_grad():
        net[0].weight.fill_(math.nan)
    for call in (lambda: verify(net, X01, [(0, 1)], progress=False),
                 lambda: output_bounds(net, X01)):
        with pytest.raises(ValueError, match=r"NaN weights \(did training diverge"):
            call()


def test_a_network_that_overflows_in_float32_is_not_proved():
    """Exactly, y = 1e20 relu(1e20 x) - 1e20 relu(1e20 x) = 0 on the box; in
    float32 it is inf - inf = NaN at x = 1, which breaks 0 <= y <= 1."""
    first, second = nn.Linear(1, 2, bias=False), nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        first.weight.fill_(1e20)
        second.weight.copy_(torch.tensor([[1e20, -1e20]]))
    net = nn.Sequential(first, nn.ReLU(), second)
    cexs = []
    result = verify(net, X01, [(0.0, 1.0)], cexs, progress=False)
    assert result == "fail"
    assert all(torch.isnan(net(c)).any() for c in cexs)


def test_a_nan_output_at_a_corner_is_a_violation():
    """y = relu(3e38 x) - relu(3e38 x) is 0 exactly, but inf - inf = NaN in float32
    where 3e38 x overflows (x > 1.13): the corner x = 2 shows it."""
    first, second = nn.Linear(1, 2, bias=False), nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        first.weight.fill_(3e38)
        second.weight.copy_(torch.tensor([[1.0, -1.0]]))
    net = nn.Sequential(first, nn.ReLU(), second)
    result = verify(net, [(0.0, 2.0)], [(-1.0, 1.0)], progress=False)
    assert result == "fail" and result.method == "sampling"
    assert "nan" in result.message


# -- 4. floating point -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_networks_are_refused(dtype):
    net = mlp((2, 4, 1), seed=0).to(dtype)
    with pytest.raises(TypeError, match=r"float32 and float64 networks.*net\.float\(\)"):
        verify(net, [(0, 1), (0, 1)], [(-10, 10)], progress=False)


def test_gamma_never_turns_negative():
    u = torch.finfo(torch.bfloat16).eps / 2
    assert rounding._gamma(257, u) == math.inf  # 255 inputs: k = n + 2
    assert rounding._gamma(10, u) > 0


def test_a_pass_says_whether_it_holds_for_the_float_network():
    small = mlp((2, 16, 1), seed=0)
    result = verify(small, [(0, 0.1), (0, 0.1)], [(-100, 100)], progress=False)
    assert result == "pass" and result.rounding == "rigorous", result
    assert "exact arithmetic" not in result.message
    wide = mlp((784, 128, 64, 10), seed=0)
    x = torch.rand(784, generator=torch.Generator().manual_seed(0)).tolist()
    x_specs = [(v, v) for v in x]
    x_specs[5] = (x[5] - 1e-4, x[5] + 1e-4)
    with torch.no_grad():
        y = wide(torch.tensor([x]))[0]
    # Bounds close to the outputs: only a tight rounding margin proves them.
    y_specs = [(v - 1e-3, v + 1e-3) for v in y.tolist()]
    result = verify(wide, x_specs, y_specs, progress=False, timeout=20)
    assert result == "pass" and result.rounding == "estimated"
    assert "proves it for exact arithmetic" in result.message
    double = mlp((784, 128, 64, 10), seed=0).double()
    result = verify(double, x_specs, y_specs, progress=False, timeout=20)
    assert result == "pass" and result.rounding == "rigorous"


# -- 5. what runs is what is bounded -----------------------------------------------------

class LeakyReLU(nn.ReLU):
    def forward(self, x):
        return torch.where(x > 0, x, 0.5 * x)


class MaskedLinear(nn.Linear):
    def forward(self, x):
        return nn.functional.linear(x, self.weight * 0.0, self.bias)


class HotSoftmax(nn.Softmax):
    def forward(self, x):
        return torch.softmax(x / 0.01, dim=1)


@pytest.mark.parametrize("net,pattern", [
    (nn.Sequential(nn.Linear(2, 4), LeakyReLU(), nn.Linear(4, 1)),
     r"layer '1' \(LeakyReLU, a subclass of nn\.ReLU"),
    (nn.Sequential(MaskedLinear(2, 1)), r"layer '0' \(MaskedLinear, a subclass of nn\.Linear"),
    (nn.Sequential(nn.Linear(2, 2), HotSoftmax(dim=1)),
     r"layer '1' \(HotSoftmax, a subclass of nn\.Softmax"),
])
def test_subclassed_layers_are_refused(net, pattern):
    with pytest.raises(TypeError, match=pattern):
        verify(net, [(0, 1), (0, 1)], [(-1, 1)] * net(torch.zeros(1, 2)).shape[1],
               progress=False)


def test_hooks_are_refused():
    net = mlp((2, 4, 1), seed=0)
    handle = net[2].register_forward_hook(lambda m, i, o: o * 100)
    with pytest.raises(TypeError, match=r"forward hooks on module '2' \(Linear\)"):
        verify(net, [(0, 1), (0, 1)], [(-1, 1)], progress=False)
    handle.remove()
    handle = nn.modules.module.register_module_forward_hook(lambda m, i, o: o)
    try:
        with pytest.raises(TypeError, match=r"global forward hooks"):
            output_bounds(net, [(0, 1), (0, 1)])
    finally:
        handle.remove()
    net[0].forward = lambda x: x
    with pytest.raises(TypeError, match=r"module '0' \(Linear\) with a forward assigned to the object"):
        verify(net, [(0, 1), (0, 1)], [(-1, 1)], progress=False)


def test_a_patched_function_is_caught_by_running_the_network(monkeypatch):
    """nn.ReLU.forward calls F.relu at run time: patch that, and only running the
    network shows the difference."""
    net = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(-0.5)
    monkeypatch.setattr(nn.functional, "relu", lambda x, inplace=False: x.abs())
    with pytest.raises(TypeError, match=r"does not compute what its layers compute"):
        verify(net, X01, [(0.0, 0.01)], progress=False)


# -- 7. a fail outside the box -------------------------------------------------------------

def test_no_counterexample_outside_a_box_that_holds_no_float32_number():
    """y = x, y <= 0.1 on x in [0.1, 0.1]: true at x = 0.1; float32(0.1) is above 0.1
    but is not in the box."""
    cexs = []
    result = verify(identity_net(), [(0.1, 0.1)], [(-1.0, 0.1)], cexs, progress=False,
                    timeout=2)
    assert result != "fail" and cexs == []
    assert "holds no float32 number" in result.message


# -- 8. crashes and unclear answers ------------------------------------------------------------

def test_a_softmax_over_one_output_is_always_one():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1), nn.Softmax(dim=1))
    assert verify(net, [(0, 1), (0, 1)], [(0.5, 1.0)], progress=False) == "pass"
    assert verify(net, [(0, 1), (0, 1)], [(0.0, 0.5)], progress=False) == "fail"
    lo, hi = output_bounds(net, [(0, 1), (0, 1)])
    assert lo.item() == hi.item() == 1.0


def test_trivial_probability_bounds_pass_without_search():
    """p <= 1 holds for any softmax, even where p rounds to 1 and no bound beats it."""
    net = nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=1))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.copy_(torch.tensor([50.0, 0.0]))
    result = verify(net, [(0, 1), (0, 1)], [(0.0, 1.0)] * 2, progress=False, timeout=5)
    assert result == "pass" and result.boxes == 0


# -- 9. falsification of softmax specs ------------------------------------------------------------

def briefly_trained_mnist_model() -> MNISTModle:
    """The handout's model after 300 SGD steps on real MNIST (about a second):
    confident enough that random images of the box are still classified right."""
    from mnist_tools.data import MNISTData

    torch.manual_seed(0)
    model = MNISTModle(seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step, (X, y) in enumerate(MNISTData().get_dataloader(True)):
        if step == 300:
            break
        loss = -torch.log(model(X)[range(len(y)), y] + 1e-9).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_a_misclassified_image_breaks_softmax_specs_as_fast_as_robustness():
    """The trivially true p_label <= 1 was the smallest slack, so the attack pushed
    p_label up and never found the misclassified image robustness finds at once."""
    from mnist_tools import perturb_all_pixels
    from mnist_tools.data import MNISTData

    model = briefly_trained_mnist_model()
    X, y = next(iter(MNISTData().get_dataloader(False)))
    x, label = nn.Flatten()(X[:1]), int(y[0])
    x_lb, x_ub = perturb_all_pixels(x, 1.0)
    x_specs = torch.cat([x_lb, x_ub]).T.tolist()
    y_specs = [(0.0, 0.5)] * 10
    y_specs[label] = (0.5, 1.0)
    assert verify_robustness(model, x_specs, label, progress=False, timeout=10) == "fail"
    result = verify(model, x_specs, y_specs, progress=False, timeout=10)
    assert result == "fail" and result.method in ("sampling", "PGD attack")
