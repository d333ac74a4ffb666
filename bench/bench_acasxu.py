"""ACAS Xu: phi1-phi4 on all 45 networks (180 instances) and phi5-phi10 (6), 60 s each.

Run: ``python -m bench acasxu`` (``ACAS_TIMEOUT``, ``ACAS_NETS=1_1,2_9`` and
``ACAS_PROPS=1,2`` narrow it; ``ACAS_INSTANCES=1:1_1,3:1_7`` names instances;
``ACAS_BRANCHING=smear-full`` picks verify's branching heuristic). The networks come from ``ACAS_DIR`` (default
``../shared/acasxu``). One process, one thread (``torch.set_num_threads(1)``,
what a grading worker gets; ``ACAS_THREADS=2`` lets PyTorch use two), the time is
verify's own (no process start-up).

Every "fail" is checked again here by running the network on its counterexample;
a "pass" that contradicts a violation known from the literature (phi3 and phi4
on 1_7 and 1_9) counts as wrong, and so does a "fail" on phi1, which holds on
all 45 networks.

Then, when ``PEERS_PYTHON`` names an environment with Marabou, NeuralSAT or nnenum,
the same instances run through them and a table puts them beside the kit's
(``bench/bench_peers.py`` says how to install them); otherwise one line says so.
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch

from verifier import acasxu, verify
from verifier.formats import load_nnet
from verifier.property import from_formula

ROOT = Path(__file__).resolve().parents[1]
BRANCHING = os.environ.get("ACAS_BRANCHING", "smear")
KNOWN_FAIL = {(3, "1_7"), (3, "1_9"), (4, "1_7"), (4, "1_9")}


def instances():
    chosen = os.environ.get("ACAS_INSTANCES")     # e.g. 1:1_1,2:2_1,3:1_7
    if chosen:
        for item in chosen.split(","):
            p, net = item.split(":")
            yield int(p), net
        return
    nets = os.environ.get("ACAS_NETS")
    nets = nets.split(",") if nets else [f"{a}_{b}" for a in range(1, 6) for b in range(1, 10)]
    props = [int(p) for p in os.environ.get("ACAS_PROPS", "1,2,3,4,5,6,7,8,9,10").split(",")]
    for p in props:
        for net in nets:
            if p <= 4 or acasxu.NETWORK[p] == net:
                yield p, net


def run_one(p: int, net_id: str, folder: Path, timeout: float):
    model = load_nnet(folder / f"ACASXU_run2a_{net_id}_batch_2000.nnet")
    boxes, prop = acasxu.instance(p, model)
    t0, status, wrong = time.monotonic(), "pass", ""
    for k, x_specs in enumerate(boxes):
        cexs = []
        left = timeout - (time.monotonic() - t0)
        r = verify(model.net, x_specs, prop, cexs, timeout=max(left / (len(boxes) - k), 0.1),
                   progress=False, branching=BRANCHING)
        if r == "fail":
            constraints = from_formula(prop, 5, softmax=False)
            with torch.no_grad():
                y = model.net(cexs[0])
            inside = all(lo <= v <= hi for v, (lo, hi) in
                         zip(cexs[0].double().flatten().tolist(), x_specs))
            if not inside or not any(c.violated(y) for c in constraints):
                wrong = "counterexample does not hold"
            status = "fail"
            break
        if r != "pass":
            status = "unknown"
    if status == "pass" and (p, net_id) in KNOWN_FAIL:
        wrong = "pass where a violation is known"
    if status == "fail" and p == 1:
        wrong = "fail on phi1, which holds"
    return status, time.monotonic() - t0, wrong


def main():
    threads = int(os.environ.get("ACAS_THREADS", 1))
    torch.set_num_threads(threads)
    folder = Path(os.environ.get("ACAS_DIR", ROOT.parent / "shared" / "acasxu"))
    timeout = float(os.environ.get("ACAS_TIMEOUT", 60))
    rows = []
    for p, net in instances():
        status, t, wrong = run_one(p, net, folder, timeout)
        rows.append((p, net, status, t, wrong))
        print(f"  phi{p:<2} {net}  {status:8s} {t:6.1f} s  {wrong}", flush=True)
    print(f"\nACAS Xu, {timeout:.0f} s per instance, {threads} thread{'s' * (threads > 1)}, "
          f"branching={BRANCHING}:")
    print("  property  instances  proven  violated  unknown  wrong  median s  total s  max s  late")
    groups = [(f"phi{p}", [r for r in rows if r[0] == p]) for p in sorted({r[0] for r in rows})]
    groups.append(("all", rows))
    for name, rs in groups:
        if not rs:
            continue
        count = lambda s: sum(r[2] == s for r in rs)  # noqa: E731
        times = [r[3] for r in rs]
        print(f"  {name:8s}  {len(rs):9d}  {count('pass'):6d}  {count('fail'):8d}  "
              f"{count('unknown'):7d}  {sum(bool(r[4]) for r in rs):5d}  "
              f"{statistics.median(times):8.2f}  {sum(times):7.0f}  {max(times):5.1f}  "
              f"{sum(t > 1.05 * timeout + 1 for t in times):4d}")
    print("  (late: instances that ran more than 5% + 1 s past the budget)")
    # the same instances through the peers, when PEERS_PYTHON has them
    from bench import bench_peers
    bench_peers.side_by_side(rows, folder, timeout, threads)
