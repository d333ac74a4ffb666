"""ONNX graphs as the chains ``verify`` bounds: the reader behind ``verifier.formats.load_onnx``.

The network an ONNX file holds is its dataflow from the graph's one input to
``graph.output``, whatever order the nodes are written in. So the reader

1. finds the tensors the output depends on, walking back from ``graph.output[0]``
   through the nodes that produce them (nodes the output does not use are
   ignored, whatever they are), and orders those nodes by data dependence (a
   cycle, two producers of one name, or a name nobody produces is refused);
2. evaluates them in that order *symbolically*: a tensor is either a constant
   (initializers, ``Constant`` nodes and whatever is computed from them alone,
   folded with numpy) or an affine function ``A z + c`` of ``z``, the output of the
   layers built so far, kept in float64 with the tensor's full ONNX shape, so
   MatMul and Gemm in either operand order, 1-D and batched tensors, and numpy's
   broadcasting of biases are read by the same rules ONNX states;
3. turns a ``Relu`` (``Sigmoid``) of a variable tensor into ``nn.Linear`` (the pending
   affine map) then ``nn.ReLU`` (``nn.Sigmoid``), and the output into a last ``nn.Linear``.

An affine map is multiplied into the pending one only while that one is diagonal
(a shift and a scaling of each value, as an input normalisation ``(x - mean) / std``
is): a product of two weight matrices would round again what the file states and
could hold more weights than both, so the first matrix becomes a layer of its own
first. Weights are stored as float32, as ONNX computes them (rounded once from the
float64 composition), or as float64 when the graph's input is float64 (VNN-COMP
2021's nn4sys networks compute something else in float32). The identity map is
kept implicit, and the dense maps are bounded in size (``MAX_ENTRIES``): a network
that needs a larger one is refused.

Supported: Gemm, MatMul, Add, Sub, Mul, Div (one operand a constant; a constant
divided by the network's values is not linear), Relu, Sigmoid (of the network's
values; of a constant it is refused, as its rounding is the runtime's), Flatten,
Reshape, Identity, Constant; Squeeze, Unsqueeze and Transpose (the values rearranged,
exactly); Dropout (inference's identity; training mode is refused); Cast of the network's values to their
own type (to another, whose rounding the layers would not carry, refused); and, on
constants only, the shape arithmetic exporters write (``x.view(x.size(0), -1)``): Shape,
Gather, Concat, Cast. A node that combines two tensors that both depend on the input (a
residual Add, a Concat) and every other operator is refused with a ``FormatError``
naming the file, the node and its operator; so is every other problem the file
has, including a file that is not ONNX at all.

The result is an ``nn.Sequential`` of ``nn.Flatten`` / ``nn.Linear`` / ``nn.ReLU`` /
``nn.Sigmoid``
that takes inputs of shape ``(N, n)`` (and, when the graph's input has more than
two dimensions, the graph's own shape too). It always holds at least one
``nn.Linear``; ``n_inputs`` and ``n_outputs`` are set on it: the number of values
the graph takes and returns (a batch dimension counts as one).
"""
from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

SUPPORTED = ("Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Flatten",
             "Reshape", "Identity", "Constant", "Squeeze", "Unsqueeze", "Transpose", "Shape",
             "Gather", "Concat", "Cast", "Dropout")

#: The attributes each operator may carry (anything else is refused, never ignored:
#: opset 6's ``broadcast``/``axis`` on Add, for example, change what it computes).
_ATTRS = {"Gemm": {"alpha", "beta", "transA", "transB"}, "MatMul": set(), "Add": set(),
          "Sub": set(), "Mul": set(), "Div": set(), "Relu": set(), "Sigmoid": set(),
          "Flatten": {"axis"},
          "Reshape": {"allowzero", "shape"}, "Identity": set(),
          "Constant": {"value", "value_float", "value_floats", "value_int", "value_ints"},
          "Squeeze": {"axes"}, "Unsqueeze": {"axes"}, "Transpose": {"perm"},
          "Shape": {"start", "end"}, "Gather": {"axis"}, "Concat": {"axis"}, "Cast": {"to"},
          "Dropout": {"ratio", "is_test", "seed"}}

_FLOAT_TYPES = {1, 10, 11, 16}      # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16

#: The most entries a dense map may hold (float64: 800 MB); layers as wide as 7,000 (VNN-COMP
#: 2021's nn4sys) need far fewer, as the identity and weight maps are never multiplied out.
MAX_ENTRIES = 10 ** 8


class _Refusal(Exception):
    """Raised inside a node's handler; the reader adds the file and node to the message."""


def _fits(k: int, shape: tuple):
    entries = k * int(np.prod(shape, dtype=np.int64))
    if entries > MAX_ENTRIES:
        raise _Refusal(f"its result of shape {list(shape)} as a map of {k} values needs "
                       f"{entries:,} weights; this reader takes at most {MAX_ENTRIES:,}")


class _Var:
    """A tensor that depends on the input: ``value = A . z + c``, with ``A`` of shape
    ``(k,) + shape`` (one slice per value of ``z``) and ``c`` of ``shape``; ``A`` is None
    for the identity (``z`` itself, in the tensor's shape: kept implicit, so a wide layer
    costs no ``k x k`` matrix); ``gen`` says which ``z`` (it changes with each layer)."""
    __slots__ = ("A", "c", "gen")

    def __init__(self, A, c: np.ndarray, gen: int):
        self.A, self.c, self.gen = A, c, gen

    @property
    def shape(self) -> tuple:
        return self.c.shape

    def dense(self) -> np.ndarray:
        if self.A is not None:
            return self.A
        size = self.c.size
        _fits(size, self.shape)
        return np.eye(size).reshape((size,) + self.shape)


def _shape(v) -> tuple:
    return v.shape


def _numeric(v: np.ndarray, what: str) -> np.ndarray:
    if v.dtype.kind not in "biuf":
        raise _Refusal(f"{what} is a {v.dtype} tensor, not numbers")
    out = np.asarray(v, dtype=np.float64)
    if not np.isfinite(out).all():
        raise _Refusal(f"{what} holds NaN or infinite values")
    return out


class _Builder:
    """The layers emitted so far, and the width ``k`` of their output ``z``."""

    def __init__(self, n_in: int, dtype: np.dtype):
        self.layers: list = []
        self.k = n_in
        self.gen = 0
        self.dtype = dtype

    def identity(self, shape: tuple) -> _Var:
        return _Var(None, np.zeros(shape), self.gen)

    def is_identity(self, v: _Var) -> bool:
        if v.A is None:
            return True
        size = v.c.size
        return size == self.k and np.array_equal(v.A.reshape(self.k, size), np.eye(size))

    def is_diagonal(self, v: _Var) -> bool:
        if v.A is None:
            return True
        size = v.c.size
        if size != self.k:
            return False
        A = v.A.reshape(size, size)
        return not np.any(A - np.diag(np.diagonal(A)))

    def flush(self, v: _Var) -> _Var:
        """Emit the pending affine map ``v`` as a layer (if it does anything); ``v`` as the
        identity map of the new ``z``."""
        self.check(v)
        if self.is_identity(v) and not v.c.any():
            return self.identity(v.shape)
        size = v.c.size
        W = v.dense().reshape(self.k, size).T.astype(self.dtype)
        b = v.c.reshape(size).astype(self.dtype)
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise _Refusal(f"its weights overflow {self.dtype.name}")
        lin = nn.Linear(self.k, size, dtype=torch.float64 if self.dtype == np.float64
                        else torch.float32)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        self.layers.append(lin)
        self.k, self.gen = size, self.gen + 1
        return self.identity(v.shape)

    def check(self, v: _Var):
        if v.gen != self.gen:       # cannot happen in a chain; never bound a stale map
            raise _Refusal("uses a value from before an activation (Relu, Sigmoid) on another branch; only "
                           "chains are supported")

    def linear_ready(self, v: _Var) -> _Var:
        """``v``, ready to be multiplied by a weight: a shift and a scaling of each value
        (an input normalisation) stay pending, any other pending matrix becomes a layer
        first (see the module doc)."""
        self.check(v)
        return v if self.is_diagonal(v) else self.flush(v)


# -- operations on values (np.ndarray constants or _Var) ----------------------------------

def _reshape(v, shape: tuple):
    """A new shape, the same values in the same (C) order."""
    if not isinstance(v, _Var):
        return v.reshape(shape)
    A = None if v.A is None else v.A.reshape((v.A.shape[0],) + tuple(shape))
    return _Var(A, v.c.reshape(shape), v.gen)


def _lift(v: _Var, ndim: int) -> _Var:
    """``v`` with leading dimensions of size 1 up to ``ndim`` (numpy broadcasting's view)."""
    extra = ndim - len(v.shape)
    return v if extra <= 0 else _reshape(v, (1,) * extra + v.shape)


def _broadcast_shape(a: tuple, b: tuple) -> tuple:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise _Refusal(f"shapes {list(a)} and {list(b)} do not broadcast") from None


def _elementwise(bld: _Builder, op: str, a, b):
    """``a op b`` for op in Add/Sub/Mul/Div, with numpy (ONNX multidirectional) broadcasting."""
    if not isinstance(a, _Var) and not isinstance(b, _Var):
        a, b = _numeric(a, "an operand"), _numeric(b, "an operand")
        _broadcast_shape(a.shape, b.shape)
        if op == "Div" and not np.all(b != 0):
            raise _Refusal("divides by zero")
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
                "Div": np.divide}[op](a, b)
    var_first = isinstance(a, _Var)
    v, C = (a, b) if var_first else (b, a)
    C = _numeric(C, "its constant operand")
    out = _broadcast_shape(v.shape, C.shape)
    if op in ("Mul", "Div"):
        v = bld.linear_ready(v)
    else:
        bld.check(v)
    if op == "Div" and not var_first:
        raise _Refusal("divides a constant by a value that depends on the input, which is "
                       "not an affine map")
    if op == "Div" and not np.all(C != 0):
        raise _Refusal("divides by zero")
    v = _lift(v, len(out))
    c = np.broadcast_to(v.c, out)
    grows = int(np.prod(out, dtype=np.int64)) != v.c.size
    if op == "Add" or (op == "Sub" and var_first):
        c = c + C if op == "Add" else c - C
        if v.A is None and not grows:          # still z itself, shifted
            return _Var(None, c, v.gen)
        _fits(bld.k, out)
        return _Var(np.array(np.broadcast_to(v.dense(), (bld.k,) + out)), c, v.gen)
    _fits(bld.k, out)
    A = np.broadcast_to(v.dense(), (bld.k,) + out)
    if op == "Sub":
        return _Var(-A, C - c, v.gen)
    if op == "Mul":
        return _Var(A * C, c * C, v.gen)
    return _Var(A / C, c / C, v.gen)


def _vector_length(shape: tuple, var_first: bool):
    """The length of the vector a tensor of ``shape`` is in a matrix product (as numpy's
    1-D operand, or a row / column with only size-1 dimensions besides), else None."""
    if len(shape) == 1:
        return shape[0]
    if var_first and int(np.prod(shape[:-1], dtype=np.int64)) == 1:
        return shape[-1]
    if not var_first and shape[-1] == 1 and int(np.prod(shape[:-2], dtype=np.int64)) == 1:
        return shape[-2]
    return None


def _matmul(bld: _Builder, a, b):
    """numpy's (and ONNX's) ``matmul(a, b)``: 1-D operands, batch dimensions broadcast."""
    if not isinstance(a, _Var) and not isinstance(b, _Var):
        a, b = _numeric(a, "an operand"), _numeric(b, "an operand")
        return _product(np.matmul, a, b)
    var_first = isinstance(a, _Var)
    v, W = (a, b) if var_first else (b, a)
    W = _numeric(W, "its constant operand")
    if len(v.shape) == 0 or W.ndim == 0:
        raise _Refusal("MatMul of a scalar (both operands need at least one dimension)")
    v = bld.linear_ready(v)
    c = _product(np.matmul, v.c, W) if var_first else _product(np.matmul, W, v.c)
    k = bld.k
    _fits(k, c.shape)
    n = _vector_length(v.shape, var_first)
    if n is not None:
        # the running tensor is a vector: each value of z meets one slice of W
        axis = (0 if W.ndim == 1 else W.ndim - 2) if var_first else W.ndim - 1
        if v.A is None:
            R = np.moveaxis(W, axis, 0)
        else:
            R = np.tensordot(v.A.reshape(k, n), W, axes=([1], [axis]))
    else:
        # one product for all k slices of A: k leads as a batch dimension, and size-1
        # batch dimensions keep it from being aligned with the weight's batch dimensions
        X = v.dense()
        M = (W[:, None] if W.ndim == 1 else W) if var_first else \
            (W[None, :] if W.ndim == 1 else W)
        pad = (M.ndim - 2) - (X.ndim - 3)
        if pad > 0:
            X = X.reshape((k,) + (1,) * pad + X.shape[1:])
        R = np.matmul(X, M) if var_first else np.matmul(M, X)
    if R.size != k * c.size:      # a disagreement with the constant part: never guess
        raise _Refusal(f"cannot read the product of shapes {list(v.shape)} and {list(W.shape)}")
    return _Var(R.reshape((k,) + c.shape), c, v.gen)


def _product(fn, a, b):
    try:
        return fn(a, b)
    except ValueError:
        raise _Refusal(f"shapes {list(a.shape)} and {list(b.shape)} do not match for a "
                       "matrix product") from None


def _transpose(v):
    """A 2-D tensor transposed (Gemm's transA / transB)."""
    if not isinstance(v, _Var):
        return v.T
    if v.A is None and 1 in v.shape:        # a row <-> a column: the same order
        return _Var(None, v.c.T, v.gen)
    return _Var(np.swapaxes(v.dense(), 1, 2), v.c.T, v.gen)


# -- the operators -------------------------------------------------------------------------

def _op_constant(bld, node, ins, attrs):
    if "value" in attrs:
        return _array(attrs["value"])
    if "value_float" in attrs or "value_floats" in attrs:
        return np.asarray(attrs.get("value_float", attrs.get("value_floats")), np.float32)
    if "value_int" in attrs or "value_ints" in attrs:
        return np.asarray(attrs.get("value_int", attrs.get("value_ints")), np.int64)
    raise _Refusal("holds no value this reader takes (value, value_float(s), value_int(s))")


def _op_identity(bld, node, ins, attrs):
    _arity(ins, 1)
    return ins[0]


def _op_relu(bld, node, ins, attrs):
    _arity(ins, 1)
    x = ins[0]
    if not isinstance(x, _Var):
        return np.maximum(_numeric(x, "its input"), 0.0)
    z = bld.flush(x)
    bld.layers.append(nn.ReLU())
    return z


def _op_sigmoid(bld, node, ins, attrs):
    _arity(ins, 1)
    x = ins[0]
    if not isinstance(x, _Var):
        raise _Refusal("a Sigmoid of a constant (its value is the runtime's rounding of "
                       "exp; compute it in the exporter instead)")
    z = bld.flush(x)
    bld.layers.append(nn.Sigmoid())
    return z


def _op_flatten(bld, node, ins, attrs):
    _arity(ins, 1)
    shape = _shape(ins[0])
    r, axis = len(shape), int(attrs.get("axis", 1))
    if not -r <= axis <= r:
        raise _Refusal(f"axis {axis} is outside [-{r}, {r}] for shape {list(shape)}")
    axis = axis + r if axis < 0 else axis
    new = (int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64)))
    return _reshape(ins[0], new)


def _op_reshape(bld, node, ins, attrs):
    if "shape" in attrs:          # opset 1 to 4: the shape is an attribute
        _arity(ins, 1)
        target = list(attrs["shape"])
    else:
        _arity(ins, 2)
        if isinstance(ins[1], _Var):
            raise _Refusal("its shape depends on the input")
        if ins[1].dtype.kind not in "iu" or ins[1].ndim != 1:
            raise _Refusal(f"its shape must be a 1-D integer tensor; got {ins[1].dtype} of "
                           f"shape {list(ins[1].shape)}")
        target = [int(d) for d in ins[1]]
    shape = _shape(ins[0])
    size = int(np.prod(shape, dtype=np.int64))
    allowzero = int(attrs.get("allowzero", 0))
    new = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(shape):
                raise _Refusal(f"shape {target} copies dimension {i}, which {list(shape)} lacks")
            d = shape[i]
        elif d < -1:
            raise _Refusal(f"shape {target} has the negative size {d}")
        new.append(d)
    if new.count(-1) > 1:
        raise _Refusal(f"shape {target} has more than one -1")
    if -1 in new:
        rest = int(np.prod([d for d in new if d != -1], dtype=np.int64))
        if rest == 0 or size % rest:
            raise _Refusal(f"cannot reshape {list(shape)} to {target}")
        new[new.index(-1)] = size // rest
    if int(np.prod(new, dtype=np.int64)) != size:
        raise _Refusal(f"cannot reshape {list(shape)} ({size} values) to {target}")
    return _reshape(ins[0], tuple(new))


def _op_binary(bld, node, ins, attrs):
    _arity(ins, 2)
    return _elementwise(bld, node.op_type, ins[0], ins[1])


def _op_matmul(bld, node, ins, attrs):
    _arity(ins, 2)
    return _matmul(bld, ins[0], ins[1])


def _op_gemm(bld, node, ins, attrs):
    if len(ins) not in (2, 3):
        raise _Refusal(f"expected 2 or 3 inputs; got {len(ins)}")
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) == 3 else None
    for name, t in (("A", a), ("B", b)):
        if len(_shape(t)) != 2:
            raise _Refusal(f"Gemm's {name} must be 2-D; got shape {list(_shape(t))}")
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if attrs.get("transA", 0):
        a = _transpose(a)
    if attrs.get("transB", 0):
        b = _transpose(b)
    # alpha scales the constant operand (exact in float64 for float32 weights)
    if not isinstance(a, _Var):
        a = _numeric(a, "Gemm's A") * alpha
    else:
        b = _numeric(b, "Gemm's B") * alpha if not isinstance(b, _Var) else b
    y = _matmul(bld, a, b)
    if c is None:
        return y
    out = _shape(y)
    try:
        fits = tuple(np.broadcast_shapes(_shape(c), out)) == out
    except ValueError:
        fits = False
    if not fits:
        raise _Refusal(f"Gemm's C of shape {list(_shape(c))} does not broadcast to the "
                       f"product's shape {list(out)}")
    if isinstance(c, _Var):
        c = c if beta == 1.0 else _elementwise(bld, "Mul", c, np.asarray(beta))
    else:
        c = _numeric(c, "Gemm's C") * beta
    return _elementwise(bld, "Add", y, c)


def _axes(ins, attrs, what: str) -> list | None:
    """Squeeze's and Unsqueeze's axes: an attribute up to opset 12, a constant input since."""
    if "axes" in attrs:
        _arity(ins, 1)
        return [int(a) for a in attrs["axes"]]
    if len(ins) == 1:
        return None
    _arity(ins, 2)
    if isinstance(ins[1], _Var) or ins[1].dtype.kind not in "iu":
        raise _Refusal(f"its axes must be a constant integer tensor ({what})")
    return [int(a) for a in np.ravel(ins[1])]


def _op_squeeze(bld, node, ins, attrs):
    shape = _shape(ins[0])
    axes = _axes(ins, attrs, "Squeeze")
    r = len(shape)
    if axes is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    axes = [a + r if a < 0 else a for a in axes]
    if any(not 0 <= a < r or shape[a] != 1 for a in axes):
        raise _Refusal(f"cannot squeeze axes {axes} of shape {list(shape)}")
    return _reshape(ins[0], tuple(d for i, d in enumerate(shape) if i not in axes))


def _op_unsqueeze(bld, node, ins, attrs):
    shape = _shape(ins[0])
    axes = _axes(ins, attrs, "Unsqueeze")
    if axes is None:
        raise _Refusal("has no axes")
    r = len(shape) + len(axes)
    axes = sorted(a + r if a < 0 else a for a in axes)
    if len(set(axes)) != len(axes) or any(not 0 <= a < r for a in axes):
        raise _Refusal(f"cannot insert axes {axes} into shape {list(shape)}")
    new, rest = [], iter(shape)
    for i in range(r):
        new.append(1 if i in axes else next(rest))
    return _reshape(ins[0], tuple(new))


def _op_transpose(bld, node, ins, attrs):
    _arity(ins, 1)
    x, r = ins[0], len(_shape(ins[0]))
    perm = [int(p) for p in attrs.get("perm", range(r - 1, -1, -1))]
    if sorted(perm) != list(range(r)):
        raise _Refusal(f"perm {perm} is not a permutation of the {r} axes")
    if not isinstance(x, _Var):
        return np.transpose(x, perm)
    c = np.transpose(x.c, perm)
    moved = [p for p in perm if x.shape[p] != 1]
    if x.A is None and moved == sorted(moved):     # the values keep their order: a reshape
        return _Var(None, c, x.gen)
    return _Var(np.transpose(x.dense(), [0] + [p + 1 for p in perm]), c, x.gen)


def _op_shape(bld, node, ins, attrs):
    _arity(ins, 1)
    shape = np.asarray(_shape(ins[0]), dtype=np.int64)    # an open batch dimension reads 1
    r = len(shape)
    start, end = int(attrs.get("start", 0)), int(attrs.get("end", r))
    return shape[slice(max(start + r, 0) if start < 0 else start,
                       max(end + r, 0) if end < 0 else end)]


def _constants(ins, what: str) -> list:
    if any(isinstance(v, _Var) for v in ins):
        raise _Refusal(f"{what} a tensor that depends on the input; this reader takes it only "
                       "on constants (shape arithmetic)")
    return ins


def _op_gather(bld, node, ins, attrs):
    _arity(ins, 2)
    data, idx = _constants(ins, "selects values of")
    if idx.dtype.kind not in "iu":
        raise _Refusal("its indices are not integers")
    axis = int(attrs.get("axis", 0))
    n = data.shape[axis]
    if np.any((idx < -n) | (idx >= n)):
        raise _Refusal(f"an index is outside [-{n}, {n - 1}]")
    return np.take(data, np.where(idx < 0, idx + n, idx), axis=axis)


def _op_concat(bld, node, ins, attrs):
    parts = _constants(ins, "joins")
    try:
        return np.concatenate(parts, axis=int(attrs["axis"]))
    except (KeyError, ValueError) as e:
        raise _Refusal(f"cannot join shapes {[list(p.shape) for p in parts]} ({e})") from None


#: Cast's target types this reader computes with (ONNX TensorProto codes)
_CAST = {1: np.float32, 11: np.float64, 6: np.int32, 7: np.int64}


def _op_cast(bld, node, ins, attrs):
    _arity(ins, 1)
    to = int(attrs.get("to", 0))
    if isinstance(ins[0], _Var):
        if _CAST.get(to) is not bld.dtype.type:
            raise _Refusal("casts the network's values to another type, whose rounding the "
                           "layers would not carry")
        return ins[0]
    if to not in _CAST:
        raise _Refusal(f"casts to the ONNX type {to}; this reader folds casts to float32, "
                       "float64, int32 and int64")
    return ins[0].astype(_CAST[to])


def _op_dropout(bld, node, ins, attrs):
    """Inference's Dropout is the identity; a graph that asks for training mode is refused."""
    if not 1 <= len(ins) <= 3:
        raise _Refusal(f"expected 1 to 3 inputs; got {len(ins)}")
    if "is_test" in attrs and not attrs["is_test"]:
        raise _Refusal("runs in training mode (is_test = 0), which drops values at random")
    if len(ins) == 3:
        mode = ins[2]
        if isinstance(mode, _Var) or np.any(mode):
            raise _Refusal("runs in training mode, which drops values at random")
    return ins[0]


def _arity(ins, n):
    if len(ins) != n:
        raise _Refusal(f"expected {n} inputs; got {len(ins)}")


_HANDLERS = {"Gemm": _op_gemm, "MatMul": _op_matmul, "Add": _op_binary, "Sub": _op_binary,
             "Mul": _op_binary, "Div": _op_binary, "Relu": _op_relu, "Sigmoid": _op_sigmoid,
             "Flatten": _op_flatten,
             "Reshape": _op_reshape, "Identity": _op_identity, "Constant": _op_constant,
             "Squeeze": _op_squeeze, "Unsqueeze": _op_unsqueeze, "Transpose": _op_transpose,
             "Shape": _op_shape, "Gather": _op_gather, "Concat": _op_concat, "Cast": _op_cast,
             "Dropout": _op_dropout}


# -- the graph -----------------------------------------------------------------------------

def _label(node, index: int) -> str:
    name = repr(node.name) if node.name else f"#{index} (unnamed, output {list(node.output)})"
    return f"node {name} ({node.op_type})"


def _proto():
    """onnx's generated protobuf classes, ``onnx.onnx_ml_pb2``, without the rest of the package.

    ``import onnx`` also loads ``ml_dtypes`` (a second or more of every ``python -m verifier``
    start on this machine), and the reader needs only the message classes. The module is put
    in ``sys.modules`` under its own name, so a later ``import onnx`` reuses it: one set of
    classes, one entry in protobuf's descriptor pool.
    """
    name = "onnx.onnx_ml_pb2"
    if name not in sys.modules:
        spec = importlib.util.find_spec("onnx")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("the onnx package is not installed (pip install onnx)")
        where = Path(list(spec.submodule_search_locations)[0]) / "onnx_ml_pb2.py"
        module_spec = importlib.util.spec_from_file_location(name, where)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def _tensors(model):
    """The tensors the reader may decode: initializers and Constant nodes' ``value``."""
    g = model.graph
    return list(g.initializer) + [a.t for n in g.node if n.op_type == "Constant"
                                  for a in n.attribute if a.name == "value"]


def _open(source, FormatError):
    """(model, name for messages). Parsed with ``_proto()`` alone; onnx's own loader is used
    only for a model that keeps tensors in external files, which it knows how to find."""
    pb = _proto()
    if isinstance(source, pb.ModelProto):
        return source, "<ONNX model>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, read = "<ONNX bytes>", lambda: bytes(source)
    elif Path(source).suffix == ".gz":     # VNN-COMP ships its networks gzipped since 2022
        name, read = Path(source).name, lambda: gzip.decompress(Path(source).read_bytes())
    else:
        name, read = Path(source).name, lambda: Path(source).read_bytes()
    try:
        model = pb.ModelProto()
        model.ParseFromString(read())
        if isinstance(source, (str, Path)) and Path(source).suffix != ".gz" and any(
                t.data_location == pb.TensorProto.EXTERNAL for t in _tensors(model)):
            import onnx

            model = onnx.load(str(source))
    except OSError as e:
        raise FormatError(f"{name}: cannot read the file ({e.strerror or e})") from None
    except Exception as e:
        raise FormatError(f"{name}: not an ONNX model ({type(e).__name__}: {e})") from None
    if not model.HasField("graph"):
        raise FormatError(f"{name}: not an ONNX model (no graph)")
    return model, name


#: numpy's type for the TensorProto data types ``_array`` decodes itself, with the field
#: that holds them when ``raw_data`` is empty
_DECODED = {1: ("<f4", "float_data"), 11: ("<f8", "double_data"), 7: ("<i8", "int64_data"),
            6: ("<i4", "int32_data")}


def _array(t) -> np.ndarray:
    """A TensorProto's values, as ``onnx.numpy_helper.to_array`` gives them: decoded here for
    float32, float64, int64 and int32 stored in the file; by onnx for everything else."""
    if t.data_type in _DECODED and t.data_location == 0 and not t.HasField("segment"):
        dtype, field = _DECODED[t.data_type]
        shape = tuple(int(d) for d in t.dims)
        if t.raw_data:
            values = np.frombuffer(t.raw_data, dtype=dtype)
        else:
            values = np.asarray(getattr(t, field), dtype=dtype)
        return values.astype(np.dtype(dtype).newbyteorder("="), copy=True).reshape(shape)
    from onnx import numpy_helper

    return numpy_helper.to_array(t)


def _attribute(a):
    """An AttributeProto's value, as ``onnx.helper.get_attribute_value`` gives it, for the
    kinds the operators here take (float, int, string, tensor and their lists)."""
    kind = {1: "f", 2: "i", 3: "s", 4: "t", 6: "floats", 7: "ints", 8: "strings"}.get(a.type)
    if kind is None:
        from onnx import helper

        return helper.get_attribute_value(a)
    value = getattr(a, kind)
    return list(value) if kind in ("floats", "ints", "strings") else value


def _input_shape(inp, where: str, FormatError) -> tuple:
    t = inp.type
    if t.WhichOneof("value") != "tensor_type":
        raise FormatError(f"{where}: the input {inp.name!r} is not a tensor")
    if t.tensor_type.elem_type not in _FLOAT_TYPES:
        raise FormatError(f"{where}: the input {inp.name!r} is not a floating-point tensor")
    if t.tensor_type.elem_type in (10, 16):
        # the network then computes in half precision, whose rounding verify() does not bound
        raise FormatError(f"{where}: the input {inp.name!r} is a 16-bit float tensor; verify() "
                          "bounds float32 and float64 networks (convert the model first)")
    if not t.tensor_type.HasField("shape"):
        raise FormatError(f"{where}: the input {inp.name!r} has no shape")
    dims = list(t.tensor_type.shape.dim)
    shape = []
    for i, d in enumerate(dims):
        if d.WhichOneof("value") == "dim_value" and d.dim_value > 0:
            shape.append(int(d.dim_value))
        elif i == 0 and len(dims) >= 2:
            shape.append(1)       # a batch dimension: one point at a time
        else:
            raise FormatError(f"{where}: dimension {i} of the input {inp.name!r} has no "
                              "size; only the first (the batch) of two or more may be left open")
    return tuple(shape)


def read(source) -> nn.Sequential:
    """The network an ONNX file (a path, its bytes, or an ``onnx.ModelProto``) holds."""
    from verifier.formats import FormatError

    model, name = _open(source, FormatError)
    g = model.graph
    try:
        consts = {t.name: _array(t) for t in g.initializer}
    except Exception as e:
        raise FormatError(f"{name}: an initializer cannot be read ({type(e).__name__}: "
                          f"{e})") from None
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise FormatError(f"{name}: expected one input (besides initializers); found "
                          f"{len(inputs)}: {[i.name for i in inputs]}")
    if len(g.output) != 1:
        raise FormatError(f"{name}: expected one output; found {len(g.output)}: "
                          f"{[o.name for o in g.output]}")
    x_name, y_name = inputs[0].name, g.output[0].name
    shape = _input_shape(inputs[0], name, FormatError)
    n_in = int(np.prod(shape, dtype=np.int64))
    if n_in == 0:
        raise FormatError(f"{name}: the input {x_name!r} has no values")

    # who writes each tensor
    producer = {}
    for i, node in enumerate(g.node):
        for out in node.output:
            if not out:
                continue
            if out in producer or out == x_name or out in consts:
                raise FormatError(f"{name}: {_label(node, i)} writes {out!r}, which is "
                                  "already the input, an initializer or another node's output")
            producer[out] = i

    # the nodes the output needs: a walk back from it
    needed, stack, seen = set(), [(y_name, None)], set()
    while stack:
        t, user = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        if t == x_name or t in consts:
            continue
        if t not in producer:
            where = "the graph output" if user is None else \
                f"{_label(g.node[user], user)} reads it"
            raise FormatError(f"{name}: no node produces the tensor {t!r} ({where})")
        i = producer[t]
        needed.add(i)
        stack.extend((s, i) for s in g.node[i].input if s)

    # data-dependence order (Kahn; ties in file order)
    deps = {i: {producer[s] for s in g.node[i].input if s in producer} for i in needed}
    users = {i: [] for i in needed}
    for i, ds in deps.items():
        for d in ds:
            users[d].append(i)
    left = {i: len(ds) for i, ds in deps.items()}
    ready = sorted(i for i, n in left.items() if n == 0)
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for u in users[i]:
            left[u] -= 1
            if left[u] == 0:
                ready.append(u)
        ready.sort()
    if len(order) != len(needed):
        i = min(set(needed) - set(order))
        raise FormatError(f"{name}: the graph has a cycle through {_label(g.node[i], i)}")

    # float64 layers for a float64 graph (what onnxruntime computes in; some VNN-COMP
    # networks, nn4sys's, compute something else in float32), float32 layers otherwise
    double = inputs[0].type.tensor_type.elem_type == 11
    bld = _Builder(n_in, np.dtype(np.float64 if double else np.float32))
    values = dict(consts)
    values[x_name] = bld.identity(shape)
    for i in order:
        node = g.node[i]
        op, where = node.op_type, f"{name}: {_label(node, i)}"
        if node.domain not in ("", "ai.onnx"):
            raise FormatError(f"{where}: the operator domain {node.domain!r} is not supported")
        ins = [values.get(s) for s in node.input]
        varying = [s for s, v in zip(node.input, ins) if isinstance(v, _Var)]
        if len(varying) > 1:
            raise FormatError(f"{where}: combines tensors that all depend on the input "
                              f"({', '.join(map(repr, varying))}); only chains of layers "
                              "are supported (no residual Add, no Concat)")
        if op not in _HANDLERS:
            raise FormatError(f"{where}: the ONNX operator {op} is not supported; supported: "
                              f"{', '.join(SUPPORTED)}")
        if len(node.output) != 1:
            raise FormatError(f"{where}: expected one output; got {len(node.output)}")
        extra = sorted({a.name for a in node.attribute} - _ATTRS[op])
        if extra:
            raise FormatError(f"{where}: the attribute(s) {extra} are not supported")
        if any(not s for s in node.input):
            raise FormatError(f"{where}: an optional input left empty is not supported")
        try:
            attrs = {a.name: _attribute(a) for a in node.attribute}
            values[node.output[0]] = _HANDLERS[op](bld, node, ins, attrs)
        except _Refusal as e:
            raise FormatError(f"{where}: {e}") from None
        except Exception as e:     # never a bare traceback for a file we cannot read
            raise FormatError(f"{where}: cannot be read ({type(e).__name__}: {e})") from None

    y = values[y_name]
    try:
        if isinstance(y, _Var):
            y = bld.flush(y)
            n_out = y.c.size
        else:   # the output does not depend on the input (so no layer was emitted)
            c = _numeric(np.asarray(y), "the output")
            n_out = c.size
            _fits(n_in, c.shape)
            bld.flush(_Var(np.zeros((n_in,) + c.shape), c, bld.gen))   # a zero matrix
        if not any(isinstance(m, nn.Linear) for m in bld.layers):
            _fits(n_in, (n_in,))     # readers look for the first Linear: an identity one
            bld.layers.insert(0, _identity_linear(n_in, double))
    except _Refusal as e:
        raise FormatError(f"{name}: the output {y_name!r}: {e}") from None
    layers = bld.layers
    if len(shape) > 2:
        layers.insert(0, nn.Flatten())
    net = nn.Sequential(*layers).eval()
    net.n_inputs, net.n_outputs = n_in, n_out
    return net


def _identity_linear(n: int, double: bool) -> nn.Linear:
    lin = nn.Linear(n, n, dtype=torch.float64 if double else torch.float32)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(n))
        lin.bias.zero_()
    return lin

