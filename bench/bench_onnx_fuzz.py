"""The ONNX loader's differential fuzz (``tests/test_onnx_fuzz.py``) at length.

Run: ``.venv/bin/python -m bench onnx_fuzz``. ``make test`` runs the same tests on 60 and 12
graphs; here 2,000 graphs are compared with onnxruntime and 200 ``verify`` answers on
loaded networks are checked (MILP oracle on the generator's network for a pass,
onnxruntime for each counterexample of a fail). Set ``FUZZ_EXAMPLES`` and
``FUZZ_VERIFY_EXAMPLES`` to change the counts. About 5 minutes on 2 CPU cores.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    env = dict(os.environ)
    env.setdefault("FUZZ_EXAMPLES", "2000")
    env.setdefault("FUZZ_VERIFY_EXAMPLES", "200")
    print(f"FUZZ_EXAMPLES={env['FUZZ_EXAMPLES']} FUZZ_VERIFY_EXAMPLES="
          f"{env['FUZZ_VERIFY_EXAMPLES']}", flush=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--hypothesis-show-statistics", "tests/test_onnx_fuzz.py"],
                          cwd=ROOT, env=env)
    print(f"onnx fuzz: {'passed' if done.returncode == 0 else 'FAILED'} in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    if done.returncode:
        raise SystemExit(done.returncode)


if __name__ == "__main__":
    main()
