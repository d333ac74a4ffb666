"""Differential fuzz of ``load_onnx``: hypothesis writes small ONNX graphs, and what the kit
reads is compared with what shares no code with it.

The generator draws a chain of affine maps and ReLUs (widths 1 to 6, one to four
blocks) and writes each in one of the forms ONNX allows: ``MatMul(x, W)`` and
``MatMul(W, x)``, a 1-D weight, ``Gemm`` with the constant as A or B, its trans flags,
alpha and beta, biases as ``Add``/``Sub`` on either side with every shape that
broadcasts to the layer's, elementwise ``Mul``/``Div``/``Sub`` by constants, inputs
of shape ``[n]``, ``[1, n]`` or ``[1, 1, n]``, float32 or float64 graphs, Flatten /
Reshape / Identity between vector, row and column forms, weights as initializers or
``Constant`` nodes; then adds unused nodes (some of operators the kit refuses) and
shuffles the node order.
Beside the file, the generator keeps its own float64 account of the function (the
stored values, composed exactly as the file says): ``Truth``.

* ``test_loaded_network_computes_what_onnxruntime_computes``: the generator's account
  and the loaded network each agree with onnxruntime on random points.
* ``test_verify_on_loaded_networks_is_sound``: ``verify`` on the loaded network, with a
  random box and output bound; a ``pass`` is checked by the MILP oracle
  (``tests/milp_oracle.py``) on the *generator's* network, a ``fail`` by replaying each
  counterexample through onnxruntime.

``FUZZ_EXAMPLES`` (default 60) and ``FUZZ_VERIFY_EXAMPLES`` (default 12) set the
number of graphs; ``make bench`` runs both at 2000 and 200 (``bench/bench_onnx_fuzz.py``).
``derandomize`` keeps runs repeatable (``FUZZ_RANDOM=1`` draws new graphs, and pytest's
``--hypothesis-seed=N`` repeats a run); a failure shrinks to a small graph that belongs in
``tests/test_onnx_loader.py``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st
from onnx import helper, numpy_helper
from torch import nn

from milp_oracle import output_range
from onnx_graphs import close, model_bytes, net_outputs, ort_outputs
from verifier import verify
from verifier.formats import load_onnx

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
VERIFY_EXAMPLES = int(os.environ.get("FUZZ_VERIFY_EXAMPLES", "12"))


def _settings(n):
    # FUZZ_RANDOM=1: other graphs on each run (pytest --hypothesis-seed=N repeats one)
    return settings(max_examples=n, deadline=None, database=None,
                    derandomize=not os.environ.get("FUZZ_RANDOM"),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- the generator -----------------------------------------------------------------------------

@dataclass
class Truth:
    """The generator's own account: ``steps`` on the flat vector, each ``("affine", M, v)``
    (``y = M x + v``, float64), ``("relu",)`` or ``("sigmoid",)``."""
    n_in: int
    steps: list = field(default_factory=list)

    def affine(self, M, v):
        self.steps.append(("affine", np.asarray(M, float), np.asarray(v, float).ravel()))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for s in self.steps:
            if s[0] == "relu":
                x = np.maximum(x, 0)
            elif s[0] == "sigmoid":
                x = 1 / (1 + np.exp(-x))
            else:
                x = x @ s[1].T + s[2]
        return x

    @property
    def has_sigmoid(self) -> bool:
        return any(s[0] == "sigmoid" for s in self.steps)

    def sequential(self) -> nn.Sequential:
        """Linear, ReLU, ..., Linear in float64 (what the MILP oracle reads): consecutive
        affine maps composed, identity maps where two ReLUs meet or at either end."""
        blocks, cur = [], None
        width = self.n_in
        for s in self.steps:
            if s[0] == "relu":
                blocks.append(cur if cur is not None else (np.eye(width), np.zeros(width)))
                cur = None
            else:
                M, v = s[1], s[2]
                cur = (M, v) if cur is None else (M @ cur[0], M @ cur[1] + v)
                width = M.shape[0]
        blocks.append(cur if cur is not None else (np.eye(width), np.zeros(width)))
        layers = []
        for M, v in blocks:
            lin = nn.Linear(M.shape[1], M.shape[0], dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(M))
                lin.bias.copy_(torch.from_numpy(v))
            layers += [lin, nn.ReLU()]
        return nn.Sequential(*layers[:-1])


class Graph:
    """Nodes and constants being written, and the running tensor: its name, its form
    (``vec`` [w], ``row`` [1, w] or ``col`` [w, 1]) and width."""

    def __init__(self, draw, rng, real):
        self.draw, self.rng, self.real = draw, rng, real
        self.nodes, self.inits, self.names = [], {}, []
        self.count = 0

    def fresh(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, arr, dtype=None):
        arr = np.asarray(arr, dtype or self.real)
        name = self.fresh("c")
        if self.draw(st.integers(0, 3)) == 0:       # sometimes a Constant node
            self.nodes.append(helper.make_node("Constant", [], [name], name=self.fresh("k"),
                                               value=numpy_helper.from_array(arr, name)))
        else:
            self.inits[name] = arr
        return name, arr.astype(np.float64)

    def op(self, op_type, inputs, **attrs):
        out = self.fresh("t")
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.fresh(op_type),
                                           **attrs))
        self.names.append(out)
        return out


SHAPES = {"vec": lambda w: [w], "row": lambda w: [1, w], "col": lambda w: [w, 1]}


def to_form(g: Graph, cur, form, w, want):
    """The running tensor in form ``want``, by Reshape, Flatten or Identity nodes."""
    if form == want and g.draw(st.integers(0, 4)):
        return cur, form
    if g.draw(st.booleans()) and want in ("row", "col"):
        # Flatten(axis=0) gives [1, size]; Flatten(axis=1) of [w] gives [w, 1]
        if want == "row":
            return g.op("Flatten", [cur], axis=0), "row"
        if form == "vec":
            return g.op("Flatten", [cur], axis=1), "col"
    if form == want and g.draw(st.booleans()):
        return g.op("Identity", [cur]), form
    shape = {"vec": g.draw(st.sampled_from([[-1], [w]])),
             "row": g.draw(st.sampled_from([[1, -1], [1, w]])),
             "col": g.draw(st.sampled_from([[-1, 1], [w, 1]]))}[want]
    if form in ("row", "col") and want == form and g.draw(st.booleans()):
        shape = [0, -1] if form == "row" else [0, 1]      # 0 copies the dimension
    name, _ = g.const(shape, np.int64)
    return g.op("Reshape", [cur, name]), want


def bias(g: Graph, truth_shape, cur, scale=0.5):
    """An Add or Sub of a constant that broadcasts to ``truth_shape`` (without growing it);
    returns (new tensor, flat bias)."""
    shape = tuple(truth_shape)
    choices = [shape, ()]
    if len(shape) == 2:
        choices += [(shape[1],), (1, shape[1]) if shape[0] == 1 else (shape[0], 1), (1,)]
    else:
        choices += [(1,)]
    c_shape = g.draw(st.sampled_from(choices))
    value = (g.rng.normal(size=c_shape) * scale).astype(g.real)
    kind = g.draw(st.sampled_from(["add", "add_first", "sub", "sub_neg_first"]))
    name, c = g.const(value if kind != "sub" else -value)
    flat = np.broadcast_to(c if kind != "sub" else -c, shape).ravel()
    if kind == "add":
        return g.op("Add", [cur, name]), flat, 1.0
    if kind == "add_first":
        return g.op("Add", [name, cur]), flat, 1.0
    if kind == "sub":
        return g.op("Sub", [cur, name]), flat, 1.0
    # c - x: the running values negated, then shifted
    return g.op("Sub", [name, cur]), flat, -1.0


def affine_block(g: Graph, truth: Truth, cur, form, w, m):
    """One affine layer w -> m in a drawn encoding; returns (tensor, form)."""
    rng = g.rng
    kind = g.draw(st.sampled_from(["matmul_xw", "matmul_wx", "gemm_x", "gemm_w", "vector"]
                                  if m == 1 else ["matmul_xw", "matmul_wx", "gemm_x", "gemm_w"]))
    W = (rng.normal(size=(m, w)) / math.sqrt(w)).astype(g.real)
    if kind == "vector":                       # a 1-D weight: x @ v or v @ x, one output
        cur, form = to_form(g, cur, form, w, g.draw(st.sampled_from(["vec", "row"])))
        name, v = g.const(W[0])
        first = form == "vec" and g.draw(st.booleans())
        cur = g.op("MatMul", [name, cur] if first else [cur, name])
        truth.affine(v[None, :], np.zeros(1))
        if form == "vec":                      # a scalar: back to a vector
            cur, form = g.op("Reshape", [cur, g.const([1], np.int64)[0]]), "vec"
        else:
            form = "vec"                       # [1, w] @ [w] -> [1]
    elif kind == "matmul_xw":                  # x @ W.T, x a vector or a row
        cur, form = to_form(g, cur, form, w, g.draw(st.sampled_from(["vec", "row"])))
        name, Wt = g.const(W.T)
        cur = g.op("MatMul", [cur, name])
        truth.affine(Wt.T, np.zeros(m))
    elif kind == "matmul_wx":                  # W @ x, x a vector or a column
        cur, form = to_form(g, cur, form, w, g.draw(st.sampled_from(["vec", "col"])))
        name, Wc = g.const(W)
        cur = g.op("MatMul", [name, cur])
        truth.affine(Wc, np.zeros(m))
    else:
        alpha = g.draw(st.sampled_from([1.0, 0.5, -2.0, 1.25]))
        beta = g.draw(st.sampled_from([1.0, 0.25, -1.0]))
        if kind == "gemm_x":                   # Gemm(x, B): x as a row, or a column with transA
            want = g.draw(st.sampled_from(["row", "col"]))
            cur, form = to_form(g, cur, form, w, want)
            trans_b = g.draw(st.integers(0, 1))
            name, B = g.const(W if trans_b else W.T)
            M = alpha * (B if trans_b else B.T)
            out_shape = (1, m)
            inputs = [cur, name]
            attrs = dict(transA=int(form == "col"), transB=trans_b)
            new_form = "row"
        else:                                  # Gemm(A, x): x as a column, or a row with transB
            want = g.draw(st.sampled_from(["row", "col"]))
            cur, form = to_form(g, cur, form, w, want)
            trans_a = g.draw(st.integers(0, 1))
            name, A = g.const(W.T if trans_a else W)
            M = alpha * (A.T if trans_a else A)
            out_shape = (m, 1)
            inputs = [name, cur]
            attrs = dict(transA=trans_a, transB=int(form == "row"))
            new_form = "col"
        v = np.zeros(m)
        if g.draw(st.booleans()):
            choices = [out_shape, (), (1,)] + ([(m,)] if out_shape[0] == 1 else [])
            c_shape = g.draw(st.sampled_from(choices))
            cname, C = g.const(rng.normal(size=c_shape) * 0.5)
            inputs.append(cname)
            v = beta * np.broadcast_to(C, out_shape).ravel()
        cur = g.op("Gemm", inputs, alpha=alpha, beta=beta, **attrs)
        truth.affine(M, v)
        return cur, new_form
    if g.draw(st.booleans()):                  # a bias
        cur, flat, sign = bias(g, SHAPES[form](m), cur)
        truth.affine(sign * np.eye(m), flat)
    return cur, form


def elementwise_block(g: Graph, truth: Truth, cur, form, w):
    """A Mul, Div or Sub by a constant of a shape that broadcasts to the tensor's."""
    op = g.draw(st.sampled_from(["Mul", "Mul_first", "Div", "Sub"]))
    shape = tuple(SHAPES[form](w))
    c_shape = g.draw(st.sampled_from([shape, (), (shape[-1],) if form == "row" else shape]))
    value = g.rng.uniform(0.5, 2.0, size=c_shape) * g.rng.choice([-1, 1], size=c_shape)
    name, c = g.const(value)
    s = np.broadcast_to(c, shape).ravel()
    if op == "Mul":
        cur = g.op("Mul", [cur, name])
        truth.affine(np.diag(s), np.zeros(w))
    elif op == "Mul_first":
        cur = g.op("Mul", [name, cur])
        truth.affine(np.diag(s), np.zeros(w))
    elif op == "Div":
        cur = g.op("Div", [cur, name])
        truth.affine(np.diag(1.0 / s), np.zeros(w))
    else:
        cur = g.op("Sub", [cur, name])
        truth.affine(np.eye(w), -s)
    return cur


@st.composite
def graphs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    double = draw(st.integers(0, 4)) == 0          # sometimes a float64 graph
    g = Graph(draw, rng, np.float64 if double else np.float32)
    n = draw(st.integers(1, 6))
    in_form = draw(st.sampled_from(["vec", "row", "img"]))
    in_shape = {"vec": [n], "row": [1, n], "img": [1, 1, n]}[in_form]
    truth = Truth(n)
    cur, w = "x", n
    if in_form == "img":
        cur, form = to_form(g, "x", "img", n, draw(st.sampled_from(["row", "vec"])))
    else:
        form = in_form
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 3)) == 0:
            cur = elementwise_block(g, truth, cur, form, w)
        m = draw(st.integers(1, 6))
        cur, form = affine_block(g, truth, cur, form, w, m)
        w = m
        if draw(st.integers(0, 2)):
            act = draw(st.sampled_from(["Relu", "Relu", "Sigmoid"]))
            cur = g.op(act, [cur])
            truth.steps.append((act.lower(),))
    if draw(st.booleans()):
        cur = g.op("Identity", [cur])
    out = cur
    # unused nodes, reading any tensor (the output too); some of them the kit refuses
    for _ in range(draw(st.integers(0, 3))):
        # (shapes that onnxruntime's checks accept: it reads unused nodes too)
        src = draw(st.sampled_from(["x"] + g.names))
        op = draw(st.sampled_from(["Relu", "Sigmoid", "Add", "Concat"]))
        if op == "Add":
            g.op("Add", [src, src])
        elif op == "Concat":
            g.op("Concat", ["x", "x"], axis=0)
        else:
            g.op(op, [src])
    order = draw(st.permutations(range(len(g.nodes))))
    nodes = [g.nodes[i] for i in order]
    data = model_bytes(nodes, [("x", in_shape)], out, g.inits, double=double)
    return data, in_shape, truth


def points(truth: Truth, k=16, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, size=(k, truth.n_in))


# -- the tests ---------------------------------------------------------------------------------

@_settings(EXAMPLES)
@given(graphs())
def test_loaded_network_computes_what_onnxruntime_computes(drawn):
    data, in_shape, truth = drawn
    x = points(truth)
    want = ort_outputs(data, x, in_shape)
    scale = np.abs(want).max() + 1.0
    assert close(truth(x), want, scale), "the generator's own account disagrees with onnxruntime"
    net = load_onnx(data)
    assert (net.n_inputs, net.n_outputs) == (truth.n_in, want.shape[1])
    got = net_outputs(net, x)
    assert close(got, want, scale), np.abs(got - want).max()


@_settings(VERIFY_EXAMPLES)
@given(graphs(), st.data())
def test_verify_on_loaded_networks_is_sound(drawn, data):
    onnx_bytes, in_shape, truth = drawn
    net = load_onnx(onnx_bytes)
    n, m = truth.n_in, net.n_outputs
    centre = np.array(data.draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n)))
    radius = data.draw(st.sampled_from([0.05, 0.3, 1.0]))
    lb, ub = centre - radius, centre + radius
    j = data.draw(st.integers(0, m - 1))
    rng = np.random.default_rng(0)
    sample = ort_outputs(onnx_bytes, lb + rng.random((64, n)) * (ub - lb), in_shape)[:, j]
    spread = sample.max() - sample.min() + 1e-3
    upper = data.draw(st.booleans())
    shift = data.draw(st.sampled_from([0.3, -0.3, 1.0, 0.02, -0.02])) * spread
    bound = sample.max() + shift if upper else sample.min() - shift
    y_specs = [(-math.inf, math.inf)] * m
    y_specs[j] = (-math.inf, bound) if upper else (bound, math.inf)
    cexs = []
    result = verify(net, list(zip(lb.tolist(), ub.tolist())), y_specs, cexs, timeout=2.0,
                    progress=False)
    event(f"verify: {result.status}")
    tol = 1e-4 * (1.0 + abs(bound) + spread)
    if result == "pass" and truth.has_sigmoid:   # no MILP for a sigmoid: dense samples
        pts = lb + np.random.default_rng(1).random((20000, n)) * (ub - lb)
        pts[:2 ** min(n, 10)] = np.where(np.random.default_rng(2).random((2 ** min(n, 10), n)) < 0.5,
                                         lb, ub)
        ys = ort_outputs(onnx_bytes, pts, in_shape)[:, j]
        assert (ys.max() <= bound + tol) if upper else (ys.min() >= bound - tol), bound
    elif result == "pass":
        lo, _, hi, _ = output_range(truth.sequential(), lb, ub)[j]
        assert (hi <= bound + tol) if upper else (lo >= bound - tol), (lo, hi, bound)
    elif result == "fail":
        assert cexs
        for cex in cexs:
            x = cex.detach().double().numpy().reshape(1, n)
            assert np.all(x >= lb - 1e-6) and np.all(x <= ub + 1e-6)
            y = ort_outputs(onnx_bytes, x, in_shape)[0, j]
            assert (y > bound - tol) if upper else (y < bound + tol), (y, bound)
