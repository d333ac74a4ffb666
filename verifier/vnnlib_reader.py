"""VNN-LIB properties, read exactly or refused.

A VNN-LIB file describes the *unsafe* inputs and outputs of a network: every ``assert`` is
conjoined, and the network violates the property when some input ``X`` meets the input
constraints and its outputs ``Y = f(X)`` meet the output constraints (VNN-COMP's ``sat``).
This module turns such a file into what ``verify`` checks: input boxes, and for each box the
property that must hold there (the negation of the unsafe outputs).

* ``parse_v1(text, name)``: the VNN-LIB 1.0 grammar (what VNN-COMP ships), read by this module:
  ``(declare-const X_i Real)``, ``(declare-const Y_j Real)`` and ``(assert F)`` where ``F`` is
  built from ``and``, ``or``, ``not``, ``true``, ``false`` and comparisons ``<= >= < > =`` of
  linear terms (``+ - * /`` with numbers), in any order, with constants on either side.
* ``from_query_v2(query, name)``: the formula of a VNN-LIB 2.0 file, as parsed by the ``vnnlib``
  1.x package, in the same form.
* ``combine(formula, n_in, n_out, name)``: the formula as *cases*. It is expanded into a
  disjunction of conjunctions of atoms (each atom ``linear <= 0`` or ``linear < 0``); in each
  conjunction, constant atoms are evaluated, one-variable input atoms become the bounds of a
  box, other input atoms must follow from that box (``verify`` takes boxes, not polytopes) or
  the file is refused naming their line, and output atoms are the unsafe region. Conjunctions
  with the same box share a case.

Everything a file can hold that this module cannot read exactly raises ``FormatError`` with the
file and line: never a guess. Numbers are kept as exact fractions until the end; bounds that
are not floats are rounded outwards (the box covers the file's), and ``Case.unsafe_at`` checks a
counterexample against the file's own constraints exactly, so a ``sat`` never rests on rounding.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from verifier.outputs import Atom as OutAtom, Expr, Formula, Y, all_of, any_of

#: The most conjunctions a file may expand to beyond the atoms it writes (``dnf``).
MAX_TERMS = 10_000


class FormatError(ValueError):
    """A file that does not hold what its format says, with where and why."""


# -- formulas ---------------------------------------------------------------------------

class Lin:
    """``sum coef[v] * v + const`` over variables ``("X", i)`` / ``("Y", j)``, exact: ``coef``
    maps each variable with a non-zero coefficient to a ``Fraction``."""

    __slots__ = ("coef", "const")

    def __init__(self, coef: dict, const: Fraction):
        self.coef, self.const = coef, const

    @staticmethod
    def number(value: Fraction) -> "Lin":
        return Lin({}, value)

    @staticmethod
    def var(key: tuple) -> "Lin":
        return Lin({key: _ONE}, _ZERO)

    def __add__(self, other: "Lin") -> "Lin":
        coef = dict(self.coef)
        for v, c in other.coef.items():
            total = coef.get(v, 0) + c
            if total:
                coef[v] = total
            else:
                coef.pop(v, None)
        return Lin(coef, self.const + other.const)

    def __neg__(self) -> "Lin":
        return Lin({v: -c for v, c in self.coef.items()}, -self.const)

    def __sub__(self, other: "Lin") -> "Lin":
        return self + (-other)

    def scale(self, k: Fraction) -> "Lin":
        if not k:
            return Lin({}, Fraction(0))
        return Lin({v: c * k for v, c in self.coef.items()}, self.const * k)

    def kinds(self) -> set:
        return {v[0] for v in self.coef}

    def value(self, point: dict) -> Fraction:
        """The exact value at ``point`` (var -> a number; floats are read exactly)."""
        return self.const + sum((c * Fraction(point[v]) for v, c in self.coef.items()),
                                Fraction(0))


@dataclass(frozen=True)
class Cmp:
    """``lin < 0`` (``strict``) or ``lin <= 0``; ``line`` is where the file states it (None
    where the reader does not say)."""

    lin: Lin
    strict: bool
    line: int | None

    def holds(self, point: dict) -> bool:
        v = self.lin.value(point)
        return v < 0 if self.strict else v <= 0

    def negated(self) -> "Cmp":
        return Cmp(-self.lin, not self.strict, self.line)


@dataclass(frozen=True)
class And:
    parts: tuple


@dataclass(frozen=True)
class Or:
    parts: tuple


TRUE, FALSE = And(()), Or(())


def negate(f):
    """``not f``, pushed down to the atoms."""
    if isinstance(f, Cmp):
        return f.negated()
    if isinstance(f, And):
        return Or(tuple(negate(p) for p in f.parts))
    return And(tuple(negate(p) for p in f.parts))


def dnf(f, name: str, limit: int | None = None) -> list:
    """``f`` as a list of conjunctions (each a list of ``Cmp``); [] is false, [[]] true.

    At most ``limit`` conjunctions: by default ``MAX_TERMS`` or as many as ``f`` has atoms,
    whichever is more. A file that lists its cases one by one (VNN-COMP's nn4sys lists up to
    120,000) expands to no more than it wrote; an 'and' of 'or's multiplies out, and that is
    what the cap stops."""
    if limit is None:
        limit = max(MAX_TERMS, _atoms(f))
    if isinstance(f, Cmp):
        return [[f]]
    if isinstance(f, Or):
        terms = [t for p in f.parts for t in dnf(p, name, limit)]
    else:
        terms = [[]]
        for p in f.parts:
            sub = dnf(p, name, limit)
            if len(terms) * len(sub) > limit:
                raise FormatError(f"{name}: the property expands to more than {limit} "
                                  "cases (an 'and' of several 'or's multiplies out); "
                                  "split it into several files")
            terms = [a + b for a in terms for b in sub]
    if len(terms) > limit:
        raise FormatError(f"{name}: the property expands to more than {limit} cases; "
                          "split it into several files")
    return terms


def _atoms(f) -> int:
    """How many comparisons the formula ``f`` writes."""
    return 1 if isinstance(f, Cmp) else sum(_atoms(p) for p in f.parts)


# -- VNN-LIB 1.0 ---------------------------------------------------------------------------

_TOKEN = re.compile(r"\(|\)|[^\s();]+|;[^\n]*|\n")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_VAR = re.compile(r"([XY])_(0|[1-9]\d*)")


@dataclass
class _List:
    items: list
    line: int


@dataclass
class _Sym:
    text: str
    line: int


def _sexprs(text: str, name: str) -> list:
    """The top-level S-expressions of ``text`` (comments dropped), with line numbers."""
    stack, top, line = [], [], 1
    for tok in _TOKEN.findall(text):
        if tok == "(":
            stack.append(_List([], line))
        elif tok == ")":
            if not stack:
                raise FormatError(f"{name}, line {line}: ')' with no '(' before it")
            done = stack.pop()
            (stack[-1].items if stack else top).append(done)
        elif tok == "\n":
            line += 1
        elif tok[0] != ";":
            if not stack:
                raise FormatError(f"{name}, line {line}: {tok[:40]!r} outside parentheses")
            stack[-1].items.append(_Sym(tok, line))
    if stack:
        raise FormatError(f"{name}, line {stack[-1].line}: '(' never closed")
    return top


_ONE, _ZERO = Fraction(1), Fraction(0)   # shared: a Fraction never changes


@functools.lru_cache(maxsize=4096)   # a file repeats its numbers (nn4sys: each box twice)
def _number(tok: str):
    if _NUMBER.fullmatch(tok):
        return Fraction(tok)
    return None


def _sum(terms: list) -> Lin:
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _product(factors: list, err) -> Lin:
    """A product with at most one factor that is not a number (else ``err(what)`` is raised)."""
    varying = [f for f in factors if f.coef]
    if len(varying) > 1:
        raise err("a product of two variables is not linear")
    k = Fraction(1)
    for f in factors:
        if not f.coef:
            k *= f.const
    return (varying[0] if varying else Lin.number(Fraction(1))).scale(k)


def _compare(op: str, diff: Lin, line):
    """``a op b`` from ``diff = a - b``, as atoms ``lin <= 0`` / ``lin < 0``."""
    if op == "!=":
        return Or((Cmp(diff, True, line), Cmp(-diff, True, line)))
    if op in ("<=", "<"):
        return Cmp(diff, op == "<", line)                       # a - b <= 0 (< 0)
    above = Cmp(-diff, op == ">", line)                         # b - a <= 0 (< 0)
    return And((Cmp(diff, False, line), above)) if op == "=" else above


class _Reader:
    def __init__(self, name: str):
        self.name, self.declared = name, set()

    def err(self, line: int, what: str) -> FormatError:
        return FormatError(f"{self.name}, line {line}: {what}")

    def command(self, node) -> list:
        """A top-level form -> the formulas it asserts (none for a declaration)."""
        if not isinstance(node, _List) or not node.items or not isinstance(node.items[0], _Sym):
            raise self.err(node.line, "expected (declare-const ...) or (assert ...)")
        head, args = node.items[0].text, node.items[1:]
        if head == "declare-fun":
            # SMT-LIB's other spelling of a constant, (declare-fun X_0 () Real), which some
            # VNN-COMP benchmarks use (2024's ACC and drones_1d_hovering): a function of no
            # arguments is the same declaration
            if len(args) != 3 or not isinstance(args[1], _List) or args[1].items:
                raise self.err(node.line, "expected (declare-fun X_i () Real): a VNN-LIB "
                               "variable is a function of no arguments")
            head, args = "declare-const", [args[0], args[2]]
        if head == "declare-const":
            if len(args) != 2 or not all(isinstance(a, _Sym) for a in args):
                raise self.err(node.line, "expected (declare-const X_i Real) or "
                               "(declare-const Y_j Real)")
            var, sort = args[0].text, args[1].text
            m = _VAR.fullmatch(var)
            if not m:
                raise self.err(node.line, f"the variable {var!r}: expected X_i (inputs) or "
                               "Y_j (outputs), numbered from 0")
            if sort != "Real":
                raise self.err(node.line, f"{var} is declared {sort}; expected Real")
            key = (m.group(1), int(m.group(2)))
            if key in self.declared:
                raise self.err(node.line, f"{var} is declared twice")
            self.declared.add(key)
            return []
        if head == "assert":
            if len(args) != 1:
                raise self.err(node.line, f"assert takes one formula; got {len(args)}")
            return [self.formula(args[0])]
        raise self.err(node.line, f"({head} ...) is not part of VNN-LIB 1.0; expected "
                       "declare-const (or declare-fun) or assert")

    def formula(self, node):
        if isinstance(node, _Sym):
            if node.text in ("true", "false"):
                return TRUE if node.text == "true" else FALSE
            raise self.err(node.line, f"expected a formula; got {node.text!r}")
        if not node.items or not isinstance(node.items[0], _Sym):
            raise self.err(node.line, "expected a formula such as (<= X_0 1.5)")
        head, args = node.items[0].text, node.items[1:]
        if head in ("and", "or"):
            parts = tuple(self.formula(a) for a in args)
            return And(parts) if head == "and" else Or(parts)
        if head == "not":
            if len(args) != 1:
                raise self.err(node.line, f"not takes one formula; got {len(args)}")
            return negate(self.formula(args[0]))
        if head in ("<=", ">=", "<", ">", "="):
            if len(args) < 2:
                raise self.err(node.line, f"({head} ...) compares at least two terms")
            terms = [self.term(a) for a in args]
            # SMT-LIB chains comparisons: (<= a b c) is a <= b and b <= c
            parts = [_compare(head, a - b, node.line)
                     for a, b in zip(terms, terms[1:])]
            return parts[0] if len(parts) == 1 else And(tuple(parts))
        raise self.err(node.line, f"({head} ...) is not a VNN-LIB 1.0 formula; expected "
                       "and, or, not, <=, >=, <, >, =")

    def term(self, node) -> Lin:
        if isinstance(node, _Sym):
            value = _number(node.text)
            if value is not None:
                return Lin.number(value)
            m = _VAR.fullmatch(node.text)
            if not m:
                raise self.err(node.line, f"expected a number or a variable; got "
                               f"{node.text[:40]!r}")
            key = (m.group(1), int(m.group(2)))
            if key not in self.declared:
                raise self.err(node.line, f"{node.text} is never declared (declare-const)")
            return Lin.var(key)
        if not node.items or not isinstance(node.items[0], _Sym):
            raise self.err(node.line, "expected a term such as (* 2.0 X_0)")
        head, args = node.items[0].text, [self.term(a) for a in node.items[1:]]
        if head == "+" and args:
            return _sum(args)
        if head == "-" and args:
            if len(args) == 1:
                return -args[0]
            return _sum([args[0]] + [-a for a in args[1:]])
        if head == "*" and args:
            return _product(args, lambda what: self.err(node.line, what))
        if head == "/" and len(args) >= 2:
            if any(a.coef for a in args[1:]):
                raise self.err(node.line, "division by a variable is not linear")
            out = args[0]
            for a in args[1:]:
                if a.const == 0:
                    raise self.err(node.line, "division by zero")
                out = out.scale(1 / a.const)
            return out
        raise self.err(node.line, f"({head} ...) is not a linear term; expected +, -, * or / "
                       "with numbers and variables")


def parse_v1(text: str, name: str):
    """The conjunction of a VNN-LIB 1.0 file's asserts."""
    reader = _Reader(name)
    nodes = _sexprs(text, name)
    # declarations first, wherever they stand: a file that declares a variable after an assert
    # that uses it means the same as one that declares it first
    for node in nodes:
        if _head(node) == "declare-const":
            reader.command(node)
    asserted = [f for node in nodes if _head(node) != "declare-const"
                for f in reader.command(node)]
    return And(tuple(asserted))


def _head(node) -> str | None:
    if isinstance(node, _List) and node.items and isinstance(node.items[0], _Sym):
        return node.items[0].text
    return None


# -- VNN-LIB 2.0 (the vnnlib 1.x package's syntax tree) ------------------------------------

def from_query_v2(query, name: str):
    """The conjunction of the asserts of a parsed VNN-LIB 2.0 query (one network), with its
    inputs and outputs numbered as the flattened tensors X and Y."""
    net = query.networks[0]
    if len(net.hidden):
        raise FormatError(f"{name}: declares hidden variables; python -m verifier reads "
                          "constraints on inputs and outputs only")
    offsets = {}
    for kind, tensors in (("X", net.inputs), ("Y", net.outputs)):
        start = 0
        for t in tensors:
            shape = [int(d) for d in t.shape]
            offsets[t.name] = (kind, start, shape)
            start += int(np.prod(shape)) if shape else 1
    def line_of(node):
        line = getattr(node, "line", None)
        if line:
            return line
        for child in node.children():
            line = line_of(child)
            if line:
                return line
        return None

    def err(node, what):
        return FormatError(f"{_at(name, line_of(node))}: {what}")

    def term(node) -> Lin:
        kind = type(node).__name__
        if kind == "Literal":
            value = _number(node.lexeme)
            if value is None:
                raise err(node, f"the number {node.lexeme!r} cannot be read exactly")
            return Lin.number(value)
        if kind in ("Float", "Int"):
            return Lin.number(Fraction(node.value))
        if kind == "Var":
            if node.name not in offsets:
                raise err(node, f"{node.name} is not an input or output of the network")
            kind_, start, shape = offsets[node.name]
            index = [int(i) for i in node.indices]
            if len(index) != len(shape) or any(not 0 <= i < d for i, d in zip(index, shape)):
                raise err(node, f"{node.name}{index} is outside its shape {shape}")
            flat = int(np.ravel_multi_index(index, shape)) if shape else 0
            return Lin.var((kind_, start + flat))
        if kind == "Negate":
            return -term(node.expr)
        if kind == "Plus":
            return _sum([term(a) for a in node.args])
        if kind == "Minus":
            rest = [term(a) for a in node.rest]
            if not rest:
                return -term(node.head)
            return _sum([term(node.head)] + [-a for a in rest])
        if kind == "Multiply":
            return _product([term(a) for a in node.args], lambda what: err(node, what))
        raise err(node, f"the term {node} is not linear arithmetic the kit reads")

    def formula(node):
        kind = type(node).__name__
        if kind in ("And", "Or"):
            parts = tuple(formula(a) for a in node.args)
            return And(parts) if kind == "And" else Or(parts)
        ops = {"LessEqual": "<=", "LessThan": "<", "GreaterEqual": ">=", "GreaterThan": ">",
               "Equal": "=", "NotEqual": "!="}
        if kind in ops:
            return _compare(ops[kind], term(node.lhs) - term(node.rhs), line_of(node))
        raise err(node, f"the formula {node} is not one the kit reads (and, or, comparisons)")

    return And(tuple(formula(a.expr) for a in query.assertions))


# -- cases ---------------------------------------------------------------------------------

def _floor_float(q: Fraction) -> float:
    """The largest float <= q."""
    f = float(q)
    return f if Fraction(f) <= q else float(np.nextafter(f, -np.inf))


def _ceil_float(q: Fraction) -> float:
    """The smallest float >= q."""
    f = float(q)
    return f if Fraction(f) >= q else float(np.nextafter(f, np.inf))


@dataclass
class Case:
    """One input box and the unsafe output regions there.

    ``terms``: the conjunctions of the file behind this case, each ``(inputs, outputs)``: the
    input atoms (bounds and implied constraints, exactly as the file gives them) and the
    output atoms. The case is violated at x when some term's atoms all hold at x and f(x).
    """

    x_specs: list                      # [(lb, ub), ...] floats, covering every term's box
    terms: list = field(default_factory=list)

    @property
    def prop(self) -> Formula:
        """What must hold on the box: no term's output atoms all hold (``verifier.Y`` form)."""
        clauses = []
        for _, outs in self.terms:
            if not outs:   # no output constraint: every output is unsafe, nothing holds
                return (Y[0] >= 0) & (Y[0] < 0)
            atoms = [_safe_atom(a) for a in outs]
            clauses.append(atoms[0] if len(atoms) == 1 else any_of(atoms))
        return clauses[0] if len(clauses) == 1 else all_of(clauses)

    def unsafe_at(self, x, y) -> bool:
        """Do the file's own constraints, read exactly, hold at input x and output y? (x's
        entries may be ``Fraction``s, see ``rounding_to``.)"""
        point = {("X", i): v if isinstance(v, Fraction) else float(v)
                 for i, v in enumerate(x if isinstance(x, list) else np.ravel(x))}
        point.update({("Y", j): float(v) for j, v in enumerate(np.ravel(y))})
        if not all(np.isfinite(float(v)) for v in point.values()):
            return False
        return any(all(a.holds(point) for a in ins + outs) for ins, outs in self.terms)

    @property
    def polytope(self) -> bool:
        """Does a term constrain several inputs at once in a way the box does not imply? (Then
        the box holds inputs outside the file's region: see ``on_box``.)"""
        return any(len(a.lin.coef) > 1 and not _always(a, self.x_specs)
                   for ins, _ in self.terms for a in ins)

    def on_box(self, box: list) -> "Case | None":
        """This case on ``box`` (float ``(lo, hi)`` pairs inside ``x_specs``): only the terms
        whose input constraints can all hold somewhere in the box, each on its own (so a term
        kept may still hold nowhere there); None when no term can."""
        terms = [(ins, outs) for ins, outs in self.terms
                 if all(_sometimes(a, box) for a in ins)]
        return Case(list(box), terms) if terms else None

    def moved_inside(self, x, dtype=np.float32) -> list:
        """Points of ``dtype`` near ``x`` that meet the input bounds of a term, read exactly: one
        per term that a few steps of one ulp reach.

        ``x_specs`` covers the file's box with floats rounded outwards (sound for a proof), so a
        counterexample found in it may lie up to an ulp outside the exact box (0.05 is not a
        float). Each coordinate outside one of the term's bounds steps to the next value of
        ``dtype`` towards it, at most ``steps`` times. The network must be evaluated again at
        the points returned: they are candidates, not counterexamples."""
        steps, real = 8, np.dtype(dtype).type
        points = []
        for ins, _ in self.terms:
            z = np.array(np.ravel(x), dtype=dtype)
            for a in ins:
                if len(a.lin.coef) != 1:
                    continue
                ((_, i), c), = a.lin.coef.items()
                towards = real(-np.inf if c > 0 else np.inf)  # c > 0: an upper bound on x_i
                for _ in range(steps):
                    if a.holds({("X", i): float(z[i])}):
                        break
                    z[i] = np.nextafter(z[i], towards)
            point = {("X", i): float(v) for i, v in enumerate(z)}
            if all(a.holds(point) for a in ins):
                points.append(z)
        return points

    def rounding_to(self, x, dtype=np.float32) -> list:
        """Exact points (lists of floats and ``Fraction``s) that meet the input bounds of a
        term, read exactly, and round to ``x`` (a point of ``dtype``) coordinate by coordinate:
        one per term that has one.

        A file may fix an input at a value ``dtype`` cannot hold (``X_5 = 0.35`` for a float32
        network; 0.35 is not even a float64): no point of ``dtype`` meets it, yet a runtime
        given the exact value computes the network at its rounding. Each coordinate outside
        one of a term's single-input bounds moves onto that bound, exactly, and is kept only if
        it still rounds to ``x``'s (strictly inside ``x``'s rounding interval, and through
        float64 too). The network's output at ``x`` is then its output at the point returned."""
        x = np.array(np.ravel(x), dtype=dtype)
        points = []
        for ins, _ in self.terms:
            z = [float(v) for v in x]
            for a in ins:
                if len(a.lin.coef) != 1:
                    continue
                ((_, i), c), = a.lin.coef.items()
                if not a.holds({("X", i): z[i]}):
                    z[i] = -a.lin.const / c     # c x + const <= 0: the bound on x_i itself
            point = {("X", i): v for i, v in enumerate(z)}
            if all(_rounds_to(v, x[i]) for i, v in enumerate(z)) and \
                    all(a.holds(point) for a in ins):
                points.append(z)
        return points


def _extreme(a: Cmp, box: list, top: bool) -> Fraction:
    """The largest (``top``) or smallest value of ``a.lin`` over the box, exactly."""
    pick = (lambda c: c > 0) if top else (lambda c: c < 0)
    return a.lin.const + sum((c * Fraction(box[i][1] if pick(c) else box[i][0])
                              for (_, i), c in a.lin.coef.items()), Fraction(0))


def _always(a: Cmp, box: list) -> bool:
    """Does the input atom ``a`` hold everywhere in the box?"""
    v = _extreme(a, box, top=True)
    return v < 0 if a.strict else v <= 0


def _sometimes(a: Cmp, box: list) -> bool:
    """Does the input atom ``a`` hold somewhere in the box?"""
    v = _extreme(a, box, top=False)
    return v < 0 if a.strict else v <= 0


def _rounds_to(v, target) -> bool:
    """Does the exact number ``v`` round to ``target`` (a numpy float32 or float64), strictly
    inside its rounding interval, and the same way through float64 first?"""
    kind = type(target)
    t = float(target)
    if not np.isfinite(t) or kind(float(v)) != target:
        return False
    if Fraction(v) == Fraction(t):
        return True
    below = Fraction(float(np.nextafter(target, kind(-np.inf))))
    above = Fraction(float(np.nextafter(target, kind(np.inf))))
    return (below + Fraction(t)) / 2 < Fraction(v) < (Fraction(t) + above) / 2


def _safe_atom(a: Cmp) -> OutAtom:
    """Unsafe ``lin <= 0`` (``lin < 0``) -> the property ``lin > 0`` (``lin >= 0``).

    The constant is rounded down, so a proof of the float form is one of the exact form; the
    coefficients' own rounding (relative 1e-16) is within the cushion every certificate keeps."""
    coef = {i: float(c) for (_, i), c in a.lin.coef.items()}
    return OutAtom(Expr(coef, _floor_float(a.lin.const)), strict=not a.strict)


def combine(formula, n_in: int, n_out: int, name: str, polytopes: bool = False) -> list:
    """The cases of the unsafe ``formula`` for a network of ``n_in`` inputs, ``n_out`` outputs.

    An input constraint over several inputs that the box does not imply is refused, unless
    ``polytopes``: then the case's box holds inputs outside the file's region (``Case.polytope``),
    and only a caller that checks each counterexample against the file (``Case.unsafe_at``) and
    narrows the box (``Case.on_box``) may use it, as ``python -m verifier`` does.

    A variable the formula uses beyond the network's sizes is refused; one only declared is not
    (VNN-COMP files declare every output, used or not). The atoms every conjunction shares (the
    top level's, such as the input bounds) are read once."""
    common, compound = [], []
    _split(formula, common, compound)
    base = _Conjunction(n_in, n_out, name, polytopes)
    for a in common:
        base.add(a)
    cases: dict = {}
    for term in (dnf(And(tuple(compound)), name) if not base.dead else []):
        conj = base.copy()
        for a in term:
            conj.add(a)
        got = conj.finish()
        if got is None:   # this conjunction can never hold
            continue
        box, ins, outs = got
        case = cases.setdefault(tuple(box), Case(list(box)))
        case.terms.append((ins, outs))
    return list(cases.values())


def _split(f, atoms: list, rest: list) -> None:
    """The atoms of the top-level conjunction of ``f`` into ``atoms``, its other parts into ``rest``."""
    if isinstance(f, And):
        for p in f.parts:
            _split(p, atoms, rest)
    elif isinstance(f, Cmp):
        atoms.append(f)
    else:
        rest.append(f)


def _at(name: str, line) -> str:
    return f"{name}, line {line}" if line else name


class _Conjunction:
    """The atoms of one conjunction, sorted as they are added: constants evaluated, bounds of
    single inputs kept per input (exact, with strictness), the other input atoms and the output
    atoms listed. ``finish`` gives ``(box, input atoms, output atoms)``, or None when no input
    meets them."""

    def __init__(self, n_in: int, n_out: int, name: str, polytopes: bool = False):
        self.n_in, self.n_out, self.name, self.polytopes = n_in, n_out, name, polytopes
        # per input: (bound, strict, the float that covers it)
        self.lo, self.hi = [None] * n_in, [None] * n_in
        self.ins, self.outs, self.other, self.dead = [], [], [], False

    def copy(self) -> "_Conjunction":
        twin = _Conjunction(self.n_in, self.n_out, self.name, self.polytopes)
        twin.lo, twin.hi, twin.dead = list(self.lo), list(self.hi), self.dead
        twin.ins, twin.outs, twin.other = list(self.ins), list(self.outs), list(self.other)
        return twin

    def add(self, a: Cmp) -> None:
        kinds = a.lin.kinds()
        if not kinds:
            self.dead |= not a.holds({})
            return
        if kinds == {"X", "Y"}:
            raise FormatError(f"{_at(self.name, a.line)}: a constraint that mixes inputs and "
                              "outputs is not supported (inputs take bounds, outputs "
                              "linear constraints)")
        limit = self.n_in if kinds == {"X"} else self.n_out
        for kind, i in a.lin.coef:
            if i >= limit:
                raise FormatError(f"{_at(self.name, a.line)}: {kind}_{i}, but the network has "
                                  f"{self.n_in} inputs and {self.n_out} outputs")
        if kinds == {"Y"}:
            self.outs.append(a)
            return
        self.ins.append(a)
        if len(a.lin.coef) > 1:
            self.other.append(a)
            return
        ((_, i), c), = a.lin.coef.items()
        t = -a.lin.const if c == 1 else a.lin.const if c == -1 else -a.lin.const / c
        # c * x + const <= 0 is x <= t for c > 0, x >= t for c < 0
        side = self.hi if c > 0 else self.lo
        old = side[i]
        if old is None or (t < old[0] if c > 0 else t > old[0]) or (t == old[0] and a.strict):
            # with the float that covers it: rounded up for an upper bound, down for a lower one
            side[i] = (t, a.strict, _ceil_float(t) if c > 0 else _floor_float(t))

    def finish(self):
        if self.dead:
            return None
        lo, hi = self.lo, self.hi
        for i in range(self.n_in):
            if lo[i] is not None and hi[i] is not None:
                (low, low_strict, _), (high, high_strict, _) = lo[i], hi[i]
                if low > high or (low == high and (low_strict or high_strict)):
                    return None   # no input meets these bounds
        missing = [i for i in range(self.n_in) if lo[i] is None or hi[i] is None]
        if missing:
            i = missing[0]
            side = "lower" if lo[i] is None else "upper"
            raise FormatError(f"{self.name}: X_{i} has no {side} bound (in at least one case "
                              "of the property); verify() needs a bounded box for every input")
        exact_box = [(lo[i][0], hi[i][0]) for i in range(self.n_in)]
        for a in self.other:
            if not self.polytopes and not _always(a, exact_box):
                raise FormatError(f"{_at(self.name, a.line)}: an input constraint over "
                                  "several inputs that the bounds do not imply; verify() "
                                  "takes boxes (one lower and one upper bound per input), "
                                  "not polytopes")
        box = [(lo[i][2], hi[i][2]) for i in range(self.n_in)]
        return box, self.ins, self.outs
