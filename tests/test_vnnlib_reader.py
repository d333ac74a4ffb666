"""VNN-LIB properties read exactly or refused: the kit's own 1.0 reader and the combining step.

Each test states a file and what the standard says it means: all asserts conjoined, disjunctions
distributed over the common constraints, constants on either side, asserts in any order. A
``sat`` from ``python -m verifier`` must come with a point that meets the file's constraints.
"""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from test_formats import SMALL_NNET

from verifier import __main__ as cli, formats
from verifier.formats import FormatError, load_vnnlib, read_vnnlib

HEAD2 = "".join(f"(declare-const X_{i} Real)\n" for i in range(2)) + \
    "".join(f"(declare-const Y_{j} Real)\n" for j in range(3)) + \
    "(assert (>= X_0 -1.0))\n(assert (<= X_0 1.0))\n(assert (>= X_1 -1.0))\n(assert (<= X_1 1.0))\n"


def affine_net(W, b) -> nn.Sequential:
    """y = W x + b, float64 (no rounding to speak of): outputs known exactly."""
    lin = nn.Linear(len(W[0]), len(W)).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(W, dtype=torch.float64))
        lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
    return nn.Sequential(lin)


# y0 = x0, y1 = x1, y2 = x0 + x1 over [-1, 1]^2
NET = affine_net([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.0, 0.0, 0.0])


def answer(tmp_path, text, net=NET, timeout=20.0):
    p = tmp_path / "p.vnnlib"
    p.write_text(text)
    return cli.run_instance(net, p, timeout)


def test_a_common_assert_is_conjoined_with_each_disjunct_not_added_to_it(tmp_path):
    # unsafe: y0 <= 0 and (y1 <= 5 or y2 <= 5): reachable (x = 0, 0); the vnnlib package read
    # this as y0 + y1 <= 0 or y0 + y2 <= 0
    text = HEAD2 + "(assert (<= Y_0 0))\n(assert (or (and (<= Y_1 5)) (and (<= Y_2 5))))\n"
    word, lines = answer(tmp_path, text)
    assert word == "sat", lines
    [case] = read_vnnlib(tmp_path / "p.vnnlib", 2, 3)
    assert len(case.terms) == 2 and all(len(outs) == 2 for _, outs in case.terms)
    # and where the common assert cannot hold, the disjunction does not help
    word, _ = answer(tmp_path, HEAD2 + "(assert (<= Y_0 -2))\n"
                                       "(assert (or (and (<= Y_1 5)) (and (<= Y_2 5))))\n")
    assert word == "unsat"


def test_an_input_constraint_that_is_not_a_bound_is_refused_naming_its_line(tmp_path):
    p = tmp_path / "p.vnnlib"
    p.write_text(HEAD2 + "(assert (<= (+ X_0 X_1) 1))\n(assert (>= Y_2 1.5))\n")
    with pytest.raises(FormatError, match=r"p.vnnlib, line 10: an input constraint over "
                                          r"several inputs that the bounds do not imply"):
        read_vnnlib(p, 2, 3)


def test_an_input_constraint_over_several_inputs_is_proved_or_refuted_on_its_region(tmp_path):
    """y = x0 + x1 (NET2's first output... here a net of its own) on [0, 1]^2 with x0 + x1 <= 1:
    the box reaches y = 2, the region only 1. The CLI proves y >= 1.5 unreachable (splitting the
    box, dropping the halves outside the region) and finds y >= 0.9 inside the region."""
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.zero_()
    net = nn.Sequential(lin)
    head = ("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
            "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (>= X_1 0))\n(assert (<= X_1 1))\n"
            "(assert (<= (+ X_0 X_1) 1))\n")
    word, lines = answer(tmp_path, head + "(assert (>= Y_0 1.5))\n", net)
    assert word == "unsat" and "input region" in lines[-1], lines
    word, lines = answer(tmp_path, head + "(assert (>= Y_0 0.9))\n", net)
    assert word == "sat", lines
    x0, x1 = [float(line.split()[-1].rstrip(")")) for line in lines if "(X_" in line]
    assert x0 + x1 <= 1 and x0 + x1 >= 0.9
    # where the region leaves the box no room at all (x0 + x1 <= -1), nothing is unsafe
    word, _ = answer(tmp_path, head.replace("(<= (+ X_0 X_1) 1)", "(<= (+ X_0 X_1) -1)")
                     + "(assert (>= Y_0 -5))\n", net)
    assert word == "unsat"
    # verify()'s own reader still refuses it: a box is all verify() takes
    (tmp_path / "q.vnnlib").write_text(head + "(assert (>= Y_0 1.5))\n")
    with pytest.raises(FormatError, match="several inputs"):
        read_vnnlib(tmp_path / "q.vnnlib", 2, 1)
    [case] = read_vnnlib(tmp_path / "q.vnnlib", 2, 1, polytopes=True)
    assert case.polytope and case.on_box([(0.6, 1.0), (0.6, 1.0)]) is None
    assert not case.on_box([(0.0, 0.4), (0.0, 0.4)]).polytope


def test_an_input_constraint_the_bounds_imply_is_read(tmp_path):
    # x0 + x1 <= 2 holds on the whole box; y2 >= 1.5 is reachable there
    word, lines = answer(tmp_path, HEAD2 + "(assert (<= (+ X_0 X_1) 2))\n(assert (>= Y_2 1.5))\n")
    assert word == "sat", lines


@pytest.mark.parametrize("constant, expected", [("(assert (<= 0 1))", "unsat"),
                                                ("(assert (<= 1 0))", "unsat"),
                                                ("(assert (>= 1 0))", "sat")])
def test_a_constant_assert_is_true_or_false_and_touches_no_other_row(tmp_path, constant, expected):
    # unsafe y0 >= 2 alone is unreachable; the constant must not leak into that row
    text = HEAD2 + constant + "\n(assert (>= Y_0 2))\n" if expected == "unsat" else \
        HEAD2 + constant + "\n(assert (>= Y_0 0.5))\n"
    word, lines = answer(tmp_path, text)
    assert word == expected, lines


def test_a_false_constant_makes_the_whole_file_unsat(tmp_path):
    p = tmp_path / "p.vnnlib"
    p.write_text(HEAD2 + "(assert (<= 1 0))\n(assert (>= Y_0 0))\n")
    assert read_vnnlib(p, 2, 3) == [] and load_vnnlib(p, 2, 3) == []
    assert cli.run_instance(NET, p, 10)[0] == "unsat"


def test_a_file_with_no_output_constraint_is_violated_anywhere_in_its_box(tmp_path):
    word, lines = answer(tmp_path, HEAD2)
    assert word == "sat", lines
    xs = [float(line.split()[1].rstrip(")")) for line in lines if "(X_" in line]
    assert len(xs) == 2 and all(-1 <= x <= 1 for x in xs)


def test_a_file_with_no_output_constraint_and_an_empty_box_is_unsat(tmp_path):
    assert answer(tmp_path, HEAD2 + "(assert (>= X_0 2.0))\n")[0] == "unsat"


def test_asserts_in_any_order_and_constants_on_either_side(tmp_path):
    ordered = HEAD2 + "(assert (>= Y_2 1.5))\n"
    shuffled = ("(declare-const Y_2 Real)\n(declare-const X_1 Real)\n(declare-const X_0 Real)\n"
                "(assert (<= 1.5 Y_2))\n(declare-const Y_0 Real)\n(assert (<= -1 X_1))\n"
                "(declare-const Y_1 Real)\n(assert (>= 1 X_0)) ; a comment\n"
                "(assert (>= (- X_1) -1.0))\n(assert (<= (* -1 X_0) 1.0))\n")
    cases = [read_vnnlib(_write(tmp_path, name, text), 2, 3)
             for name, text in (("a.vnnlib", ordered), ("b.vnnlib", shuffled))]
    assert [c.x_specs for c in cases[0]] == [c.x_specs for c in cases[1]] == \
        [[(-1.0, 1.0), (-1.0, 1.0)]]
    for x, y in (([0.8, 0.9], [0.8, 0.9, 1.7]), ([0.0, 0.0], [0, 0, 0])):
        assert cases[0][0].unsafe_at(x, y) == cases[1][0].unsafe_at(x, y)


def _write(folder, name, text):
    p = folder / name
    p.write_text(text)
    return p


def test_disjunctions_over_boxes_become_cases(tmp_path):
    text = ("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
            "(assert (or (and (>= X_0 0) (<= X_0 1) (>= Y_0 0.5))\n"
            "            (and (>= X_0 -1) (<= X_0 0) (<= Y_0 -2))))\n")
    net = affine_net([[1.0]], [0.0])
    p = _write(tmp_path, "p.vnnlib", text)
    cases = read_vnnlib(p, 1, 1)
    assert sorted(c.x_specs for c in cases) == [[(-1.0, 0.0)], [(0.0, 1.0)]]
    assert cli.run_instance(net, p, 10)[0] == "sat"   # x0 in [0.5, 1]


def test_strict_and_equal_comparisons_mean_what_they_say(tmp_path):
    net = affine_net([[1.0]], [0.0])
    head = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 0))\n" \
           "(assert (<= X_0 1))\n"
    # y0 = x0 > 1 is unreachable on [0, 1]; y0 >= 1 is reached at x0 = 1 exactly
    assert answer(tmp_path, head + "(assert (> Y_0 1))\n", net)[0] != "sat"
    assert answer(tmp_path, head + "(assert (>= Y_0 1))\n", net)[0] == "sat"
    assert answer(tmp_path, head + "(assert (= Y_0 0.25))\n", net)[0] == "sat"
    assert answer(tmp_path, head + "(assert (= Y_0 2))\n", net)[0] == "unsat"


def test_bounds_that_are_not_floats_are_rounded_outwards(tmp_path):
    p = _write(tmp_path, "p.vnnlib", "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
               "(assert (>= (* 3 X_0) 1))\n(assert (<= (* 3 X_0) 2))\n(assert (>= Y_0 5))\n")
    [case] = read_vnnlib(p, 1, 1)
    (lo, hi), = case.x_specs
    from fractions import Fraction
    assert Fraction(lo) <= Fraction(1, 3) and Fraction(hi) >= Fraction(2, 3)
    # a point on the outward-rounded bound is not inside the file's region
    assert not case.unsafe_at([lo], [6.0]) and case.unsafe_at([0.5], [6.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_point_an_ulp_outside_decimal_bounds_moves_inside_by_an_ulp(tmp_path, dtype):
    """0.05 and 0.1 are not floats: verify's box, rounded outwards, holds points just outside
    the file's exact box. ``moved_inside`` steps each such coordinate to the nearest value of
    the network's type inside, and leaves the others alone."""
    from fractions import Fraction

    p = _write(tmp_path, "p.vnnlib", "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
               "(declare-const X_2 Real)\n(declare-const Y_0 Real)\n"
               "(assert (>= X_0 0.1))\n(assert (<= X_0 0.3))\n(assert (>= X_1 0))\n"
               "(assert (<= X_1 0.05))\n(assert (>= X_2 -1))\n(assert (<= X_2 1))\n"
               "(assert (>= Y_0 5))\n")
    [case] = read_vnnlib(p, 3, 1)
    (lo0, _), (_, hi1), _ = case.x_specs
    x = np.array([lo0, hi1, 0.5], dtype=dtype)
    if Fraction(float(x[0])) >= Fraction(1, 10):       # float32's 0.1 is above 0.1: push it out
        x[0] = np.nextafter(x[0], dtype(-1))
    if Fraction(float(x[1])) <= Fraction(1, 20):
        x[1] = np.nextafter(x[1], dtype(1))
    assert not case.unsafe_at(x.tolist(), [6.0])
    [z] = case.moved_inside(x, dtype)
    assert z.dtype == dtype and case.unsafe_at(z.tolist(), [6.0])
    assert Fraction(float(z[0])) >= Fraction(1, 10) and Fraction(float(z[1])) <= Fraction(1, 20)
    assert z[0] == np.nextafter(x[0], dtype(1)) and z[1] == np.nextafter(x[1], dtype(-1))
    assert z[2] == x[2]


def test_the_cli_reports_a_counterexample_found_on_a_rounded_bound_from_inside(tmp_path):
    """mnistfc's bounds are float32 pixels written with 16 digits, a hair above the float32
    value: a float32 network's counterexample on such a bound lies just outside the file's
    box. y = -x on [0.5029411911964417, 0.6], unsafe y >= -0.50295 (a slab at the lower
    bound): still sat, at a point inside the file's exact box."""
    from fractions import Fraction

    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(-1.0)
        lin.bias.zero_()
    net = nn.Sequential(lin)
    word, lines = answer(tmp_path, "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                         "(assert (>= X_0 0.5029411911964417))\n(assert (<= X_0 0.6))\n"
                         "(assert (>= Y_0 -0.50295))\n", net)
    assert word == "sat", lines
    [x] = [float(line.split()[-1].rstrip(")")) for line in lines if "(X_0 " in line]
    assert Fraction(x) >= Fraction("0.5029411911964417") and -np.float32(x) >= -0.50295


def test_declare_fun_of_no_arguments_is_a_declare_const(tmp_path):
    """VNN-COMP 2024's ACC and drones_1d_hovering declare ``(declare-fun X_0 () Real)``, SMT-LIB's
    other spelling of a constant: the same property; a function with arguments is refused."""
    const = HEAD2 + "(assert (>= Y_2 1.5))\n"
    fun = const.replace("(declare-const X_0 Real)", "(declare-fun X_0 () Real)") \
               .replace("(declare-const Y_2 Real)", "(declare-fun Y_2 () Real)")
    assert "declare-fun" in fun
    a = read_vnnlib(_write(tmp_path, "c.vnnlib", const), 2, 3)
    b = read_vnnlib(_write(tmp_path, "f.vnnlib", fun), 2, 3)
    assert [c.x_specs for c in a] == [c.x_specs for c in b] and len(a) == 1
    assert str(a[0].prop) == str(b[0].prop) == "1.5 > y[2]"
    assert answer(tmp_path, fun)[0] == "sat"              # y2 = x0 + x1 reaches 1.5
    bad = fun.replace("(declare-fun X_0 () Real)", "(declare-fun X_0 (Real) Real)")
    with pytest.raises(FormatError, match=r"line 1: expected \(declare-fun X_i \(\) Real\)"):
        read_vnnlib(_write(tmp_path, "bad.vnnlib", bad), 2, 3)


def test_gzipped_networks_and_properties_read_as_the_plain_files(tmp_path):
    """VNN-COMP ships ``.onnx.gz`` and ``.vnnlib.gz`` since 2022: the CLI reads them as the
    plain files, VNN-LIB 1.0 and 2.0 alike, and a damaged one is refused in one line."""
    import gzip

    from onnx import helper

    from onnx_graphs import model_bytes

    data = model_bytes([helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1)],
                       [("x", [1, 2])], "y", {"W": np.eye(2), "b": np.zeros(2)})
    (tmp_path / "n.onnx.gz").write_bytes(gzip.compress(data))
    v1 = HEAD2.replace("(declare-const Y_2 Real)\n", "") + "(assert (>= Y_0 0.5))\n"
    v2 = ("(vnnlib-version <2.0>)\n(declare-network f\n  (declare-input X real [2])\n"
          "  (declare-output Y real [2])\n)\n(assert (<= X[0] 1.0))\n(assert (>= X[0] -1.0))\n"
          "(assert (<= X[1] 1.0))\n(assert (>= X[1] -1.0))\n(assert (>= Y[0] 0.5))\n")
    for name, text in (("p1.vnnlib.gz", v1), ("p2.vnnlib.gz", v2)):
        (tmp_path / name).write_bytes(gzip.compress(text.encode()))
        assert cli.main([str(tmp_path / "n.onnx.gz"), str(tmp_path / name), "--timeout", "20"]) == 10
    (tmp_path / "bad.onnx.gz").write_bytes(b"not gzip")
    assert cli.main([str(tmp_path / "bad.onnx.gz"), str(tmp_path / "p1.vnnlib.gz")]) == 2


@pytest.mark.parametrize("text, pattern", [
    ("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1))\n"
     "(assert (>= Y_0 0))\n", r"X_0 has no lower bound"),
    ("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1)\n",
     r"line 3: '\(' never closed"),
    ("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= (* X_0 Y_0) 1))\n",
     r"line 3: a product of two variables is not linear"),
    ("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1))\n"
     "(assert (>= X_0 0))\n(assert (<= (+ X_0 Y_0) 1))\n",
     r"line 5: a constraint that mixes inputs and outputs"),
    ("(declare-const X_0 Real)\n(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (>= Y_0 1))\n",
     r"line 4: Y_0 is never declared \(declare-const\)"),
    ("(declare-const X_0 Real)\n(declare-const X_0 Real)\n", r"line 2: X_0 is declared twice"),
    ("(declare-const X_0 Int)\n", r"line 1: X_0 is declared Int; expected Real"),
    ("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(assert (<= X_0 1))\n"
     "(assert (>= X_0 0))\n(assert (<= X_1 1))\n", r"line 5: X_1, but the network has 1 inputs"),
    ("(declare-const X_0 Real)\n(check-sat)\n", r"line 2: \(check-sat ...\) is not part of "
                                                r"VNN-LIB 1.0"),
    ("(declare-const X_0 Real)\n(assert (<= X_0 1e400x))\n", r"line 2: expected a number or a "
                                                              r"variable"),
    ("(declare-const X_0 Real)\n(assert (<= X_0 (/ 1 0)))\n", r"line 2: division by zero"),
])
def test_what_cannot_be_read_exactly_is_refused_naming_where(tmp_path, text, pattern):
    p = _write(tmp_path, "bad.vnnlib", text)
    with pytest.raises(FormatError, match=pattern):
        read_vnnlib(p, 1, 1)


def test_the_cli_refuses_in_one_line_with_exit_status_2(tmp_path):
    """A refused property or network: exit status 2, one ``error:`` line, nothing on stderr."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    net = _write(tmp_path, "n.nnet", SMALL_NNET)
    bad_prop = _write(tmp_path, "p.vnnlib", "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
                      "(declare-const Y_0 Real)\n(assert (<= (+ X_0 Y_0) 1))\n(assert (<= X_0 1))\n"
                      "(assert (>= X_0 0))\n(assert (<= X_1 1))\n(assert (>= X_1 0))\n")
    not_onnx = _write(tmp_path, "n.onnx", "this is not an ONNX file")
    good_prop = _write(tmp_path, "q.vnnlib", "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
                       "(declare-const Y_0 Real)\n(assert (<= X_0 1))\n(assert (>= X_0 0))\n"
                       "(assert (<= X_1 1))\n(assert (>= X_1 0))\n")
    for network, prop, says in ((net, bad_prop, "p.vnnlib, line 4: a constraint that mixes inputs"),
                                (not_onnx, good_prop, "n.onnx")):
        done = subprocess.run([sys.executable, "-m", "verifier", str(network), str(prop)],
                              cwd=root, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done
        assert done.stderr == "" and done.stdout.count("\n") == 1, done
        assert done.stdout.startswith("error: ") and says in done.stdout, done.stdout



def _usual_shape(rng, n_in, n_out) -> str:
    """A property as VNN-COMP writes them: input bounds, then one ``or`` of ``and``s of outputs."""
    lines = [f"(declare-const X_{i} Real)" for i in range(n_in)] + \
        [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i in range(n_in):
        lo = round(rng.uniform(-1, 0), 3)
        lines += [f"(assert (<= X_{i} {lo + round(rng.uniform(0, 1), 3)}))",
                  f"(assert (>= X_{i} {lo}))"]
    disjuncts = []
    for _ in range(rng.randint(1, 4)):
        atoms = []
        for _ in range(rng.randint(1, 3)):
            j, k = rng.sample(range(n_out), 2)
            op = rng.choice(["<=", ">="])
            atoms.append(f"({op} Y_{j} Y_{k})" if rng.random() < 0.5 else
                         f"({op} Y_{j} {round(rng.uniform(-2, 2), 3)})")
        disjuncts.append("(and " + " ".join(atoms) + ")")
    lines.append("(assert (or " + " ".join(disjuncts) + "))")
    return "\n".join(lines) + "\n"


def test_files_of_vnncomp_shape_read_as_the_vnnlib_package_reads_them(tmp_path):
    """On what the ``vnnlib`` 0.0.x reader was made for, both readers give the same boxes and
    the same unsafe rows (up to order)."""
    import random
    import warnings

    from vnnlib.compat import read_vnnlib_simple

    rng = random.Random(7)
    for k in range(40):
        n_in, n_out = rng.randint(1, 4), rng.randint(2, 5)
        p = _write(tmp_path, f"p{k}.vnnlib", _usual_shape(rng, n_in, n_out))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # sealed: the package's compiled generators leave StopIteration behind otherwise
            theirs = formats._sealed(read_vnnlib_simple, str(p), n_in, n_out)
        ours = read_vnnlib(p, n_in, n_out)
        assert len(theirs) == len(ours) == 1
        (box, polytopes), case = theirs[0], ours[0]
        # the same bounds, but for the last bit: theirs is the float nearest the file's decimal,
        # ours the nearest float outside it (the box covers the file's)
        for (lo, hi), (our_lo, our_hi) in zip(box, case.x_specs):
            assert our_lo <= lo and our_hi >= hi
            assert lo - our_lo <= np.spacing(abs(lo)) and our_hi - hi <= np.spacing(abs(hi))

        def rows(mat, rhs):
            return sorted(tuple(np.append(np.asarray(r, float), float(c)))
                          for r, c in zip(np.atleast_2d(mat), np.ravel(rhs)))

        def our_rows(outs):
            out = []
            for a in outs:
                row = np.zeros(n_out)
                for (_, j), c in a.lin.coef.items():
                    row[j] = float(c)
                out.append(tuple(np.append(row, -float(a.lin.const))))
            return sorted(out)
        assert sorted(rows(m, r) for m, r in polytopes) == \
            sorted(our_rows(outs) for _, outs in case.terms), p.read_text()


def test_the_cli_writes_vnncomps_result_file(tmp_path):
    net = _write(tmp_path, "n.nnet", SMALL_NNET)
    head = ("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
            "(assert (<= X_0 1))\n(assert (>= X_0 -1))\n(assert (<= X_1 2))\n(assert (>= X_1 -2))\n")
    holds = _write(tmp_path, "holds.vnnlib", head + "(assert (>= Y_0 100.0))\n")
    broken = _write(tmp_path, "broken.vnnlib", head + "(assert (>= Y_0 0.3))\n")
    result = tmp_path / "result.txt"
    assert cli.main([str(net), str(holds), "--timeout", "20", "--result", str(result)]) == 0
    assert result.read_text() == "unsat\n"
    assert cli.main([str(net), str(broken), "--timeout", "20", "--result", str(result)]) == 10
    lines = result.read_text().splitlines()
    assert lines[0] == "sat" and lines[1].startswith("((X_0 ") and lines[2].startswith(" (X_1 ")
    assert lines[3].startswith(" (Y_0 ") and lines[-1].endswith("))") and len(lines) == 4
    x = [float(line.strip("() ").split()[1]) for line in lines[1:3]]
    assert -1 <= x[0] <= 1 and -2 <= x[1] <= 2


def test_an_input_fixed_at_a_value_no_float_holds_rounds_to_the_counterexample(tmp_path):
    """dist_shift fixes most inputs at the shortest decimal of a float32 pixel
    (``X_1 = 0.3499999940395355``, float32's 0.35 is 0.349999994039535522...): no float point
    meets the file's box exactly, yet a runtime fed that decimal computes the network at the
    float32 pixel. ``rounding_to`` gives the exact point, with the fixed inputs on their
    decimals, when each rounds to the float point; the CLI writes those decimals exactly."""
    from fractions import Fraction

    pixel = repr(float(np.float32(0.35)))
    assert Fraction(pixel) != Fraction(float(np.float32(0.35)))
    p = _write(tmp_path, "p.vnnlib", "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
               "(declare-const Y_0 Real)\n(assert (>= X_0 -1))\n(assert (<= X_0 1))\n"
               f"(assert (>= X_1 {pixel}))\n(assert (<= X_1 {pixel}))\n(assert (>= Y_0 1.2))\n")
    [case] = read_vnnlib(p, 2, 1)
    x = np.array([0.5, 0.35], dtype=np.float32)
    assert not case.unsafe_at(x.tolist(), [2.0]) and case.moved_inside(x) == []
    [z] = case.rounding_to(x, np.float32)
    assert z[0] == 0.5 and z[1] == Fraction(pixel) and case.unsafe_at(z, [2.0])
    # a point that does not round to the pixel has no such partner
    assert case.rounding_to(np.array([0.5, np.nextafter(np.float32(0.35), np.float32(1))],
                                     dtype=np.float32)) == []

    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0]]))
        lin.bias.zero_()
    word, lines = answer(tmp_path, p.read_text(), nn.Sequential(lin))
    assert word == "sat", lines
    assert any(line.strip() == f"(X_1 {pixel})" for line in lines), lines
    [x0] = [float(line.split()[-1].rstrip(")")) for line in lines if "(X_0 " in line]
    assert x0 + 2 * float(np.float32(0.35)) >= 1.2


def _intervals_file(boxes) -> str:
    """A file of nn4sys's shape: one 'and' per (lo, hi, output atom), all in one 'or'."""
    parts = "\n".join(f"  (and (>= X_0 {lo!r}) (<= X_0 {hi!r}) ({op} Y_0 {t!r}))"
                      for lo, hi, op, t in boxes)
    return "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (or\n" + parts + "\n))\n"


def test_a_file_listing_more_cases_than_the_cap_is_read_but_a_product_is_not(tmp_path):
    from verifier.vnnlib_reader import MAX_TERMS
    n = MAX_TERMS + 1
    boxes = [(i / n, (i + 1) / n, "<=", -1.0) for i in range(n)]
    assert len(read_vnnlib(_write(tmp_path, "many.vnnlib", _intervals_file(boxes)), 1, 1)) == n
    # an 'and' of four 'or's of 11 parts each would be 14,641 cases from 44 atoms
    ors = "".join("(assert (or " + " ".join(f"(<= Y_{j} {k})" for k in range(11)) + "))\n"
                  for j in range(4))
    text = ("(declare-const X_0 Real)\n" + "".join(f"(declare-const Y_{j} Real)\n" for j in range(4))
            + "(assert (>= X_0 0))\n(assert (<= X_0 1))\n" + ors)
    with pytest.raises(FormatError, match="multiplies out"):
        read_vnnlib(_write(tmp_path, "product.vnnlib", text), 1, 4)


def _relu_net(seed: int) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(1, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)
    return net


@pytest.mark.parametrize("seed", range(3))
def test_many_boxes_proved_together_hold_on_a_dense_grid_of_each(seed):
    """``prove_boxes`` against the network itself: every box it proves is checked at 2,001
    points of the box, and what it leaves to ``verify`` includes every box with a violation."""
    from verifier import verify
    from verifier.engine import prove_boxes

    net = _relu_net(seed)
    g = torch.Generator().manual_seed(100 + seed)
    questions, grids = [], []
    for _ in range(120):
        lo = float(torch.rand(1, generator=g)) * 4 - 2
        hi = lo + float(torch.rand(1, generator=g)) ** 3 * 0.5
        grid = torch.linspace(lo, hi, 2001).unsqueeze(1)
        with torch.no_grad():
            y = net(grid).double().flatten()
        # thresholds just beyond the range on the grid, or inside it
        cut = float(y.min()) - float(torch.rand(1, generator=g)) * 0.3
        questions.append(([(lo, hi)], [(cut, math.inf)]))
        grids.append((y, cut))
    found = prove_boxes(net, questions, chunk=50)
    assert any(found) and not all(found)
    for (x_specs, y_specs), (y, cut), how in zip(questions, grids, found):
        if how is not None:
            assert how in ("rigorous", "estimated")
            assert (y >= cut).all(), (x_specs, cut, float(y.min()))
        if (y < cut).any():
            assert how is None
    # where it proves, verify proves too (it is the first step of verify)
    for (x_specs, y_specs), how in list(zip(questions, found))[:20]:
        if how is not None:
            assert verify(net, x_specs, y_specs, timeout=10, progress=False) == "pass"


def test_the_cli_proves_many_intervals_together_and_still_finds_the_broken_one(tmp_path):
    net = _relu_net(7)
    g = torch.Generator().manual_seed(7)
    boxes = []
    for _ in range(40):
        lo = float(torch.rand(1, generator=g)) * 2 - 1
        hi = lo + 0.01
        with torch.no_grad():
            y = net(torch.linspace(lo, hi, 101).unsqueeze(1)).double().flatten()
        boxes += [(lo, hi, "<=", float(y.min()) - 0.5), (lo, hi, ">=", float(y.max()) + 0.5)]
    p = _write(tmp_path, "p.vnnlib", _intervals_file(boxes))
    word, lines = cli.run_instance(net, p, 30)
    assert word == "unsat", lines
    assert any(line.startswith("40 of 40 cases proved together") for line in lines), lines
    # one box whose output does reach its unsafe side: found, with a counterexample
    lo, hi = boxes[5][0], boxes[5][1]
    with torch.no_grad():
        top = float(net(torch.tensor([[hi]])).flatten())
    broken = boxes + [(lo, hi, "<=", top + 1.0)]
    word, lines = cli.run_instance(net, _write(tmp_path, "q.vnnlib", _intervals_file(broken)), 30)
    assert word == "sat", lines
