"""Testing a circle network by sampling: look for points where it disagrees with the truth."""
from typing import List, Tuple

import numpy as np
import torch
from torch import nn

from circle.console import info
from circle.geometry import Point, as_point, inside_circle, inside_circle_many


def net_outputs(net: nn.Module, xs: np.ndarray) -> np.ndarray:
    """Run ``net`` on the points ``xs`` (shape (N, 2)); return its outputs, shape (N,).

    The network must give one output per point (shape (N, 1) or (N,)).
    """
    xs = np.asarray(xs, dtype=np.float32)
    if xs.ndim != 2 or xs.shape[1] != 2:
        raise ValueError(f"expected points of shape (N, 2), got shape {xs.shape}")
    with torch.no_grad():
        out = net(torch.as_tensor(xs, device=_device_of(net)))
    out = out.detach().float().cpu().reshape(len(xs), -1)
    if out.shape[1] != 1:
        raise ValueError(f"expected a network with one output per point, got {out.shape[1]}")
    return out[:, 0].numpy()


def net_test(net: nn.Module, testing_data: np.ndarray) -> List[np.ndarray]:
    """Return the counterexamples among ``testing_data`` (shape (N, 2)).

    A counterexample is a point where the network's answer (output >= 0.5 means "inside")
    differs from the ground truth ``inside_circle``. Each one is returned as an array of
    shape (2,); an empty list means no violation was found among these points.
    """
    testing_data = np.asarray(testing_data, dtype=float).reshape(-1, 2)
    predicted_inside = net_outputs(net, testing_data) >= 0.5
    truly_inside = inside_circle_many(testing_data) == 1
    return [testing_data[i] for i in np.flatnonzero(predicted_inside != truly_inside)]


def check_ground_truth(net: nn.Module, x: Point) -> Tuple[float, int]:
    """Print and return the network's output for one point ``x = (x1, x2)`` and its true label.

    Returns ``(output, ground_truth)``: the network's output (a float; >= 0.5 means "inside")
    and ``inside_circle(x)`` (1 inside, 0 outside).
    """
    point = as_point(x)
    output = float(net_outputs(net, point[None, :])[0])
    truth = inside_circle(point)
    info(f"net->{output:.4f}; ground truth->{truth}")
    return output, truth


def _device_of(net: nn.Module) -> torch.device:
    param = next(net.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
