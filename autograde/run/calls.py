"""Calls into the student's kernel: the kernel's side, run by the runner as a hidden cell.

When a test reads a student's function, method or object that cannot cross as data, the export
(:mod:`autograde.run.export`) keeps it in the kernel's registry and hands the check a handle. A
call from the check reaches the runner (:mod:`autograde.run.serve`), which writes the request
beside the box's temporary files and has the kernel run :func:`answer` on it. The arguments are
what the check made (numbers, arrays, tensors, networks as chains of Linear/ReLU/Sigmoid/Softmax, and
handles of objects from this kernel); the answer is encoded as exports are, so anything that is
not data comes back as a new handle.

Nothing here is trusted by the check: this code runs next to student code, which may have
replaced it. The check reads every answer with the same reader as the exports
(:func:`autograde.artifacts.read_answer`).

Request (``<base>.request.json``)::

    {"op": "call", "handle": n, "args": [node...], "kwargs": [[name, node]...]}
    {"op": "getattr", "handle": n, "name": str}

with the arrays of ``{"array": key}`` nodes in ``<base>.request.npz``. Answer
(``<base>.answer.json`` and ``.npz``): ``{"format": 1, "test": "call", "values": {"result":
node}}`` or ``{"format": 1, "test": "call", "error": "Type: message"}``.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from autograde.run import export


def _network(body: dict, arrays: dict) -> Any:
    import torch
    from torch import nn

    modules = []
    for layer in body["layers"]:
        if layer in ("relu", "sigmoid"):
            modules.append(nn.ReLU() if layer == "relu" else nn.Sigmoid())
            continue
        weight = torch.as_tensor(arrays[layer["weight"]])
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=layer["bias"] is not None, dtype=weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(weight)
            if layer["bias"] is not None:
                linear.bias.copy_(torch.as_tensor(arrays[layer["bias"]]))
        modules.append(linear)
    if body.get("softmax"):
        modules.append(nn.Softmax(dim=1))
    return nn.Sequential(*modules).eval()


def decode(node: Any, arrays: dict) -> Any:
    """The value the check sent (see :func:`autograde.check.channel.encode`)."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    (tag, body), *rest = node.items()
    if tag == "float":
        return float(body)
    if tag in ("list", "tuple"):
        items = [decode(item, arrays) for item in body]
        return items if tag == "list" else tuple(items)
    if tag == "dict":
        return {key: decode(item, arrays) for key, item in body}
    if tag == "array":
        values = arrays[body].copy()
        if dict(rest).get("kind") == "tensor":
            import torch

            return torch.as_tensor(values)
        return values
    if tag == "bytes":
        return arrays[body].tobytes()
    if tag == "ref":
        return export.REGISTRY[body]
    if tag == "network":
        return _network(body, arrays)
    if tag == "verdict":
        from verifier.result import VerificationResult

        return VerificationResult(body["status"])
    raise ValueError(f"a request holds an unknown value {tag!r}")


def _perform(request: dict, arrays: dict) -> Any:
    target = export.REGISTRY[request["handle"]]
    if request["op"] == "getattr":
        return getattr(target, request["name"])
    args = [decode(item, arrays) for item in request["args"]]
    kwargs = {name: decode(item, arrays) for name, item in request["kwargs"]}
    return target(*args, **kwargs)


def answer(base: str, seed: int) -> None:
    """Carry out the request at `base` and write its answer beside it."""
    with open(f"{base}.request.json", encoding="utf-8") as handle:
        request = json.load(handle)
    with np.load(f"{base}.request.npz", allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    writer = export._Writer(seed)
    document: dict = {"format": export.FORMAT, "test": "call"}
    try:
        document["values"] = {"result": writer.encode(_perform(request, arrays))}
    except Exception as error:  # the student's code raised: that is the answer
        document = {**document, "error": f"{type(error).__name__}: {error}"[:export.MAX_STRING]}
        writer.arrays = {}
    sys.stdout.flush()
    export.write(f"{base}.answer", document, writer.arrays)
