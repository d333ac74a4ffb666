"""How far can the real (floating-point) network be from the exact function?

CROWN (run in float64, see ``verifier.bounds``) bounds the exact, real-valued
function of the network's weights. A student checks the property by running the
network in float32, whose result differs from the exact value by rounding. A
proof must therefore beat the spec by a margin, or a "pass" could be
contradicted by ``net(x)`` right at the edge of the spec. Two estimates:

1. Rigorous (``forward_error``): the worst case over every summation order and
   every point of the box. Tiny for the lab's small nets (~1e-6 on a 2-32-32-1
   net), but it grows with width x depth because it assumes every rounding error
   lines up with the weights' signs: for a 784-128-64-10 MNIST net it is ~1e-2
   on the logits, far above the ~1e-6 float32 really makes there, and would make
   the MNIST exercise unprovable.
2. Observed (``verifier.network.check_runs_as_traced``): the largest difference
   between the real network and the exact (float64) function at the points we
   sampled anyway.

A constraint's margin (``verifier.property.Constraint.margin``) is the rigorous
bound whenever that is small enough for a proof. Otherwise (wide layers) the
proof uses ``max(1e-6 (1 + |t|), 4 x observed)``, a safety factor of 4 over what
float32 was seen to do, with an absolute floor, and the verdict says so: such a
pass is a proof for exact arithmetic, and ``VerificationResult.rounding`` is
"estimated" (it is "rigorous" when every part of the proof used the rigorous
bound). float64 networks always get the rigorous bound, which is tiny there.
Where the float network may overflow (a partial sum can leave the dtype's range)
the rigorous bound is infinite and nothing is proved.

The rigorous bound uses the textbook error analysis of a dot product (Higham,
Accuracy and Stability of Numerical Algorithms, 3.1): for any summation order

    |fl(w . x + b) - (w . x + b)| <= gamma_{n+2} (|w| . |x| + |b|),
    gamma_k = k u / (1 - k u),  u = unit roundoff of the dtype,

applied layer by layer, with ``|x|`` bounded by interval arithmetic (IBP) over
the box, plus the error carried in from the previous layer (``|W| e``). ReLU is
1-Lipschitz, so it passes errors through unchanged. Sigmoid is 1/4-Lipschitz and its
values lie in (0, 1): it passes a quarter of the error in, plus its own rounding,
``SIGMOID_ULPS`` units of roundoff (float32's sigmoid is within a few ulps of the
exact value; the factor leaves room for any vectorised exp). On a GPU that allows TF32
matrix products we use TF32's unit roundoff (2^-11). For a final softmax see
``softmax_margin``. The bound is cheap (two matrix products per layer and box)
and, for the nets of the lab, tiny: about 1e-6 for float32.
"""
from __future__ import annotations

import torch

from verifier import sigmoid


def unit_roundoff(dtype: torch.dtype, device: torch.device) -> float:
    if (dtype == torch.float32 and device.type == "cuda"
            and torch.backends.cuda.matmul.allow_tf32):
        return 2.0 ** -11
    return torch.finfo(dtype).eps / 2


def _gamma(k: int, u: float) -> float:
    """Higham's gamma_k; infinite once k u >= 1, where the analysis says nothing."""
    return k * u / (1 - k * u) if k * u < 1 else float("inf")


#: A sigmoid's own rounding error in the network's dtype, in units of roundoff (absolute:
#: its values are at most 1).
SIGMOID_ULPS = 32


def forward_error(network, lb: torch.Tensor, ub: torch.Tensor):
    """For each box: ``(err, mag)``, each (B, n_out) float64.

    ``err`` bounds |float network(x) - exact network(x)| for every x in the box
    (pre-softmax outputs); ``mag`` bounds |exact network(x)| there. Where a sum
    inside some layer could leave the dtype's finite range (overflow to inf or
    NaN), ``err`` is infinite for that box: nothing can be said of the float network.
    """
    u = unit_roundoff(network.dtype, network.device)
    fmax = torch.finfo(network.dtype).max
    lo = lb.to(network.device, torch.float64)
    hi = ub.to(network.device, torch.float64)
    err = torch.zeros_like(lo)
    overflow = torch.zeros(lo.shape[0], dtype=torch.bool, device=lo.device)
    for layer in network.layers:
        if layer == "relu":
            lo, hi = lo.clamp(min=0), hi.clamp(min=0)
            continue
        if layer == "sigmoid":
            lo, hi = sigmoid.interval(lo, hi)   # widened for float64's own sigmoid
            err = err / 4 + SIGMOID_ULPS * u
            continue
        W = layer.weight.to(torch.float64)
        b = layer.bias.to(torch.float64) if layer.bias is not None else None
        absW = W.abs()
        mag = torch.maximum(lo.abs(), hi.abs())
        centre, radius = (lo + hi) / 2, (hi - lo) / 2
        out_c = centre @ W.T + (b if b is not None else 0.0)
        out_r = radius @ absW.T
        # Every partial sum of the float dot product is at most this in magnitude.
        partial = (mag + err) @ absW.T + (b.abs() if b is not None else 0.0)
        overflow |= ~(partial < fmax / 2).all(1)
        g = _gamma(layer.in_features + 2, u)
        err = err @ absW.T + g * partial
        lo, hi = out_c - out_r, out_c + out_r
    # Cushion for IBP's own float64 rounding, which is ~1e-16 relative.
    mag = torch.maximum(lo.abs(), hi.abs())
    err = err * (1 + 1e-6) + 1e-12 * (1 + mag)
    err[overflow] = float("inf")
    return torch.where(torch.isnan(err), torch.full_like(err, float("inf")), err), mag


def softmax_margin(err: torch.Tensor, mag: torch.Tensor, u: float) -> torch.Tensor:
    """Bound on |float softmax(float logits) - exact softmax(exact logits)|, (B,).

    Each log-probability ``z_i - logsumexp(z)`` moves by at most 2 max|dz| when
    the logits move; softmax's own float arithmetic (subtracting the max, exp,
    the sum of m terms, one division) adds a relative error of at most about
    4u(|z| + 2) + gamma_m. We double the total log-error for slack; the
    probability error is then at most expm1 of it (probabilities are <= 1).
    """
    m = err.shape[-1]
    E = err.amax(-1)
    R = mag.amax(-1)
    delta = 2 * E + 4 * u * (R + E + 2) + _gamma(m + 2, u)
    return torch.expm1(2 * delta)


def float_enclosure(lb: torch.Tensor, ub: torch.Tensor, dtype: torch.dtype):
    """Widen [lb, ub] (float64) to include ``dtype``'s roundings of its ends.

    A student writes the box's corners in ``dtype``; e.g. float32(0.7) is
    0.69999999, just outside [0.7, 0.85]. Every number of the box rounds into
    [round(lb), round(ub)], so proving on [min(lb, round(lb)), max(ub, round(ub))]
    covers every point the student can feed the network.
    """
    if dtype == torch.float64:
        return lb, ub
    lo = lb.to(dtype).to(torch.float64)
    hi = ub.to(dtype).to(torch.float64)
    return torch.minimum(lo, lb), torch.maximum(hi, ub)
