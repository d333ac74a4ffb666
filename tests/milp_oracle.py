"""An independent oracle: the exact output range of a small ReLU net over a box, by MILP.

Shares no code with ``verifier``. Each ReLU a = max(0, z) with pre-activation
bounds l < 0 < u (from interval arithmetic) is encoded with a binary d:

    a >= z,  a >= 0,  a <= z - l (1 - d),  a <= u d

(stable neurons are encoded exactly without a binary). ``scipy.optimize.milp``
(HiGHS) then minimises / maximises each output. The weights are float32 values
read into float64, so the oracle describes the exact function of the weights.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from torch import nn


def linear_layers(net: nn.Sequential):
    """[(W, b), ...] float64, for a Sequential of Linear/ReLU alternating (no bias: b = 0)."""
    out = []
    for m in net:
        if isinstance(m, nn.Linear):
            W = m.weight.detach().double().cpu().numpy()
            b = np.zeros(W.shape[0]) if m.bias is None else m.bias.detach().double().cpu().numpy()
            out.append((W, b))
        elif not isinstance(m, nn.ReLU):
            raise TypeError(f"oracle handles Linear/ReLU only, got {type(m).__name__}")
    return out


def _encode(net, lb, ub):
    """The MILP encoding of the hidden layers: (A, row_lb, row_ub, var_lb, var_ub, integ,
    prev, n0, (W, b)) with ``prev`` the variables of the last hidden layer's values."""
    layers = linear_layers(net)
    lb, ub = np.asarray(lb, float), np.asarray(ub, float)
    n0 = lb.size
    # Variable layout: x, then for each hidden layer: a (post), d (binary).
    var_lb, var_ub, integ = list(lb), list(ub), [0] * n0
    rows, row_lb, row_ub = [], [], []
    prev = list(range(n0))          # indices of the previous layer's values
    lo, hi = lb.copy(), ub.copy()   # interval bounds of the previous layer
    nvar = n0

    def new_vars(k, vlb, vub, is_int):
        nonlocal nvar
        idx = list(range(nvar, nvar + k))
        nvar += k
        var_lb.extend(vlb)
        var_ub.extend(vub)
        integ.extend([1 if is_int else 0] * k)
        return idx
    for W, b in layers[:-1]:
        Wp, Wn = np.clip(W, 0, None), np.clip(W, None, 0)
        zl = Wp @ lo + Wn @ hi + b
        zu = Wp @ hi + Wn @ lo + b
        a = new_vars(W.shape[0], [0.0] * W.shape[0], list(np.maximum(zu, 0)), False)
        d = new_vars(W.shape[0], [0.0] * W.shape[0], [1.0] * W.shape[0], True)
        for j in range(W.shape[0]):
            def row(coef_a=0.0, coef_z=0.0, coef_d=0.0):
                r = {}
                r[a[j]] = coef_a
                for p, w in zip(prev, W[j]):
                    r[p] = r.get(p, 0.0) + coef_z * w
                if coef_d:
                    r[d[j]] = coef_d
                return r
            if zu[j] <= 0:          # always off: a = 0
                var_ub[a[j]] = 0.0
                var_ub[d[j]] = 0.0
            elif zl[j] >= 0:        # always on: a = z
                rows.append(row(1.0, -1.0))
                row_lb.append(b[j])
                row_ub.append(b[j])
                var_lb[d[j]] = 1.0
            else:
                rows.append(row(1.0, -1.0))
                row_lb.append(b[j])
                row_ub.append(np.inf)
                rows.append(row(1.0, -1.0, -zl[j]))
                row_lb.append(-np.inf)
                row_ub.append(b[j] - zl[j])
                rows.append({a[j]: 1.0, d[j]: -zu[j]})
                row_lb.append(-np.inf)
                row_ub.append(0.0)
        prev = a
        lo, hi = np.maximum(zl, 0), np.maximum(zu, 0)

    A = np.zeros((len(rows), nvar))
    for i, r in enumerate(rows):
        for k, v in r.items():
            A[i, k] += v
    return rows, row_lb, row_ub, var_lb, var_ub, integ, prev, n0, nvar, layers[-1]


def _solve(c, integ, var_lb, var_ub, cons):
    for presolve in (True, False):
        # HiGHS's presolve (scipy 1.10) calls some tiny feasible MILPs
        # infeasible (one unstable neuron, 1-1-1 nets); without it they solve.
        res = milp(c, integrality=np.array(integ), bounds=Bounds(var_lb, var_ub),
                   constraints=cons, options={"mip_rel_gap": 1e-9, "presolve": presolve})
        if res.status == 0:
            return res
    raise RuntimeError(f"MILP failed: {res.message}")


def output_range(net: nn.Sequential, lb, ub):
    """Exact (min, argmin, max, argmax) of every output over the box.

    Returns a list with one tuple per output.
    """
    rows, row_lb, row_ub, var_lb, var_ub, integ, prev, n0, nvar, (W, b) = _encode(net, lb, ub)
    A = np.zeros((len(rows), nvar))
    for i, r in enumerate(rows):
        for k, v in r.items():
            A[i, k] += v
    cons = [LinearConstraint(A, row_lb, row_ub)] if rows else []
    results = []
    for i in range(W.shape[0]):
        ends = []
        for sign in (1.0, -1.0):
            c = np.zeros(nvar)
            c[prev] = sign * W[i]
            res = _solve(c, integ, var_lb, var_ub, cons)
            ends.append((sign * res.fun + b[i], res.x[:n0].copy()))
        (mn, xmin), (mx, xmax) = ends
        results.append((mn, xmin, mx, xmax))
    return results


def clause_min(net: nn.Sequential, lb, ub, C, d, inputs=()):
    """Exact ``min over the box of max_j (C[j] . y(x) - d[j])`` and its argmin.

    The "or" of the constraints C[j] . y >= d[j] holds on the whole box iff this is
    >= 0. Epigraph form: minimise s subject to s >= C[j] . y - d[j] for every j.
    ``inputs``: more constraints on x, each ``(a, u)`` for ``a . x <= u``; (inf, None) when
    no x of the box meets them.
    """
    rows, row_lb, row_ub, var_lb, var_ub, integ, prev, n0, nvar, (W, b) = _encode(net, lb, ub)
    for a, u in inputs:
        rows.append({i: float(v) for i, v in enumerate(a) if v})
        row_lb.append(-np.inf)
        row_ub.append(float(u))
    C, d = np.atleast_2d(np.asarray(C, float)), np.atleast_1d(np.asarray(d, float))
    s = nvar
    var_lb, var_ub, integ = var_lb + [-np.inf], var_ub + [np.inf], integ + [0]
    CW, Cb = C @ W, C @ b
    for j in range(C.shape[0]):   # s - CW_j . a >= Cb_j - d_j
        r = {s: 1.0}
        for p, w in zip(prev, CW[j]):
            r[p] = r.get(p, 0.0) - w
        rows.append(r)
        row_lb.append(Cb[j] - d[j])
        row_ub.append(np.inf)
    A = np.zeros((len(rows), nvar + 1))
    for i, r in enumerate(rows):
        for k, v in r.items():
            A[i, k] += v
    c = np.zeros(nvar + 1)
    c[s] = 1.0
    try:
        res = _solve(c, integ, var_lb, var_ub, [LinearConstraint(A, row_lb, row_ub)])
    except RuntimeError:
        if inputs and not _feasible(lb, ub, inputs):
            return np.inf, None
        raise
    return res.fun, res.x[:n0].copy()


def _feasible(lb, ub, inputs) -> bool:
    """Does some x of the box meet the constraints ``a . x <= u``? (An LP.)"""
    A = np.array([a for a, _ in inputs], float)
    res = milp(np.zeros(A.shape[1]), bounds=Bounds(lb, ub),
               constraints=[LinearConstraint(A, -np.inf, [float(u) for _, u in inputs])])
    return res.status == 0
