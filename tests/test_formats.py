"""Loaders for real networks and properties (NNet, ONNX, VNN-LIB) and ``python -m verifier``."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from verifier import formats, verify
from verifier.formats import FormatError, load_nnet, load_onnx, load_vnnlib

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "assets" / "acasxu" / "ACASXU_run2a_2_1_batch_2000.nnet"

SMALL_NNET = """// a 2-3-1 network, by hand
// second comment line
2,2,1,3,
2,3,1,
0,
-1.0,-2.0,
1.0,2.0,
0.5,0.0,10.0,
2.0,4.0,3.0,
1.0,-1.0,
0.5,0.5,
-2.0,0.0,
0.0,
1.0,
-0.5,
1.0,-1.0,2.0,
0.25,
"""


def small_nnet(tmp_path) -> Path:
    p = tmp_path / "small.nnet"
    p.write_text(SMALL_NNET)
    return p


def test_nnet_network_and_normalisation_match_the_file(tmp_path):
    model = load_nnet(small_nnet(tmp_path))
    W1 = np.array([[1.0, -1.0], [0.5, 0.5], [-2.0, 0.0]])
    b1 = np.array([0.0, 1.0, -0.5])
    W2, b2 = np.array([[1.0, -1.0, 2.0]]), np.array([0.25])
    x = np.array([[0.3, -0.7], [-0.2, 0.1]])
    want = np.maximum(x @ W1.T + b1, 0) @ W2.T + b2
    got = model.net(torch.tensor(x, dtype=torch.float32)).detach().double().numpy()
    assert np.allclose(got, want, atol=1e-6)
    # physical -> normalised: clip to [-1, 1] x [-2, 2], then (x - mean) / range
    assert model.normalise([5.0, -1.0]).tolist() == [(1.0 - 0.5) / 2.0, -1.0 / 4.0]
    assert model.input_box([0.5, 0.0], [1.0, 4.0]) == [(0.0, 0.25), (0.0, 0.5)]
    assert model.to_physical(1.0) == 13.0 and model.output_threshold(13.0) == 1.0


@pytest.mark.parametrize("edit,pattern", [
    (lambda t: t.replace("2,3,1,\n", "2,3,2,\n"), r"layer sizes"),
    (lambda t: t.replace("2,3,1,\n", "2,4,1,\n"), r"data line 11: expected 2 weights"),
    (lambda t: t.replace("0.5,0.0,10.0,", "0.5,0.0,"), r"normalisation"),
    (lambda t: t.replace("-0.5,\n", "oops,\n"), r"expected numbers"),
    (lambda t: "\n".join(t.splitlines()[:14]), r"ends inside"),
])
def test_a_damaged_nnet_file_says_where(tmp_path, edit, pattern):
    p = tmp_path / "bad.nnet"
    p.write_text(edit(SMALL_NNET))
    with pytest.raises(FormatError, match=pattern):
        load_nnet(p)


def test_a_shipped_acas_xu_network_loads_with_vnncomp_units():
    model = load_nnet(SHIPPED)
    sizes = [m.out_features for m in model.net if isinstance(m, torch.nn.Linear)]
    assert sizes == [50] * 6 + [5]
    # phi1's box and threshold as VNN-COMP's prop_1.vnnlib states them
    box = model.input_box([55947.691, -3.141593, -3.141593, 1145, 0],
                          [60760, 3.141593, 3.141593, 1200, 60])
    assert np.allclose(box, [(0.6, 0.679857769), (-0.5, 0.5), (-0.5, 0.5), (0.45, 0.5),
                             (-0.5, -0.45)], atol=1e-6)
    assert model.output_threshold(1500) == pytest.approx(3.991125645861615)


def write_onnx(path: Path):
    """x (1, 1, 3) -> Flatten -> Sub/Div normalisation -> Gemm -> Relu -> MatMul -> Add."""
    rng = np.random.default_rng(0)
    W1, b1 = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    W2, b2 = rng.normal(size=(4, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)
    mean, scale = np.array([0.1, 0.2, 0.3], np.float32), np.array([2.0, 4.0, 0.5], np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((W1, "W1"), (b1, "b1"), (W2, "W2"), (b2, "b2"), (mean, "mean"), (scale, "scale"))]
    nodes = [helper.make_node("Flatten", ["x"], ["f"]),
             helper.make_node("Sub", ["f", "mean"], ["s"]),
             helper.make_node("Div", ["s", "scale"], ["n"]),
             helper.make_node("Gemm", ["n", "W1", "b1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "W2"], ["m"]),
             helper.make_node("Add", ["m", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
                              inits)
    onnx.save(helper.make_model(graph), str(path))

    def reference(x):
        n = (x.reshape(len(x), -1) - mean) / scale
        return np.maximum(n @ W1.T + b1, 0) @ W2 + b2
    return reference


def test_onnx_chain_computes_what_the_graph_says(tmp_path):
    reference = write_onnx(tmp_path / "net.onnx")
    net = load_onnx(tmp_path / "net.onnx")
    x = np.random.default_rng(1).normal(size=(5, 1, 3)).astype(np.float32)
    got = net(torch.tensor(x).reshape(5, 3)).detach().numpy()
    assert np.allclose(got, reference(x), atol=1e-5)
    assert verify(net, [(-1, 1)] * 3, [(-1e6, 1e6)] * 2, progress=False) == "pass"


def test_onnx_operators_outside_the_chain_are_named(tmp_path):
    node = helper.make_node("Tanh", ["x"], ["y"])
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    onnx.save(helper.make_model(graph), str(tmp_path / "s.onnx"))
    with pytest.raises(FormatError, match=r"operator Tanh is not supported"):
        load_onnx(tmp_path / "s.onnx")


VNNLIB_HEAD = "".join(f"(declare-const X_{i} Real)\n" for i in range(2)) + \
    "".join(f"(declare-const Y_{j} Real)\n" for j in range(2)) + \
    "(assert (>= X_0 -1.0))\n(assert (<= X_0 1.0))\n(assert (>= X_1 -2.0))\n(assert (<= X_1 2.0))\n"


def test_vnnlib_unsafe_region_becomes_the_property_to_prove(tmp_path):
    p = tmp_path / "p.vnnlib"
    p.write_text(VNNLIB_HEAD + "(assert (or (and (<= Y_0 Y_1) (>= Y_0 3.0)) (and (<= Y_1 -1.0))))\n")
    [(x_specs, prop)] = load_vnnlib(p, 2, 2)
    assert x_specs == [(-1.0, 1.0), (-2.0, 2.0)]
    # unsafe: (y0 <= y1 and y0 >= 3) or (y1 <= -1); the property is its negation
    from verifier.property import from_formula
    constraints = from_formula(prop, 2, softmax=False)
    for y, unsafe in (([4.0, 5.0], True), ([4.0, 3.0], False), ([0.0, -2.0], True),
                      ([0.0, 0.0], False), ([3.0, 3.0], True)):
        broken = any(c.violated(torch.tensor([y])) for c in constraints)
        assert broken == unsafe, (y, unsafe)


VNNLIB2_HEAD = """(vnnlib-version <2.0>)
; the same box as VNNLIB_HEAD, one assert per bound
(declare-network f
  (declare-input X real [2])
  (declare-output Y real [2])
)
(assert (<= X[0] 1.0))
(assert (>= X[0] -1.0))
(assert (<= X[1] 2.0))
(assert (>= X[1] -2.0))
"""


def _same_property(a, b, n_out=2, samples=400):
    """Two properties agree on random outputs (and on ties, which small integers hit)."""
    from verifier.property import from_formula
    ca, cb = from_formula(a, n_out, softmax=False), from_formula(b, n_out, softmax=False)
    gen = torch.Generator().manual_seed(1)
    ys = torch.cat([torch.randn(samples, n_out, generator=gen) * 4,
                    torch.randint(-4, 5, (samples, n_out), generator=gen).double()])
    for y in ys:
        y = y[None]
        assert any(c.violated(y) for c in ca) == any(c.violated(y) for c in cb), y


def test_vnnlib_2_reads_as_the_same_property_as_vnnlib_1(tmp_path):
    one, two = tmp_path / "one.vnnlib", tmp_path / "two.vnnlib"
    one.write_text(VNNLIB_HEAD + "(assert (or (and (<= Y_0 Y_1) (>= Y_0 3.0)) "
                   "(and (<= Y_1 -1.0))))\n")
    two.write_text(VNNLIB2_HEAD + "(assert (or (and (<= Y[0] Y[1]) (>= Y[0] 3.0)) "
                   "(<= (* 2.0 Y[1]) -2.0)))\n")
    assert formats.vnnlib_version(one) == "1.0" and formats.vnnlib_version(two) == "2.0"
    [(box1, prop1)] = load_vnnlib(one, 2, 2)
    [(box2, prop2)] = load_vnnlib(two, 2, 2)
    assert box1 == box2 == [(-1.0, 1.0), (-2.0, 2.0)]
    _same_property(prop1, prop2)


def test_reading_vnnlib_leaves_no_exception_behind(tmp_path):
    """The readers' compiled generators leave StopIteration as the exception being handled; an
    error raised after reading a file (a student's cell) must not carry a chain of them."""
    one, two = tmp_path / "one.vnnlib", tmp_path / "two.vnnlib"
    one.write_text(VNNLIB_HEAD + "(assert (>= Y_0 3.0))\n")
    two.write_text(VNNLIB2_HEAD + "(assert (>= Y[0] 3.0))\n")
    for path in (one, two):
        load_vnnlib(path, 2, 2)
        assert sys.exc_info() == (None, None, None), (path.name, sys.exc_info())
        with pytest.raises(ValueError) as raised:
            raise ValueError("a later error")
        assert raised.value.__context__ is None


def test_vnnlib_2_one_and_of_bounds_beside_an_or_of_outputs_is_one_case(tmp_path):
    # the vnnlib package's own transform (1.0.2) split this into a case with no input bound and
    # one where every output is unsafe; the kit combines the formula itself
    p = tmp_path / "p.vnnlib"
    p.write_text(VNNLIB2_HEAD.split("(assert")[0] +
                 "(assert (and (<= X[0] 1.0) (>= X[0] -1.0) (<= X[1] 2.0) (>= X[1] -2.0)))\n"
                 "(assert (or (<= Y[0] Y[1]) (>= Y[1] 3.0)))\n")
    one = tmp_path / "one.vnnlib"
    one.write_text(VNNLIB_HEAD + "(assert (or (<= Y_0 Y_1) (>= Y_1 3.0)))\n")
    [(box2, prop2)] = load_vnnlib(p, 2, 2)
    [(box1, prop1)] = load_vnnlib(one, 2, 2)
    assert box1 == box2 == [(-1.0, 1.0), (-2.0, 2.0)]
    _same_property(prop1, prop2)


@pytest.mark.parametrize("body, pattern", [
    ("(assert (<= X[0] 1.0))\n(assert (>= X[0] -1.0))\n(assert (<= Y[0] Y[1]))\n",
     "X_1 has no lower bound"),
    ("(assert (<= X[0] 1.0))\n(assert (>= X[0] -1.0))\n(assert (<= X[1] 2.0))\n"
     "(assert (>= X[1] -2.0))\n(assert (<= Y[0] 1))\n",
     r"not a VNN-LIB 2.0 property the reader understands \(line 11: Type mismatch"),
])
def test_vnnlib_2_files_the_reader_cannot_use_say_why(tmp_path, body, pattern):
    p = tmp_path / "bad.vnnlib"
    p.write_text(VNNLIB2_HEAD.split("(assert")[0] + body)
    with pytest.raises(FormatError, match=pattern):
        load_vnnlib(p, 2, 2)


def test_vnnlib_2_sizes_must_match_the_network(tmp_path):
    p = tmp_path / "p.vnnlib"
    p.write_text(VNNLIB2_HEAD + "(assert (<= Y[0] Y[1]))\n")
    with pytest.raises(FormatError, match="declares 2 inputs and 2 outputs, but the "
                                          "network has 3 and 2"):
        load_vnnlib(p, 3, 2)


def test_cli_answers_in_vnncomp_words(tmp_path):
    net = small_nnet(tmp_path)
    holds = tmp_path / "holds.vnnlib"
    holds.write_text(VNNLIB_HEAD + "(assert (>= Y_0 100.0))\n")
    broken = tmp_path / "broken.vnnlib"
    broken.write_text(VNNLIB_HEAD + "(assert (>= Y_0 0.3))\n")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "verifier", *map(str, args)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    ok = run(net, holds, "--timeout", "20")
    assert ok.returncode == 0 and ok.stdout.splitlines()[-1] == "unsat" and ok.stderr == ""
    bad = run(net, broken, "--timeout", "20")
    assert bad.returncode == 10 and bad.stdout.splitlines()[-1] == "sat"
    assert "(X_0 " in bad.stdout and "(Y_0 " in bad.stdout
    holds2 = tmp_path / "holds2.vnnlib"
    one_output = VNNLIB2_HEAD.replace("(declare-output Y real [2])", "(declare-output Y real [1])")
    holds2.write_text(one_output + "(assert (>= Y[0] 100.0))\n")
    ok2 = run(net, holds2, "--timeout", "20")
    assert ok2.returncode == 0 and ok2.stdout.splitlines()[-1] == "unsat" and ok2.stderr == ""
    missing = run(tmp_path / "none.nnet", holds)
    assert missing.returncode == 2 and "not found" in missing.stdout
    no_threads = run(net, holds, "--threads", "0")
    assert no_threads.returncode == 2 and "--threads must be at least 1" in no_threads.stdout


def test_cli_runs_with_the_threads_asked_for_and_gives_them_back(tmp_path, monkeypatch):
    from verifier import __main__ as cli

    net = small_nnet(tmp_path)
    holds = tmp_path / "holds.vnnlib"
    holds.write_text(VNNLIB_HEAD + "(assert (>= Y_0 100.0))\n")
    seen = []
    real_run = cli.run
    monkeypatch.setattr(cli, "run", lambda *a: seen.append(torch.get_num_threads()) or real_run(*a))
    before = torch.get_num_threads()
    assert cli.main([str(net), str(holds), "--timeout", "20"]) == 0
    assert cli.main([str(net), str(holds), "--timeout", "20", "--threads", "2"]) == 0
    assert seen == [1, 2] and torch.get_num_threads() == before


def test_the_cli_budget_counts_from_the_process_start(tmp_path):
    """VNN-COMP's limit is wall time from the start: the imports come out of ``--timeout``."""
    from verifier import __main__ as cli

    age = subprocess.run([sys.executable, "-c", "import time; time.sleep(1.0); "
                          "from verifier.__main__ import process_age; print(process_age())"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert 1.0 <= float(age.stdout) < 100, age
    net = small_nnet(tmp_path)
    holds = tmp_path / "holds.vnnlib"
    holds.write_text(VNNLIB_HEAD + "(assert (>= Y_0 100.0))\n")
    assert cli.main([str(net), str(holds), "--timeout", "4"], spent=5.0) == 30
    assert cli.main([str(net), str(holds), "--timeout", "25"], spent=5.0) == 0
    late = subprocess.run([sys.executable, "-m", "verifier", str(net), str(holds), "--timeout",
                           "0.01"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert late.returncode == 30 and late.stdout.splitlines()[-1] == "timeout", late


def test_acas_xu_phi1_is_proved_and_phi2_refuted_on_the_shipped_network():
    from verifier import acasxu

    model = load_nnet(SHIPPED)
    (x1,), phi1 = acasxu.instance(1, model)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)     # small matrices: one thread is faster on a busy machine
    try:
        assert verify(model.net, x1, phi1, timeout=60, progress=False) == "pass"
    finally:
        torch.set_num_threads(threads)
    (x2,), phi2 = acasxu.instance(2, model)
    cexs = []
    assert verify(model.net, x2, phi2, cexs, timeout=30, progress=False) == "fail"
    y = model.net(cexs[0]).flatten()
    assert int(y.argmax()) == 0                       # COC is the maximal score there
    x = cexs[0].double().flatten().tolist()
    assert all(lo <= v <= hi for v, (lo, hi) in zip(x, x2))


def test_acas_xu_vnncomp_files_read_back_as_the_kit_instance(tmp_path):
    """bench/acasxu_files.py (what the peers read): the ONNX network computes the .nnet
    network, each VNN-LIB file holds the kit's box, and its property (the negation of
    the file's unsafe region) agrees with the kit's on random outputs."""
    from bench.acasxu_files import write_instance
    from verifier import acasxu
    from verifier.property import from_formula

    model = load_nnet(SHIPPED)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 5, generator=gen) - 0.5
    for k in range(1, 11):
        onnx_path, specs = write_instance(k, "2_1", SHIPPED.parent, tmp_path)
        if k == 1:
            with torch.no_grad():
                assert torch.allclose(load_onnx(onnx_path)(x), model.net(x), atol=1e-5)
        boxes, prop = acasxu.instance(k, model)
        assert len(specs) == len(boxes) == (2 if k == 6 else 1)
        want = from_formula(prop, 5, softmax=False)
        with torch.no_grad():
            ys = torch.cat([model.net(x), torch.randn(128, 5, generator=gen) * 0.05,
                            torch.randn(128, 5, generator=gen) * 5])
        for box, spec in zip(boxes, specs):
            (got_box, got_prop), = load_vnnlib(spec, 5, 5)
            # the file's decimals, read exactly, rounded outwards: the kit's floats or one step out
            for (lo, hi), (got_lo, got_hi) in zip(box, got_box):
                assert got_lo in (lo, np.nextafter(lo, -np.inf))
                assert got_hi in (hi, np.nextafter(hi, np.inf))
            got = from_formula(got_prop, 5, softmax=False)
            for y in ys:
                y = y[None]
                assert any(c.violated(y) for c in got) == any(c.violated(y) for c in want)
        if k == 8:   # COC and weak left tie for minimal: phi8 holds, the file must agree
            tie = torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0]])
            assert not any(c.violated(tie) for c in got)


def test_acas_peers_narrows_the_peers_and_names_a_wrong_one(monkeypatch):
    from bench import bench_peers

    found = {"marabou": {"version": "2"}, "neuralsat": {"version": "0.2"}}
    monkeypatch.delenv("ACAS_PEERS", raising=False)
    assert bench_peers.chosen(found) == found
    monkeypatch.setenv("ACAS_PEERS", "neuralsat")
    assert list(bench_peers.chosen(found)) == ["neuralsat"]
    monkeypatch.setenv("ACAS_PEERS", "nnenum")
    assert list(bench_peers.chosen({**found, "nnenum": {"version": "clone"}})) == ["nnenum"]
    monkeypatch.setenv("ACAS_PEERS", "marabou,eran")
    with pytest.raises(SystemExit, match="unknown peer.*eran"):
        bench_peers.chosen(found)


_FAKE_NNENUM = {
    "__init__.py": "",
    "settings.py": "class Settings:\n    NUM_PROCESSES = 0\n    PRINT_OUTPUT = True\n    TIMEOUT = None\n",
    "nnenum.py": (
        "import numpy as np\n"
        "def make_spec(vnnlib, onnx_path):\n"
        "    return [([[0.0, 1.0]] * 5, 'box%d' % i) for i in range(2)], np.float32\n"
        "def load_onnx_network_optimized(path):\n"
        "    raise ValueError('cannot fuse')\n"
        "def load_onnx_network(path):\n"
        "    return 'net'\n"
        "def set_control_settings():\n"
        "    pass\n"),
    "enumerate.py": (
        "import os\n"
        "from nnenum.settings import Settings\n"
        "class R:\n"
        "    cinput = None\n"
        "def enumerate_network(box, network, spec):\n"
        "    assert Settings.NUM_PROCESSES == 1 and not Settings.PRINT_OUTPUT and Settings.TIMEOUT > 0\n"
        "    r = R()\n"
        "    r.result_str = os.environ['FAKE_NNENUM'].split(',')[int(spec[-1])]\n"
        "    if 'unsafe' in r.result_str:\n"
        "        r.cinput = box[:, 0] + 0.25\n"
        "    return r\n"),
}


@pytest.mark.parametrize("results, status, cex", [
    ("safe,safe", "unsat", None),
    ("safe,unsafe", "sat", [0.25] * 5),
    ("unsafe,error", "sat", [0.25] * 5),      # the second box is never run
    ("safe,timeout", "timeout", None),
    ("none,safe", "unknown", None),
])
def test_the_nnenum_driver_answers_in_the_peer_protocol(tmp_path, monkeypatch, results, status, cex):
    """bench/peer_nnenum.py against a stand-in for nnenum's API (the real one is
    not on PyPI; bench/bench_peers.py says how to run it): every box is solved
    until one is not safe, and the answer comes back as the other peers' do."""
    from bench import bench_peers

    pkg = tmp_path / "src" / "nnenum"
    pkg.mkdir(parents=True)
    for name, text in _FAKE_NNENUM.items():
        (pkg / name).write_text(text)
    monkeypatch.setenv("NNENUM_SRC", str(tmp_path / "src"))
    monkeypatch.setenv("FAKE_NNENUM", results)
    r = bench_peers.run_nnenum({"python": sys.executable}, tmp_path / "net.onnx",
                               tmp_path / "prop.vnnlib", 10.0)
    assert (r["status"], r["cex"]) == (status, cex), r
    assert 0 <= r["time"] < 10


def test_the_benchs_own_vnnlib_evaluator_reads_constraints_over_several_inputs():
    """``bench.vnnlib_check`` confirms the bench's counterexamples without the kit's reader; it
    must read a polytope (ACC's ``1.5 X_1 - X_2 <= -5``), disjunctions and exact decimals."""
    from bench.vnnlib_check import holds, inside

    text = ("; ACC-like\n(declare-const X_0 Real)\n(declare-fun X_1 () Real)\n"
            "(declare-const Y_0 Real)\n(assert (<= (* -1.0 X_0) 0.0))\n(assert (<= X_0 50.0))\n"
            "(assert (<= (- (* 1.5 X_0) X_1) -5.0))\n(assert (or (<= Y_0 0.0) (>= Y_0 1.0)))\n")
    assert holds(text, ["1", "10"], [-0.5]) and holds(text, [1, 10], [2.0])
    assert not holds(text, [1, 10], [0.5])                 # output safe
    assert not inside(text, [4, 10]) and inside(text, ["0.1", "10"])
    assert not inside(text, ["3.3333333333333334", "10"])  # 1.5 x0 - 10 = -4.99999999999999990
    assert inside(text, ["3.3333333333333333", "10"])      # -5.00000000000000005
