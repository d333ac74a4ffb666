"""Run one VNN-COMP query through nnenum; started by bench_peers under PEERS_PYTHON.

    PEERS_PYTHON bench/peer_nnenum.py NET.onnx PROP.vnnlib TIMEOUT_S

nnenum (Stanley Bak's star-set tool, github.com/stanleybak/nnenum) is not on
PyPI: ``NNENUM_SRC`` names the ``src`` folder of a clone. This reads the network
and the property with nnenum's own readers, takes the settings its command line
picks (those for control networks below 700 inputs, as ACAS Xu's 5; those for
image networks from 700 on, as MNIST's 784), runs its enumeration in one process,
and prints one line ``PEER-RESULT {json}``: status (sat / unsat / timeout /
unknown / error), the time in seconds (reading the files
included, interpreter start-up and imports not) and, on sat, the input of the
counterexample. Several input boxes (phi6) are solved one after the other, as
nnenum's command line does. This file runs in the peers' environment: it imports
nothing from the kit.
"""
import json
import os
import sys
import time


def main():
    onnx_path, spec_path, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    sys.path.insert(0, os.environ["NNENUM_SRC"])
    import numpy as np
    from nnenum import nnenum as front
    from nnenum.enumerate import enumerate_network
    from nnenum.settings import Settings

    t0 = time.monotonic()
    specs, dtype = front.make_spec(spec_path, onnx_path)
    try:
        network = front.load_onnx_network_optimized(onnx_path)
    except Exception:  # noqa: BLE001 - nnenum's own fallback for layers it cannot fuse
        network = front.load_onnx_network(onnx_path)
    if len(specs[0][0]) < 700:       # nnenum's own rule for its "auto" settings
        front.set_control_settings()
    else:
        front.set_image_settings()
    Settings.NUM_PROCESSES = 1
    Settings.PRINT_OUTPUT = False
    out = {"status": "unsat", "raw": "safe", "cex": None}
    for box, spec in specs:
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            out.update(status="timeout", raw="timeout")
            break
        Settings.TIMEOUT = left
        res = enumerate_network(np.array(box, dtype=dtype), network, spec)
        out["raw"] = res.result_str
        if res.result_str == "safe":
            continue
        if "unsafe" in res.result_str:
            out["status"] = "sat"
            if res.cinput is not None and len(res.cinput):
                out["cex"] = [float(v) for v in np.asarray(res.cinput).flatten()]
        else:
            out["status"] = "timeout" if res.result_str == "timeout" else "unknown"
        break
    out["time"] = time.monotonic() - t0
    print("PEER-RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
