"""How large a perturbation can be proved harmless: a search over the radius ``delta``.

``robust_radius(net, x, label)`` asks ``verifier.verify_robustness`` about boxes of growing
radius around the image ``x`` (by default ``perturb_all_pixels``: the top half of the image
moves by up to ``delta``), then bisects between the largest radius proved and the smallest one
not proved, all within one time budget. Each answer is one call of the verifier, so the
search's record says, radius by radius, what the verifier did: a single bound over the whole
box ("CROWN", "alpha-CROWN"), a branch and bound on the signs of the ReLUs ("... + ReLU BaB (N
subproblems)"), or an attack that found a misclassified image ("... attack", "sampling").

A "pass" at radius ``delta`` is a proof for that box; since boxes of smaller radius lie inside
it, every smaller radius is proved too. A "fail" comes with a real counterexample, so every
larger radius fails as well. Between the two the verifier ran out of time ("unknown"): the
true robust radius lies somewhere in ``[proved, refuted)``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from mnist_tools.perturb import perturb_all_pixels

Perturb = Callable[[torch.Tensor, float], Tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class RadiusStep:
    """One call of the verifier: the radius asked about and what came back."""
    delta: float
    status: str             # "pass", "fail" or "unknown"
    method: str             # the verifier's account of how it decided (``result.method``)
    seconds: float


@dataclass
class RadiusSearch:
    """What ``robust_radius`` found.

    ``proved``: the largest radius proved (0.0 if none was); ``refuted``: the smallest radius
    at which the verifier found a misclassified image (None if it found none), and
    ``counterexample`` that image; ``steps``: every call, in order.
    """
    proved: float
    refuted: Optional[float]
    counterexample: Optional[torch.Tensor]
    steps: List[RadiusStep] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [f"{'step':>4}  {'delta':>9}  {'answer':7}  {'seconds':>7}  how"]
        for k, s in enumerate(self.steps, 1):
            lines.append(f"{k:4d}  {s.delta:9.5f}  {s.status:7}  {s.seconds:7.2f}  {s.method}")
        lines.append(self.summary())
        return "\n".join(lines)

    def summary(self, calls: bool = True) -> str:
        proved = (f"largest radius proved: {self.proved:.5g}" if self.proved > 0
                  else "no radius proved")
        if self.refuted is None:
            refuted = "no counterexample found"
        else:
            refuted = f"smallest radius refuted (a counterexample): {self.refuted:.5g}"
        gap = any(s.status == "unknown" and s.delta > self.proved for s in self.steps)
        text = f"{proved}; {refuted}" + ("; in between, the verifier ran out of time" if gap else "")
        return text + (f" ({len(self.steps)} calls, {self.seconds:.1f} s)" if calls else "")


def robust_radius(net: nn.Module, x: torch.Tensor, label: int, *,
                  perturb: Perturb = perturb_all_pixels, budget: float = 5.0,
                  start: float = 0.01, precision: float = 1.1,
                  max_delta: float = 4.0) -> RadiusSearch:
    """Search the largest ``delta`` for which ``net`` provably keeps ``label`` on the box
    ``perturb(x, delta)``, within ``budget`` seconds in all.

    The radius doubles from ``start`` until a call does not prove it (or ``max_delta`` is
    reached; normalised MNIST pixels span about 3.2), then the interval is bisected (on a log
    scale) until its ends are within a factor ``precision``; with time left and no
    counterexample yet, the radius doubles again past the bisection, looking for one. Each
    call gets at most a quarter of the budget, so one hard radius cannot take all of it.
    """
    if isinstance(label, bool) or not isinstance(label, int):
        raise ValueError(f"label must be an int (the digit), got {label!r}")
    for name, value in (("budget", budget), ("start", start), ("max_delta", max_delta)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not (isinstance(precision, (int, float)) and precision > 1):
        raise ValueError(f"precision must be a number > 1, got {precision!r}")
    from verifier import verify_robustness

    t0 = time.monotonic()
    deadline = t0 + float(budget)
    search = RadiusSearch(proved=0.0, refuted=None, counterexample=None)
    not_proved: Optional[float] = None   # smallest radius asked about and not proved

    def ask(delta: float) -> Optional[str]:
        left = deadline - time.monotonic()
        if left < 0.05:
            return None
        x_lb, x_ub = perturb(x, delta)
        box = torch.stack([x_lb.detach().reshape(-1), x_ub.detach().reshape(-1)], 1)
        found: list = []
        began = time.monotonic()
        answer = verify_robustness(net, box, label, counterexamples=found,
                                   timeout=min(left, budget / 4), progress=False)
        search.steps.append(RadiusStep(delta, answer.status, answer.method,
                                       time.monotonic() - began))
        if answer.status == "pass":
            search.proved = max(search.proved, delta)
        elif answer.status == "fail" and (search.refuted is None or delta < search.refuted):
            search.refuted = delta
            search.counterexample = found[0] if found else None
        return answer.status

    # Grow: double while proved; shrink: halve while the first radius is not proved.
    delta = min(float(start), float(max_delta))
    status = ask(delta)
    if status == "pass":
        while status == "pass" and delta < max_delta:
            delta = min(2 * delta, float(max_delta))
            status = ask(delta)
    else:
        while status in ("fail", "unknown") and delta > start / 64:
            delta /= 2
            status = ask(delta)
    if status is None:          # out of time before an answer
        status = "unknown"
    if status != "pass":
        not_proved = delta
    # Bisect between the largest radius proved and the smallest not proved.
    while not_proved is not None and search.proved > 0 \
            and not_proved / search.proved > precision:
        mid = math.sqrt(search.proved * not_proved)
        status = ask(mid)
        if status is None:
            break
        if status != "pass":
            not_proved = mid
    # With time left and no counterexample yet, look further out for one.
    delta = not_proved
    while delta is not None and search.refuted is None and delta < max_delta:
        delta = min(2 * delta, float(max_delta))
        if ask(delta) is None:
            break
    search.seconds = time.monotonic() - t0
    return search


def show_radius_search(search: RadiusSearch, ax: Optional[Axes] = None) -> Figure:
    """The radii asked about, in order (one row per call, log scale): green proved, red
    refuted, grey unknown; the band proved is shaded green, the band refuted red."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.4 * len(search.steps) + 1.6))
    steps = search.steps
    if not steps:
        ax.set_title("no call finished in the budget")
        return ax.figure
    deltas = [s.delta for s in steps]
    low, high = min(deltas) / 1.5, max(deltas) * 1.5
    if search.proved > 0:
        ax.axvspan(low, search.proved, color="tab:green", alpha=0.15, label="proved robust")
    if search.refuted is not None:
        ax.axvspan(search.refuted, high, color="tab:red", alpha=0.15,
                   label="counterexample found")
    colours = {"pass": "tab:green", "fail": "tab:red", "unknown": "tab:gray"}
    for status, marker in (("pass", "o"), ("fail", "X"), ("unknown", "s")):
        rows = [(k, s.delta) for k, s in enumerate(steps, 1) if s.status == status]
        if rows:
            ax.scatter([d for _, d in rows], [k for k, _ in rows], c=colours[status],
                       marker=marker, s=60, zorder=3, label=status)
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(len(steps) + 0.7, 0.3)
    ax.set_yticks(range(1, len(steps) + 1))
    ax.set_xlabel("delta (how far each pixel of the top half may move)")
    ax.set_ylabel("call")
    ax.set_title(search.summary(calls=False).replace("; ", "\n"), fontsize="medium")
    ax.legend(loc="lower left", fontsize="small")
    return ax.figure
