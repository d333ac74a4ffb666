"""A normal run of verify() writes nothing to stderr (nbgrader zeroes such cells)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, "tests")
    import torch
    from verifier import verify, output_bounds, verify_robustness
    from verify_nets import mlp, MNISTModle

    net = mlp((2, 32, 32, 1), seed=0)
    x = [(0.4, 0.6), (0.4, 0.6)]
    lo, hi = output_bounds(net, x)
    cases = []
    print(verify(net, x, [(float(lo[0]) - 1, float(hi[0]) + 1)], cases))
    print(verify(net, x, [(float(hi[0]) + 0.1, 10)], cases))
    print(verify(net, x, [(float(lo[0]) + 0.001 * float(hi[0] - lo[0]), 10)]))
    print(verify(mlp((2, 8, 3), seed=1, softmax=True), x, [(0.0, 1.0)] * 3))
    print(verify_robustness(mlp((2, 8, 3), seed=1), x, 0))
    m = MNISTModle()
    print(verify(m, [(0.0, 1.0)] + [(0.5, 0.5)] * 783, [(0.0, 1.0)] * 10))
    # a search that ends "unknown", with its progress bar (to stdout) shown from the start:
    # by default the bar waits 2 s into branch and bound, which a loaded machine may never reach
    # within a short budget
    from test_verify_result import _hard_case
    deep, box, spec = _hard_case()
    res = verify(deep, box, spec, timeout=3.5, progress=True)
    print(res)
    assert res == "unknown"
""")


def test_verify_writes_nothing_to_stderr():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    assert "PASS" in proc.stdout and "FAIL" in proc.stdout and "UNKNOWN" in proc.stdout
    assert "of the box proved" in proc.stdout    # the progress bar went to stdout
