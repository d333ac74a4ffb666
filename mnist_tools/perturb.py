"""Input boxes around one MNIST image: the ``x_lb`` / ``x_ub`` that robustness specs are made of.

``x`` is one image flattened to shape (1, 784), as ``nn.Flatten()(image)`` gives it, in the
normalised pixel units the network sees. Both functions return new tensors ``(x_lb, x_ub)``
of the same shape and leave ``x`` unchanged. No clamping is done: a bound may leave the
range real pixels can take.
"""
import math
from typing import Tuple

import torch

NUM_PIXELS = 28 * 28


def perturb_one_pixel(x: torch.Tensor, pixel_pos: int, delta: float
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Let pixel ``pixel_pos`` (0..783, row by row) move by up to ``delta`` (> 0) either way.

    Returns ``(x_lb, x_ub)``: copies of ``x`` with that one pixel lowered / raised by ``delta``.
    """
    _check_image(x)
    if isinstance(pixel_pos, bool) or not isinstance(pixel_pos, int) \
            or not 0 <= pixel_pos < NUM_PIXELS:
        raise ValueError(f"pixel_pos must be an int in [0, {NUM_PIXELS}), got {pixel_pos!r}")
    _check_delta(delta)
    x_lb, x_ub = x.detach().clone(), x.detach().clone()
    x_lb[0, pixel_pos] -= delta
    x_ub[0, pixel_pos] += delta
    return x_lb, x_ub


def perturb_all_pixels(x: torch.Tensor, delta: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Let pixels move by up to ``delta`` (> 0) either way, as in the handout.

    Note: like the handout's loop ``for i in range(len(x[0]) // 2)``, only the FIRST HALF of
    the pixels (indices 0..391, the top 14 rows) is perturbed; the rest stay fixed.
    Returns ``(x_lb, x_ub)``.
    """
    _check_image(x)
    _check_delta(delta)
    half = x.shape[1] // 2
    x_lb, x_ub = x.detach().clone(), x.detach().clone()
    x_lb[0, :half] -= delta
    x_ub[0, :half] += delta
    return x_lb, x_ub


def _check_image(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != (1, NUM_PIXELS):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be one flattened image, a tensor of shape (1, {NUM_PIXELS}) "
                         f"(use nn.Flatten()(image)), got {shape}")


def _check_delta(delta: float) -> None:
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) \
            or not math.isfinite(delta) or delta <= 0:
        raise ValueError(f"delta must be a finite number > 0, got {delta!r}")
