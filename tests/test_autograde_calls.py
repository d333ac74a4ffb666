"""Tests that call a student's code: functions, methods, and networks the chain cannot carry.

The adapted lab (the fixture plus the cells below) has a student function ``count_far`` called by
a test (visible and hidden parts), a Tanh network trained on the circle and tested for its
accuracy and its layers, a class whose method a test calls, and the value test of the adapted lab.
Graded with the instructor's commands: the reference gets every point, a blank none, and a
submission with a wrong function and a wrong value loses exactly those tests' points.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from autograde import crafted, source_check
from grading_runs import autograde, read_rows, release_for_grading
from test_autograde_adapted import _cell, adapted, total

COUNT_FAR = ("def count_far(ps):\n"
             "    ### BEGIN SOLUTION\n"
             "    return sum(not in_unit_disc(p) for p in ps)\n"
             "    ### END SOLUTION")
TEST_COUNT_FAR = ("assert count_far(points) == 3, f'count_far(points) should be 3, got {count_far(points)}'\n"
                  "### BEGIN HIDDEN TESTS\n"
                  "assert count_far([(3.0, 0.0), (0.1, 0.1)]) == 1\n"
                  "assert count_far([]) == 0\n"
                  "### END HIDDEN TESTS")
TANH_NET = ("import torch\nfrom torch import nn\n"
               "net = None\n"
               "### BEGIN SOLUTION\n"
               "torch.manual_seed(0)\n"
               "_x = torch.rand(1000, 2) * 3 - 1.5\n"
               "_y = ((_x ** 2).sum(dim=1, keepdim=True) < 1).float()\n"
               "net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1), nn.Sigmoid())\n"
               "_opt = torch.optim.Adam(net.parameters(), lr=0.05)\n"
               "for _ in range(400):\n"
               "    _opt.zero_grad()\n"
               "    nn.functional.binary_cross_entropy(net(_x), _y).backward()\n"
               "    _opt.step()\n"
               "### END SOLUTION")
TEST_NET = ("import torch\n"
            "def _accuracy(model, seed):\n"
            "    g = torch.Generator().manual_seed(seed)\n"
            "    x = torch.rand(5000, 2, generator=g) * 3 - 1.5\n"
            "    truth = (x ** 2).sum(dim=1) < 1\n"
            "    with torch.no_grad():\n"
            "        said = model(x).reshape(-1) >= 0.5\n"
            "    return float((said == truth).float().mean())\n"
            "assert any(type(m).__name__ == 'Tanh' for m in net.modules()), 'expected a Tanh'\n"
            "assert _accuracy(net, 1) >= 0.9, f'accuracy {_accuracy(net, 1):.2%}'\n"
            "### BEGIN HIDDEN TESTS\n"
            "assert _accuracy(net, 2) >= 0.9\n"
            "### END HIDDEN TESTS")
COUNTER = ("class Tally:\n"
           "    def __init__(self):\n"
           "        self.seen = 0\n"
           "    def add(self, p):\n"
           "        ### BEGIN SOLUTION\n"
           "        self.seen += int(not in_unit_disc(p))\n"
           "        ### END SOLUTION\n"
           "        return self.seen\n"
           "tally = Tally()")
TEST_COUNTER = ("assert [tally.add(p) for p in points] == [0, 1, 2, 2, 3]\n"
                "assert tally.seen == 3")


def calls_lab(root: Path) -> Path:
    return adapted(root, extra=[
        _cell("solution", "count_far", COUNT_FAR), _cell("test", "test_count_far", TEST_COUNT_FAR, points=2),
        _cell("solution", "tanh_net", TANH_NET), _cell("test", "test_tanh_net", TEST_NET, points=3),
        _cell("solution", "tally", COUNTER), _cell("test", "test_tally", TEST_COUNTER, points=1)])


def _replace(notebook: nbformat.NotebookNode, grade_id: str, source: str) -> nbformat.NotebookNode:
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source
    return notebook


def test_the_source_check_says_a_students_function_is_called(tmp_path):
    report = source_check.check(calls_lab(tmp_path))
    crossings = {c.name: (c.how, c.where) for c in report.tests["test_count_far"]}
    assert crossings == {"count_far": ("call", "cell count_far"), "points": ("value", "cell imports")}
    assert report.problems == []


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The calls lab released and graded: reference, blank, wrong function and value, attacks."""
    root = tmp_path_factory.mktemp("calls")
    source = calls_lab(root)
    source_nb, release_nb = release_for_grading(source, root)
    subs = root / "submissions"
    reference = crafted.perfect(source_nb, release_nb)
    wrong = _replace(_replace(reference, "count_far", "def count_far(ps):\n    return 0"),
                     "far_points", "far = list(points)")
    crafted.write_submission(reference, subs / "reference.ipynb")
    crafted.write_submission(release_nb, subs / "blank.ipynb")
    crafted.write_submission(wrong, subs / "wrong.ipynb")
    for name, code in ATTACKS.items():
        crafted.write_submission(_replace(reference, "count_far", code), subs / f"attack_{name}.ipynb")
    graded = autograde("grade", subs, "--out", root / "out", "--source", source, "--workers", "2",
                       "--timeout", "25", "--submission-timeout", "150", cwd=root)
    assert graded.returncode == 0 and graded.stderr == "", graded.stdout + graded.stderr
    return source, read_rows(root / "out" / "grades.csv"), root / "out"


# A dishonest count_far, each. None may score on test_count_far (the honest answer is 3, then 1, 0)
# nor change any other test's points.
ATTACKS = {
    # an int that claims to equal everything, an object that does, a list that holds itself, an
    # answer far too large to send
    "forged": ("import numpy as np\n"
               "class _Yes(int):\n    def __eq__(self, other): return True\n    __hash__ = int.__hash__\n"
               "class _Anything:\n    def __eq__(self, other): return True\n"
               "_calls = []\n"
               "def count_far(ps):\n    _calls.append(1)\n    r = []\n    r.append(r)\n"
               "    return [_Yes(7), _Anything(), r, np.zeros(200_000_000, dtype=np.uint8)][len(_calls) % 4]"),
    # never answers, even when interrupted
    "hangs": ("import time\ndef count_far(ps):\n    while True:\n        try:\n            time.sleep(1)\n"
              "        except KeyboardInterrupt:\n            pass"),
    # prints answers into its output, writes on every descriptor it can find, and calls back
    # through the channel's socket
    "noisy": ("import os, socket, glob\ndef count_far(ps):\n    print('{\"status\": \"ok\"}' * 1000)\n"
              "    for path in glob.glob('/channel/*') + glob.glob('/tmp/autograde-call-*/*'):\n"
              "        s = socket.socket(socket.AF_UNIX)\n        s.settimeout(1)\n        try:\n"
              "            s.connect(path); s.sendall(b'x' * 100)\n        except OSError:\n            pass\n"
              "    for fd in range(3, 64):\n        try:\n            os.write(fd, b'\\x00' * 24 + b'{}')\n"
              "        except OSError:\n            pass\n    return 0"),
    # records its arguments to answer later calls from them (it cannot see the expected answers)
    "peeks": "_seen = []\ndef count_far(ps):\n    _seen.append(list(ps))\n    return len(_seen) + 100",
    # forks a child that outlives the call, and kills its own kernel on the second call
    "forks": ("import os, time\n_calls = [0]\ndef count_far(ps):\n    _calls[0] += 1\n"
              "    if os.fork() == 0:\n        time.sleep(30)\n        os._exit(0)\n"
              "    if _calls[0] == 2:\n        os.kill(os.getpid(), 9)\n    return 3"),
}
# What each attack costs its author beyond test_count_far: the tests after it that need the
# kernel it broke (a dead or hung kernel answers no more calls).
BROKE_THE_KERNEL = {"hangs", "forks", "noisy"}


def test_a_lab_with_calls_grades_the_reference_full_the_blank_zero_and_wrong_answers_lose_their_points(graded):
    source, rows, _ = graded
    full = total(source)
    assert full == 4 + 3 + 1 + 5 + 2 + 3 + 1
    assert float(rows["reference"]["score"]) == full, rows["reference"]
    assert float(rows["blank"]["score"]) == 0, rows["blank"]
    assert float(rows["wrong"]["score"]) == full - 5 - 2, rows["wrong"]
    assert all(rows[name]["status"] == "ok" for name in ("reference", "blank", "wrong")), rows


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_dishonest_function_gains_nothing(graded, attack):
    source, rows, out = graded
    row = rows[f"attack_{attack}"]
    # test_count_far never scores; the tests that make no call keep the reference's points
    assert float(row["test_count_far"]) == 0, row
    assert all(float(row[t]) == float(rows["reference"][t])
               for t in ("test_square", "test_inside_circle", "test_picture_bytes", "test_far")), row
    if attack not in BROKE_THE_KERNEL:
        assert float(row["score"]) == total(source) - 2, row
    feedback = (out / "feedback" / f"attack_{attack}.html").read_text(encoding="utf-8")
    assert "test_count_far" in feedback


def test_a_hanging_call_fails_its_test_with_the_reason(graded):
    _, rows, out = graded
    feedback = (out / "feedback" / "attack_hangs.html").read_text(encoding="utf-8")
    assert "time limit" in feedback or "stopped answering" in feedback, feedback[-3000:]


def test_the_calls_lab_grades_the_same_without_bubblewrap(tmp_path):
    """``AUTOGRADE_SANDBOX=none``: the runner reaches the grader's socket by its host path."""
    import os
    import subprocess
    import sys

    source = calls_lab(tmp_path)
    reference = crafted.perfect(*release_for_grading(source, tmp_path))
    crafted.write_submission(reference, tmp_path / "subs" / "reference.ipynb")
    graded = subprocess.run([sys.executable, "-m", "autograde", "grade", str(tmp_path / "subs"), "--out",
                             str(tmp_path / "out"), "--source", str(source), "--timeout", "25"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "AUTOGRADE_SANDBOX": "none"})
    assert graded.returncode == 0 and graded.stderr == "", graded.stdout + graded.stderr
    row = read_rows(tmp_path / "out" / "grades.csv")["reference"]
    assert float(row["score"]) == total(source) and row["status"] == "ok", row
    assert "without bubblewrap" in row["notes"] or "none" in row["notes"], row


# The channel's parts, without a kernel.

def test_a_frame_larger_than_allowed_or_cut_short_is_refused():
    import socket
    import time

    from autograde.run import wire

    ours, theirs = socket.socketpair()
    with ours, theirs:
        wire.send(theirs, {"id": 1}, b"x" * 100, b"")
        with pytest.raises(wire.WireError, match="more than the 50 allowed"):
            wire.receive(ours, 50, time.monotonic() + 5)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(wire.LENGTH.pack(2) + wire.LENGTH.pack(0) + wire.LENGTH.pack(0) + b"{")
        theirs.shutdown(socket.SHUT_WR)
        with pytest.raises(wire.WireError, match="closed"):
            wire.receive(ours, 50, time.monotonic() + 5)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with pytest.raises(wire.WireError, match="in time"):
            wire.receive(ours, 50, time.monotonic() + 0.2)


@pytest.mark.parametrize("document, expected", [
    (b'{"format": 1, "test": "call", "values": {"result": 3}}', 3),
    (b'{"format": 1, "test": "call", "error": "ValueError: no points"}', ("ValueError", "no points")),
    (b'{"format": 1, "test": "call", "values": {"result": {"remote": {"handle": 2, "type": "function", '
     b'"callable": true, "name": "f"}}}}', ("remote", 2, "f")),
])
def test_an_answer_is_read_as_exports_are(document, expected):
    import io

    import numpy as np

    from autograde import artifacts

    buffer = io.BytesIO()
    np.savez(buffer)
    value = artifacts.read_answer(document, buffer.getvalue())
    if isinstance(value, artifacts.Raised):
        value = (value.type_name, value.message)
    elif isinstance(value, artifacts.Remote):
        value = ("remote", value.handle, value.name)
    assert value == expected


@pytest.mark.parametrize("document", [
    b'{"format": 1, "test": "other", "values": {"result": 3}}',
    b'{"format": 1, "test": "call", "values": {"result": 3, "more": 4}}',
    b'{"format": 1, "test": "call", "values": {"result": {"remote": {"handle": "2"}}}}',
    b'{"format": 1, "test": "call", "values": {"result": {"array": "a0", "kind": "tensor"}}}',
    b'not json',
])
def test_an_answer_off_the_schema_is_refused(document):
    import io

    import numpy as np

    from autograde import artifacts

    buffer = io.BytesIO()
    np.savez(buffer)
    with pytest.raises(artifacts.ArtifactError):
        artifacts.read_answer(document, buffer.getvalue())


def test_only_data_the_check_made_crosses_to_the_student():
    """A test passing one of the check's own objects (a function, a module) to the student's code
    gets a TypeError before anything is sent; networks cross as their chain."""
    import torch

    from autograde.check.channel import _ArgumentWriter

    writer = _ArgumentWriter(0)
    with pytest.raises(TypeError, match="cannot be passed to the student's code"):
        writer.encode(lambda x: x)
    with pytest.raises(TypeError, match="cannot be passed"):
        writer.encode([1, {"k": torch}])
    chain = writer.encode(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)))
    assert chain["network"]["layers"][1] == "relu" and "outputs" not in chain["network"]


def test_a_remote_network_keeps_its_structure_and_verify_refuses_it_with_the_reason():
    import numpy as np
    import torch

    from autograde import artifacts
    from autograde.check import rebuild
    from verifier import output_bounds

    weight = np.ones((4, 2), dtype=np.float32)
    modules = [artifacts.Module("", -1, "CircleNet", False, {}),
               artifacts.Module("body", 0, "Sequential", True, {}),
               artifacts.Module("body.0", 1, "Linear", True, {"in_features": 2, "out_features": 4}, weight,
                                np.zeros(4, np.float32)),
               artifacts.Module("body.1", 1, "Tanh", True, {}),
               artifacts.Module("head", 0, "Gate", False, {})]
    value = artifacts.RemoteNetwork("TypeError: verify does not support Tanh", artifacts.Remote(
        1, "CircleNet", True, "CircleNet"), modules, False)
    net, notes = rebuild.rebuild(value, 0, None)
    assert type(net).__name__ == "CircleNet" and isinstance(net, torch.nn.Module)
    assert [type(m).__name__ for m in net.modules()] == ["CircleNet", "Sequential", "Linear", "Tanh", "Gate"]
    assert torch.equal(net.body[0].weight, torch.ones(4, 2)) and isinstance(net.body[1], torch.nn.Tanh)
    with pytest.raises(Exception, match="Tanh"):
        output_bounds(net, [(0.0, 1.0), (0.0, 1.0)])
    with pytest.raises(TypeError, match="not available for calls"):
        net(torch.zeros(1, 2))


def test_the_channel_socket_admits_the_run_user_and_no_other(tmp_path):
    """As on Gradescope, the run phase executes as an unprivileged user: the socket is that user's
    (its folder root's, so nobody can replace it); another unprivileged user cannot connect."""
    import subprocess

    from autograde.run import phase
    from autograde.run.sandbox import RunAs, as_user
    from test_autograde_gradescope import free_uid

    connect = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('in')"
    run_user, other = free_uid(), free_uid()
    with phase.channel_listener(RunAs(run_user, run_user, "run")) as listener:
        path = listener.getsockname()
        folder = Path(path).parent
        assert folder.stat().st_uid == 0 and folder.stat().st_mode & 0o777 == 0o711
        for uid, expected in ((run_user, "in"), (other, "")):
            done = subprocess.run(as_user(["/usr/bin/python3", "-c", connect, path], RunAs(uid, uid, "u")),
                                  capture_output=True, text=True, timeout=60)
            assert done.stdout.strip() == expected, (uid, done.stdout, done.stderr)
    assert not folder.exists()
