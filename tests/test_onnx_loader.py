"""``load_onnx`` follows the graph: regressions for issue 25's ONNX defects, each graph
built by hand and compared with onnxruntime (the independent evaluator), and the
refusals: one exception type, naming the node and its operator."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from onnx import helper

from onnx_graphs import close, model_bytes, net_outputs, ort_outputs
from verifier import verify
from verifier.formats import FormatError, load_onnx

node = helper.make_node
RNG = np.random.default_rng(25)


def w(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def same_as_ort(data: bytes, in_shape, *, points=24, spread=2.0):
    """The loaded network against onnxruntime on random inputs; returns the network."""
    net = load_onnx(data)
    n = math.prod(in_shape)
    assert net.n_inputs == n
    x = np.random.default_rng(1).uniform(-spread, spread, size=(points, n))
    got, want = net_outputs(net, x), ort_outputs(data, x, in_shape)
    assert got.shape == want.shape and net.n_outputs == want.shape[1]
    assert close(got, want, np.abs(want).max()), np.abs(got - want).max()
    return net


# -- the graph, not the file order ------------------------------------------------------------

def test_an_unused_relu_after_the_output_is_ignored():
    """Issue 25: ``Relu(y)`` written after the output ``y`` was chained in: false unsat."""
    W, b = w(3, 2), w(3)
    nodes = [node("Gemm", ["x", "W", "b"], ["y"], name="fc", transB=1),
             node("Relu", ["y"], ["z"], name="unused_relu"),
             node("Tanh", ["z"], ["s"], name="unused_tanh")]   # unsupported, unused
    data = model_bytes(nodes, [("x", [1, 2])], "y", {"W": W, "b": b})
    net = same_as_ort(data, [1, 2])
    assert not any(isinstance(m, torch.nn.ReLU) for m in net)
    x = np.random.default_rng(2).uniform(-2, 2, size=(64, 2))
    assert (net_outputs(net, x) < 0).any()          # what the Relu would have hidden
    # the false unsat of the issue: y_0 >= lo over the box is false (y_0 takes its
    # minimum at a corner), and is now refuted
    lo = float(min(net_outputs(net, np.array([[a, c]]))[0, 0] for a in (-1, 1) for c in (-1, 1)))
    cexs = []
    assert verify(net, [(-1, 1)] * 2, [(lo + 0.1, math.inf)] + [(-math.inf, math.inf)] * 2,
                  cexs, timeout=10, progress=False) == "fail"


def test_nodes_in_any_order():
    W1, b1, W2, b2 = w(2, 4), w(4), w(4, 3), w(3)
    nodes = [node("Add", ["m2", "b2"], ["y"], name="add2"),
             node("MatMul", ["r", "W2"], ["m2"], name="mm2"),
             node("Relu", ["h"], ["r"], name="relu"),
             node("Add", ["m1", "b1"], ["h"], name="add1"),
             node("MatMul", ["x", "W1"], ["m1"], name="mm1")]
    data = model_bytes(nodes, [("x", [1, 2])], "y", {"W1": W1, "b1": b1, "W2": W2, "b2": b2})
    net = same_as_ort(data, [1, 2])
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear"]
    # the file's float32 weights, as they are
    assert np.array_equal(net[0].weight.detach().numpy(), W1.T)
    assert np.array_equal(net[2].weight.detach().numpy(), W2.T)


def test_a_float64_graph_gives_float64_layers():
    """Computed in float32, 1e8 + x loses x; a float64 graph (as VNN-COMP 2021's nn4sys
    networks are) is read as float64 layers, which keep it."""
    nodes = [node("MatMul", ["x", "one"], ["m"], name="mm"),
             node("Add", ["m", "big"], ["h"], name="shift"),
             node("Relu", ["h"], ["r"], name="relu"),
             node("Sub", ["r", "big"], ["y"], name="back")]
    inits = {"one": np.ones((1, 1)), "big": np.array([1e8])}
    data = model_bytes(nodes, [("x", [1, 1])], "y", inits, double=True)
    net = same_as_ort(data, [1, 1])
    assert all(p.dtype == torch.float64 for p in net.parameters())
    x = np.array([[0.123456789]])
    assert abs(net_outputs(net, x)[0, 0] - x[0, 0]) < 1e-7
    assert verify(net, [(0.1, 0.2)], [(0.0999, 0.2001)], timeout=10, progress=False) == "pass"


# -- MatMul and Gemm in either operand order, 1-D and batched tensors --------------------

def vnncomp_small(first_weight):
    """The shape of VNN-COMP 2021's test_small.onnx (its weights are our own): a 1-D input,
    ``MatMul(W, x)`` then ``Add``, twice with a ReLU, then a last affine map."""
    W0, B0 = np.array([[first_weight], [1.0]]), np.array([1.5, -0.5])
    W1, B1 = np.array([[2.0, -1.0], [0.5, 2.0]]), np.array([0.25, -2.5])
    W2, B2 = np.array([[3.0, -1.0]]), np.array([3.5])
    nodes = []
    for k, src in enumerate(["X_0", "R0", "R1"]):
        nodes.append(node("MatMul", [f"W{k}", src], [f"M{k}"]))
        nodes.append(node("Add", [f"M{k}", f"B{k}"], ["Y_0" if k == 2 else f"H{k}"]))
        if k < 2:
            nodes.append(node("Relu", [f"H{k}"], [f"R{k}"]))
    inits = {"W0": W0, "B0": B0, "W1": W1, "B1": B1, "W2": W2, "B2": B2}
    return model_bytes(nodes, [("X_0", [1])], "Y_0", inits, out_shape=[1])


def test_weight_first_matmul_on_a_1d_input_as_vnncomp_2021_test_files():
    net = same_as_ort(vnncomp_small(1.0), [1], spread=3.0)
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]


def test_vnncomp_style_files_through_the_cli(tmp_path):
    from verifier import __main__ as cli

    onnx_path = tmp_path / "small.onnx"
    onnx_path.write_bytes(vnncomp_small(1.0))
    prop = tmp_path / "p.vnnlib"
    head = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
    prop.write_text(head + "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= Y_0 100))\n")
    assert cli.main([str(onnx_path), str(prop), "--timeout", "20"]) == 0        # unsat
    # the largest output over [-1, 1]: at x = 1 (found by onnxruntime on a grid)
    xs = np.linspace(-1, 1, 201)[:, None]
    top = ort_outputs(onnx_path.read_bytes(), xs, [1]).max()
    prop.write_text(head + "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n"
                    f"(assert (>= Y_0 {top - 0.5}))\n")
    assert cli.main([str(onnx_path), str(prop), "--timeout", "20"]) == 10       # sat


@pytest.mark.parametrize("in_shape, weight_shape, weight_first", [
    ([1, 3], (3,), False),      # x @ w, w 1-D: [1, 3] @ [3] -> [1]
    ([3], (3,), False),         # [3] @ [3] -> a scalar
    ([3], (3,), True),          # w @ x -> a scalar
    ([3], (3, 4), False),       # [3] @ [3, 4] -> [4]
    ([3], (4, 3), True),        # [4, 3] @ [3] -> [4]
    ([1, 3], (4, 3), None),     # x is [1, 3]; W @ x needs x as [3, 1]: see below
    ([2, 3], (3, 2), False),    # a 2-row input: [2, 3] @ [3, 2]
    ([3, 1], (1, 4), False),    # a column: [3, 1] @ [1, 4] -> [3, 4] (an outer product)
    ([1, 3], (2, 3, 4), False),  # batched weights: [1, 3] @ [2, 3, 4] -> [2, 1, 4]
    ([3], (2, 3, 4), False),    # [3] @ [2, 3, 4] -> [2, 4]
    ([3], (2, 4, 3), True),     # [2, 4, 3] @ [3] -> [2, 4]
    ([2, 1, 3], (3, 2), False),  # a batch of rows, as the input has it
])
def test_matmul_follows_numpy_semantics(in_shape, weight_shape, weight_first):
    W = w(*weight_shape)
    if weight_first is None:    # [4, 3] @ Reshape(x, [3, 1])
        nodes = [node("Reshape", ["x", "col"], ["c"], name="col"),
                 node("MatMul", ["W", "c"], ["y"], name="mm")]
        inits = {"W": W, "col": np.array([3, 1], np.int64)}
    else:
        nodes = [node("MatMul", ["W", "x"] if weight_first else ["x", "W"], ["y"], name="mm")]
        inits = {"W": W}
    net = same_as_ort(model_bytes(nodes, [("x", in_shape)], "y", inits), in_shape)
    assert [type(m).__name__ for m in net] in (["Linear"], ["Flatten", "Linear"])


@pytest.mark.parametrize("const_is_a", [False, True])
@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("alpha, beta", [(1.0, 1.0), (0.5, -2.0)])
@pytest.mark.parametrize("c_shape", [None, "full", "row", "scalar"])
def test_gemm_in_every_form(const_is_a, trans_a, trans_b, alpha, beta, c_shape):
    """Y = alpha * A' B' + beta * C, the constant either A or B, C as broadcasting allows."""
    n, m = 3, 4
    if not const_is_a:      # x [1, n] (or [n, 1] transposed) times B
        x_shape = [n, 1] if trans_a else [1, n]
        B = w(m, n) if trans_b else w(n, m)
        out = (1, m)
        inputs = ["x", "B"]
        inits = {"B": B}
    else:                   # A [m, n] (or [n, m] transposed) times x as a column
        x_shape = [1, n] if trans_b else [n, 1]
        A = w(n, m) if trans_a else w(m, n)
        out = (m, 1)
        inputs = ["A", "x"]
        inits = {"A": A}
    if c_shape is not None:
        inits["C"] = {"full": w(*out), "row": w(out[1]) if out[0] == 1 else w(m, 1),
                      "scalar": w(1)}[c_shape]
        inputs.append("C")
    nodes = [node("Gemm", inputs, ["y"], name="gemm", alpha=alpha, beta=beta,
                  transA=trans_a, transB=trans_b)]
    same_as_ort(model_bytes(nodes, [("x", x_shape)], "y", inits), x_shape)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("const_first", [False, True])
@pytest.mark.parametrize("in_shape, c_shape", [
    ([1, 4], (4,)), ([1, 4], (1, 4)), ([1, 4], ()), ([1, 4], (1,)), ([4], (4,)),
    ([4], (1, 4)), ([4], ()), ([4], (3, 4)), ([1, 4], (2, 1, 4)), ([4, 1], (1, 3)),
])
def test_elementwise_with_a_constant_on_either_side(op, const_first, in_shape, c_shape):
    C = w(*c_shape) if c_shape else np.float32(RNG.normal())
    C = np.where(np.abs(C) < 0.2, 0.5, C).astype(np.float32)
    if op == "Div" and const_first:
        return       # refused: see test_refusals
    W = w(math.prod(in_shape), math.prod(in_shape))
    # an affine layer first, so the op acts on an affine map of the input
    nodes = [node("Flatten", ["x"], ["f"], name="flat", axis=0),
             node("MatMul", ["f", "W"], ["g"], name="mm"),
             node("Reshape", ["g", "shape"], ["h"], name="back"),
             node(op, ["C", "h"] if const_first else ["h", "C"], ["y"], name="op")]
    inits = {"W": W, "C": C, "shape": np.array(in_shape, np.int64)}
    same_as_ort(model_bytes(nodes, [("x", in_shape)], "y", inits), in_shape)


def test_normalisation_flatten_reshape_identity_and_constant_nodes():
    mean, scale = w(1, 1, 2, 2), np.abs(w(4)) + 0.5
    W, b = w(4, 3), w(1, 3)
    nodes = [node("Sub", ["x", "mean"], ["s"], name="sub"),
             node("Constant", [], ["scale"], name="scale_c",
                  value=helper.make_tensor("v", 1, [4], scale.tolist())),
             node("Reshape", ["s", "flat"], ["f"], name="reshape"),
             node("Div", ["f", "scale"], ["d"], name="div"),
             node("Identity", ["d"], ["i"], name="id"),
             node("Reshape", ["i", "row"], ["r"], name="row"),
             node("Gemm", ["r", "W", "b"], ["g"], name="gemm"),
             node("Relu", ["g"], ["h"], name="relu"),
             node("Flatten", ["h"], ["y"], name="flatten")]
    inits = {"mean": mean, "W": W, "b": b, "flat": np.array([-1], np.int64),
             "row": np.array([1, -1], np.int64)}
    net = same_as_ort(model_bytes(nodes, [("x", [1, 1, 2, 2])], "y", inits), [1, 1, 2, 2])
    # the normalisation (a shift and a scaling of each value) is folded into the Gemm
    assert [type(m).__name__ for m in net] == ["Flatten", "Linear", "ReLU"]
    assert net(torch.zeros(5, 1, 2, 2)).shape == (5, 3)     # the file's own input shape too


def test_gemm_whose_c_depends_on_the_input():
    """Y = alpha A B + beta C with A, B constants and C the running tensor: an Add."""
    nodes = [node("Gemm", ["A", "B", "x"], ["y"], name="gemm", alpha=0.5, beta=-2.0)]
    same_as_ort(model_bytes(nodes, [("x", [2, 3])], "y", {"A": w(2, 4), "B": w(4, 3)}), [2, 3])


def test_a_product_of_weight_matrices_is_not_folded():
    """Two MatMuls in a row stay two layers: the file's weights, unrounded."""
    W1, W2 = w(3, 5), w(5, 2)
    nodes = [node("MatMul", ["x", "W1"], ["h"], name="a"),
             node("MatMul", ["h", "W2"], ["y"], name="b")]
    net = same_as_ort(model_bytes(nodes, [("x", [1, 3])], "y", {"W1": W1, "W2": W2}), [1, 3])
    assert [tuple(m.weight.shape) for m in net] == [(5, 3), (2, 5)]


def test_an_input_too_large_for_dense_maps_is_refused():
    data = model_bytes([node("Relu", ["x"], ["y"], name="r")], [("x", [1, 20000])], "y")
    with pytest.raises(FormatError, match=r"the output 'y': .* this reader takes at most"):
        load_onnx(data)


# -- networks with no affine map, or that start or end with a ReLU --------------------------

@pytest.mark.parametrize("nodes, out", [
    ([], "x"),                                                    # the output is the input
    ([node("Relu", ["x"], ["y"], name="r")], "y"),
    ([node("Relu", ["x"], ["r"], name="r"), node("MatMul", ["r", "W"], ["m"], name="mm"),
      node("Relu", ["m"], ["y"], name="r2")], "y"),
    ([node("Identity", ["x"], ["y"], name="i")], "y"),
    ([node("Relu", ["W"], ["y"], name="const")], "y"),           # does not depend on x
])
def test_networks_with_relu_at_either_end_or_no_affine_map(nodes, out):
    data = model_bytes(nodes, [("x", [1, 3])], out, {"W": w(3, 3)})
    net = same_as_ort(data, [1, 3])
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    # what python -m verifier reads: the first Linear's inputs, the last's outputs
    assert (linears[0].in_features, linears[-1].out_features) == (net.n_inputs, net.n_outputs)
    result = verify(net, [(-1, 1)] * 3, [(-100, 100)] * net.n_outputs, timeout=10,
                    progress=False)
    assert result == "pass"


def test_sigmoid_layers_are_read_and_verified_through_the_cli(tmp_path):
    """A decoder-then-classifier chain as VNN-COMP 2023's dist_shift writes it: Gemm, Relu,
    Gemm, Sigmoid, Reshape, Gemm; the same as onnxruntime, and the CLI's answers agree with a
    grid of onnxruntime's outputs on either side of their largest value."""
    from verifier import __main__ as cli

    W1, b1, W2, b2, W3, b3 = w(6, 2), w(6), w(4, 6) * 3, w(4), w(1, 4), w(1)
    nodes = [node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1", transB=1),
             node("Relu", ["h"], ["r"], name="relu"),
             node("Gemm", ["r", "W2", "b2"], ["z"], name="fc2", transB=1),
             node("Sigmoid", ["z"], ["s"], name="sig"),
             node("Reshape", ["s", "shape"], ["t"], name="reshape"),
             node("Gemm", ["t", "W3", "b3"], ["y"], name="fc3", transB=1)]
    data = model_bytes(nodes, [("x", [1, 2])], "y", {"W1": W1, "b1": b1, "W2": W2, "b2": b2,
                                                     "W3": W3, "b3": b3,
                                                     "shape": np.array([1, 4], np.int64)})
    net = same_as_ort(data, [1, 2], spread=3.0)
    assert sum(isinstance(m, torch.nn.Sigmoid) for m in net) == 1
    onnx_path = tmp_path / "sig.onnx"
    onnx_path.write_bytes(data)
    g = np.linspace(-1, 1, 301)
    top = ort_outputs(data, np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), [1, 2]).max()
    head = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
    box = "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n"
    prop = tmp_path / "p.vnnlib"
    prop.write_text(head + box + f"(assert (>= Y_0 {top + 1e-3}))\n")
    assert cli.main([str(onnx_path), str(prop), "--timeout", "20"]) == 0          # unsat
    prop.write_text(head + box + f"(assert (>= Y_0 {top - 1e-3}))\n")
    assert cli.main([str(onnx_path), str(prop), "--timeout", "20"]) == 10         # sat


# -- one way to refuse ---------------------------------------------------------------------

def _gemm(out="h", src="x"):
    return node("Gemm", [src, "W", "b"], [out], name="fc", transB=1)


REFUSED = [
    ("residual Add", [_gemm(), node("Add", ["h", "x"], ["y"], name="res")],
     r"node 'res' \(Add\): combines tensors that all depend on the input"),
    ("Concat", [_gemm(), node("Concat", ["h", "x"], ["y"], name="cat", axis=1)],
     r"node 'cat' \(Concat\)"),
    ("tanh", [_gemm("y0"), node("Tanh", ["y0"], ["y"], name="th")],
     r"node 'th' \(Tanh\): the ONNX operator Tanh is not supported"),
    ("sigmoid of a constant", [_gemm(), node("Sigmoid", ["b"], ["sb"], name="sigc"),
                               node("Add", ["h", "sb"], ["y"], name="add")],
     r"node 'sigc' \(Sigmoid\): a Sigmoid of a constant"),
    ("constant / x", [_gemm(), node("Div", ["b", "h"], ["y"], name="inv")],
     r"node 'inv' \(Div\): divides a constant by a value that depends on the input"),
    ("x / 0", [_gemm(), node("Div", ["h", "zero"], ["y"], name="div0")],
     r"node 'div0' \(Div\): divides by zero"),
    ("cycle", [node("Add", ["x", "y"], ["a"], name="n1"), node("Relu", ["a"], ["y"], name="n2")],
     r"the graph has a cycle through node 'n1' \(Add\)"),
    ("missing producer", [node("Relu", ["ghost"], ["y"], name="r")],
     r"no node produces the tensor 'ghost' \(node 'r' \(Relu\) reads it\)"),
    ("missing output", [_gemm()], r"no node produces the tensor 'y' \(the graph output\)"),
    ("two producers", [_gemm("y"), node("Relu", ["x"], ["y"], name="again")],
     r"node 'again' \(Relu\) writes 'y'"),
    ("MatMul shapes", [node("MatMul", ["x", "W"], ["y"], name="mm")],
     r"node 'mm' \(MatMul\): shapes \[1, 2\] and \[3, 2\] do not match"),
    ("Gemm bias", [node("Gemm", ["x", "W", "bad"], ["y"], name="fc", transB=1)],
     r"node 'fc' \(Gemm\): Gemm's C of shape \[2\] does not broadcast to the product's "
     r"shape \[1, 3\]"),
    ("Add broadcast", [_gemm(), node("Add", ["h", "bad"], ["y"], name="add")],
     r"node 'add' \(Add\): shapes \[1, 3\] and \[2\] do not broadcast"),
    ("opset-6 attribute", [_gemm(), node("Add", ["h", "b"], ["y"], name="add", broadcast=1)],
     r"node 'add' \(Add\): the attribute\(s\) \['broadcast'\] are not supported"),
    ("shape from the input's values", [node("Cast", ["x"], ["s"], name="cast", to=7),
                                       node("Reshape", ["x", "s"], ["y"], name="reshape")],
     r"node 'cast' \(Cast\): casts the network's values to another type"),
    ("bad reshape", [node("Reshape", ["x", "five"], ["y"], name="rs")],
     r"node 'rs' \(Reshape\): cannot reshape \[1, 2\] \(2 values\) to \[5\]"),
    ("custom domain", [node("Relu", ["x"], ["y"], name="r", domain="com.example")],
     r"node 'r' \(Relu\): the operator domain 'com.example' is not supported"),
    ("NaN weight", [node("MatMul", ["x", "nan"], ["y"], name="mm")],
     r"node 'mm' \(MatMul\): its constant operand holds NaN or infinite values"),
    ("unnamed node", [_gemm(), node("Tanh", ["h"], ["y"])],
     r"node #1 \(unnamed, output \['y'\]\) \(Tanh\)"),
]


@pytest.mark.parametrize("nodes, pattern", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refusals_name_the_node_and_operator(nodes, pattern, tmp_path):
    inits = {"W": w(3, 2), "b": w(3), "bad": w(2), "zero": np.zeros(3, np.float32),
             "five": np.array([5], np.int64), "nan": np.array([[np.nan], [1.0]], np.float32)}
    path = tmp_path / "bad.onnx"
    path.write_bytes(model_bytes(nodes, [("x", [1, 2])], "y", inits))
    with pytest.raises(FormatError, match=r"^bad\.onnx: " + pattern):
        load_onnx(path)


@pytest.mark.parametrize("content, pattern", [
    (b"this is not a model\n", r"not an ONNX model"),
    (b"", r"not an ONNX model \(no graph\)"),     # protobuf reads nothing as an empty model
])
def test_a_file_that_is_not_onnx_is_refused(tmp_path, content, pattern):
    path = tmp_path / "net.onnx"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=r"^net\.onnx: " + pattern):
        load_onnx(path)
    with pytest.raises(FormatError, match=r"^net\.onnx\.missing: cannot read the file"):
        load_onnx(tmp_path / "net.onnx.missing")


@pytest.mark.parametrize("inputs, output, pattern", [
    ([("x", [1, 2]), ("z", [1, 2])], "y", r"expected one input \(besides initializers\); "
                                          r"found 2: \['x', 'z'\]"),
    ([("x", ["N", 2, "M"])], "y", r"dimension 2 of the input 'x' has no size"),
    ([("x", ["N"])], "y", r"dimension 0 of the input 'x' has no size"),
])
def test_inputs_the_reader_cannot_size_are_refused(inputs, output, pattern):
    data = model_bytes([node("Relu", ["x"], ["y"], name="r")], inputs, output)
    with pytest.raises(FormatError, match=r"^<ONNX bytes>: " + pattern):
        load_onnx(data)


def test_a_symbolic_batch_dimension_is_one_point():
    data = model_bytes([_gemm("y")], [("x", ["batch", 2])], "y", {"W": w(3, 2), "b": w(3)})
    net = load_onnx(data)
    assert (net.n_inputs, net.n_outputs) == (2, 3)


def test_loading_writes_nothing_to_stderr(capfd):
    W, b = w(3, 2), w(3)
    nodes = [_gemm("y"), node("Relu", ["y"], ["unused"], name="unused")]
    data = model_bytes(nodes, [("x", [1, 2])], "y", {"W": W, "b": b, "spare": w(4)})
    same_as_ort(data, [1, 2])
    assert capfd.readouterr().err == ""


def test_initializers_listed_as_inputs_are_constants():
    """IR version 3 lists every initializer among the graph's inputs too (VNN-COMP 2021's
    test_sat.onnx does); the one input left is the network's."""
    import onnx
    from onnx import TensorProto

    W, mean = w(2, 3), w(1, 1, 1, 2)
    nodes = [node("Sub", ["x", "mean"], ["s"], name="sub"),
             node("Flatten", ["s"], ["f"], name="flat"),
             node("MatMul", ["f", "W"], ["y"], name="mm")]
    model = onnx.load_from_string(model_bytes(nodes, [("x", [1, 1, 1, 2])], "y",
                                              {"W": W, "mean": mean}))
    model.graph.input.extend([helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape))
                              for n, a in (("W", W), ("mean", mean))])
    model.graph.input.sort(key=lambda i: i.name != "W")      # an initializer first
    net = load_onnx(model)                                   # an onnx.ModelProto works too
    assert (net.n_inputs, net.n_outputs) == (2, 3)
    x = np.random.default_rng(3).uniform(-1, 1, size=(8, 2))
    assert close(net_outputs(net, x), ort_outputs(model.SerializeToString(), x, [1, 1, 1, 2]))


@pytest.mark.parametrize("content, says", [
    (model_bytes([_gemm(), node("Add", ["h", "x"], ["y"], name="res")], [("x", [1, 2])], "y",
                 {"W": w(3, 2), "b": w(3)}), "node 'res' (Add): combines tensors"),
    (b"not an onnx file at all", "not an ONNX model"),
])
def test_the_cli_refuses_with_one_error_line(tmp_path, capsys, content, says):
    """Exit status 2 and one ``error:`` line naming the node and operator, no traceback."""
    from verifier import __main__ as cli

    net, prop = tmp_path / "bad.onnx", tmp_path / "p.vnnlib"
    net.write_bytes(content)
    prop.write_text("(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
                    "(declare-const Y_0 Real)\n(assert (>= X_0 0))\n(assert (<= X_0 1))\n"
                    "(assert (>= X_1 0))\n(assert (<= X_1 1))\n(assert (>= Y_0 5))\n")
    assert cli.main([str(net), str(prop)]) == 2
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and out.startswith("error: bad.onnx: ") and err == ""
    assert says in out


# -- reading without the onnx package -----------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
@pytest.mark.parametrize("raw", [True, False])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_tensors_decode_as_numpy_helper_does(dtype, raw, shape):
    """The reader decodes the common tensor types itself; each storage (raw bytes or the
    typed field) must give exactly what ``onnx.numpy_helper.to_array`` gives."""
    from onnx import numpy_helper

    from verifier.onnx_reader import _array

    values = (RNG.normal(size=shape) * 1000).astype(dtype)
    t = numpy_helper.from_array(values, "t")
    if not raw:
        t = helper.make_tensor("t", t.data_type, list(shape), values.flatten().tolist())
    got, want = _array(t), numpy_helper.to_array(t)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)


def test_a_file_loads_without_importing_onnx_and_onnx_still_imports_after(tmp_path):
    """``python -m verifier`` parses the file with onnx's generated protobuf classes alone
    (``import onnx`` costs a second or more of start-up in ml_dtypes); a later ``import
    onnx`` reuses those classes, so both keep working in one process."""
    import subprocess
    import sys

    W, b = w(3, 2), w(3)
    data = model_bytes([node("Gemm", ["x", "W", "b"], ["y"], name="fc", transB=1),
                        node("Relu", ["y"], ["z"], name="relu")],
                       [("x", [1, 2])], "z", {"W": W, "b": b})
    (tmp_path / "net.onnx").write_bytes(data)
    want = ort_outputs(data, np.array([[0.5, -1.0]]), [1, 2])
    script = (
        "import sys, torch\n"
        "from verifier.formats import load_onnx\n"
        f"net = load_onnx({str(tmp_path / 'net.onnx')!r})\n"
        "print(net(torch.tensor([[0.5, -1.0]])).flatten().tolist())\n"
        "print(sorted({'onnx', 'ml_dtypes'} & set(sys.modules)))\n"
        "import onnx, onnx.numpy_helper, onnx.printer\n"
        f"m = onnx.load({str(tmp_path / 'net.onnx')!r})\n"
        "assert 'Gemm' in onnx.printer.to_text(m.graph)\n"
        "assert onnx.ModelProto is sys.modules['onnx.onnx_ml_pb2'].ModelProto\n"
        "print(load_onnx(m).n_outputs, onnx.numpy_helper.to_array(m.graph.initializer[0]).shape)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    out = r.stdout.splitlines()
    assert close(np.array(eval(out[0])), want[0])
    assert out[1] == "[]"
    assert out[2] == "3 (3, 2)"


# -- exporters' rearranging and shape arithmetic --------------------------------------------------

@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_and_unsqueeze_around_a_layer_as_attribute_and_as_input(opset):
    """Axes are an attribute up to opset 12 and an input since 13 (tf2onnx writes both)."""
    W, b, W2 = w(4, 3), w(4), w(4, 2)
    axes = ({"axes": [1]}, [], {}) if opset < 13 else ({}, ["ax"], {"ax": np.array([1])})
    attr, extra, init = axes
    nodes = [node("Unsqueeze", ["x"] + extra, ["u"], name="unsq", **attr),
             node("Squeeze", ["u"] + extra, ["s"], name="sq", **attr),
             node("Gemm", ["s", "W", "b"], ["h"], name="fc", transB=1),
             node("Relu", ["h"], ["r"], name="relu"),
             node("Unsqueeze", ["r"] + extra, ["r3"], name="unsq2", **attr),
             node("MatMul", ["r3", "W2"], ["y3"], name="fc2"),
             node("Squeeze", ["y3"], ["y"], name="sq_all")]        # every size-1 axis
    data = model_bytes(nodes, [("x", [1, 3])], "y", {"W": W, "b": b, "W2": W2, **init},
                       opset=opset)
    net = same_as_ort(data, [1, 3])
    assert net.n_outputs == 2


def test_a_pytorch_view_flatten_reads_through_its_shape_arithmetic():
    """``x.view(x.size(0), -1)`` exports as Shape, Gather, Unsqueeze, Concat, Reshape (with a
    Cast on the way in some exporters): folded on constants, the Reshape reads as usual."""
    W, b = w(5, 6), w(5)
    nodes = [node("Shape", ["x"], ["shp"], name="shape"),
             node("Gather", ["shp", "zero"], ["n"], name="gather", axis=0),
             node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsq"),
             node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
             node("Cast", ["target"], ["target64"], name="cast", to=7),
             node("Reshape", ["x", "target64"], ["flat"], name="view"),
             node("Gemm", ["flat", "W", "b"], ["h"], name="fc", transB=1),
             node("Relu", ["h"], ["y"], name="relu")]
    data = model_bytes(nodes, [("x", [1, 1, 2, 3])], "y",
                       {"W": W, "b": b, "zero": np.array(0), "ax0": np.array([0]),
                        "minus1": np.array([-1])})
    same_as_ort(data, [1, 1, 2, 3])


def test_transposes_of_the_running_tensor_keep_each_value_where_onnx_puts_it():
    W1, W2 = w(4, 3), w(4, 2)
    nodes = [node("Transpose", ["x"], ["xt"], name="t1", perm=[1, 0]),     # (3, 1)
             node("MatMul", ["W1", "xt"], ["h"], name="left_mul"),            # (4, 1)
             node("Transpose", ["h"], ["ht"], name="t2"),                     # (1, 4), default perm
             node("Relu", ["ht"], ["r"], name="relu"),
             node("Reshape", ["r", "s22"], ["r22"], name="square"),           # (2, 2)
             node("Transpose", ["r22"], ["r22t"], name="t3"),                 # values reordered
             node("Reshape", ["r22t", "s14"], ["r14"], name="row"),
             node("MatMul", ["r14", "W2"], ["y"], name="fc2")]
    data = model_bytes(nodes, [("x", [1, 3])], "y",
                       {"W1": W1, "W2": W2, "s22": np.array([2, 2]), "s14": np.array([1, 4])})
    same_as_ort(data, [1, 3])


@pytest.mark.parametrize("opset, attrs, extra", [(10, {"ratio": 0.5}, []), (13, {}, []),
                                                  (13, {}, ["ratio"])])
def test_dropout_in_inference_is_the_identity(opset, attrs, extra):
    W, b = w(3, 2), w(3)
    nodes = [node("Gemm", ["x", "W", "b"], ["h"], name="fc", transB=1),
             node("Dropout", ["h"] + extra, ["d"], name="drop", **attrs),
             node("Relu", ["d"], ["y"], name="relu")]
    data = model_bytes(nodes, [("x", [1, 2])], "y",
                       {"W": W, "b": b, "ratio": np.array(0.3)}, opset=opset)
    same_as_ort(data, [1, 2])


@pytest.mark.parametrize("nodes, inits, pattern", [
    ([node("Dropout", ["x", "ratio", "train"], ["y"], name="drop")],
     {"ratio": np.array(0.5), "train": np.array(True)}, r"'drop' \(Dropout\).*training mode"),
    ([node("Cast", ["x"], ["y"], name="to_double", to=11)], {},
     r"'to_double' \(Cast\).*another type"),
    ([node("Gather", ["x", "i"], ["y"], name="pick", axis=1)], {"i": np.array([0])},
     r"'pick' \(Gather\).*depends on the input"),
    ([node("Concat", ["x", "c"], ["y"], name="join", axis=1)], {"c": np.ones((1, 2))},
     r"'join' \(Concat\).*depends on the input"),
])
def test_rearranging_ops_it_cannot_carry_exactly_are_refused_by_name(nodes, inits, pattern):
    data = model_bytes(nodes, [("x", [1, 2])], "y", inits)
    with pytest.raises(FormatError, match=pattern):
        load_onnx(data)


def test_a_cast_of_the_running_tensor_to_its_own_type_is_the_identity():
    W, b = w(3, 2), w(3)
    nodes = [node("Cast", ["x"], ["xc"], name="same", to=1),
             node("Gemm", ["xc", "W", "b"], ["y"], name="fc", transB=1)]
    same_as_ort(model_bytes(nodes, [("x", [1, 2])], "y", {"W": W, "b": b}), [1, 2])
