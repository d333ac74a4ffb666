"""What crosses from the run phase to the check phase, and the reader that trusts none of it.

The run phase leaves, per test cell ``T``, ``artifacts/T.json`` and ``artifacts/T.npz`` (written
by :mod:`autograde.run.export`). The JSON is ``{"format": 1, "test": T, "values": {name: node}}``
where a node is one of:

=============================================  ==========================================
``null``, ``true``, a number, a string         itself
``{"float": "inf" | "-inf" | "nan"}``          that float
``{"list": [node...]}``, ``{"tuple": [...]}``  a list, a tuple
``{"dict": [[key, node]...]}``                 a dict with string keys
``{"array": key, "kind": "tensor"|"ndarray"}``  array ``key`` of the ``.npz``
``{"bytes": key}``                             bytes (a uint8 array of the ``.npz``)
``{"verdict": {"status": str}}``               a ``verify`` result
``{"network": {...}}``                         a chain: ``layers`` (``"relu"``, ``"sigmoid"`` or
                                               ``{"weight": key, "bias": key|null}``),
                                               ``softmax``, ``outputs`` and optional
                                               ``loss`` (challenge answers, each
                                               ``{"array": key}`` or ``{"error": str}``),
                                               or only ``{"error": str}``
                                               A network the chain cannot carry has
                                               ``error`` with ``remote`` (a handle),
                                               ``structure`` and ``sequential`` too
``{"remote": {"handle": n, "type": name,       an object left in the student's kernel,
"callable": bool, "name": str}}``              reachable only by calls
``{"unsupported": type name}``, ``{"missing": true}``
=============================================  ==========================================

A call's answer (:func:`read_answer`) is the same document with ``"test": "call"`` and one value,
``result``, or ``{"format": 1, "test": "call", "error": "Type: message"}`` when the student's code
raised.

:func:`read_snapshot` checks sizes before reading, loads the ``.npz`` with
``allow_pickle=False``, accepts only float, integer and boolean arrays, checks every node and the
shapes of every chain, and returns plain Python values (:class:`Array`, :class:`Network`, ...).
Anything else raises :class:`ArtifactError`, whose message says what was expected.
"""
from __future__ import annotations

import io
import json
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

MAX_JSON_BYTES = 16 << 20
MAX_NPZ_BYTES = 64 << 20  # uncompressed, all arrays of one snapshot
MAX_DEPTH = 10
MAX_STRING = 2_000
ARRAY_KINDS = ("tensor", "ndarray")


class ArtifactError(ValueError):
    """A run-phase file that does not follow the schema; the message says what was expected."""


@dataclass(frozen=True)
class Array:
    values: np.ndarray
    kind: str  # "tensor" or "ndarray"


@dataclass(frozen=True)
class Verdict:
    status: str


@dataclass(frozen=True)
class Network:
    """A checked chain: `layers` holds ``"relu"``, ``"sigmoid"`` or (weight (out, in), bias (out,) or
    None)."""

    layers: list
    softmax: bool
    outputs: np.ndarray | str  # the network's answers to the challenge, or the error it raised
    loss: list | None  # per loss challenge: an array or the error message; None: no loss method


@dataclass(frozen=True)
class Remote:
    """An object that stays in the student's kernel: `handle` names it in calls."""

    handle: int
    type_name: str
    callable: bool
    name: str  # the function's or class's own name; else the type's


@dataclass(frozen=True)
class Module:
    """One entry of a remote network's structure (``named_modules`` order)."""

    name: str
    parent: int  # index of the parent entry; -1 for the network itself
    type_name: str
    torch: bool  # one of torch.nn's own classes
    attributes: dict  # in_features, out_features, dim, ... (numbers)
    weight: np.ndarray | None = None  # a Linear's
    bias: np.ndarray | None = None


@dataclass(frozen=True)
class RemoteNetwork:
    """A network the chain format cannot carry: the verifier's `reason`, its modules, and the
    handle through which the check may call it."""

    reason: str
    remote: Remote
    structure: list  # [Module, ...]
    sequential: bool


@dataclass(frozen=True)
class Unreadable:
    """A value the exporter could not turn into data (its type name), or a network it could not
    read (the verifier's message)."""

    reason: str


@dataclass(frozen=True)
class Missing:
    """The name was not defined when the test would have run."""


Value = Union[None, bool, int, float, str, bytes, list, tuple, dict, Array, Verdict, Network, Remote, RemoteNetwork,
              Unreadable, Missing]
MAX_MODULES = 256
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


def _fail(what: str) -> ArtifactError:
    return ArtifactError(f"artifact: {what}")


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise _fail(f"{path.name} is missing")
    return _arrays_from(path, path.name)


def _arrays_from(source: Path | io.BytesIO, name: str) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(source) as archive:
            declared = sum(info.file_size for info in archive.infolist())
        if declared > MAX_NPZ_BYTES:
            raise _fail(f"{name} holds {declared} bytes, more than {MAX_NPZ_BYTES}")
        if isinstance(source, io.BytesIO):
            source.seek(0)
        with np.load(source, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ArtifactError:
        raise
    except Exception as error:  # not a zip, damaged, or an object array (pickle refused)
        raise _fail(f"{name} is not a plain .npz file ({type(error).__name__})") from None
    for key, array in arrays.items():
        if array.dtype.kind not in "fiub" or array.dtype.hasobject:
            raise _fail(f"array {key} has dtype {array.dtype}; expected floats, integers or booleans")
    return arrays


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    def array(self, key: Any, where: str) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise _fail(f"{where}: expected the key of an array in the .npz, got {str(key)[:40]!r}")
        return self.arrays[key]

    def node(self, node: Any, depth: int = 0) -> Value:
        if depth > MAX_DEPTH:
            raise _fail(f"values nested deeper than {MAX_DEPTH}")
        if node is None or isinstance(node, (bool, int)):
            return node
        if isinstance(node, float):
            return node
        if isinstance(node, str):
            return node[:MAX_STRING]
        if not isinstance(node, dict) or len(node) not in (1, 2):
            raise _fail(f"expected a value node, got {type(node).__name__}")
        (tag, body), *rest = node.items()
        if tag == "float" and body in ("inf", "-inf", "nan"):
            return float(body)
        if tag in ("list", "tuple") and isinstance(body, list):
            items = [self.node(item, depth + 1) for item in body]
            return items if tag == "list" else tuple(items)
        if tag == "dict" and isinstance(body, list) and all(
                isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in body):
            return {key[:MAX_STRING]: self.node(item, depth + 1) for key, item in body}
        if tag == "array" and rest and rest[0][0] == "kind" and rest[0][1] in ARRAY_KINDS:
            return Array(self.array(body, "array"), rest[0][1])
        if tag == "bytes":
            data = self.array(body, "bytes")
            if data.dtype != np.uint8 or data.ndim != 1:
                raise _fail("bytes must be a 1-D uint8 array")
            return data.tobytes()
        if tag == "verdict" and isinstance(body, dict) and isinstance(body.get("status"), str):
            return Verdict(body["status"][:MAX_STRING])
        if tag == "network" and isinstance(body, dict):
            return self.network(body)
        if tag == "remote" and isinstance(body, dict):
            return self.remote(body)
        if tag == "unsupported" and isinstance(body, str):
            return Unreadable(f"a {body[:200]} cannot be graded (expected data, tensors, networks or verify results)")
        if tag == "missing" and body is True:
            return Missing()
        raise _fail(f"unknown value node {str(tag)[:40]!r}")

    def answer(self, node: Any) -> np.ndarray | str:
        if isinstance(node, dict) and isinstance(node.get("error"), str):
            return node["error"][:MAX_STRING]
        if isinstance(node, dict) and set(node) == {"array"}:
            values = self.array(node["array"], "challenge answer")
            if values.dtype.kind != "f":
                raise _fail("challenge answers must be floats")
            return values
        raise _fail("expected a challenge answer ({'array': key} or {'error': message})")

    def remote(self, body: Any) -> Remote:
        if not (isinstance(body, dict) and type(body.get("handle")) is int and 0 < body["handle"] < 2 ** 53
                and isinstance(body.get("type"), str) and isinstance(body.get("callable"), bool)):
            raise _fail("a remote object is {'handle': int, 'type': str, 'callable': bool, 'name': str}")
        name = body.get("name") if isinstance(body.get("name"), str) else body["type"]
        return Remote(body["handle"], body["type"][:200], body["callable"], name[:200])

    def module(self, entry: Any, count: int) -> Module:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and type(entry.get("parent")) is int
                and -1 <= entry["parent"] < count and isinstance(entry.get("type"), str)
                and _IDENTIFIER.match(entry["type"]) and isinstance(entry.get("torch"), bool)
                and isinstance(entry.get("attributes"), dict)):
            raise _fail("a module of a network's structure is {'name', 'parent', 'type', 'torch', 'attributes'}")
        attributes = {key: value for key, value in entry["attributes"].items()
                      if isinstance(key, str) and type(value) in (int, float) and math.isfinite(value)}
        weight = bias = None
        if entry.get("weight") is not None:
            weight = self.array(entry["weight"], "weight")
            bias = None if entry.get("bias") is None else self.array(entry["bias"], "bias")
            if weight.ndim != 2 or weight.dtype.kind != "f" or (
                    bias is not None and (bias.dtype.kind != "f" or bias.shape != weight.shape[:1])):
                raise _fail("a Linear of a network's structure has a weight and bias that do not fit")
        return Module(entry["name"][:MAX_STRING], entry["parent"], entry["type"], entry["torch"], attributes,
                      weight, bias)

    def network(self, body: dict) -> Network | RemoteNetwork | Unreadable:
        if set(body) == {"error"} and isinstance(body["error"], str):
            return Unreadable(body["error"][:MAX_STRING])
        if set(body) == {"error", "remote", "structure", "sequential"} and isinstance(body["error"], str):
            structure = body["structure"]
            if not (isinstance(structure, list) and 0 < len(structure) <= MAX_MODULES
                    and isinstance(body["sequential"], bool)):
                raise _fail(f"a network's structure is a list of 1 to {MAX_MODULES} modules")
            modules = [self.module(entry, index) for index, entry in enumerate(structure)]
            if modules[0].parent != -1 or any(module.parent < 0 for module in modules[1:]):
                raise _fail("a network's structure starts with the network itself, and every other module has a parent")
            remote = self.remote({"handle": body["remote"], "type": modules[0].type_name, "callable": True})
            return RemoteNetwork(body["error"][:MAX_STRING], remote, modules, body["sequential"])
        layers, width = [], None
        if not isinstance(body.get("layers"), list) or not body["layers"] or not isinstance(body.get("softmax"), bool):
            raise _fail("a network needs a non-empty list of layers and a boolean softmax")
        for layer in body["layers"]:
            if layer in ("relu", "sigmoid"):
                layers.append(layer)
                continue
            if not isinstance(layer, dict) or set(layer) != {"weight", "bias"}:
                raise _fail("a network layer is 'relu', 'sigmoid' or {'weight': key, 'bias': key or null}")
            weight = self.array(layer["weight"], "weight")
            bias = None if layer["bias"] is None else self.array(layer["bias"], "bias")
            if weight.ndim != 2 or weight.dtype.kind != "f" or (width is not None and weight.shape[1] != width):
                raise _fail(f"a weight of shape {weight.shape} does not follow a layer of width {width}")
            if bias is not None and (bias.dtype.kind != "f" or bias.shape != (weight.shape[0],)):
                raise _fail(f"a bias of shape {bias.shape} for a weight of shape {weight.shape}")
            width = weight.shape[0]
            layers.append((weight, bias))
        if width is None:
            raise _fail("a network without any Linear layer")
        loss = body.get("loss")
        if loss is not None and not isinstance(loss, list):
            raise _fail("loss answers must be a list")
        return Network(layers, body["softmax"], self.answer(body.get("outputs")),
                       None if loss is None else [self.answer(item) for item in loss])


def read_snapshot(folder: Path, test_id: str, names: list[str]) -> dict[str, Value]:
    """The values the run exported for `test_id`, checked; only `names` are kept."""
    path = folder / f"{test_id}.json"
    if not path.is_file():
        raise _fail("nothing was exported for this test: the run stopped before it")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise _fail(f"{path.name} is larger than {MAX_JSON_BYTES} bytes")
    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda text: math.nan)
    except (ValueError, UnicodeDecodeError) as error:
        raise _fail(f"{path.name} is not JSON ({error})") from None
    if not (isinstance(document, dict) and document.get("format") == 1 and document.get("test") == test_id
            and isinstance(document.get("values"), dict)):
        raise _fail(f"{path.name} should be {{'format': 1, 'test': {test_id!r}, 'values': {{...}}}}")
    decoder = _Decoder(_load_arrays(folder / f"{test_id}.npz"))
    return {name: decoder.node(document["values"][name]) for name in names if name in document["values"]}


@dataclass(frozen=True)
class Raised:
    """The student's code raised during a call: its exception's type name and message."""

    type_name: str
    message: str


def read_answer(document: bytes, arrays: bytes) -> Value | Raised:
    """A call's answer (see the module docstring), checked as exports are."""
    if len(document) > MAX_JSON_BYTES:
        raise _fail(f"an answer larger than {MAX_JSON_BYTES} bytes")
    try:
        answer = json.loads(document.decode("utf-8"), parse_constant=lambda text: math.nan)
    except (ValueError, UnicodeDecodeError) as error:
        raise _fail(f"an answer that is not JSON ({error})") from None
    if not (isinstance(answer, dict) and answer.get("format") == 1 and answer.get("test") == "call"):
        raise _fail("an answer should be {'format': 1, 'test': 'call', ...}")
    if set(answer) == {"format", "test", "error"} and isinstance(answer["error"], str):
        kind, _, message = answer["error"][:MAX_STRING].partition(": ")
        return Raised(kind[:100], message)
    if not (set(answer) == {"format", "test", "values"} and isinstance(answer["values"], dict)
            and set(answer["values"]) == {"result"}):
        raise _fail("an answer holds one value, 'result', or an 'error'")
    return _Decoder(_arrays_from(io.BytesIO(arrays), "the answer's arrays")).node(answer["values"]["result"])
