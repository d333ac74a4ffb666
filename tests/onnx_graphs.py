"""Helpers for the ONNX loader's tests: graphs by hand (``onnx.helper``), and onnxruntime as
the independent evaluator of what a graph computes."""
from __future__ import annotations

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def model_bytes(nodes, inputs, output, inits=(), *, out_shape=None, opset=OPSET,
                double=False) -> bytes:
    """A model from ``nodes``; ``inputs`` is ``[(name, shape), ...]`` (shape entries may be
    strings: symbolic sizes), ``output`` the output's name, ``inits`` ``{name: array}``
    (or pairs). Float tensors are float32, or float64 with ``double``."""
    inits = dict(inits)
    elem, real = (TensorProto.DOUBLE, np.float64) if double else (TensorProto.FLOAT, np.float32)
    graph = helper.make_graph(
        list(nodes), "g",
        [helper.make_tensor_value_info(n, elem, list(s)) for n, s in inputs],
        [helper.make_tensor_value_info(output, elem, out_shape)],
        [numpy_helper.from_array(np.asarray(a, real if np.asarray(a).dtype.kind == "f"
                                            else np.asarray(a).dtype), n)
         for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def session(data: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3          # no warnings on stderr (unused initializers)
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def ort_outputs(data: bytes, points: np.ndarray, in_shape) -> np.ndarray:
    """onnxruntime's output for each point (rows of ``points``), flattened: (K, m)."""
    sess = session(data)
    name = sess.get_inputs()[0].name
    real = np.float64 if "double" in sess.get_inputs()[0].type else np.float32
    out = [sess.run(None, {name: p.reshape(in_shape).astype(real)})[0].reshape(-1)
           for p in points]
    return np.stack(out).astype(np.float64)


def net_outputs(net, points: np.ndarray) -> np.ndarray:
    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        return net(torch.tensor(points, dtype=dtype)).double().numpy()


def close(a, b, scale=1.0):
    """Float32 agreement: a few ulps of the values' size, summed over the products."""
    tol = 1e-5 * (1.0 + scale)
    return np.allclose(a, b, rtol=1e-4, atol=tol)
