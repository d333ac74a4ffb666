"""Small networks for the verify() tests (shared by tests/test_verify_*.py)."""
from __future__ import annotations

import torch
from torch import nn

try:
    from d2l import torch as d2l
    _Base = d2l.Module
except Exception:  # pragma: no cover - d2l is pinned in requirements.txt
    _Base = nn.Module


def mlp(sizes, seed, *, softmax=False, scale=1.5):
    """A Linear/ReLU Sequential with fixed random weights (ReLUs between layers)."""
    g = torch.Generator().manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=g) / a ** 0.5 * scale)
            lin.bias.copy_(torch.randn(b, generator=g) * 0.3)
        layers += [lin, nn.ReLU()]
    layers = layers[:-1]
    if softmax:
        layers.append(nn.Softmax(dim=1))
    return nn.Sequential(*layers)


class MNISTModle(_Base):
    """The handout's MNIST model: Flatten -> self.net -> Softmax in forward()."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64),
                                 nn.ReLU(), nn.Linear(64, 10))

    def forward(self, X):
        y = nn.Flatten()(X)
        y = self.net(y)
        y = nn.Softmax(dim=1)(y)
        return y


def one_pixel_question(seed=0):
    """The handout's one-pixel robustness question on a random-weight ``MNISTModle``.

    Returns ``(model, x_specs, avg)``: 784 ``(lb, ub)`` pairs where pixel 5 of a random
    image moves by 0.5 (``mnist_tools.perturb_one_pixel``), and the model's outputs
    averaged over the box's two ends, shape (1, 10): the students' starting point.
    """
    from mnist_tools import perturb_one_pixel

    model = MNISTModle(seed=seed)
    x = torch.rand(1, 784, generator=torch.Generator().manual_seed(1))
    x_lb, x_ub = perturb_one_pixel(x, 5, 0.5)
    x_specs = list(zip(x_lb[0].tolist(), x_ub[0].tolist()))
    with torch.no_grad():
        avg = (model(x_lb) + model(x_ub)) / 2
    return model, x_specs, avg
