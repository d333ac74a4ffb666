"""``python -m verifier NET PROPERTY [--timeout S] [--threads N] [--result FILE]``: one VNN-COMP instance.

NET is an ``.onnx`` or ``.nnet`` network, PROPERTY a ``.vnnlib`` file (VNN-LIB 1.0,
or 2.0 when it starts with ``(vnnlib-version <2.0>)``); either may be gzipped (``.onnx.gz``,
``.vnnlib.gz``), as VNN-COMP ships them since 2022. The last
line printed is the answer in VNN-COMP's words: ``unsat`` (the property holds:
its unsafe region is unreachable), ``sat`` (violated; the lines before it give
the counterexample as ``(X_i value)`` and ``(Y_j value)``), ``timeout`` or
``unknown``. Exit status: 0 unsat, 10 sat, 20 unknown, 30 timeout, 2 bad input. A network or
property the kit cannot read exactly is refused: one line ``error: ...`` naming the file and the
construct (the node and operator, or the line of the property), exit status 2, no traceback.

``--result FILE`` also writes the answer in the file VNN-COMP's scripts read: the word on the first
line and, after ``sat``, the counterexample as ``((X_0 v)`` ... `` (Y_m v))``, one value a line.

A ``sat`` is printed only for a counterexample that meets the property file's own constraints,
read exactly, with the network's output at it. A file whose constraints can never all hold
(an empty input box, a false constant) is ``unsat`` for any network. Input constraints over
several inputs that the bounds do not imply cut the box to a polytope: ``polytope_case``
proves the property on boxes that cover it.

An ``.nnet`` file is read in its own normalised units, as VNN-COMP's ACAS Xu ONNX
files are, so the same ``.vnnlib`` files apply to both.

``--timeout`` counts from the start of the process, as VNN-COMP's limit does: the interpreter's
start and the imports (two to five seconds, mostly PyTorch's) come out of it.

``--threads`` (default 1) is PyTorch's thread count for the run. On networks of ACAS Xu's size a
second thread gains nothing, and when another process holds a core two threads wait on each other.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from verifier.vnnlib_reader import Case

EXIT = {"unsat": 0, "sat": 10, "unknown": 20, "timeout": 30}


def load_network(path: Path) -> torch.nn.Sequential:
    """The network in ``path``; ``FormatError`` when it cannot be read, whatever the reason."""
    from verifier import formats

    if path.suffix not in (".nnet", ".onnx") and not path.name.endswith(".onnx.gz"):
        raise formats.FormatError(f"{path.name}: expected an .onnx (or .onnx.gz) or .nnet network")
    try:
        return formats.load_nnet(path).net if path.suffix == ".nnet" else formats.load_onnx(path)
    except formats.FormatError:
        raise
    except Exception as e:   # what the onnx package raises for a damaged file, say
        raise formats.FormatError(f"{path.name}: not a network the kit can read "
                                  f"({type(e).__name__}: {e})") from None


def widths(net: torch.nn.Module) -> tuple[int, int]:
    """(inputs, outputs) of a loaded network: what the loader says, else its Linear layers."""
    if hasattr(net, "n_inputs") and hasattr(net, "n_outputs"):
        return int(net.n_inputs), int(net.n_outputs)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    return linears[0].in_features, linears[-1].out_features


def exact_counterexample(net: torch.nn.Module, case: Case, cex: torch.Tensor
                         ) -> tuple[torch.Tensor | list, torch.Tensor] | tuple[None, None]:
    """``(x, y)``, flat (``x`` a tensor, or a list of exact numbers), of a point where the
    property file's constraints, read exactly, hold at the input and at the network's output;
    ``(None, None)`` when there is none among
    ``cex``, the points of the network's dtype an ulp or so away (``Case.moved_inside``:
    verify's box rounds the file's bounds outwards), and the float64 points inside the file's
    bounds that round to one of those (``Case.rounding_to``: a bound the dtype cannot hold;
    ``x`` is then that float64 point and ``y`` the network's output at its rounding, which is
    what a runtime fed ``x`` computes)."""
    dtype = next(net.parameters()).dtype
    real = np.float32 if dtype == torch.float32 else np.float64
    candidates = [cex.flatten()] + [torch.from_numpy(z).to(dtype) for z in case.moved_inside(
        cex.detach().cpu().double().numpy(), real)]
    outputs = []
    for x in candidates:
        with torch.no_grad():
            y = net(x.reshape(cex.shape).to(cex.device, dtype)).flatten()
        if case.unsafe_at(x.double().tolist(), y.double().tolist()):
            return x, y
        outputs.append(y)
    for x, y in zip(candidates, outputs):
        for z in case.rounding_to(x.detach().cpu().double().numpy(), real):
            if all(_decimal(v) is not None for v in z) and case.unsafe_at(z, y.double().tolist()):
                return z, y
    return None, None


def _decimal(v) -> str | None:
    """``v`` (a float or a ``Fraction``) as text that reads back as exactly ``v``: ``repr`` of a
    float; a fraction's finite decimal expansion (None if it has none, as 1/3)."""
    if not isinstance(v, Fraction):
        return repr(float(v))
    den, twos, fives = v.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    if den != 1:
        return None
    k = max(twos, fives)
    digits = str(abs(v.numerator) * 10 ** k // v.denominator).rjust(k + 1, "0")
    sign = "-" if v < 0 else ""
    return f"{sign}{digits[:-k]}.{digits[-k:]}" if k else f"{sign}{digits}.0"


def run(net_path: Path, prop_path: Path, timeout: float) -> tuple[str, list]:
    """Returns ``(answer, lines)``: the VNN-COMP word and what to print before it."""
    return run_instance(load_network(net_path), prop_path, timeout)


def run_instance(net: torch.nn.Module, prop_path: Path,
                 timeout: float) -> tuple[str, list[str]]:
    """``run`` for a network already loaded (an ``nn.Module`` taking inputs of shape (1, n)).

    A counterexample is reported only when the property file's own constraints, read exactly,
    hold at it and at the network's output there: ``sat`` never rests on the rounding of a bound.
    """
    from verifier import formats

    n_in, n_out = widths(net)
    cases = formats.read_vnnlib(prop_path, n_in, n_out, polytopes=True)
    deadline = time.monotonic() + timeout
    lines, answer = [], "unsat"
    if not cases:
        lines.append("the property's constraints can never all hold: no input is unsafe")
    proved = together(net, cases) if len(cases) >= MANY_CASES else [None] * len(cases)
    if any(proved):
        rigorous = proved.count("rigorous")
        lines.append(f"{len(cases) - proved.count(None)} of {len(cases)} cases proved together "
                     f"(CROWN on all their boxes at once; float rounding: {rigorous} rigorous, "
                     f"{len(cases) - proved.count(None) - rigorous} estimated)")
    todo = [k for k in range(len(cases)) if proved[k] is None]
    for n, k in enumerate(todo):
        case = cases[k]
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", lines
        share = left / (len(todo) - n)
        word, x, y, said = (polytope_case if case.polytope else box_case)(net, case, share)
        lines += [f"case {k + 1}/{len(cases)}: {line}" for line in said]
        if word == "sat":
            xs = x if isinstance(x, list) else x.double().tolist()
            lines += [f"{'(' if i == 0 else ' '}(X_{i} {_decimal(v)})" for i, v in enumerate(xs)]
            lines += [f" (Y_{j} {v!r}){')' if j == y.numel() - 1 else ''}" for j, v in
                      enumerate(y.double().tolist())]
            return "sat", lines
        if word != "unsat":
            answer = word
    return answer, lines


#: Cases from which ``run_instance`` first tries every box at once (``together``).
MANY_CASES = 16


def together(net: torch.nn.Module, cases: list) -> list[str | None]:
    """Which of ``cases`` CROWN proves on their own boxes, all bounded together
    (``verifier.engine.prove_boxes``: "rigorous" or "estimated" rounding, None where not
    proved); the rest, and every case of a region cut by constraints over several inputs, go
    to ``verify`` one by one."""
    from verifier.engine import prove_boxes

    boxes = [k for k, case in enumerate(cases) if not case.polytope]
    found = prove_boxes(net, [(cases[k].x_specs, cases[k].prop) for k in boxes])
    proved: list = [None] * len(cases)
    for k, ok in zip(boxes, found):
        proved[k] = ok
    return proved


def box_case(net: torch.nn.Module, case: Case, timeout: float):
    """``(word, x, y, lines)`` for one case on its box: ``verify`` once."""
    from verifier import verify

    cexs: list = []
    result = verify(net, case.x_specs, case.prop, cexs, timeout=timeout, progress=False)
    lines = [result.verdict()]
    if result == "pass":
        return "unsat", None, None, lines
    if result == "fail":
        x, y = exact_counterexample(net, case, cexs[0])
        if x is not None:
            return "sat", x, y, lines
        lines.append("the counterexample does not meet the file's constraints exactly (it lies "
                     "on a bound the box rounds outwards, or on a strict one); not reported")
        return "unknown", None, None, lines
    return ("timeout" if "time budget" in result.message else "unknown"), None, None, lines


#: Boxes ``polytope_case`` may try before it answers unknown.
MAX_POLYTOPE_BOXES = 4096


def polytope_case(net: torch.nn.Module, case: Case, timeout: float):
    """``(word, x, y, lines)`` for a case whose file constrains several inputs at once, beyond
    its box (``Case.polytope``): the box holds inputs outside the file's region.

    A proof on a box is one on the region's part in it; a counterexample counts only where the
    file's constraints hold (``exact_counterexample``). So: ``verify`` on the box; one found
    outside the region splits the box in two (across the input that the region's constraints
    weigh most, times its width), the half without it tried first, and so does an undecided box
    the region cuts; a box no term of the file can meet anywhere (``Case.on_box``) is dropped."""
    from verifier import verify

    deadline = time.monotonic() + timeout
    queue, tried, dropped, open_ = [list(case.x_specs)], 0, 0, 0
    last = None
    while queue:
        box = queue.pop()
        sub = case.on_box(box)
        if sub is None:
            dropped += 1
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", None, None, [f"time budget used up after {tried} boxes"]
        if tried >= MAX_POLYTOPE_BOXES:
            return "unknown", None, None, [f"{tried} boxes of the input region left undecided"]
        tried += 1
        cut = sub.polytope
        cexs: list = []
        result = verify(net, box, sub.prop, cexs, timeout=left / 2 if cut else left,
                        progress=False)
        if result == "pass":
            continue
        cex = None
        if result == "fail":
            x, y = exact_counterexample(net, sub, cexs[0])
            if x is not None:
                return "sat", x, y, [result.verdict()]
            cex = cexs[0].detach().flatten().double().tolist()
        halves = _halves(box, sub) if cex is not None or cut else None
        if halves is None:          # undecided where it cannot be cut further
            open_, last = open_ + 1, result
            continue
        first, second = halves
        if cex is not None and all(lo <= v <= hi for v, (lo, hi) in zip(cex, second)):
            first, second = second, first
        queue += [first, second]    # the half without the counterexample comes out first
    if open_:
        word = "timeout" if "time budget" in last.message else "unknown"
        return word, None, None, [last.verdict(), f"{open_} of {tried} boxes of the input "
                                                  "region left undecided"]
    return "unsat", None, None, [f"PASS: proved on the input region (its constraints over several "
                                 f"inputs) after {tried} boxes, {dropped} outside it dropped"]


def _halves(box: list, case: Case) -> list | None:
    """``box`` cut in two at the middle of the input the case's constraints over several inputs
    weigh most, times its width; None when no input has room left."""
    weight = [0.0] * len(box)
    for ins, _ in case.terms:
        for a in ins:
            if len(a.lin.coef) > 1:
                for (_, i), c in a.lin.coef.items():
                    weight[i] += abs(float(c))
    score = [(hi - lo) * (1 + w) for (lo, hi), w in zip(box, weight)]
    i = max(range(len(box)), key=score.__getitem__)
    lo, hi = box[i]
    mid = lo + (hi - lo) / 2
    if not lo < mid < hi:
        return None
    left, right = list(box), list(box)
    left[i], right[i] = (lo, mid), (mid, hi)
    return [left, right]


def process_age() -> float:
    """Seconds since this process started (Linux's ``/proc``; 0 where it cannot be read), so
    that ``--timeout`` counts the interpreter's start and the imports too."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def main(argv: Sequence[str] | None = None, spent: float = 0.0) -> int:
    """The command line; ``spent``: seconds of the budget already gone (the command itself
    passes its process's age, see ``process_age``)."""
    parser = argparse.ArgumentParser(prog="python -m verifier", description=__doc__.split("\n")[0])
    parser.add_argument("network", type=Path, help=".onnx or .nnet file")
    parser.add_argument("property", type=Path, help=".vnnlib file")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default: 60)")
    parser.add_argument("--threads", type=int, default=1,
                        help="PyTorch threads (default: 1; see the module's docstring)")
    parser.add_argument("--result", type=Path, default=None, metavar="FILE",
                        help="also write the answer as VNN-COMP's result file: the word, then for "
                             "sat the counterexample ((X_i v) ... (Y_j v))")
    args = parser.parse_args(argv)
    from verifier.formats import FormatError

    if args.threads < 1:
        print(f"error: --threads must be at least 1; got {args.threads}")
        return 2
    for p in (args.network, args.property):
        if not p.is_file():
            print(f"error: {p} not found")
            return 2
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        answer, lines = run(args.network, args.property, args.timeout - spent)
    except (FormatError, ValueError, TypeError) as e:   # a refused file or network: one line
        print("error: " + " ".join(str(e).split()))
        return 2
    finally:
        torch.set_num_threads(threads)
    for line in lines:
        print(line)
    print(answer)
    if args.result is not None:
        witness = [line for line in lines if line.lstrip("( ").startswith(("X_", "Y_"))]
        args.result.write_text("\n".join([answer] + (witness if answer == "sat" else [])) + "\n")
    return EXIT[answer]


if __name__ == "__main__":
    # the budget counts from the process's start, as VNN-COMP's does: imports included
    sys.exit(main(spent=process_age()))
