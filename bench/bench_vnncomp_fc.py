"""Fully connected VNN-COMP networks through ``python -m verifier``: loaded? answer right?

Run: ``VNNCOMP_FC_DIR=/path python -m bench vnncomp_fc`` (not part of ``python -m bench``: the
benchmarks are not shipped with the kit). ``VNNCOMP_FC_DIR`` holds one folder per benchmark in
VNN-COMP's layout: ``instances.csv`` (network, property[, limit]) and the files it names, plain
or gzipped (the collection github.com/AndyVale/fullyconnected_benchmarks_vnncomp of VNN-COMP
2022-2024's fully connected benchmarks has this layout). ``VNNCOMP_FC=ACC,safenlp`` picks
benchmarks (default: every folder), ``VNNCOMP_FC_PER_NET`` how many instances per network
(default 1, the first the csv names), ``VNNCOMP_FC_TIMEOUT`` the seconds each (default 60).

Each instance is one ``python -m verifier`` process, as in ``bench_mnistfc``. A ``sat`` is
confirmed by onnxruntime at the counterexample the result file gives (the property read exactly
by ``bench.vnnlib_check``); an ``unsat`` is checked against nnenum's answer on the same files when
``PEERS_PYTHON`` and ``NNENUM_SRC`` name it (a confirmed ``sat`` of nnenum makes it wrong), and
is otherwise marked "not checked". A network the kit refuses is listed with the reason.
"""
from __future__ import annotations

import csv
import gzip
import os
import shutil
import tempfile
from pathlib import Path

from bench.bench_mnistfc import confirm, nnenum_peer, run_kit, run_nnenum

IN_ALL = False


def plain(path: Path, tmp: Path) -> Path:
    """``path``, or its gunzipped copy in ``tmp`` (onnxruntime and nnenum read plain files)."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            if candidate.suffix != ".gz":
                return candidate
            out = tmp / candidate.stem
            with gzip.open(candidate, "rb") as f, open(out, "wb") as g:
                shutil.copyfileobj(f, g)
            return out
    raise FileNotFoundError(path)


def _exists(p: Path) -> bool:
    return p.is_file() or p.with_name(p.name + ".gz").is_file()


def instances(root: Path) -> list:
    """(benchmark, network, property) per the csv's order, the first few per network."""
    wanted = os.environ.get("VNNCOMP_FC")
    names = wanted.split(",") if wanted else sorted(p.name for p in root.iterdir()
                                                    if (p / "instances.csv").is_file())
    per_net = int(os.environ.get("VNNCOMP_FC_PER_NET", 1))
    out = []
    for name in names:
        seen: dict = {}
        with open(root / name / "instances.csv", newline="") as f:
            for row in csv.reader(f):
                if len(row) < 2:
                    continue
                net, prop = (root / name / row[0].strip(), root / name / row[1].strip())
                if not (_exists(net) and _exists(prop)) or seen.get(net, 0) >= per_net:
                    continue
                seen[net] = seen.get(net, 0) + 1
                out.append((name, net, prop))
    return out


def main():
    root = os.environ.get("VNNCOMP_FC_DIR")
    if not root:
        print("vnncomp_fc skipped: VNNCOMP_FC_DIR is not set (a folder of VNN-COMP benchmarks, "
              "see bench/bench_vnncomp_fc.py)")
        return
    seconds = float(os.environ.get("VNNCOMP_FC_TIMEOUT", 60))
    peer = nnenum_peer()
    rows = []
    print(f"  {'benchmark':24s} {'network':34s} {'property':34s} {'kit':8s} {'s':>6s}  "
          f"{'nnenum':8s} {'s':>6s}  right?")
    for bench, net, prop in instances(Path(root)):
        with tempfile.TemporaryDirectory(prefix="vnncomp-fc-") as tmp:
            onnx_path, vnnlib_path = plain(net, Path(tmp)), plain(prop, Path(tmp))
            kit = run_kit(onnx_path, vnnlib_path, seconds)
            other = run_nnenum(onnx_path, vnnlib_path, seconds, peer) if peer else None
            if kit.status == "sat":
                why = confirm(onnx_path, vnnlib_path, kit.cex)
                verdict = f"WRONG: {why}" if why else "yes (onnxruntime)"
            elif kit.status == "unsat" and other is not None and other.status == "sat" \
                    and not confirm(onnx_path, vnnlib_path, other.cex):
                verdict = "WRONG: nnenum's counterexample holds"
            elif kit.status == "unsat" and other is not None and other.status == "unsat":
                verdict = "yes (nnenum agrees)"
            elif kit.status == "unsat":
                verdict = "not checked"
            else:
                verdict = "-"
        word = kit.raw if kit.raw != "error" else "refused"
        if kit.raw == "error":
            verdict = kit.notes[0][:120] if kit.notes else ""
        rows.append((bench, net.name, prop.name, word, kit.seconds,
                     other.status if other else "-", other.seconds if other else 0.0, verdict))
        r = rows[-1]
        print(f"  {r[0]:24s} {r[1][:34]:34s} {r[2][:34]:34s} {r[3]:8s} {r[4]:6.1f}  "
              f"{str(r[5])[:8]:8s} {r[6]:6.1f}  {r[7]}", flush=True)
    decided = sum(r[3] in ("sat", "unsat") for r in rows)
    wrong = sum(r[7].startswith("WRONG") for r in rows)
    refused = sum(r[3] == "refused" for r in rows)
    print(f"\n{len(rows)} instances, {seconds:g} s each: {decided} decided, {wrong} wrong, "
          f"{refused} refused")


if __name__ == "__main__":
    main()
