"""Pictures of MNIST images, of perturbation boxes and of counterexamples.

Like ``circle``'s pictures, each function returns the ``matplotlib.figure.Figure`` it drew on.
``plot_mnist`` draws on ``ax`` (default: the current axes); the three-panel pictures draw on
``axes`` (three axes) or on a new figure.
"""
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from mnist_tools.perturb import NUM_PIXELS


def plot_mnist(x: torch.Tensor, ax: Optional[Axes] = None, title: Optional[str] = None) -> Figure:
    """Show one image: any tensor of 784 values ((1, 784), (1, 28, 28), (28, 28), ...)."""
    ax = plt.gca() if ax is None else ax
    # numpy arrays, not tensors: numpy 2 warns when matplotlib converts a tensor (no copy= in
    # torch's __array__)
    image = ax.imshow(_as_image(x).numpy(), cmap="gray_r")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return image.figure


def show_perturbation(x_lb: torch.Tensor, x_ub: torch.Tensor,
                      axes: Optional[Sequence[Axes]] = None) -> Figure:
    """Show the lower-bound image, the upper-bound image (on one grey scale) and their
    difference ``x_ub - x_lb`` (how far each pixel may move)."""
    axes = _three_axes(axes)
    plot_mnist(x_lb, axes[0], "lower bound")
    plot_mnist(x_ub, axes[1], "upper bound")
    _same_scale(axes[0], axes[1])
    difference = axes[2].imshow((_as_image(x_ub) - _as_image(x_lb)).numpy(), cmap="Reds")
    axes[2].set_title("difference")
    axes[2].set_xticks([])
    axes[2].set_yticks([])
    axes[2].figure.colorbar(difference, ax=axes[2], fraction=0.046)
    return axes[0].figure


def show_counterexample(net: nn.Module, x: torch.Tensor, cex: torch.Tensor,
                        axes: Optional[Sequence[Axes]] = None) -> Figure:
    """Show the original image ``x``, the counterexample ``cex`` (on one grey scale) and
    ``cex - x``, with the network's predicted label for each image in the titles. ``x`` and
    ``cex`` hold 784 pixels each; the network gets them as shape (1, 784)."""
    axes = _three_axes(axes)
    plot_mnist(x, axes[0], f"original: {_predict(net, x)}")
    plot_mnist(cex, axes[1], f"counterexample: {_predict(net, cex)}")
    _same_scale(axes[0], axes[1])
    difference = _as_image(cex) - _as_image(x)
    limit = float(difference.abs().max()) or 1.0
    image = axes[2].imshow(difference.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[2].set_title("difference")
    axes[2].set_xticks([])
    axes[2].set_yticks([])
    axes[2].figure.colorbar(image, ax=axes[2], fraction=0.046)
    return axes[0].figure


def _same_scale(*axes: Axes) -> None:
    """One grey scale for the images on ``axes``, so that their pixels compare."""
    images = [ax.images[-1] for ax in axes]
    low = min(float(image.get_array().min()) for image in images)
    high = max(float(image.get_array().max()) for image in images)
    for image in images:
        image.set_clim(low, high)


def _predict(net: nn.Module, x: torch.Tensor) -> int:
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.no_grad():
        return int(net(_check_pixels(x).reshape(1, NUM_PIXELS).float().to(device)).argmax(1))


def _as_image(x: torch.Tensor) -> torch.Tensor:
    return _check_pixels(x).detach().float().cpu().reshape(28, 28)


def _check_pixels(x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.numel() != NUM_PIXELS:
        raise ValueError(f"expected one MNIST image of {NUM_PIXELS} pixels, got shape "
                         f"{tuple(x.shape)}")
    return x


def _three_axes(axes: Optional[Sequence[Axes]]) -> Sequence[Axes]:
    if axes is None:
        return plt.subplots(1, 3, figsize=(9, 3))[1]
    if len(axes) != 3:
        raise ValueError(f"expected 3 axes (lower, upper, difference), got {len(axes)}")
    return axes
