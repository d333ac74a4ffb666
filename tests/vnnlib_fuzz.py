"""Random VNN-LIB instances and an oracle that shares no code with ``verifier``.

``instances()`` is a hypothesis strategy of ``Instance``: a small ReLU network (its weights as
numpy arrays) and an unsafe formula over its inputs X and outputs Y, as a tree of this module's
own (``("and", parts)``, ``("or", parts)``, ``("atom", coef, op, rhs)``). ``render_v1`` and
``render_v2`` write the tree as VNN-LIB 1.0 / 2.0 text in varied syntax (constants on either
side, products, sums and negations, asserts in shuffled order, comments). ``expected`` decides
the instance exactly: each conjunction of the tree's expansion is checked with the MILP of
``milp_oracle`` over its box, from the generator's weights, never from what the kit read.
``onnx_model`` builds the network as an ONNX graph, so that ``onnxruntime`` can replay a
counterexample.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from hypothesis import strategies as st
from milp_oracle import clause_min
from onnx import TensorProto, helper, numpy_helper
from torch import nn

OPS = ("<=", ">=", "<", ">")


@dataclass
class Instance:
    weights: list        # [(W (out, in) float32, b (out,) float32), ...]
    formula: tuple       # the unsafe condition, this module's tree
    n_in: int
    n_out: int
    seed: int            # for the rendering's random choices

    def torch_net(self) -> nn.Sequential:
        layers = []
        for W, b in self.weights:
            lin = nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W))
                lin.bias.copy_(torch.from_numpy(b))
            layers += [lin, nn.ReLU()]
        return nn.Sequential(*layers[:-1])


def _dec(rng, lo, hi) -> str:
    """A decimal between lo and hi, with up to 3 digits after the point, as text."""
    return f"{rng.uniform(lo, hi):.3f}"


@st.composite
def instances(draw, v2=False):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sizes = [n_in] + [draw(st.integers(2, 6)) for _ in range(draw(st.integers(1, 2)))] + [n_out]
    nrng = np.random.default_rng(seed)
    weights = [((nrng.standard_normal((b, a)) * 1.2).astype(np.float32),
                (nrng.standard_normal(b) * 0.3).astype(np.float32))
               for a, b in zip(sizes[:-1], sizes[1:])]
    inst = Instance(weights, ("and", []), n_in, n_out, seed)
    net = inst.torch_net().double()

    def box():
        out = []
        for _ in range(n_in):
            lo = Fraction(_dec(rng, -1.0, 0.5))
            out.append((lo, lo + Fraction(_dec(rng, 0.0, 1.0))))
        return out

    def bounds(b):
        atoms = []
        for i, (lo, hi) in enumerate(b):
            if lo == hi and rng.random() < 0.5:
                atoms.append(("atom", {("X", i): Fraction(1)}, "=", lo))
                continue
            atoms.append(("atom", {("X", i): Fraction(1)}, ">=", lo))
            atoms.append(("atom", {("X", i): Fraction(1)}, "<=", hi))
        return atoms

    def outputs(b, k):
        """k random output atoms whose thresholds fall around the outputs seen in box b."""
        lo = np.array([float(v[0]) for v in b])
        hi = np.array([float(v[1]) for v in b])
        xs = lo + np.random.default_rng(rng.getrandbits(32)).random((64, n_in)) * (hi - lo)
        with torch.no_grad():
            ys = net(torch.from_numpy(xs)).numpy()
        atoms = []
        for _ in range(k):
            js = rng.sample(range(n_out), rng.randint(1, min(2, n_out)))
            coef = {("Y", j): Fraction(rng.choice(["1", "-1", "2", "0.5", "-1.5"])) for j in js}
            vals = sum(float(c) * ys[:, j] for (_, j), c in coef.items())
            q = rng.uniform(-0.3, 1.3)
            t = np.quantile(vals, min(max(q, 0), 1)) + (q - min(max(q, 0), 1)) * (np.ptp(vals) + 1)
            atoms.append(("atom", coef, rng.choice(OPS), Fraction(f"{t:.3f}")))
        return atoms

    def input_constraint(b, implied):
        """An input constraint over two inputs: implied by box b, or cutting it."""
        i, j = rng.sample(range(n_in), 2)
        coef = {("X", i): Fraction(rng.choice(["1", "-1", "2"])),
                ("X", j): Fraction(rng.choice(["1", "-0.5"]))}
        top = sum(c * (b[k][1] if c > 0 else b[k][0]) for (_, k), c in coef.items())
        low = sum(c * (b[k][0] if c > 0 else b[k][1]) for (_, k), c in coef.items())
        if implied:
            return ("atom", coef, "<=", top + Fraction(_dec(rng, 0.0, 0.5)))
        return ("atom", coef, "<=", low + (top - low) * Fraction(_dec(rng, 0.1, 0.9)))

    shape = draw(st.sampled_from(["common", "common+or", "boxes-or", "nested", "no-output",
                                  "constants", "input-constraint"]))
    base = box()
    parts = bounds(base)
    if shape == "common":
        parts += outputs(base, draw(st.integers(1, 3)))
    elif shape == "common+or":
        parts += outputs(base, draw(st.integers(0, 2)))
        parts.append(("or", [("and", outputs(base, rng.randint(1, 2)))
                             for _ in range(draw(st.integers(1, 3)))]))
    elif shape == "boxes-or":
        parts = [("or", [("and", bounds(b) + outputs(b, rng.randint(0, 2)))
                         for b in (box() for _ in range(draw(st.integers(1, 3))))])]
        parts += outputs(base, draw(st.integers(0, 1)))
    elif shape == "nested":
        parts.append(("or", [("and", [("or", outputs(base, 2))] + outputs(base, 1)),
                             *outputs(base, 1)]))
        parts.append(("or", outputs(base, draw(st.integers(1, 2)))))
    elif shape == "constants":
        k = Fraction(_dec(rng, -1, 1))
        parts.append(("atom", {}, rng.choice(OPS), k + Fraction(_dec(rng, -1, 1))))
        parts += outputs(base, 1)
    elif shape == "input-constraint" and n_in >= 2:
        parts.append(input_constraint(base, implied=draw(st.booleans())))
        parts += outputs(base, 1)
    else:   # no output constraint (and input-constraint on one input)
        pass
    inst.formula = ("and", parts)
    return inst


# -- the oracle --------------------------------------------------------------------------------

def _expand(f) -> list:
    """The tree as a list of conjunctions (lists of atoms)."""
    if f[0] == "atom":
        return [[f]] if f[2] != "=" else [[(("atom", f[1], "<=", f[3])), ("atom", f[1], ">=", f[3])]]
    if f[0] == "or":
        return [t for p in f[1] for t in _expand(p)]
    out = [[]]
    for p in f[1]:
        out = [a + b for a in out for b in _expand(p)]
    return out


def _holds(value: Fraction, op: str, rhs: Fraction, slack=Fraction(0)) -> bool:
    return {"<=": value <= rhs + slack, "<": value < rhs + slack,
            ">=": value >= rhs - slack, ">": value > rhs - slack}[op]


def expected(inst: Instance, eps: float = 1e-4) -> str:
    """``"refuse"``, ``"sat"``, ``"unsat"`` or ``"either"`` (a conjunction whose reachability is
    within ``eps`` of its boundary: no answer can be asked for)."""
    net = inst.torch_net()
    answers = []
    for term in _expand(inst.formula):
        lo, hi = [None] * inst.n_in, [None] * inst.n_in
        ys, multi, dead = [], [], False
        for _, coef, op, rhs in term:
            kinds = {k for k, _ in coef}
            if not kinds:
                dead |= not _holds(Fraction(0), op, rhs)
            elif kinds == {"Y"}:
                ys.append((coef, op, rhs))
            elif len(coef) > 1:
                multi.append((coef, op, rhs))
            else:
                ((_, i), c), = coef.items()
                t, up = rhs / c, (op in ("<=", "<")) == (c > 0)
                strict = op in ("<", ">")
                side = hi if up else lo
                if side[i] is None or (t < side[i][0] if up else t > side[i][0]) or \
                        (t == side[i][0] and strict):
                    side[i] = (t, strict)
        if dead or any(lo[i] is not None and hi[i] is not None and
                       (lo[i][0] > hi[i][0] or (lo[i][0] == hi[i][0] and (lo[i][1] or hi[i][1])))
                       for i in range(inst.n_in)):
            continue
        if any(lo[i] is None or hi[i] is None for i in range(inst.n_in)):
            return "refuse"     # an input without a bound: the kit needs a box
        # the constraints over several inputs, as a . x <= u (a strict one read as <=: the
        # answer is "either" when the optimum lies on it, see below)
        region = []
        for coef, op, rhs in multi:
            sign = 1.0 if op in ("<=", "<") else -1.0
            a = np.zeros(inst.n_in)
            for (_, i), c in coef.items():
                a[i] = sign * float(c)
            region.append((a, sign * float(rhs)))
        box_lo, box_hi = [float(v[0]) for v in lo], [float(v[0]) for v in hi]
        if not ys:
            if not region or clause_min(net, box_lo, box_hi, np.zeros((1, inst.n_out)), [-1.0],
                                        region)[1] is not None:
                answers.append("sat" if not any(op in ("<", ">") for _, op, _ in multi)
                               else "either")
            continue
        # reachable iff min over the box of max_k (a_k . y - c_k) <= 0 (each atom as a.y <= c)
        C, d, strict = [], [], []
        for coef, op, rhs in ys:
            sign = 1.0 if op in ("<=", "<") else -1.0
            row = np.zeros(inst.n_out)
            for (_, j), c in coef.items():
                row[j] = sign * float(c)
            C.append(row)
            d.append(sign * float(rhs))
        value, _ = clause_min(net, box_lo, box_hi, np.array(C), np.array(d), region)
        if value == np.inf:     # no input of the box meets the constraints over several inputs
            continue
        if region and any(op in ("<", ">") for _, op, _ in multi) and value < -eps:
            answers.append("either")    # the optimum may lie on a strict input constraint
            continue
        answers.append("sat" if value < -eps else "unsat" if value > eps else "either")
    if "sat" in answers:
        return "sat"
    return "either" if "either" in answers else "unsat"


def holds_at(inst: Instance, x, y, tol: float = 1e-5) -> bool:
    """Does the unsafe formula hold at input x and output y (outputs within ``tol``)?"""
    point = {("X", i): Fraction(float(v)) for i, v in enumerate(x)}
    point.update({("Y", j): Fraction(float(v)) for j, v in enumerate(y)})

    def ev(f):
        if f[0] == "and":
            return all(ev(p) for p in f[1])
        if f[0] == "or":
            return any(ev(p) for p in f[1])
        _, coef, op, rhs = f
        value = sum((c * point[v] for v, c in coef.items()), Fraction(0))
        slack = Fraction(tol) * (1 + abs(rhs)) if any(k == "Y" for k, _ in coef) else Fraction(0)
        if op == "=":
            return _holds(value, "<=", rhs, slack) and _holds(value, ">=", rhs, slack)
        return _holds(value, op, rhs, slack)
    return ev(inst.formula)


# -- rendering -----------------------------------------------------------------------------

def _term_text(coef, rng, var) -> str:
    parts = []
    for v, c in coef.items():
        name = var(v)
        if c == 1:
            parts.append(name)
        elif c == -1 and rng.random() < 0.5:
            parts.append(f"(- {name})")
        else:
            k = _num(c)
            parts.append(f"(* {k} {name})" if rng.random() < 0.5 else f"(* {name} {k})")
    return parts[0] if len(parts) == 1 else "(+ " + " ".join(parts) + ")"


def _num(c: Fraction) -> str:
    """c as an exact decimal (every number the generator makes is a decimal fraction)."""
    sign, c, digits = "-" if c < 0 else "", abs(c), 0
    while (c * 10 ** digits).denominator != 1:
        digits += 1
        assert digits < 40, c
    text = str(int(c * 10 ** digits)).rjust(digits + 1, "0")
    return sign + (f"{text[:-digits]}.{text[-digits:]}" if digits else f"{text}.0")


FLIP = {"<=": ">=", ">=": "<=", "<": ">", ">": "<", "=": "="}


def _atom_text(f, rng, var, zero) -> str:
    _, coef, op, rhs = f
    if not coef:   # a constant comparison: 0 op rhs, either way round
        return f"({op} {zero} {_num(rhs)})" if rng.random() < 0.5 else \
            f"({FLIP[op]} {_num(rhs)} {zero})"
    term = _term_text(coef, rng, var)
    form = rng.randrange(3)
    if form == 0:
        return f"({op} {term} {_num(rhs)})"
    if form == 1:
        return f"({FLIP[op]} {_num(rhs)} {term})"
    return f"({op} (- {term} {_num(rhs)}) {zero})"


def _text(f, rng, var, zero) -> str:
    if f[0] == "atom":
        return _atom_text(f, rng, var, zero)
    return f"({f[0]} " + " ".join(_text(p, rng, var, zero) for p in f[1]) + ")"


def _asserts(inst: Instance, rng, var, zero="0") -> list:
    """The top-level conjunction as asserts: some parts grouped in one ``and``, shuffled."""
    parts = list(inst.formula[1])
    rng.shuffle(parts)
    out = []
    while parts:
        k = rng.choice([1, 1, 1, 2, 3])
        group, parts = parts[:k], parts[k:]
        text = _text(group[0], rng, var, zero) if len(group) == 1 else \
            "(and " + " ".join(_text(p, rng, var, zero) for p in group) + ")"
        out.append(f"(assert {text})")
    return out


def render_v1(inst: Instance) -> str:
    rng = random.Random(inst.seed ^ 0x5EED)
    lines = [f"(declare-const X_{i} Real)" for i in range(inst.n_in)] + \
        [f"(declare-const Y_{j} Real)" for j in range(inst.n_out)]
    asserts = _asserts(inst, rng, lambda v: f"{v[0]}_{v[1]}")
    for a in asserts:   # asserts interleaved with the declarations of outputs
        lines.insert(rng.randint(inst.n_in, len(lines)), a) if rng.random() < 0.3 else \
            lines.append(a)
    if rng.random() < 0.5:
        lines.insert(0, "; a generated property")
    return "\n".join(lines) + "\n"


def render_v2(inst: Instance) -> str:
    rng = random.Random(inst.seed ^ 0x2EED)
    head = ["(vnnlib-version <2.0>)", "(declare-network f",
            f"  (declare-input X real [{inst.n_in}])",
            f"  (declare-output Y real [{inst.n_out}])", ")"]
    # VNN-LIB 2.0 types its constants: a real variable is compared with reals (0.0, not 0)
    return "\n".join(head + _asserts(inst, rng, lambda v: f"{v[0]}[{v[1]}]", "0.0")) + "\n"


def onnx_model(inst: Instance) -> bytes:
    """The network as Gemm and Relu nodes, input of shape (1, n_in)."""
    nodes, inits, cur = [], [], "x"
    for k, (W, b) in enumerate(inst.weights):
        inits += [numpy_helper.from_array(W, f"W{k}"), numpy_helper.from_array(b, f"b{k}")]
        nodes.append(helper.make_node("Gemm", [cur, f"W{k}", f"b{k}"], [f"z{k}"], transB=1))
        cur = f"z{k}"
        if k < len(inst.weights) - 1:
            nodes.append(helper.make_node("Relu", [cur], [f"a{k}"]))
            cur = f"a{k}"
    graph = helper.make_graph(
        nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, inst.n_in])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, [1, inst.n_out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()
