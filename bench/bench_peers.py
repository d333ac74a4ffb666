"""ACAS Xu through the peers, Marabou, NeuralSAT and nnenum, beside the kit's ``verify``.

``python -m bench acasxu`` runs the kit, then (when the peers are installed) the
same instances through each peer and prints the two tables side by side;
``python -m bench peers`` runs the peers alone (``ACAS_PEERS=marabou``, ``neuralsat``
or ``nnenum``: some of them; two such runs at once, one core each, finish sooner).
``ACAS_TIMEOUT`` (default 60), ``ACAS_INSTANCES``, ``ACAS_NETS``, ``ACAS_PROPS`` and
``ACAS_DIR`` choose the instances as for the kit's bench; the peers get the VNN-COMP files that
``bench/acasxu_files.py`` writes from the same networks and properties (into
``bench/.acasxu-vnncomp/<peer>/``).

The peers live in their own environment, never the kit's (their pins clash
with d2l's). Set up once, on Python 3.11::

    python3.11 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install maraboupy
    /work/peers-venv/bin/pip install --no-deps neuralsat
    /work/peers-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 onnx onnxruntime \\
        gurobipy beartype termcolor tqdm sortedcontainers psutil scipy
    export PEERS_PYTHON=/work/peers-venv/bin/python

nnenum is not on PyPI; it runs from a clone, with four more packages::

    git clone https://github.com/stanleybak/nnenum /work/nnenum
    /work/peers-venv/bin/pip install swiglpk skl2onnx threadpoolctl
    export NNENUM_SRC=/work/nnenum/src

(NeuralSAT's metadata asks for more, e.g. onnxsim and torchaudio; its ACAS Xu runs
need only these. gurobipy's pip licence is size-limited, enough for ACAS Xu.)

Each query runs in its own process, one thread (``OMP_NUM_THREADS=1``, Marabou with
one worker), no GPU, with the peer's own timeout set to the budget left and a
wall-clock kill ``GRACE`` seconds later. Marabou runs through maraboupy's Python
API (``bench/peer_marabou.py``: ``Marabou.read_onnx`` + its VNN-LIB parser);
NeuralSAT through its command line (``main.py --net X.onnx --spec P.vnnlib``,
found in the installed package or at ``NEURALSAT_MAIN``); nnenum through its Python
API in one process (``bench/peer_nnenum.py``: its VNN-LIB and ONNX readers and the
settings its command line picks for control networks). The time shown is the
peer's own (reading the files and solving; interpreter start-up and imports not
counted, as the kit's time is verify's own).

A peer's answer is checked as the kit's is: ``sat`` on phi1 (which holds on all
45 networks) is wrong, ``unsat`` where a violation is known (phi3/phi4 on 1_7 and
1_9) is wrong, and every counterexample a peer prints is run through the network
(float32, as the peers see it): it must lie in the box and break the property.
"""
from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = ("marabou", "neuralsat", "nnenum")
GRACE = 15.0           # seconds past the budget before the process is killed
IN_ALL = False         # `python -m bench` runs bench_acasxu, which runs the peers already
INSTALL = ("python3.11 -m venv PEERS_VENV && PEERS_VENV/bin/pip install maraboupy && "
           "PEERS_VENV/bin/pip install --no-deps neuralsat && PEERS_VENV/bin/pip install "
           "torch==2.14.1 torchvision==0.29.1 onnx onnxruntime gurobipy beartype termcolor "
           "tqdm sortedcontainers psutil scipy; then PEERS_PYTHON=PEERS_VENV/bin/python "
           "(see bench/bench_peers.py; nnenum runs from a clone named by NNENUM_SRC)")

_PROBE = r"""
import importlib.metadata as md, json, os, sys
out = {}
try:
    import maraboupy.MarabouCore
    out["marabou"] = md.version("maraboupy")
except Exception as e:
    out["marabou_error"] = f"{type(e).__name__}: {e}"
try:
    version = md.version("neuralsat")
    main = os.environ.get("NEURALSAT_MAIN") or next(
        (str(f.locate()) for f in md.files("neuralsat") or [] if str(f).endswith("src/main.py")), "")
    if not os.path.isfile(main):
        raise FileNotFoundError("neuralsat's main.py not found; set NEURALSAT_MAIN")
    import torch, torchvision, onnx, onnxruntime, gurobipy, beartype, termcolor, sortedcontainers
    out["neuralsat"], out["neuralsat_main"] = version, main
except Exception as e:
    out["neuralsat_error"] = f"{type(e).__name__}: {e}"
try:
    src = os.environ.get("NNENUM_SRC")
    if not src:
        raise FileNotFoundError("NNENUM_SRC is not set (the src folder of a clone of "
                                "github.com/stanleybak/nnenum)")
    sys.path.insert(0, src)
    import swiglpk, skl2onnx, threadpoolctl, onnxruntime
    import nnenum.nnenum, nnenum.enumerate
    out["nnenum"] = "clone at " + os.path.dirname(os.path.abspath(src))
except Exception as e:
    out["nnenum_error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


def peer_env() -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.pop("PYTHONPATH", None)       # the peers' python must not see the kit
    return env


def find_peers(say=print) -> dict:
    """``{name: info}`` for each peer that imports under ``PEERS_PYTHON``; prints one
    line for each one missing, saying how to install it."""
    py = os.environ.get("PEERS_PYTHON")
    if not py:
        say(f"peers skipped: PEERS_PYTHON is not set. To compare with Marabou, NeuralSAT and nnenum: "
            f"{INSTALL}")
        return {}
    try:
        r = subprocess.run([py, "-c", _PROBE], capture_output=True, text=True, timeout=120,
                           env=peer_env())
        info = json.loads(r.stdout.strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001 - any failure means: no peers
        say(f"peers skipped: PEERS_PYTHON={py} does not run ({type(e).__name__}: {e}). "
            f"Install: {INSTALL}")
        return {}
    found = {}
    for name in PEERS:
        if name in info:
            found[name] = {"python": py, "version": info[name],
                           "main": info.get(f"{name}_main")}
        else:
            how = {"marabou": "pip install maraboupy",
                   "neuralsat": "pip install --no-deps neuralsat, plus the run-time deps "
                                "that bench/bench_peers.py lists",
                   "nnenum": "git clone https://github.com/stanleybak/nnenum, pip install "
                             "swiglpk skl2onnx threadpoolctl, and NNENUM_SRC=<clone>/src"}[name]
            say(f"{name} skipped: not importable under PEERS_PYTHON={py} "
                f"({info.get(name + '_error')}); install it there: {how}")
    return found


# -- one query ------------------------------------------------------------------------

def _run(cmd, budget: float):
    """Run ``cmd`` in its own process group; kill the group ``GRACE`` s past ``budget``.
    Returns (stdout + stderr, killed, wall seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=peer_env(), start_new_session=True)
    try:
        out, _ = p.communicate(timeout=budget + GRACE)
        killed = False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        killed = True
    return out or "", killed, time.monotonic() - t0


def _run_driver(driver, peer, onnx_path, spec, budget):
    """One query through one of our drivers (``bench/peer_*.py``), which print
    ``PEER-RESULT {json}``."""
    cmd = [peer["python"], str(HERE / driver), str(onnx_path), str(spec), f"{budget:.3f}"]
    out, killed, wall = _run(cmd, budget)
    if killed:
        return {"status": "timeout", "time": wall, "cex": None, "note": "killed"}
    m = re.search(r"^PEER-RESULT (.*)$", out, re.M)
    if not m:
        return {"status": "error", "time": wall, "cex": None, "note": _tail(out)}
    return json.loads(m.group(1))


def run_neuralsat(peer, onnx_path, spec, budget):
    with tempfile.TemporaryDirectory(prefix="nsat-") as tmp:
        result = Path(tmp) / "result.txt"
        cmd = [peer["python"], peer["main"], "--net", str(onnx_path), "--spec", str(spec),
               "--timeout", f"{budget:.3f}", "--device", "cpu", "--verbosity", "0",
               "--result_file", str(result), "--export_cex"]
        out, killed, wall = _run(cmd, budget)
        text = result.read_text() if result.exists() else ""
    if killed:
        return {"status": "timeout", "time": wall, "cex": None, "note": "killed"}
    if not text.strip():
        return {"status": "error", "time": wall, "cex": None, "note": _tail(out)}
    status = text.split()[0].strip().lower()
    # its last stdout line is "status,runtime" (runtime from its start, after imports)
    m = re.findall(r"^(\w+),([0-9.]+)\s*$", out, re.M)
    t = float(m[-1][1]) if m else wall
    xs = {int(i): float(v) for i, v in re.findall(r"\(X_(\d+)\s+([-+0-9.eE]+)\)", text)}
    cex = [xs[i] for i in sorted(xs)] if xs else None
    if status not in ("sat", "unsat", "timeout"):
        status = "unknown"
    return {"status": status, "time": t, "cex": cex, "raw": text.split()[0]}


def run_marabou(peer, onnx_path, spec, budget):
    return _run_driver("peer_marabou.py", peer, onnx_path, spec, budget)


def run_nnenum(peer, onnx_path, spec, budget):
    return _run_driver("peer_nnenum.py", peer, onnx_path, spec, budget)


RUNNERS = {"marabou": run_marabou, "neuralsat": run_neuralsat, "nnenum": run_nnenum}


def _tail(text: str, n: int = 300) -> str:
    return " ".join(text.strip().splitlines()[-3:])[-n:]


# -- one instance ---------------------------------------------------------------------

def check_cex(cex, x_specs, prop, net) -> str:
    """'' when ``cex`` lies in the box (within 1e-6) and breaks ``prop`` on the
    float32 network the peers read; else why not."""
    import torch

    from verifier.property import from_formula

    x = torch.tensor([cex], dtype=torch.float64)
    lo = torch.tensor([a for a, _ in x_specs], dtype=torch.float64)
    hi = torch.tensor([b for _, b in x_specs], dtype=torch.float64)
    if x.shape[1] != len(x_specs) or bool(((x < lo - 1e-6) | (x > hi + 1e-6)).any()):
        return "counterexample outside the box"
    with torch.no_grad():
        y = net(torch.clamp(x, lo, hi).float())
    if not any(c.violated(y) for c in from_formula(prop, y.shape[1], softmax=False)):
        return "counterexample does not break the property"
    return ""


def run_instance(name, peer, k, net_id, folder, timeout):
    """phi_k on ``net_id`` through one peer: (status, seconds, wrong, note);
    status is the kit's word: pass (proven), fail (violated) or unknown; seconds
    are the peer's own, the note gives the wall time with start-up."""
    from bench.acasxu_files import CACHE, nnet_path, write_instance
    from bench.bench_acasxu import KNOWN_FAIL
    from verifier import acasxu
    from verifier.formats import load_nnet

    model = load_nnet(nnet_path(folder, net_id))
    boxes, prop = acasxu.instance(k, model)
    # each peer its own copy of the files: two peers run at once never read a file being rewritten
    onnx_path, specs = write_instance(k, net_id, folder, CACHE / name)
    spent, wall, status, wrong, notes, raws = 0.0, 0.0, "pass", "", [], []
    for box, spec in zip(boxes, specs):
        t0 = time.monotonic()
        r = RUNNERS[name](peer, onnx_path, spec, max(timeout - spent, 1.0))
        wall += time.monotonic() - t0
        spent += r["time"]
        raws.append(r["status"])
        if r.get("note"):
            notes.append(f"{r['status']}: {r['note']}")
        if r["status"] == "sat":
            status = "fail"
            if r.get("cex") is None:
                notes.append("sat without a counterexample")
            else:
                wrong = check_cex(r["cex"], box, prop, model.net)
            break
        if r["status"] != "unsat":
            status = "unknown"
    if status == "pass" and (k, net_id) in KNOWN_FAIL:
        wrong = "unsat where a violation is known"
    if status == "fail" and k == 1:
        wrong = "sat on phi1, which holds"
    notes.insert(0, f"{'+'.join(raws)}, wall {wall:.1f} s")
    return status, spent, wrong, "; ".join(notes)


# -- tables -----------------------------------------------------------------------------

def summary(rows):
    """rows: (k, net, status, seconds, wrong) -> counts and times."""
    times = [r[3] for r in rows]
    count = lambda s: sum(r[2] == s for r in rows)  # noqa: E731
    return (len(rows), count("pass"), count("fail"), count("unknown"),
            sum(bool(r[4]) for r in rows), statistics.median(times), sum(times))


def print_table(results: dict, timeout: float, kit_threads: int = 1):
    """``results``: {tool: rows}; one block of lines per property, one line per tool."""
    each = "one thread each" if kit_threads == 1 else \
        f"the kit {kit_threads} threads, each peer one"
    print(f"\nACAS Xu side by side, {timeout:.0f} s per instance, {each}:")
    print("  property  tool        instances  proven  violated  unknown  wrong  median s  total s")
    props = sorted({r[0] for rows in results.values() for r in rows})
    groups = [(f"phi{k}", k) for k in props] + [("all", None)]
    for label, k in groups:
        for j, (tool, rows) in enumerate(results.items()):
            rs = [r for r in rows if k is None or r[0] == k]
            if not rs:
                continue
            n, ok, bad, unk, wrong, med, tot = summary(rs)
            print(f"  {label if j == 0 else '':8s}  {tool:10s}  {n:9d}  {ok:6d}  {bad:8d}  "
                  f"{unk:7d}  {wrong:5d}  {med:8.2f}  {tot:7.0f}")


def chosen(peers: dict) -> dict:
    """``peers`` narrowed to ``ACAS_PEERS`` (e.g. ``marabou``), when it is set."""
    names = os.environ.get("ACAS_PEERS")
    if not names:
        return peers
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = sorted(set(wanted) - set(PEERS))
    if unknown:
        raise SystemExit(f"ACAS_PEERS: unknown peer(s) {', '.join(unknown)}; expected some of {', '.join(PEERS)}")
    return {name: info for name, info in peers.items() if name in wanted}


def run_peers(instances, folder, timeout, peers=None) -> dict:
    peers = chosen(find_peers() if peers is None else peers)
    results = {}
    for name, peer in peers.items():
        print(f"\n{name} {peer['version']} (PEERS_PYTHON={peer['python']}):", flush=True)
        rows = []
        for k, net in instances:
            status, t, wrong, note = run_instance(name, peer, k, net, folder, timeout)
            rows.append((k, net, status, t, wrong))
            print(f"  phi{k:<2} {net}  {status:8s} {t:6.1f} s  ({note})  {wrong}", flush=True)
        results[name] = rows
    return results


def side_by_side(kit_rows, folder, timeout, kit_threads=1):
    """Called by bench_acasxu after the kit's run: the peers on the same instances."""
    peers = find_peers()
    if not peers:
        return
    results = {"kit": kit_rows, **run_peers([(r[0], r[1]) for r in kit_rows], folder,
                                            timeout, peers)}
    print_table(results, timeout, kit_threads)


def main():
    from bench.bench_acasxu import ROOT, instances

    folder = Path(os.environ.get("ACAS_DIR", ROOT.parent / "shared" / "acasxu"))
    timeout = float(os.environ.get("ACAS_TIMEOUT", 60))
    results = run_peers(list(instances()), folder, timeout)
    if results:
        print_table(results, timeout)


if __name__ == "__main__":
    sys.exit(main())
