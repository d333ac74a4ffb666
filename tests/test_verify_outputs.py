"""General output properties (``verifier.Y``): the language, and verify() against the
exact MILP oracle extended to linear objectives and "or" clauses (``clause_min``)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from milp_oracle import clause_min
from verifier import Y, any_of, argmax_is, verify, verify_robustness
from verifier.outputs import cnf
from verify_nets import mlp


def test_expressions_read_as_written():
    assert str(Y[0] <= Y[1]) == "y[1] >= y[0]"
    assert str(2 * Y[3] - Y[1] >= 0.5) == "2*y[3] >= y[1] + 0.5"
    assert str(Y[0] < 3) == "3 > y[0]"
    f = (Y[0] <= 1) & ((Y[1] >= 0) | (Y[2] >= 0))
    assert [len(c) for c in cnf(f)] == [1, 2]
    dnf = ((Y[0] >= 0) & (Y[1] >= 0)) | ((Y[2] >= 0) & (Y[3] >= 0))
    assert sorted(len(c) for c in cnf(dnf)) == [2, 2, 2, 2]       # distributed
    assert len(cnf(any_of(Y[0] < Y[j] for j in range(1, 5)))) == 1


@pytest.mark.parametrize("make,exc,pattern", [
    (lambda: Y[0] * Y[1], TypeError, r"linear"),
    (lambda: (Y[0] <= 1) and (Y[1] <= 1), TypeError, r"& and \|"),
    (lambda: Y[0] <= math.nan, ValueError, r"finite"),
    (lambda: Y[-1], TypeError, r"index"),
    (lambda: Y[0] - Y[0] >= 1, ValueError, r"involves no output"),
])
def test_bad_expressions_say_what_is_wrong(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_properties_are_checked_against_the_network():
    net = mlp((2, 8, 3), seed=0)
    with pytest.raises(ValueError, match=r"uses y\[5\], but the network has 3 outputs"):
        verify(net, [(0, 1), (0, 1)], Y[5] >= 0)
    soft = mlp((2, 8, 3), seed=0, softmax=True)
    with pytest.raises(ValueError, match=r"only compare two outputs"):
        verify(soft, [(0, 1), (0, 1)], Y[0] >= 0.5)
    assert verify(soft, [(0, 1), (0, 1)], Y[0] >= Y[1], timeout=5, progress=False) \
        in ("pass", "fail", "unknown")


def _random_clauses(rng, m, k_clauses, k_atoms):
    return [[(rng.normal(size=m).round(2), None) for _ in range(rng.integers(1, k_atoms + 1))]
            for _ in range(k_clauses)]


CASES = [(sizes, seed) for seed, sizes in enumerate(
    [(2, 8, 3), (3, 10, 10, 2), (2, 16, 4), (4, 12, 3), (2, 6, 6, 3)] * 5)]


@pytest.mark.parametrize("sizes,seed", CASES)
def test_linear_and_or_properties_never_pass_falsely(sizes, seed):
    """Each clause gets a threshold a little above or below its exact minimum."""
    rng = np.random.default_rng(seed)
    net = mlp(sizes, seed=200 + seed)
    n, m = sizes[0], sizes[-1]
    c, w = rng.uniform(-1, 1, n), rng.uniform(0.1, 0.8, n)
    lb, ub = c - w / 2, c + w / 2
    clauses, formula = [], None
    for _ in range(rng.integers(1, 3)):
        C = rng.normal(size=(rng.integers(1, 4), m)).round(2)
        exact, _ = clause_min(net, lb, ub, C, np.zeros(len(C)))
        shift = exact + rng.choice([-1, 1]) * rng.choice([1e-6, 1e-3, 0.05]) * (1 + abs(exact))
        atoms = [sum(float(C[j, i]) * Y[i] for i in range(m) if C[j, i]) >= shift
                 for j in range(len(C))]
        clause = any_of(atoms) if len(atoms) > 1 else atoms[0]
        formula = clause if formula is None else formula & clause
        clauses.append((C, np.full(len(C), shift)))
    cexs = []
    result = verify(net, list(zip(lb, ub)), formula, cexs, timeout=5, progress=False)
    holds = all(clause_min(net, lb, ub, C, d)[0] >= 0 for C, d in clauses)
    if result == "pass":
        assert holds, f"false pass on {formula}"
    if result == "fail":
        assert not holds and cexs
        for cex in cexs:
            x = cex.double().flatten().numpy()
            assert np.all(x >= lb) and np.all(x <= ub)
            with torch.no_grad():
                y = net(cex).double().flatten().numpy()
            assert any(np.all(C @ y < d) for C, d in clauses), "counterexample meets the property"


@pytest.mark.parametrize("seed", range(8))
def test_a_disjunction_of_conjunctions_is_proved_only_when_every_point_meets_one(seed):
    """(y0 >= a & y1 >= b) | (y2 >= c): its CNF clauses checked one by one exactly."""
    rng = np.random.default_rng(100 + seed)
    net = mlp((2, 12, 12, 3), seed=300 + seed)
    lb, ub = np.array([-0.5, -0.5]), np.array([0.5, 0.5])
    t = rng.normal(scale=0.3, size=3)
    formula = ((Y[0] >= t[0]) & (Y[1] >= t[1])) | (Y[2] >= t[2])
    cexs = []
    result = verify(net, list(zip(lb, ub)), formula, cexs, timeout=5, progress=False)
    eye = np.eye(3)
    holds = all(clause_min(net, lb, ub, eye[[i, 2]], t[[i, 2]])[0] >= 0 for i in (0, 1))
    assert result != "pass" or holds
    assert result != "fail" or not holds
    for cex in cexs:
        with torch.no_grad():
            y = net(cex).double().flatten().numpy()
        assert not ((y[0] >= t[0] and y[1] >= t[1]) or y[2] >= t[2])


@pytest.mark.parametrize("seed", range(6))
def test_argmax_property_agrees_with_verify_robustness(seed):
    net = mlp((3, 16, 16, 4), seed=400 + seed)
    x = [(-0.2, 0.2)] * 3
    label = int(net(torch.zeros(1, 3)).argmax())
    a = verify(net, x, argmax_is(label, 4), timeout=10, progress=False)
    b = verify_robustness(net, x, label, timeout=10, progress=False)
    if "unknown" not in (a.status, b.status):
        assert a.status == b.status
