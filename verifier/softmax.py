"""Sound bounds on softmax outputs from bounds on the logits.

softmax_i(z) = 1 / sum_j exp(z_j - z_i) grows with z_i and shrinks with every
other z_j. So over a box of logits, l <= z <= u:

* from independent logit bounds (interval propagation, exact for a box):
  lower_i = softmax_i at (z_i = l_i, z_j = u_j),  upper_i = softmax_i at (u_i, l_j);
* from bounds on the differences, lo_ij <= z_i - z_j <= hi_ij (CROWN on rows
  e_i - e_j of a C matrix, much tighter because the shared part of the logits
  cancels): lower_i = 1 / sum_j exp(-lo_ij),  upper_i = 1 / sum_j exp(-hi_ij).

Both are sound; ``softmax_bounds`` takes the better of the two. We never use
auto-LiRPA's own Softmax operator (broken and loose in version 0.3).
"""
from __future__ import annotations

import torch


def interval(l: torch.Tensor, u: torch.Tensor):
    """Logit bounds (B, m) -> probability bounds (B, m) by monotonicity."""
    m = l.shape[-1]
    eye = torch.eye(m, dtype=torch.bool, device=l.device)
    # Row i of ``worst`` holds z with z_i = l_i and z_j = u_j elsewhere.
    worst = torch.where(eye, l.unsqueeze(-1), u.unsqueeze(-2))
    best = torch.where(eye, u.unsqueeze(-1), l.unsqueeze(-2))
    lower = torch.exp(l - torch.logsumexp(worst, dim=-1))
    upper = torch.exp(u - torch.logsumexp(best, dim=-1))
    return lower, upper


def from_differences(lo: torch.Tensor, hi: torch.Tensor):
    """``lo, hi`` (B, m, m) bound z_i - z_j (diagonal 0) -> probability bounds."""
    lower = torch.exp(-torch.logsumexp(-lo, dim=-1))
    upper = torch.exp(-torch.logsumexp(-hi, dim=-1))
    return lower, upper


def pair_rows(m: int, dtype=torch.float64, device=None):
    """C rows e_i - e_j for i < j, with their (i, j) index pairs."""
    idx = torch.triu_indices(m, m, offset=1)
    rows = torch.zeros(idx.shape[1], m, dtype=dtype, device=device)
    k = torch.arange(idx.shape[1])
    rows[k, idx[0]] = 1.0
    rows[k, idx[1]] = -1.0
    return rows, idx


def difference_matrix(pair_lo, pair_hi, idx, l, u):
    """Assemble (B, m, m) bounds on z_i - z_j from pair bounds (i < j) and logit bounds."""
    B, m = l.shape
    lo = l.unsqueeze(-1) - u.unsqueeze(-2)   # interval bound, always valid
    hi = u.unsqueeze(-1) - l.unsqueeze(-2)
    if pair_lo is not None:
        i, j = idx[0].to(l.device), idx[1].to(l.device)
        lo[:, i, j] = torch.maximum(lo[:, i, j], pair_lo)
        hi[:, i, j] = torch.minimum(hi[:, i, j], pair_hi)
        lo[:, j, i] = torch.maximum(lo[:, j, i], -pair_hi)
        hi[:, j, i] = torch.minimum(hi[:, j, i], -pair_lo)
    diag = torch.arange(m, device=l.device)
    lo[:, diag, diag] = 0.0
    hi[:, diag, diag] = 0.0
    return lo, hi


def softmax_bounds(l, u, pair_lo=None, pair_hi=None, idx=None):
    """Best sound probability bounds (B, m) from logit (and pair) bounds."""
    a_lo, a_hi = interval(l, u)
    if pair_lo is None:
        return a_lo, a_hi
    lo, hi = difference_matrix(pair_lo, pair_hi, idx, l, u)
    b_lo, b_hi = from_differences(lo, hi)
    return torch.maximum(a_lo, b_lo), torch.minimum(a_hi, b_hi)
