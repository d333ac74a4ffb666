"""Real networks and properties from files: NNet and ONNX networks, VNN-LIB properties.

* ``load_nnet(path)``: the NNet text format of ACAS Xu and many course
  assignments. Its header holds the input range (inputs are clipped to it) and
  the normalisation: the network sees ``(x - mean) / range`` and its outputs are
  ``(y - out_mean) / out_range``. ``NNet.net`` is that network (normalised units,
  float32, as VNN-COMP's ACAS Xu ONNX files); ``NNet.input_box`` turns a box in
  physical units into its ``x_specs``; ``NNet.to_physical`` reads outputs back.
* ``load_onnx(path)``: the dataflow of an ONNX graph from its input to ``graph.output``
  (Gemm / MatMul / Add / Sub / Mul / Div / Relu / Sigmoid / Flatten / Reshape / Identity nodes, in any
  order, unused ones ignored), read by ``verifier.onnx_reader`` as an ``nn.Sequential``.
* ``load_vnnlib(path, n_in, n_out)``: a VNN-LIB property as ``[(x_specs, property), ...]``,
  one input box each and the property that must hold there (the negation of the file's unsafe
  outputs, built with ``verifier.Y``); ``read_vnnlib`` gives the same cases with the file's own
  constraints. VNN-LIB 1.0 (what VNN-COMP ships) is read by ``verifier.vnnlib_reader``; a
  VNN-LIB 2.0 file (one that starts with ``(vnnlib-version <2.0>)``) is parsed by the
  ``vnnlib`` package's 1.x line and its formula goes through the same combining code. What
  cannot be read exactly (inputs constrained by more than bounds, say) is refused with
  ``FormatError``, naming the line.

The ``vnnlib`` package's two lines share one name, so one environment holds one of them as
``vnnlib``. ``make setup`` installs 0.0.x as ``vnnlib`` (the tests compare the kit's reader
with it on files of VNN-COMP's usual shape) and 1.x beside it, in ``<prefix>/vnnlib2`` (``pip
install --no-deps --target``); the 2.0 parser is taken from there, or from ``vnnlib`` itself
where that is the 1.x line.
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from verifier import vnnlib_reader
from verifier.outputs import Formula
from verifier.vnnlib_reader import FormatError

if TYPE_CHECKING:
    import onnx


# -- NNet -----------------------------------------------------------------------

@dataclass
class NNet:
    net: nn.Sequential
    input_min: np.ndarray
    input_max: np.ndarray
    mean: np.ndarray      # n_in + 1 values: inputs, then the output mean
    range: np.ndarray     # n_in + 1 values: inputs, then the output range

    def normalise(self, x: ArrayLike) -> np.ndarray:
        """Physical inputs -> what ``net`` takes (clipped to the header's range first)."""
        x = np.clip(np.asarray(x, float), self.input_min, self.input_max)
        return (x - self.mean[:-1]) / self.range[:-1]

    def input_box(self, lo: ArrayLike, hi: ArrayLike) -> list[tuple[float, float]]:
        """A box in physical units -> ``x_specs`` for ``net``: clip, then normalise."""
        lo, hi = self.normalise(lo), self.normalise(hi)
        return list(zip(lo.tolist(), hi.tolist()))

    def physical_input(self, x: ArrayLike) -> np.ndarray:
        """What ``net`` takes -> inputs in physical units (undoes ``normalise``)."""
        return np.asarray(x, float) * self.range[:-1] + self.mean[:-1]

    def to_physical(self, y: ArrayLike) -> np.ndarray | float:
        """Outputs of ``net`` -> the scores in the units of the original table."""
        return np.asarray(y, float) * self.range[-1] + self.mean[-1]

    def output_threshold(self, t: float) -> float:
        """A physical output value -> the same value in ``net``'s output units."""
        return (t - self.mean[-1]) / self.range[-1]


def _numbers(line: str, where: str) -> list:
    try:
        return [float(v) for v in line.replace(",", " ").split()]
    except ValueError:
        raise FormatError(f"{where}: expected numbers separated by commas; got "
                          f"{line.strip()[:60]!r}") from None


def load_nnet(path: str | os.PathLike) -> NNet:
    """Read an NNet file (see the module doc)."""
    path = Path(path)
    lines = [ln for ln in path.read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("//")]
    where = lambda k: f"{path.name}, data line {k + 1}"  # noqa: E731
    if len(lines) < 7:
        raise FormatError(f"{path.name}: an NNet file has at least 7 header lines; "
                          f"found {len(lines)}")
    n_layers, n_in, n_out, _ = (int(v) for v in _numbers(lines[0], where(0))[:4])
    sizes = [int(v) for v in _numbers(lines[1], where(1))]
    if len(sizes) != n_layers + 1 or sizes[0] != n_in or sizes[-1] != n_out:
        raise FormatError(f"{where(1)}: layer sizes {sizes} do not match {n_layers} layers "
                          f"from {n_in} inputs to {n_out} outputs")
    head = [np.array(_numbers(lines[k], where(k))) for k in range(3, 7)]
    in_min, in_max, mean, rng = head
    if not (len(in_min) == len(in_max) == n_in and len(mean) == len(rng) == n_in + 1):
        raise FormatError(f"{path.name}: the input range and normalisation lines must hold "
                          f"{n_in}, {n_in}, {n_in + 1} and {n_in + 1} numbers")
    k, layers = 7, []
    for a, b in zip(sizes[:-1], sizes[1:]):
        if k + 2 * b > len(lines):
            raise FormatError(f"{path.name}: the file ends inside the {a}x{b} layer")
        rows = [_numbers(lines[k + r], where(k + r)) for r in range(b)]
        short = [r for r, row in enumerate(rows) if len(row) != a]
        if short:
            raise FormatError(f"{where(k + short[0])}: expected {a} weights (a row of the "
                              f"{b}x{a} matrix); got {len(rows[short[0]])}")
        W = np.array(rows)
        bias = np.array([_numbers(lines[k + b + r], where(k + b + r))[0] for r in range(b)])
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W))
            lin.bias.copy_(torch.tensor(bias))
        layers += [lin, nn.ReLU()]
        k += 2 * b
    return NNet(nn.Sequential(*layers[:-1]).eval(), in_min, in_max, mean, rng)


# -- ONNX -------------------------------------------------------------------------

def load_onnx(path: str | os.PathLike | bytes | onnx.ModelProto) -> nn.Sequential:
    """The network an ONNX graph computes, from its input to ``graph.output`` (nodes in
    any order, unused ones ignored), as an ``nn.Sequential`` of Linear / ReLU layers
    (Flatten first when the input has more than two dimensions), with ``n_inputs`` and
    ``n_outputs`` set on it. ``path`` may also be the file's bytes or an
    ``onnx.ModelProto``. What cannot be read exactly is refused with a ``FormatError``
    naming the node and its operator; see ``verifier.onnx_reader``."""
    from verifier import onnx_reader

    return onnx_reader.read(path)


# -- VNN-LIB ------------------------------------------------------------------------

VNNLIB2_HOME = Path(sys.prefix) / "vnnlib2"   # where make setup puts the 1.x line
VNNLIB2_INSTALL = f'pip install --no-deps --target "{VNNLIB2_HOME}" vnnlib==1.0.2'


def _text(path: Path, errors: str = "strict") -> str:
    """The file's text; a ``.gz`` file (VNN-COMP ships its properties gzipped since 2022) is
    decompressed first."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", errors=errors) as f:
            return f.read()
    return path.read_text(errors=errors)


def vnnlib_version(path: str | os.PathLike) -> str:
    """``"2.0"`` for a file that declares ``(vnnlib-version <2.0>)``, else ``"1.0"``."""
    text = _text(Path(path), errors="replace")
    text = re.sub(r";[^\n]*", "", text)                  # comments
    m = re.match(r"\s*\(\s*vnnlib-version\s*<\s*([0-9.]+)\s*>\s*\)", text)
    return m.group(1) if m else "1.0"


def _vnnlib_module():
    """The installed ``vnnlib`` package, or None."""
    try:
        import vnnlib
    except ImportError:
        return None
    return vnnlib


def _vnnlib2():
    """The vnnlib 1.x package (VNN-LIB 2.0 reader): ``vnnlib`` itself when that is the
    1.x line, else the copy in ``VNNLIB2_HOME``, imported under the name
    ``_vnnlib2`` (its compiled ``_core`` loads the same under any package name)."""
    main = _vnnlib_module()
    if main is not None and hasattr(main, "parse_query_file"):
        return main
    if "_vnnlib2" in sys.modules:
        return sys.modules["_vnnlib2"]
    home = VNNLIB2_HOME / "vnnlib"
    if not (home / "__init__.py").is_file():
        raise FormatError("reading a VNN-LIB 2.0 file needs the vnnlib 1.x package, which "
                          f"make setup installs in {VNNLIB2_HOME}; install it with: "
                          f"{VNNLIB2_INSTALL}")
    spec = importlib.util.spec_from_file_location("_vnnlib2", home / "__init__.py",
                                                  submodule_search_locations=[str(home)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["_vnnlib2"] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules["_vnnlib2"]
        raise
    return module


def _sealed(read, *args):
    """``read(*args)``, run in a generator's frame of its own. The vnnlib readers are compiled
    with mypyc, whose generators leave a finished StopIteration as the exception being handled
    (``sys.exc_info()``) in the frame that called them; every later error there would then show
    a chain of StopIteration in its traceback. A generator keeps its own exception state, which
    goes with it."""
    def frame() -> Iterator:
        yield read(*args)

    sealed = frame()
    try:
        return next(sealed)
    finally:
        sealed.close()


def _query_v2(path, n_in: int, n_out: int):
    """A VNN-LIB 2.0 file parsed by the vnnlib 1.x package: one network, of the right sizes."""
    v2 = _vnnlib2()
    name = Path(path).name
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="vnnlib-") as tmp:
        warnings.simplefilter("ignore")
        if Path(path).suffix == ".gz":     # the 2.0 parser reads files: give it the text
            plain = Path(tmp) / Path(path).stem
            plain.write_text(_text(Path(path)))
            path = plain
        try:
            query = _sealed(v2.parse_query_file, str(path))
        except Exception as e:
            raise FormatError(f"{name}: not a VNN-LIB 2.0 property the reader understands "
                              f"({_v2_problem(e)})") from None
    if len(query.networks) != 1:
        raise FormatError(f"{name}: declares {len(query.networks)} networks; "
                          "python -m verifier checks one")
    net = query.networks[0]
    got_in, got_out = _sizes(net.inputs), _sizes(net.outputs)
    if (got_in, got_out) != (n_in, n_out):
        raise FormatError(f"{name}: declares {got_in} inputs and {got_out} outputs, "
                          f"but the network has {n_in} and {n_out}")
    return query


def _v2_problem(error: Exception) -> str:
    """The VNN-LIB 2.0 parser's complaint in one line: it reports a JSON list of errors."""
    try:
        report = json.loads(str(error))
        first = report["errors"][0]
        words = f"line {first['line']}: {first['message']}"
        return words + (f"; {first['hint']}" if first.get("hint") else "")
    except (ValueError, KeyError, IndexError, TypeError):
        return " ".join(f"{type(error).__name__}: {error}".split())


def _sizes(definitions) -> int:
    return sum(int(np.prod([int(d) for d in x.shape])) for x in definitions)


def read_vnnlib(path: str | os.PathLike, n_in: int, n_out: int,
                polytopes: bool = False) -> list[vnnlib_reader.Case]:
    """The cases of a VNN-LIB file (see ``verifier.vnnlib_reader``): each an input box, the
    file's own constraints behind it (``Case.unsafe_at`` checks a counterexample against them)
    and the property that must hold there (``Case.prop``). No case: the file's constraints
    cannot all hold, whatever the network (VNN-COMP's ``unsat``). An input constraint over
    several inputs that the box does not imply is refused unless ``polytopes`` (see
    ``vnnlib_reader.combine``)."""
    path = Path(path)
    version = vnnlib_version(path)
    if version == "2.0":
        formula = vnnlib_reader.from_query_v2(_query_v2(path, n_in, n_out), path.name)
    elif version == "1.0":
        try:
            text = _text(path)
        except UnicodeDecodeError as e:
            raise FormatError(f"{path.name}: not a text file ({e.reason} at byte "
                              f"{e.start})") from None
        formula = vnnlib_reader.parse_v1(text, path.name)
    else:
        raise FormatError(f"{path.name}: VNN-LIB version {version}; expected 1.0 or 2.0")
    return vnnlib_reader.combine(formula, n_in, n_out, path.name, polytopes)


def load_vnnlib(path: str | os.PathLike, n_in: int,
                n_out: int) -> list[tuple[list, Formula]]:
    """``[(x_specs, property), ...]``: each case's input box and the property that
    must hold there (the negation of the file's unsafe output region); an empty list
    when the file's constraints can never all hold."""
    return [(case.x_specs, case.prop) for case in read_vnnlib(path, n_in, n_out)]
