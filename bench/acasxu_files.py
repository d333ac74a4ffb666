"""ACAS Xu instances as VNN-COMP files (ONNX network + VNN-LIB 1.0 property), for the peers.

The kit's bench reads the .nnet files and the properties of ``verifier.acasxu``
directly. Marabou and NeuralSAT read what VNN-COMP ships instead, so
``write_instance(k, net_id, nnet_folder, out_folder)`` writes, from the very same
objects the kit verifies:

* ``ACASXU_run2a_<net>_batch_2000.onnx``: ``load_nnet(path).net`` (normalised
  units, float32) as a chain of ``Gemm`` and ``Relu`` nodes, input ``X`` of shape
  (1, 5), output ``Y`` of shape (1, 5). Built with the ``onnx`` helper API, so no
  exporter (and no ``onnxscript``) is involved.
* ``prop_<k>_<net>.vnnlib``: the input box exactly as ``acasxu.instance(k, model)``
  gives it (already normalised) and an ``assert`` of the *unsafe* region, the
  negation of the property. The negation of a conjunction of clauses is a
  disjunction, written as VNN-COMP's acasxu files do:
  ``(assert (or (and ...) (and ...)))``; a single conjunct becomes plain asserts.
  VNN-LIB has only ``<=``/``>=``: the negation of ``Y_0 < t`` is exactly ``Y_0 >= t``,
  that of ``Y_i <= Y_j`` is written ``Y_j <= Y_i`` (ties count as unsafe, as in
  VNN-COMP's files), and a conjunct that is empty only thanks to strictness
  (``Y_0 < Y_1`` and ``Y_1 < Y_0``, from phi8's "COC or weak left is minimal") is
  left out, else a tie would pass for a counterexample.
* phi6 has two input boxes: ``prop_6_<net>_a.vnnlib`` and ``..._b.vnnlib``, one
  query each; the instance holds when both do.

``python -m bench.acasxu_files`` writes every instance the ACAS bench would run
(same ``ACAS_NETS`` / ``ACAS_PROPS`` / ``ACAS_DIR``) into ``bench/.acasxu-vnncomp/``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from verifier import acasxu
from verifier.formats import load_nnet
from verifier.outputs import cnf

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".acasxu-vnncomp"
N = 5


def nnet_path(folder: Path, net_id: str) -> Path:
    return Path(folder) / f"ACASXU_run2a_{net_id}_batch_2000.nnet"


# -- ONNX ---------------------------------------------------------------------------

def write_onnx(net, path: Path, n_in: int = N) -> Path:
    """An ``nn.Sequential`` of Linear/ReLU -> an ONNX file (opset 13, float32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from torch import nn

    nodes, inits, cur, width = [], [], "X", n_in
    for k, layer in enumerate(net):
        if isinstance(layer, nn.Linear):
            w = layer.weight.detach().cpu().numpy().astype(np.float32)
            b = layer.bias.detach().cpu().numpy().astype(np.float32)
            inits += [numpy_helper.from_array(w, f"W{k}"), numpy_helper.from_array(b, f"B{k}")]
            nodes.append(helper.make_node("Gemm", [cur, f"W{k}", f"B{k}"], [f"h{k}"],
                                          name=f"gemm{k}", transB=1))
            width = w.shape[0]
        elif isinstance(layer, nn.ReLU):
            nodes.append(helper.make_node("Relu", [cur], [f"h{k}"], name=f"relu{k}"))
        else:
            raise TypeError(f"write_onnx handles Linear and ReLU layers; got {layer}")
        cur = f"h{k}"
    nodes[-1].output[0] = "Y"
    graph = helper.make_graph(
        nodes, "acasxu",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, width])], inits)
    model = helper.make_model(graph, producer_name="lab3-kit bench",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8          # readable by older onnx/onnxruntime too
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


# -- VNN-LIB ------------------------------------------------------------------------

def _num(v: float) -> str:
    return repr(float(v))   # shortest text that reads back as the same double


def _negated_atom(atom):
    """``not (expr >= 0)`` (``not (expr > 0)``) as one comparison ``expr <= 0``, for an
    expr of one output, or of two outputs with opposite coefficients and no constant
    (a comparison of two scores). Returns ``(text, edge)``: edge ``(lo, hi, strict)``
    says ``Y_lo < Y_hi`` (or ``<=``) for a comparison of two outputs, else None."""
    coef, const = atom.expr.coef, atom.expr.const
    if len(coef) == 1:
        (i, c), = coef.items()
        t = -const / c                       # c*y + const <= 0  <=>  y (<= or >=) t
        return f"({'<=' if c > 0 else '>='} Y_{i} {_num(t)})", None
    if len(coef) == 2 and const == 0.0:
        (i, a), (j, b) = coef.items()
        if a == -b:
            lo, hi = (i, j) if a > 0 else (j, i)   # a*(y_lo - y_hi) <= 0
            return f"(<= Y_{lo} Y_{hi})", (lo, hi, not atom.strict)
    raise NotImplementedError(f"no VNN-LIB 1.0 comparison for the negation of {atom}")


def _empty(edges) -> bool:
    """Do these comparisons of outputs contradict each other, read with their true
    strictness (a cycle Y_a <= ... <= Y_a through at least one strict <)? VNN-LIB
    writes them all as <=, which would let a tie (Y_0 == Y_1) satisfy
    "Y_0 < Y_1 and Y_1 < Y_0"; such a conjunct must not be written."""
    rel = {}                                  # (a, b) -> strict? for a path a .. b
    for lo, hi, strict in edges:
        rel[lo, hi] = rel.get((lo, hi), False) or strict
    nodes = {n for e in rel for n in e}
    for m in nodes:                           # transitive closure, Floyd-Warshall order
        for a in nodes:
            for b in nodes:
                if (a, m) in rel and (m, b) in rel:
                    rel[a, b] = rel.get((a, b), False) or rel[a, m] or rel[m, b]
    return any(rel.get((n, n), False) for n in nodes)


def vnnlib_text(x_specs, prop, title: str = "") -> str:
    """A VNN-LIB 1.0 query: the box ``x_specs`` and the negation of ``prop``."""
    n_out = 1 + max(i for clause in cnf(prop) for a in clause for i in a.expr.coef)
    n_out = max(n_out, N)
    lines = [f"; {title}"] if title else []
    lines += [f"(declare-const X_{i} Real)" for i in range(len(x_specs))]
    lines += [""] + [f"(declare-const Y_{i} Real)" for i in range(n_out)] + ["", "; input box"]
    for i, (lo, hi) in enumerate(x_specs):
        lines += [f"(assert (<= X_{i} {_num(hi)}))", f"(assert (>= X_{i} {_num(lo)}))"]
    lines.append("; unsafe outputs: the negation of the property")
    # property = AND over clauses of (OR over atoms); unsafe = OR over clauses of
    # (AND over the negated atoms)
    conjuncts = []
    for clause in cnf(prop):
        parts = [_negated_atom(a) for a in clause]
        texts = list(dict.fromkeys(t for t, _ in parts))
        if not _empty([e for _, e in parts if e]) and texts not in conjuncts:
            conjuncts.append(texts)
    if len(conjuncts) == 1:
        lines += [f"(assert {c})" for c in conjuncts[0]]
    else:
        lines.append("(assert (or")
        lines += ["    (and " + " ".join(c) + ")" for c in conjuncts]
        lines.append("))")
    return "\n".join(lines) + "\n"


# -- instances ----------------------------------------------------------------------

def write_instance(k: int, net_id: str, nnet_folder, out: Path = CACHE):
    """Write (or rewrite) the files of phi_k on network ``net_id``; returns
    ``(onnx_path, [vnnlib_path, ...])``, one property file per input box."""
    out = Path(out)
    model = load_nnet(nnet_path(nnet_folder, net_id))
    onnx_path = write_onnx(model.net, out / f"ACASXU_run2a_{net_id}_batch_2000.onnx")
    boxes, prop = acasxu.instance(k, model)
    specs = []
    for b, box in enumerate(boxes):
        tag = f"_{'ab'[b]}" if len(boxes) > 1 else ""
        p = out / f"prop_{k}_{net_id}{tag}.vnnlib"
        p.write_text(vnnlib_text(box, prop, f"ACAS Xu phi{k} on {net_id}{tag}, written "
                                 "by bench/acasxu_files.py from verifier.acasxu"))
        specs.append(p)
    return onnx_path, specs


def main():
    from bench.bench_acasxu import ROOT, instances

    folder = Path(os.environ.get("ACAS_DIR", ROOT.parent / "shared" / "acasxu"))
    n = 0
    for k, net in instances():
        write_instance(k, net, folder)
        n += 1
    print(f"wrote {n} instances into {CACHE}")


if __name__ == "__main__":
    main()
