"""The loaders' differential fuzz suites, run longer than ``make test`` runs them.

``make test`` runs a slice of each (``FUZZ_EXAMPLES`` examples per suite, 25 by default); this
bench runs them with ``FUZZ_EXAMPLES`` from the environment or 400, and prints each suite's
outcome and time. A failure prints the falsifying example hypothesis found (the network and the
property, or the graph) and makes the bench exit non-zero.

Suites: every ``tests/test_*_fuzz.py`` file (today the VNN-LIB properties against the MILP
oracle, and the ONNX graphs against onnxruntime when that suite is present).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    examples = os.environ.get("FUZZ_EXAMPLES", "400")
    suites = sorted((ROOT / "tests").glob("test_*_fuzz.py"))
    failed = []
    for suite in suites:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(suite.relative_to(ROOT))], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "FUZZ_EXAMPLES": examples})
        took = time.perf_counter() - start
        summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"{suite.name}: {examples} examples per test, {summary} ({took:.0f} s)", flush=True)
        if done.returncode != 0:
            failed.append(suite.name)
            print(done.stdout[-6000:], done.stderr[-2000:], sep="\n")
    if failed:
        raise SystemExit(f"fuzz failures in {', '.join(failed)}")
