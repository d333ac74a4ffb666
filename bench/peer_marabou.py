"""Run one VNN-COMP query through maraboupy; started by bench_peers under PEERS_PYTHON.

    PEERS_PYTHON bench/peer_marabou.py NET.onnx PROP.vnnlib TIMEOUT_S

Reads the network with ``Marabou.read_onnx`` and the property with Marabou's own
VNN-LIB parser (``propertyFilename=``), solves with one worker and Marabou's
timeout, and prints one line ``PEER-RESULT {json}``: status (sat / unsat /
timeout / unknown / error), the solve time in seconds (reading the files
included, interpreter start-up not) and, on sat, the input of the counterexample.
This file runs in the peers' environment: it imports nothing from the kit.
"""
import json
import math
import sys
import time


def main():
    onnx_path, spec, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    from maraboupy import Marabou

    t0 = time.monotonic()
    net = Marabou.read_onnx(onnx_path)
    options = Marabou.createOptions(numWorkers=1, verbosity=0,
                                    timeoutInSeconds=max(1, math.ceil(timeout)))
    code, vals, stats = net.solve(verbose=False, options=options, propertyFilename=spec)
    elapsed = time.monotonic() - t0
    code = str(code).lower()
    if stats is not None and stats.hasTimedOut():
        code = "timeout"
    out = {"status": code if code in ("sat", "unsat", "timeout") else "unknown",
           "raw": str(code), "time": elapsed, "cex": None}
    if code == "sat":
        out["cex"] = [float(vals[int(v)]) for v in net.inputVars[0].flatten()]
    print("PEER-RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
