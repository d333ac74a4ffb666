"""Properties of a network's outputs beyond boxes: linear constraints, "and", "or".

``Y[i]`` stands for output i. Arithmetic builds linear expressions and a
comparison makes a constraint; ``&`` and ``|`` combine constraints::

    from verifier import Y, verify

    verify(net, x_specs, Y[0] <= Y[1])                      # one linear constraint
    verify(net, x_specs, (2 * Y[3] - Y[1] >= 0.5) & (Y[0] <= 3))
    verify(net, x_specs, (Y[1] < Y[0]) | (Y[2] < Y[0]))     # COC is not the minimal score
    verify(net, x_specs, argmax_is(3, 10))                  # what verify_robustness checks

The property must hold at every input of the box. ``verify`` proves it clause by
clause after turning it into a conjunction of disjunctions (``cnf``): a box is
done when every clause has one constraint proved on it; a counterexample breaks
every constraint of some clause.

``<=``/``>=`` allow equality, ``<``/``>`` do not: ``Y[0] < Y[1]`` is broken by an
output with ``Y[0] == Y[1]``. On a network that ends in softmax only comparisons
of two outputs (``Y[i] <= Y[j]``) are accepted: they mean the same for the
probabilities and for the logits, which is what we bound.
"""
from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterable

MAX_CLAUSES = 4096


def _coef(v):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"output properties combine outputs Y[i] with numbers; got {v!r}")
    v = float(v)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"coefficients and bounds must be finite numbers; got {v}")
    return v


class Expr:
    """A linear expression ``sum_i coef[i] * Y[i] + const``."""

    __array_priority__ = 1000  # numpy scalars defer to our operators

    def __init__(self, coef: dict, const: float = 0.0):
        self.coef = {i: c for i, c in coef.items() if c != 0.0}
        self.const = const

    @staticmethod
    def of(v: Expr | float) -> Expr:
        return v if isinstance(v, Expr) else Expr({}, _coef(v))

    def __add__(self, other):
        other = Expr.of(other)
        coef = dict(self.coef)
        for i, c in other.coef.items():
            coef[i] = coef.get(i, 0.0) + c
        return Expr(coef, self.const + other.const)

    __radd__ = __add__

    def __neg__(self):
        return Expr({i: -c for i, c in self.coef.items()}, -self.const)

    def __sub__(self, other):
        return self + (-Expr.of(other))

    def __rsub__(self, other):
        return Expr.of(other) + (-self)

    def __mul__(self, k):
        if isinstance(k, Expr):
            raise TypeError("output properties are linear: Y[i] * Y[j] is not allowed")
        k = _coef(k)
        return Expr({i: c * k for i, c in self.coef.items()}, self.const * k)

    __rmul__ = __mul__

    def __truediv__(self, k):
        return self * (1.0 / _coef(k))

    def __ge__(self, other):
        return Atom(self - Expr.of(other), strict=False)

    def __gt__(self, other):
        return Atom(self - Expr.of(other), strict=True)

    def __le__(self, other):
        return Atom(Expr.of(other) - self, strict=False)

    def __lt__(self, other):
        return Atom(Expr.of(other) - self, strict=True)

    def __bool__(self):
        raise TypeError("an output expression has no truth value; combine comparisons "
                        "with & (and) and | (or), not 'and'/'or'")

    def __str__(self):
        parts = []
        for i, c in sorted(self.coef.items()):
            term = f"y[{i}]" if abs(c) == 1 else f"{abs(c):g}*y[{i}]"
            parts.append(("- " if c < 0 else "+ ") + term)
        if self.const or not parts:
            parts.append(("- " if self.const < 0 else "+ ") + f"{abs(self.const):g}")
        text = " ".join(parts)
        return text[2:] if text.startswith("+ ") else "-" + text[2:]


class _Outputs:
    """``Y[i]``: output i of the network, as a linear expression."""

    def __getitem__(self, i) -> Expr:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or i < 0:
            raise TypeError(f"Y[i] needs an output index i >= 0; got {i!r}")
        return Expr({int(i): 1.0})

    def __repr__(self):
        return "Y"


Y = _Outputs()


class Formula:
    """``&`` and ``|`` of constraints."""

    def __and__(self, other):
        return All([self, _formula(other)])

    def __or__(self, other):
        return Any([self, _formula(other)])

    def __bool__(self):
        raise TypeError("combine output constraints with & and |, not 'and'/'or' "
                        "(Python cannot overload those)")


def _formula(f) -> Formula:
    if not isinstance(f, Formula):
        raise TypeError(f"expected an output constraint such as Y[0] <= Y[1]; got {f!r}")
    return f


class Atom(Formula):
    """``expr >= 0`` (``strict``: ``expr > 0``)."""

    def __init__(self, expr: Expr, strict: bool):
        if not expr.coef:
            raise ValueError(f"the constraint {expr} {'>' if strict else '>='} 0 involves "
                             "no output")
        self.expr, self.strict = expr, strict

    def __str__(self):
        e = self.expr
        pos = {i: c for i, c in e.coef.items() if c > 0}
        neg = {i: -c for i, c in e.coef.items() if c < 0}
        left, right = Expr(pos, max(e.const, 0.0)), Expr(neg, max(-e.const, 0.0))
        return f"{left} {'>' if self.strict else '>='} {right}"


class All(Formula):
    def __init__(self, parts):
        self.parts = [_formula(p) for p in parts]

    def __str__(self):
        return " & ".join(f"({p})" for p in self.parts)


class Any(Formula):
    def __init__(self, parts):
        self.parts = [_formula(p) for p in parts]

    def __str__(self):
        return " | ".join(f"({p})" for p in self.parts)


def all_of(parts: Iterable[Formula]) -> All:
    return All(list(parts))


def any_of(parts: Iterable[Formula]) -> Any:
    return Any(list(parts))


def argmax_is(label: int, m: int) -> All:
    """Output ``label`` is strictly the largest of ``m``: the margin specification of
    ``verify_robustness``, written as a property."""
    return All([Y[label] > Y[j] for j in range(m) if j != label])


def cnf(f: Formula) -> list:
    """The formula as a list of clauses, each a list of ``Atom``s (their "or")."""
    if isinstance(f, Atom):
        return [[f]]
    if isinstance(f, All):
        return [c for p in f.parts for c in cnf(p)]
    if isinstance(f, Any):
        parts = [cnf(p) for p in f.parts]
        n = 1
        for p in parts:
            n *= len(p)
        if n > MAX_CLAUSES:
            raise ValueError(f"this property has {n} clauses once written as an 'and' of "
                             f"'or's (at most {MAX_CLAUSES}); split it into several calls")
        return [[a for c in combo for a in c] for combo in itertools.product(*parts)]
    raise TypeError(f"expected an output constraint; got {f!r}")
