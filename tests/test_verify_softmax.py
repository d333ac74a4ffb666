"""Softmax networks: sound bounds through softmax, the handout's MNIST model."""
from __future__ import annotations

import itertools
import time

import pytest
import torch

from verifier import output_bounds, verify, verify_robustness
from verify_nets import mlp, one_pixel_question


def _samples(lb, ub, n, seed):
    g = torch.Generator().manual_seed(seed)
    lb, ub = torch.tensor(lb, dtype=torch.float32), torch.tensor(ub, dtype=torch.float32)
    x = lb + torch.rand(n, lb.numel(), generator=g) * (ub - lb)
    corners = torch.tensor(list(itertools.product(*zip(lb.tolist(), ub.tolist()))),
                           dtype=torch.float32)
    return torch.cat([x, corners])


@pytest.mark.parametrize("seed", range(6))
def test_softmax_pass_is_never_contradicted_by_sampling(seed):
    net = mlp((3, 12, 12, 4), seed=seed, softmax=True, scale=2.0)
    lb, ub = [-0.3, 0.1, 0.0], [0.1, 0.4, 0.3]
    x = _samples(lb, ub, 100_000, seed)
    with torch.no_grad():
        y = net(x)
    lo, hi = output_bounds(net, list(zip(lb, ub)))
    assert torch.all(y.double() >= lo - 1e-6) and torch.all(y.double() <= hi + 1e-6)
    seen_lo, seen_hi = y.min(0).values.double(), y.max(0).values.double()
    # Specs around what sampling saw, tightened step by step until verify stops passing.
    for shrink in (0.5, 0.05, -0.02):
        pad = shrink * (seen_hi - seen_lo)
        ys = list(zip((seen_lo - pad).tolist(), (seen_hi + pad).tolist()))
        res = verify(net, list(zip(lb, ub)), ys, timeout=2, progress=False)
        bad = ((y.double() < seen_lo - pad) | (y.double() > seen_hi + pad)).any()
        if res == "pass":
            assert not bad, f"pass contradicted by sampling: {res}"
        if shrink < 0:
            assert res != "pass"
    # a comfortable spec is proved
    assert verify(net, list(zip(lb, ub)), list(zip((lo - 0.01).tolist(), (hi + 0.01).tolist())),
                  progress=False) == "pass"


def test_softmax_bounds_are_tighter_with_differences():
    net = mlp((2, 16, 16, 3), seed=3, softmax=True, scale=2.0)
    spec = [(0.2, 0.3), (0.5, 0.6)]
    lo, hi = output_bounds(net, spec)
    assert torch.all(lo >= 0) and torch.all(hi <= 1) and torch.all(lo <= hi)
    x = _samples([0.2, 0.5], [0.3, 0.6], 5000, 0)
    with torch.no_grad():
        y = net(x).double()
    assert torch.all(y >= lo - 1e-6) and torch.all(y <= hi + 1e-6)


@pytest.fixture(scope="module")
def mnist():
    return one_pixel_question()


def test_handout_mnist_model_one_pixel(mnist):
    model, x_specs, avg = mnist
    assert len(x_specs) == 784
    for eps, expect in ((0.01, "pass"), (1e-5, "fail")):
        y_specs = [[avg[0, i].item() - eps, avg[0, i].item() + eps] for i in range(10)]
        cases = []
        t = time.monotonic()
        res = verify(model, x_specs, y_specs, cases, progress=False)
        assert time.monotonic() - t < 10
        assert res == expect, str(res)
        if expect == "fail":
            cex = cases[0]
            assert cex.shape == (1, 784)
            with torch.no_grad():
                y = model(cex)  # the student's check works as is
            assert any(y[0, i] < lo or y[0, i] > hi for i, (lo, hi) in enumerate(y_specs))
            lb = torch.tensor([a for a, _ in x_specs])
            ub = torch.tensor([b for _, b in x_specs])
            assert torch.all(cex[0] >= lb) and torch.all(cex[0] <= ub)
            # also the image shape the handout uses
            assert model(cex.reshape(1, 1, 28, 28)).shape == (1, 10)
    assert res.lower is not None or res == "fail"


def test_mnist_input_shape_option(mnist):
    model, x_specs, avg = mnist
    y_specs = [[avg[0, i].item() - 1e-5, avg[0, i].item() + 1e-5] for i in range(10)]
    res = verify(model, x_specs, y_specs, input_shape=(1, 1, 28, 28), progress=False)
    assert res == "fail" and res.counterexamples[0].shape == (1, 1, 28, 28)


def test_robustness_margin_spec(mnist):
    model, x_specs, avg = mnist
    label = int(avg.argmax())
    assert verify_robustness(model, x_specs, label, timeout=10) != "fail"
    other = (label + 1) % 10
    res = verify_robustness(model, x_specs, other, timeout=10)
    assert res == "fail"
    with torch.no_grad():
        assert int(model(res.counterexamples[0]).argmax()) != other
