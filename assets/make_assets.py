"""Make the pictures that lab3.ipynb shows: `python assets/make_assets.py`.

Every picture is drawn here from the kit itself (no image is copied from elsewhere):

- ``adversarial.png``: an adversarial MNIST example. A small network is trained briefly,
  then one gradient-sign step (FGSM) turns a correctly classified digit into a wrong one:
  original | noise | adversarial, each with the network's prediction.
- ``mnist_samples.png``: a grid of MNIST training images with their labels.
- ``verification.png``: what verification checks: an input box, the network, and the
  interval of outputs compared with the specification.

The script is deterministic (fixed seeds) and takes about half a minute on two CPU cores.
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402
from torch import nn  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing the kit

from mnist_tools import MNISTData  # noqa: E402
from mnist_tools.data import MNIST_MEAN, MNIST_STD  # noqa: E402

DPI = 100
#: the range of a real pixel ([0, 1]) in the normalised units MNISTData serves
PIXEL_RANGE = ((0.0 - MNIST_MEAN) / MNIST_STD, (1.0 - MNIST_MEAN) / MNIST_STD)


def train_small_mnist_net(data: MNISTData, epochs: int = 1) -> nn.Module:
    """A 784-64-10 ReLU network trained with Adam (one epoch: about 95% test accuracy)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for images, labels in data.train_loader:
            optimizer.zero_grad()
            loss_fn(net(images), labels).backward()
            optimizer.step()
    return net.eval()


def fgsm_example(net: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 pixel_range: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Find a confidently, correctly classified image that one gradient-sign step fools.

    ``images`` are (N, 1, 28, 28) in the data's (normalised) units; ``pixel_range`` is the
    range of a valid pixel in those units. Tries growing steps and, at the smallest step that
    fools any image the network got right with at least 90% confidence, returns the most
    confident one: (original, sign of the gradient, epsilon). The adversarial image is
    ``(original + epsilon * noise).clamp(*pixel_range)``.
    """
    images = images.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(net(images), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, images)
    noise = grad.sign()
    with torch.no_grad():
        confidence, predicted = torch.softmax(net(images), dim=1).max(dim=1)
        confident = (predicted == labels) & (confidence >= 0.9)
        span = pixel_range[1] - pixel_range[0]
        for fraction in (0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25):
            epsilon = fraction * span
            adversarial = (images + epsilon * noise).clamp(*pixel_range)
            fooled = confident & (net(adversarial).argmax(1) != labels)
            if fooled.any():
                i = int(torch.where(fooled, confidence, torch.zeros_like(confidence)).argmax())
                return images[i].detach(), noise[i], epsilon
    raise RuntimeError("no confident image was fooled by a gradient-sign step of up to 25% of "
                       "the pixel range")


def draw_adversarial(net: nn.Module, data: MNISTData, out: Path) -> None:
    images, labels = next(iter(data.test_loader))
    lo, hi = PIXEL_RANGE
    original, noise, epsilon = fgsm_example(net, images[:200], labels[:200], (lo, hi))
    adversarial = (original + epsilon * noise).clamp(lo, hi)
    with torch.no_grad():
        probs = torch.softmax(net(torch.stack([original, adversarial])), dim=1)
    fraction = epsilon / (hi - lo)

    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.9), dpi=DPI)
    panels = [
        (original, f"original\npredicted {probs[0].argmax()} ({probs[0].max():.0%})", "gray_r"),
        (noise, f"noise: +1 (red) or -1 (blue)\nper pixel, times {fraction:.0%} of the range",
         "coolwarm"),
        (adversarial,
         f"original + noise\npredicted {probs[1].argmax()} ({probs[1].max():.0%})", "gray_r"),
    ]
    for ax, (image, title, cmap) in zip(axes, panels):
        ax.imshow(image.view(28, 28).numpy(), cmap=cmap)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(0.35, 0.45, "+", fontsize=22, ha="center", va="center")
    fig.text(0.655, 0.45, "=", fontsize=22, ha="center", va="center")
    fig.tight_layout(w_pad=3)
    fig.savefig(out)
    plt.close(fig)


def draw_mnist_samples(data: MNISTData, out: Path, rows: int = 3, cols: int = 8) -> None:
    images, labels = next(iter(data.train_loader))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 1.2), dpi=DPI)
    for ax, image, label in zip(axes.flat, images, labels):
        ax.imshow(image.view(28, 28).numpy(), cmap="gray_r")
        ax.set_title(f"y = {label}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    fig.savefig(out)
    plt.close(fig)


def _arrow(fig: plt.Figure, start: tuple[float, float], end: tuple[float, float]) -> None:
    fig.patches.append(FancyArrowPatch(start, end, transform=fig.transFigure, arrowstyle="-|>",
                                       mutation_scale=18, lw=1.5, color="0.3"))


def draw_verification(out: Path) -> None:
    """A schematic: every x in a box goes through f; is every output inside the spec?"""
    fig = plt.figure(figsize=(9, 3.2), dpi=DPI)

    # 1. the input box, inside the circle of the lab's first task
    ax_in = fig.add_axes([0.06, 0.14, 0.23, 0.66])
    ax_in.add_patch(plt.Circle((0.5, 0.5), 0.5, fc="white", ec="black"))
    ax_in.add_patch(Rectangle((0.7, 0.7), 0.15, 0.15, fc="tab:blue", alpha=0.35, ec="tab:blue"))
    ax_in.set_xlim(0, 1.05)
    ax_in.set_ylim(0, 1.05)
    ax_in.set_aspect("equal")
    ax_in.set_xlabel("$x_1$")
    ax_in.set_ylabel("$x_2$")
    ax_in.set_title("input specification\n$x \\in [0.7, 0.85]^2$ (every point!)", fontsize=10)

    # 2. the network
    ax_net = fig.add_axes([0.36, 0.14, 0.24, 0.66])
    layers = [2, 4, 4, 1]
    positions = [[(i, (j - (n - 1) / 2) * 0.9) for j in range(n)] for i, n in enumerate(layers)]
    for left, right in zip(positions, positions[1:]):
        for a in left:
            for b in right:
                ax_net.plot([a[0], b[0]], [a[1], b[1]], color="0.7", lw=0.8, zorder=1)
    for column in positions:
        for x, y in column:
            ax_net.add_patch(plt.Circle((x, y), 0.17, fc="white", ec="black", zorder=2))
    ax_net.set_xlim(-0.4, 3.4)
    ax_net.set_ylim(-2.0, 2.0)
    ax_net.set_aspect("equal")
    ax_net.axis("off")
    ax_net.set_title("the network $f$\n(Linear and ReLU layers)", fontsize=10)

    # 3. the outputs: the interval the verifier proves, against the specification
    ax_out = fig.add_axes([0.74, 0.14, 0.24, 0.66])
    ax_out.axhspan(0.5, 1.2, color="tab:green", alpha=0.2)
    ax_out.axhline(0.5, color="tab:green", lw=1)
    ax_out.text(0.05, 1.1, "spec: $y \\geq 0.5$", color="tab:green", fontsize=10, va="center")
    ax_out.errorbar([0.5], [0.8], yerr=[[0.17], [0.14]], fmt="o", color="tab:blue", capsize=8, lw=2)
    ax_out.text(0.58, 0.8, "bounds of $f(x)$\nover the whole box", fontsize=9, va="center")
    ax_out.text(0.05, 0.25,
                "lower bound $\\geq$ 0.5: pass\na real $x$ below 0.5: fail\nneither: unknown",
                fontsize=9, va="center")
    ax_out.set_xlim(0, 1.45)
    ax_out.set_ylim(0, 1.2)
    ax_out.set_xticks([])
    ax_out.set_ylabel("output $y$")
    ax_out.set_title("output specification", fontsize=10)

    _arrow(fig, (0.30, 0.47), (0.365, 0.47))
    _arrow(fig, (0.60, 0.47), (0.675, 0.47))
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    torch.set_num_threads(1)  # small networks: as fast as several threads, and reproducible
    data = MNISTData(batch_size_train=64, batch_size_test=1000)
    torch.manual_seed(0)
    draw_mnist_samples(data, HERE / "mnist_samples.png")
    draw_verification(HERE / "verification.png")
    draw_adversarial(train_small_mnist_net(data), data, HERE / "adversarial.png")
    for name in ("adversarial.png", "mnist_samples.png", "verification.png"):
        print(f"wrote {HERE / name} ({(HERE / name).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
