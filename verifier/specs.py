"""Read and check the user's ``x_specs`` / ``y_specs``.

A spec is one ``(lb, ub)`` pair per dimension: a list of pairs, a tuple of pairs,
a numpy array of shape ``(n, 2)`` or a tensor of shape ``(n, 2)`` (for two
dimensions only a list or tuple of pairs: a 2 x 2 array could be either way round). We turn it into
two float64 tensors ``lb, ub`` of shape ``(n,)`` and say exactly what is wrong
otherwise (which index, what was expected).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

from verifier.outputs import Formula

# x_specs: one (lb, ub) pair per input: a list/tuple of pairs, or an (n, 2) array or tensor
XSpecs = Union[Sequence[Sequence[float]], np.ndarray, torch.Tensor]
# y_specs: one (lb, ub) pair per output (±inf allowed), or a property built from verifier.Y
YSpecs = Union[XSpecs, Formula]


_AMBIGUOUS = (
    "{name} is {what}, which reads two ways: as two (lb, ub) pairs, or as "
    "[lower bounds, upper bounds]. For a network with 2 {dims} we cannot tell which "
    "you mean, so give a list of (lb, ub) pairs, one per {dim}: e.g. "
    "[(lb0, ub0), (lb1, ub1)]; from x_lb and x_ub use list(zip(x_lb, x_ub)), from "
    "an array of (lb, ub) rows use A.tolist()")


def _as_rows(specs, name: str, expected: int, what: str) -> list:
    """Split a spec into its pairs, whatever container it came in.

    Accepted: a list or tuple of pairs, or an array/tensor of shape (n, 2). An
    array of shape (2, 2), or a list of two arrays of length 2, could be pairs
    or [lower, upper] rows; with 2 dimensions that is refused, never guessed.
    """
    if isinstance(specs, torch.Tensor):
        specs = specs.detach().cpu().numpy()
    if isinstance(specs, np.ndarray):
        if specs.ndim != 2 or specs.shape[1] != 2:
            hint = (" (lower bounds in row 0, upper in row 1? transpose it with .T)"
                    if specs.ndim == 2 and specs.shape[0] == 2 else "")
            raise ValueError(
                f"{name} as an array must have shape (n, 2), one (lb, ub) row per "
                f"dimension; got shape {tuple(specs.shape)}{hint}")
        if specs.shape == (2, 2) and expected == 2:
            raise ValueError(_AMBIGUOUS.format(name=name, what="a 2 x 2 array",
                                               dims=what, dim=what[:-1]))
        return list(specs)
    if not isinstance(specs, (list, tuple)):
        raise TypeError(
            f"{name} must be a list of (lb, ub) pairs, one per dimension; "
            f"got {type(specs).__name__}")
    rows = list(specs)
    if expected == 2 and len(rows) == 2 and any(
            isinstance(r, (np.ndarray, torch.Tensor)) and len(r.reshape(-1)) == 2 for r in rows):
        raise ValueError(_AMBIGUOUS.format(name=name, what="a list of two arrays",
                                           dims=what, dim=what[:-1]))
    return rows


def _number(v, name: str, i: int, which: str) -> float:
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise ValueError(f"{name}[{i}] {which} must be a single number; "
                             f"got a tensor of shape {tuple(v.shape)}")
        v = v.item()
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (numbers.Real, np.number)):
        raise TypeError(f"{name}[{i}] {which} must be a number; got {v!r} "
                        f"({type(v).__name__})")
    v = float(v)
    if math.isnan(v):
        raise ValueError(f"{name}[{i}] {which} is NaN; bounds must be numbers")
    return v


def parse_spec(specs, expected: int, name: str, *, allow_inf: bool, what: str):
    """``specs`` -> ``(lb, ub)`` float64 tensors of shape ``(expected,)``.

    ``what`` names the dimensions for error messages ("inputs", "outputs").
    """
    rows = _as_rows(specs, name, expected, what)
    if len(rows) != expected:
        raise ValueError(
            f"{name} has {len(rows)} (lb, ub) pairs but the network has {expected} "
            f"{what}: expected {expected} pairs, one per {what[:-1]}")
    lbs, ubs = [], []
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
            raise TypeError(f"{name}[{i}] must be a pair (lb, ub); got {row!r}")
        if len(row) != 2:
            raise ValueError(f"{name}[{i}] must be a pair (lb, ub) of length 2; "
                             f"got length {len(row)}: {row!r}")
        lb = _number(row[0], name, i, "lb")
        ub = _number(row[1], name, i, "ub")
        if not allow_inf and (math.isinf(lb) or math.isinf(ub)):
            raise ValueError(f"{name}[{i}] = ({lb}, {ub}) is infinite; input bounds "
                             "must be finite numbers")
        if lb > ub:
            raise ValueError(f"{name}[{i}] has lb > ub: ({lb}, {ub}); expected "
                             "lb <= ub")
        if lb == math.inf or ub == -math.inf:
            raise ValueError(f"{name}[{i}] = ({lb}, {ub}) cannot hold for any finite "
                             f"value; use (-inf, inf) to leave {what[:-1]} {i} unchecked")
        lbs.append(lb)
        ubs.append(ub)
    return (torch.tensor(lbs, dtype=torch.float64),
            torch.tensor(ubs, dtype=torch.float64))


def parse_label(label, n_out: int) -> int:
    if isinstance(label, torch.Tensor):
        if label.numel() != 1:
            raise ValueError(f"label must be a single class index; got a tensor of "
                             f"shape {tuple(label.shape)}")
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, (numbers.Integral, np.integer)):
        raise TypeError(f"label must be an integer class index; got {label!r}")
    if not 0 <= int(label) < n_out:
        raise ValueError(f"label must be in 0..{n_out - 1} (the network has {n_out} "
                         f"outputs); got {label}")
    return int(label)
