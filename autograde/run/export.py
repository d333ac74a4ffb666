"""The exporter: runs in the student's kernel, in place of each test cell, and writes plain data.

For test cell ``test_id`` the grader puts a cell calling :func:`snapshot` with the names that
test reads. Each value is written as JSON (``<test_id>.json``) plus numpy arrays
(``<test_id>.npz``, written with ``np.savez``: no pickle). What it can write:

* ``None``, booleans, numbers, strings, bytes; lists, tuples and string-keyed dicts of them;
* numpy arrays and torch tensors (as arrays; floats, integers, booleans);
* ``verify`` results (their status);
* networks (``nn.Module``): the chain ``verifier.network.parse`` reads (Linear weights and
  biases, ReLU, a final Softmax), the network's own outputs on the grader's challenge inputs,
  and, when it has a ``loss(y_hat, y)`` method, the loss on the challenge predictions. A network
  the chain cannot carry (a Tanh, a convolution) is exported as the verifier's reason, the
  layers it is made of (``structure``) and a handle for calls;
* anything else (a function, a class, an object of the student's own class) as a handle:
  ``{"remote": {"handle": n, "type": <type name>, "callable": bool, "name": <its name>}}``. The object stays in this
  kernel (:data:`REGISTRY`); the check may call it through the runner
  (:mod:`autograde.run.calls`), and what comes back is encoded the same way.

Nothing here is trusted by the grader: this code runs next to student code, which may have
changed it. The reader (:mod:`autograde.artifacts`) checks every file against the schema and
the check phase checks every claim (see :mod:`autograde.run.challenge`). The format is
described in :mod:`autograde.artifacts`.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from autograde.run import challenge

FORMAT = 1
MAX_STRING = 2_000
MAX_ITEMS = 20_000  # nodes in one snapshot
MAX_DEPTH = 8
MAX_ARRAY_BYTES = 32 << 20  # per snapshot
MAX_MODULES = 256  # modules listed in a network's structure
STRUCTURE_ATTRIBUTES = ("in_features", "out_features", "dim", "start_dim", "end_dim", "negative_slope", "p")

REGISTRY: dict[int, Any] = {}  # handle -> the object it stands for, in this kernel


def register(value: Any) -> int:
    """The handle of `value` in :data:`REGISTRY` (a new one each time it is exported)."""
    handle = len(REGISTRY) + 1
    REGISTRY[handle] = value
    return handle


class _Writer:
    def __init__(self, seed: int):
        self.seed = seed
        self.arrays: dict[str, np.ndarray] = {}
        self.array_bytes = 0
        self.items = 0

    def array(self, values: Any) -> str | None:
        array = np.asarray(values)
        if array.dtype.kind == "f":
            array = array.astype(np.float64 if array.dtype == np.float64 else np.float32)
        elif array.dtype.kind in "iu":
            array = array if array.dtype == np.uint8 else array.astype(np.int64)
        elif array.dtype.kind != "b":
            return None
        if self.array_bytes + array.nbytes > MAX_ARRAY_BYTES:
            return None
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(array)
        self.array_bytes += array.nbytes
        return key

    def encode(self, value: Any, depth: int = 0) -> Any:
        self.items += 1
        if self.items > MAX_ITEMS or depth > MAX_DEPTH:
            return {"unsupported": "too large"}
        torch = sys.modules.get("torch")
        if value is None or isinstance(value, (bool, str)):
            return value[:MAX_STRING] if isinstance(value, str) else value
        if isinstance(value, (int, np.integer)) and abs(int(value)) < 2 ** 63:
            return int(value)
        if isinstance(value, (float, np.floating)):
            number = float(value)
            return number if math.isfinite(number) else {"float": repr(number)}
        if isinstance(value, (bytes, bytearray)):
            key = self.array(np.frombuffer(bytes(value), dtype=np.uint8))
            return {"bytes": key} if key else {"unsupported": "bytes (too large)"}
        if isinstance(value, (list, tuple)):
            kind = "list" if isinstance(value, list) else "tuple"
            return {kind: [self.encode(item, depth + 1) for item in value[:MAX_ITEMS]]}
        if isinstance(value, dict) and all(isinstance(key, str) for key in value):
            return {"dict": [[key[:MAX_STRING], self.encode(item, depth + 1)] for key, item in value.items()]}
        if isinstance(value, np.ndarray) or (torch is not None and isinstance(value, torch.Tensor)):
            data = value.detach().cpu().numpy() if not isinstance(value, np.ndarray) else value
            key = self.array(data)
            kind = "ndarray" if isinstance(value, np.ndarray) else "tensor"
            return {"array": key, "kind": kind} if key else {"unsupported": f"{kind} {data.dtype}"}
        result_module = sys.modules.get("verifier.result")
        if result_module is not None and isinstance(value, result_module.VerificationResult):
            return {"verdict": {"status": str(value.status)[:MAX_STRING]}}
        if torch is not None and isinstance(value, torch.nn.Module):
            return {"network": self.network(value)}
        return self.remote(value)

    def remote(self, value: Any) -> dict:
        try:
            name = getattr(value, "__qualname__", None) if isinstance(value, type) or callable(value) else None
        except Exception:  # a __getattr__ of the student's own
            name = None
        name = name if isinstance(name, str) else type(value).__name__
        return {"remote": {"handle": register(value), "type": type(value).__name__[:MAX_STRING],
                           "callable": callable(value), "name": name[:MAX_STRING]}}

    def structure(self, net: Any) -> list:
        """The modules of `net` (``named_modules`` order): name, parent, type, whether it is one of
        torch.nn's own classes, the attributes that describe it, a Linear's weight and bias."""
        import torch

        modules = []
        index = {}
        for name, module in net.named_modules():
            if len(modules) == MAX_MODULES:
                break
            parent = name.rpartition(".")[0] if name else None
            kind = type(module)
            entry = {"name": name[:MAX_STRING], "parent": index.get(parent, -1) if name else -1,
                     "type": kind.__name__[:MAX_STRING], "torch": kind.__module__.startswith("torch.nn."),
                     "attributes": {key: getattr(module, key) for key in STRUCTURE_ATTRIBUTES
                                    if isinstance(getattr(module, key, None), (int, float)) and
                                    not isinstance(getattr(module, key), bool)}}
            if isinstance(module, torch.nn.Linear):
                entry["weight"] = self.array(module.weight.detach().cpu().numpy())
                entry["bias"] = None if module.bias is None else self.array(module.bias.detach().cpu().numpy())
            index[name] = len(modules)
            modules.append(entry)
        return modules

    def network(self, net: Any) -> dict:
        import torch
        from verifier.network import parse

        try:
            chain = parse(net)
        except Exception as error:  # the verifier cannot read it: say why, and keep it for calls
            reason = f"{type(error).__name__}: {error}"[:MAX_STRING]
            try:
                structure = self.structure(net)
            except Exception:  # modules that cannot even be listed
                return {"error": reason}
            return {"error": reason, "remote": register(net), "structure": structure,
                    "sequential": isinstance(net, torch.nn.Sequential)}
        found = self.chain(chain)
        n_in = next(m for m in chain.layers if not isinstance(m, str)).in_features
        found["outputs"] = self.answer(lambda: net(torch.as_tensor(challenge.network_inputs(self.seed, n_in))))
        if callable(getattr(net, "loss", None)):
            n_out = [m for m in chain.layers if not isinstance(m, str)][-1].out_features
            found["loss"] = [self.answer(lambda p=p, y=y: net.loss(torch.as_tensor(p), torch.as_tensor(y)))
                             for p, y in challenge.loss_inputs(self.seed, n_out)]
        return found

    def chain(self, chain: Any) -> dict:
        """``layers`` ("relu", "sigmoid" or the keys of a Linear's weight and bias) and ``softmax`` of a chain
        ``verifier.network.parse`` read."""
        layers = []
        for layer in chain.layers:
            if isinstance(layer, str):     # an activation: "relu" or "sigmoid"
                layers.append(str(layer))
                continue
            bias = layer.bias.detach().cpu().numpy() if layer.bias is not None else None
            layers.append({"weight": self.array(layer.weight.detach().cpu().numpy()),
                           "bias": self.array(bias) if bias is not None else None})
        return {"layers": layers, "softmax": bool(chain.softmax)}

    def answer(self, compute) -> dict:
        """{"array": key} with what `compute()` returned, or {"error": message}."""
        import torch

        try:
            with torch.no_grad():
                value = torch.as_tensor(compute()).detach().double()
            return {"array": self.array(value.cpu().numpy())}
        except Exception as error:
            return {"error": f"{type(error).__name__}: {error}"[:MAX_STRING]}


def write(base: str, document: dict, arrays: dict) -> None:
    """``base.npz`` (the arrays), then ``base.json`` (the document)."""
    np.savez(f"{base}.npz", **arrays)
    with open(f"{base}.json", "w", encoding="utf-8") as handle:
        json.dump(document, handle)


def snapshot(test_id: str, namespace: dict, names: list[str], folder: str, seed: int) -> None:
    """Write the values of `names` in `namespace` as ``folder/<test_id>.json`` and ``.npz``;
    the document's ``remotes`` counts the objects kept in this kernel for calls."""
    writer = _Writer(seed)
    before = len(REGISTRY)
    values = {name: writer.encode(namespace[name]) if name in namespace else {"missing": True}
              for name in names}
    os.makedirs(folder, exist_ok=True)
    write(str(Path(folder) / test_id), {"format": FORMAT, "test": test_id, "values": values,
                                        "remotes": len(REGISTRY) - before}, writer.arrays)
