"""The VNN-LIB differential fuzz (``tests/test_vnnlib_fuzz.py``), run longer than ``make test``.

``make test`` runs 25 instances per syntax (1.0 and 2.0); this bench runs ``FUZZ_EXAMPLES`` from
the environment or 400, and prints the outcome and time. A failure prints the falsifying
example hypothesis found (the network and the property) and makes the bench exit non-zero.
The ONNX loader's fuzz has a bench of its own, ``onnx_fuzz``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    examples = os.environ.get("FUZZ_EXAMPLES", "400")
    suites = [ROOT / "tests" / "test_vnnlib_fuzz.py"]
    failed = []
    for suite in suites:
        start = time.perf_counter()
        tally = Path(tempfile.mkdtemp()) / "answers.txt"
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(suite.relative_to(ROOT))], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "FUZZ_EXAMPLES": examples, "FUZZ_REPORT": str(tally)})
        took = time.perf_counter() - start
        summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"{suite.name}: {examples} examples per test, {summary} ({took:.0f} s)", flush=True)
        if tally.exists():
            print(tally.read_text().rstrip(), flush=True)   # hypothesis's own draws included
        if done.returncode != 0:
            failed.append(suite.name)
            print(done.stdout[-6000:], done.stderr[-2000:], sep="\n")
    if failed:
        raise SystemExit(f"fuzz failures in {', '.join(failed)}")
