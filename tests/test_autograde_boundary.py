"""The boundary between the phases, piece by piece: the exporter's files, the reader that trusts
none of them, and the objects the check rebuilds (networks by challenge, the loss by its answers)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from autograde import artifacts
from autograde.check import rebuild
from autograde.run import export

SEED = 1234


class Model(nn.Module):
    """A d2l-like model: a chain in `net`, images flattened in forward, a softmax, a loss."""

    def __init__(self, loss):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 10))
        self._loss = loss

    def forward(self, x):
        return nn.Softmax(dim=1)(self.net(nn.Flatten()(x)))

    def loss(self, y_hat, y):
        return self._loss(y_hat, y)


def roundtrip(tmp_path, **values):
    export.snapshot("t", values, sorted(values), str(tmp_path), SEED)
    return artifacts.read_snapshot(tmp_path, "t", sorted(values))


def rebuilt(tmp_path, value):
    return rebuild.rebuild(roundtrip(tmp_path, v=value)["v"], SEED)


def test_plain_values_tensors_and_specs_cross_unchanged(tmp_path):
    specs = [(0.1, 0.2), [0.3, math.inf]]
    values = roundtrip(tmp_path, specs=specs, n=3, text="hi", none=None, blob=b"\x89PNG",
                       tensor=torch.tensor([[1.5, -math.inf]]), array=np.arange(3))
    objects = {name: rebuild.rebuild(value, SEED)[0] for name, value in values.items()}
    assert objects["specs"] == [(0.1, 0.2), [0.3, math.inf]]
    assert (objects["n"], objects["text"], objects["none"], objects["blob"]) == (3, "hi", None, b"\x89PNG")
    assert torch.equal(objects["tensor"], torch.tensor([[1.5, -math.inf]]))
    assert isinstance(objects["array"], np.ndarray) and objects["array"].tolist() == [0, 1, 2]


def test_a_network_is_rebuilt_as_its_chain_and_gives_the_same_outputs(tmp_path):
    model = Model(lambda p, y: nn.functional.nll_loss(torch.log(p), y))
    net, notes = rebuilt(tmp_path, model)
    assert not notes
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "Softmax"]
    images = torch.rand(5, 1, 3, 4)
    with torch.no_grad():
        assert torch.allclose(net(images), model(images), atol=1e-6)


def test_a_sigmoid_network_crosses_as_its_chain(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Sigmoid(), nn.Linear(8, 1), nn.Sigmoid())
    net, notes = rebuilt(tmp_path, model)
    assert not notes
    assert [type(m).__name__ for m in net] == ["Linear", "Sigmoid", "Linear", "Sigmoid"]
    x = torch.rand(7, 2)
    with torch.no_grad():
        assert torch.equal(net(x), model(x))


def test_a_network_whose_forward_is_not_its_chain_is_refused(tmp_path, monkeypatch):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    # nn.ReLU calls F.relu at run time: the traced chain still says "relu"
    monkeypatch.setattr(nn.functional, "relu", lambda x, inplace=False: x.abs() - 5.0)
    exported = roundtrip(tmp_path, v=model)["v"]          # the run phase sees the patch
    monkeypatch.undo()                                     # the check phase does not
    net, notes = rebuild.rebuild(exported, SEED)
    assert notes and "does not see the network that runs" in notes[0]
    with pytest.raises(TypeError, match="does not see the network that runs"):
        net(torch.rand(3, 2))


def test_a_network_with_hooks_is_refused_with_the_verifiers_reason(tmp_path):
    class Doubling(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 1))

        def forward(self, x):
            return self.net(x)

    model = Doubling()
    model.net[0].register_forward_hook(lambda module, inputs, output: output * 2)
    net, notes = rebuilt(tmp_path, model)
    assert notes and "forward hooks on module 'net.0'" in notes[0]
    with pytest.raises(TypeError, match="forward hooks"):
        net(torch.rand(3, 2))


@pytest.mark.parametrize("loss, reduce, finite", [
    (lambda p, y: nn.functional.nll_loss(torch.log(p.clamp_min(1e-12)), y), "mean", True),
    (lambda p, y: nn.functional.nll_loss(torch.log(p + 1e-6), y), "mean", True),
    (lambda p, y: -torch.log(p[torch.arange(len(y)), y]).sum(), "sum", False),
])
def test_a_negative_log_likelihood_is_recognised_from_its_answers(tmp_path, loss, reduce, finite):
    net, _ = rebuilt(tmp_path, Model(loss))
    probs = torch.softmax(torch.randn(6, 10), dim=1)
    labels = torch.randint(0, 10, (6,))
    expected = -torch.log(probs[torch.arange(6), labels])
    assert torch.isclose(net.loss(probs, labels), getattr(expected, reduce)())
    certain = torch.zeros(2, 10)
    certain[:, 3] = 1
    assert bool(torch.isfinite(net.loss(certain, torch.tensor([3, 4])))) == finite


def test_a_loss_that_is_not_the_likelihood_fails_with_what_it_gave(tmp_path):
    net, _ = rebuilt(tmp_path, Model(lambda p, y: nn.functional.mse_loss(p, nn.functional.one_hot(y, 10).float())))
    with pytest.raises(AssertionError, match="your loss gave"):
        net.loss(torch.full((2, 10), 0.1), torch.tensor([1, 2]))


def test_verdicts_cross_as_their_status_only(tmp_path):
    from verifier.result import VerificationResult

    result, _ = rebuilt(tmp_path, VerificationResult("fail", counterexamples=[torch.zeros(1, 2)]))
    assert result == "fail" and result.counterexamples == []


def test_objects_that_are_not_data_cannot_be_graded(tmp_path):
    class Always:
        def __eq__(self, other):
            return True

    value, notes = rebuilt(tmp_path, Always())
    assert notes and value != [1, 2, 3]
    with pytest.raises(TypeError, match="cannot be graded"):
        value[0]


def write(tmp_path, document, **arrays):
    (tmp_path / "t.json").write_text(json.dumps(document))
    np.savez(tmp_path / "t.npz", **arrays)


@pytest.mark.parametrize("document, arrays, expected", [
    ({"format": 1, "test": "other", "values": {}}, {}, "should be"),
    ({"format": 1, "test": "t", "values": {"v": {"array": "a0", "kind": "tensor"}}}, {}, "key of an array"),
    ({"format": 1, "test": "t", "values": {"v": {"code": "import os"}}}, {}, "unknown value node"),
    ({"format": 1, "test": "t", "values": {"v": {"network": {"layers": [{"weight": "w", "bias": "b"}],
                                                             "softmax": False, "outputs": {"array": "w"}}}}},
     {"w": np.zeros((3, 2), np.float32), "b": np.zeros(4, np.float32)}, "bias of shape"),
])
def test_the_reader_refuses_what_does_not_follow_the_schema(tmp_path, document, arrays, expected):
    write(tmp_path, document, **arrays)
    with pytest.raises(artifacts.ArtifactError, match=expected):
        artifacts.read_snapshot(tmp_path, "t", ["v"])


def test_the_reader_never_unpickles(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps({"format": 1, "test": "t", "values": {"v": {"array": "a0",
                                                                                             "kind": "ndarray"}}}))
    np.savez(tmp_path / "t.npz", a0=np.array([object()], dtype=object))
    with pytest.raises(artifacts.ArtifactError, match="not a plain .npz"):
        artifacts.read_snapshot(tmp_path, "t", ["v"])


def test_a_missing_export_says_the_run_stopped_before_the_test(tmp_path):
    with pytest.raises(artifacts.ArtifactError, match="run stopped before it"):
        artifacts.read_snapshot(tmp_path, "t", ["v"])


def test_each_test_gets_the_students_values_it_reads_and_the_kits_helpers_fresh():
    import nbformat

    from autograde.check import source

    notebook = nbformat.read(Path(__file__).resolve().parents[1] / "lab3.ipynb", as_version=4)
    statements, bound = source.prelude(notebook)
    assert {"inside_circle", "verify", "MNISTData", "perturb_one_pixel", "mnist_data", "torch", "nn"} <= bound
    assert not any("nn_circle" in statement for statement in statements)
    assert "needs" in bound   # the notebook's own helper, from the source
    names = source.names_read(source.tests(notebook), bound)
    assert names["test_circle_model"] == ["nn_circle"]
    assert names["test_property1"] == ["cases1", "nn_circle", "ret1"]
    assert names["test_mnist_verify"] == ["cases", "mnist_model", "ret_mnist", "x_specs", "y_specs"]


def _notebook(*cells):
    """A source notebook of (kind, source) cells: "provided", "solution" or "test"."""
    import nbformat

    made = []
    for k, (kind, text) in enumerate(cells):
        cell = nbformat.v4.new_code_cell(text)
        cell.metadata["nbgrader"] = {"grade_id": f"c{k}", "grade": kind == "test",
                                     "solution": kind == "solution", "locked": kind != "solution",
                                     "schema_version": 3, **({"points": 1} if kind == "test" else {})}
        made.append(cell)
    return nbformat.v4.new_notebook(cells=made)


def test_the_instructors_helpers_and_constants_are_bound_from_the_source():
    from autograde.check import source

    notebook = _notebook(
        ("provided", "import math\nRADIUS = 1.0\nCENTRE = (0.0, 0.5 * RADIUS)\nLIMIT = math.inf\n"
                     "BOX = [(-1, 1), (-1, 1)]\nPOINTS = [(0, 0), (2, 2)]\nSEEN = []\nTWICE = 1\n"
                     "def in_box(p, box=((-1, 1), (-1, 1))):\n"
                     "    return all(lo <= v <= hi for v, (lo, hi) in zip(p, box))\n"
                     "class Probe:\n    def far(self, p):\n        return math.dist(p, CENTRE) > RADIUS\n"
                     "def score(points):\n    return sum(net(p) for p in points)\n"
                     "def uses_later():\n    return defined_later()\n"
                     "def defined_later():\n    return RADIUS"),
        ("solution", "net = None\nTWICE = 2\nSEEN.append(1)\n"),
        ("test", "assert in_box((0, 0)) and not Probe().far(CENTRE) and LIMIT > RADIUS\n"
                 "assert uses_later() == RADIUS and POINTS and SEEN is not None and TWICE and score"),
        ("solution", "total = sum(BOX[0])"),
    )
    statements, bound = source.prelude(notebook)
    # helpers and immutable constants; a list only tests read (POINTS); helpers calling each other
    assert {"RADIUS", "CENTRE", "LIMIT", "POINTS", "in_box", "Probe", "uses_later", "defined_later"} <= bound
    # not: a list other cells read (they might change it in place), a name bound twice, a helper
    # reading a student's name
    assert not {"BOX", "SEEN", "TWICE", "score", "net"} & bound
    names = source.names_read(source.tests(notebook), bound)
    assert names["c2"] == ["SEEN", "TWICE", "score"]
    namespace = {}
    for statement in statements:
        exec(statement, namespace)
    assert namespace["in_box"]((0.5, 0.5)) and namespace["uses_later"]() == 1.0


def test_a_network_verify_cannot_read_fails_every_test_with_verifys_own_message():
    """A structural test (which layers) or a call gets the reason, never the stand-in's class
    name, and the message names its type once."""
    from autograde.check import rebuild, runner

    reason = "TypeError: verify() does not support layer '1' (Tanh); it supports networks built from ..."
    net, notes = rebuild.rebuild(artifacts.Unreadable(reason), seed=0)
    assert notes == [reason]
    for use in (lambda: list(net.modules()), lambda: next(net.children(), None),
                lambda: net(torch.zeros(1, 2)), lambda: list(net.parameters())):
        with pytest.raises(TypeError) as raised:
            use()
        message = runner._message(raised.value)
        assert message.startswith("TypeError: verify() does not support layer '1' (Tanh)"), message
        assert "TypeError: TypeError" not in message and "UnreadableNetwork" not in message


def test_a_helper_reading_what_only_the_students_kernel_makes_stays_there():
    """A provided assignment the check does not bind (it calls a student's function, or a
    builtin) makes every helper that reads it the student's too."""
    from autograde.check import source

    notebook = _notebook(
        ("provided", "import math\ndata = open('assets/table.txt')\nret = check(net)\n"
                     "def reads_data():\n    return data\ndef reads_ret():\n    return ret\n"
                     "def pure(x):\n    return math.sqrt(x)"),
        ("solution", "net = 1\ndef check(n):\n    return n"),
        ("test", "assert reads_data() and reads_ret() and pure(4) == 2"),
    )
    _, bound = source.prelude(notebook)
    assert "pure" in bound and not {"data", "ret", "reads_data", "reads_ret"} & bound
