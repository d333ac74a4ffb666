"""mnistfc (VNN-COMP 2021): 3 MNIST networks, 90 robustness instances, via ``python -m verifier``.

Run: ``python -m bench mnistfc`` (all 90). ``python -m bench`` and ``make bench`` run a
12-instance sample instead (4 per network: two images at each radius). Knobs, as for ACAS Xu:

* ``MNIST_TIMEOUT``: seconds per instance (default 60); ``MNIST_TIMEOUT=csv`` gives each
  instance the competition's own limit from ``mnistfc_instances.csv`` (120 s for 256x2,
  300 s for 256x4 and 256x6).
* ``MNIST_INSTANCES``: ``all``, ``sample``, or names such as ``256x2:0:0.03,256x6:4:0.05``
  (network, image, radius).
* ``MNIST_DIR``: the benchmark folder (default ``../shared/mnistfc``, with its README).
* ``MNIST_PEERS=0`` skips nnenum; ``MNIST_KIT=0`` skips the kit (nnenum alone).

Each instance is one ``python -m verifier NET PROP --timeout T --result FILE`` process, so a
crash or a memory blow-up costs that instance only; it is killed ``GRACE`` seconds past its
budget. The time shown is the process's wall time, start-up included (what VNN-COMP counts);
the peak memory is the child's ``ru_maxrss`` (``os.wait4``).

Then, when ``PEERS_PYTHON`` and ``NNENUM_SRC`` name nnenum (``bench/bench_peers.py`` says how
to install it), the same instances go through nnenum in the same run, one process each with
one thread, with the settings its command line picks for image networks
(``bench/peer_nnenum.py``), and the two tables print side by side.

"wrong" counts, for either tool: a ``sat`` whose counterexample, as the result file gives it,
is not in the input region or does not reach the unsafe outputs when onnxruntime evaluates the
network there (the property read exactly by ``bench.vnnlib_check``, not the kit's reader); an
``unsat`` where the other tool's ``sat`` was confirmed that way, or where VNN-COMP 2021's
tools found a violation (``bench/mnistfc_known.csv``); a ``sat`` where those tools proved the
property is flagged in the log (a confirmed counterexample outranks them) but not counted.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
GRACE = 15.0          # seconds past the budget before a process group is killed
NETS = ("256x2", "256x4", "256x6")
RADII = ("0.03", "0.05")
# the default sample: two images per network (different ones on each), both radii
SAMPLE = {"256x2": (0, 7), "256x4": (2, 9), "256x6": (4, 11)}


@dataclass(frozen=True)
class Instance:
    net: str          # "256x2"
    image: int        # 0..14
    radius: str       # "0.03"
    limit: float      # the competition's limit, seconds

    @property
    def onnx(self) -> str:
        return f"mnist-net_{self.net}.onnx"

    @property
    def vnnlib(self) -> str:
        return f"prop_{self.image}_{self.radius}.vnnlib"

    @property
    def name(self) -> str:
        return f"{self.net}:{self.image}:{self.radius}"


@dataclass
class Outcome:
    status: str                 # sat / unsat / unknown (timeouts, errors and kills included)
    seconds: float              # wall time of the process
    peak_mib: float             # the process's ru_maxrss
    raw: str = ""               # the tool's own word, or why there is none
    cex: list | None = None     # the counterexample's inputs, for sat
    wrong: str = ""
    notes: list = field(default_factory=list)


def folder() -> Path:
    return Path(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "mnistfc"))


def all_instances(where: Path) -> list[Instance]:
    """The 90 instances in the csv's order (network, then radius, then image)."""
    out = []
    if not (where / "mnistfc_instances.csv").is_file():
        raise SystemExit(f"{where / 'mnistfc_instances.csv'} not found: MNIST_DIR names the "
                         "folder of the mnistfc benchmark (networks, properties, instance csv)")
    with open(where / "mnistfc_instances.csv", newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            m = re.fullmatch(r"mnist-net_(\w+)\.onnx", row[0].strip())
            p = re.fullmatch(r"prop_(\d+)_([0-9.]+)\.vnnlib", row[1].strip())
            if not (m and p):
                raise SystemExit(f"mnistfc_instances.csv: unexpected row {row}")
            out.append(Instance(m.group(1), int(p.group(1)), p.group(2), float(row[2])))
    return out


def chosen(where: Path, default: str) -> list[Instance]:
    every = all_instances(where)
    pick = os.environ.get("MNIST_INSTANCES", default)
    if pick == "all":
        return every
    if pick == "sample":
        return [i for i in every if i.image in SAMPLE[i.net]]
    by_name = {i.name: i for i in every}
    names = [n.strip() for n in pick.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"MNIST_INSTANCES: unknown instance(s) {unknown}; expected all, sample "
                         "or NET:IMAGE:RADIUS such as 256x2:0:0.03")
    return [by_name[n] for n in names]


def budget(inst: Instance) -> float:
    value = os.environ.get("MNIST_TIMEOUT", "60")
    return inst.limit if value == "csv" else float(value)


def known_answers() -> dict:
    """{(onnx, vnnlib): 'sat' | 'unsat'} from VNN-COMP 2021 (see mnistfc_known.csv)."""
    rows = [ln for ln in (HERE / "mnistfc_known.csv").read_text().splitlines()
            if ln and not ln.startswith("#")]
    return {(r["network"], r["property"]): r["answer"] for r in csv.DictReader(rows)}


# -- one process ---------------------------------------------------------------------

def run_process(cmd: list, limit: float, env: dict | None = None) -> tuple[str, bool, float, float]:
    """Run ``cmd`` in its own process group, killed ``limit`` seconds after it starts.

    Returns (stdout and stderr, killed, wall seconds, peak resident MiB). The child is reaped
    with ``os.wait4`` for its own ``ru_maxrss`` (KiB on Linux).
    """
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    killed = threading.Event()

    def kill():
        killed.set()
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(limit, kill)
    timer.start()
    try:
        out = p.stdout.read()            # until every writer in the group is gone
        _, status, usage = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stdout.close()
    return (out.decode(errors="replace"), killed.is_set(), time.monotonic() - t0,
            usage.ru_maxrss / 1024)


def _values(text: str, letter: str) -> list | None:
    """The values of ``letter``_i in a result file, as the text writes them (exact decimals)."""
    found = {int(i): v for i, v in
             re.findall(rf"\({letter}_(\d+)\s+([-+0-9.eE]+|[-+]?inf|nan)\)", text)}
    return [found[i] for i in sorted(found)] if found else None


def run_kit(onnx_path: Path, vnnlib_path: Path, seconds: float) -> Outcome:
    """One ``python -m verifier`` process; its answer from the result file it writes."""
    with tempfile.TemporaryDirectory(prefix="vnncomp-") as tmp:
        result = Path(tmp) / "result.txt"
        cmd = [sys.executable, "-m", "verifier", str(onnx_path), str(vnnlib_path),
               "--timeout", f"{seconds:g}", "--result", str(result)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        out, killed, wall, peak = run_process(cmd, seconds + GRACE, env)
        text = result.read_text() if result.exists() else ""
    word = text.split()[0] if text.strip() else ""
    if killed:
        return Outcome("unknown", wall, peak, "killed")
    if word not in ("sat", "unsat", "timeout", "unknown"):
        tail = " ".join(out.strip().splitlines()[-2:])[-200:]
        return Outcome("unknown", wall, peak, "error", notes=[tail])
    status = word if word in ("sat", "unsat") else "unknown"
    return Outcome(status, wall, peak, word, _values(text, "X") if word == "sat" else None)


def run_nnenum(onnx_path: Path, vnnlib_path: Path, seconds: float, peer: dict) -> Outcome:
    """One ``bench/peer_nnenum.py`` process under ``PEERS_PYTHON``."""
    from bench.bench_peers import peer_env

    cmd = [peer["python"], str(HERE / "peer_nnenum.py"), str(onnx_path), str(vnnlib_path),
           f"{seconds:.3f}"]
    out, killed, wall, peak = run_process(cmd, seconds + GRACE, peer_env())
    if killed:
        return Outcome("unknown", wall, peak, "killed")
    m = re.search(r"^PEER-RESULT (.*)$", out, re.M)
    if not m:
        tail = " ".join(out.strip().splitlines()[-2:])[-200:]
        return Outcome("unknown", wall, peak, "error", notes=[tail])
    r = json.loads(m.group(1))
    status = r["status"] if r["status"] in ("sat", "unsat") else "unknown"
    return Outcome(status, wall, peak, r.get("raw") or r["status"], r.get("cex"))


# -- checking answers ------------------------------------------------------------------

_SESSIONS: dict = {}


def _session(onnx_path: Path):
    """onnxruntime's session for the network. Some VNN-COMP files (2024's ACC and
    drones_1d_hovering) take float64 inputs into float32 weights, which onnxruntime refuses to
    load; their weights are then widened to float64 (exact), the type the kit computes in."""
    import numpy as np
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(onnx_path), options,
                                            providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - retried once with the weights widened, else raised
        model = onnx.load(str(onnx_path))
        if model.graph.input[0].type.tensor_type.elem_type != onnx.TensorProto.DOUBLE:
            raise
        for t in model.graph.initializer:
            if t.data_type == onnx.TensorProto.FLOAT:
                t.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(t).astype(np.float64), t.name))
        return onnxruntime.InferenceSession(model.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])


def confirm(onnx_path: Path, vnnlib_path: Path, cex: list | None) -> str:
    """'' when the property file's asserts all hold at ``cex`` (its inputs as written in the
    result file, read exactly) and onnxruntime's output there; else why not. The file is read by
    ``bench.vnnlib_check`` (the bench's own evaluator, not the kit's reader), the network
    evaluated in its own input type."""
    import numpy as np

    from bench.vnnlib_check import holds, inside

    if not cex:
        return "sat without a counterexample"
    key = str(onnx_path)
    if key not in _SESSIONS:
        _SESSIONS[key] = _session(onnx_path)
    session = _SESSIONS[key]
    x = np.asarray([float(v) for v in cex], dtype=np.float64)
    feed = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in feed.shape]
    real = np.float64 if "double" in feed.type else np.float32
    y = session.run(None, {feed.name: x.astype(real).reshape(shape)})[0]
    y = np.asarray(y, dtype=np.float64).flatten()
    text = vnnlib_path.read_text()
    if holds(text, cex, [float(v) for v in y]):
        return ""
    return ("onnxruntime's output at the counterexample is not unsafe" if inside(text, cex)
            else "counterexample outside the input region")


def judge(inst: Instance, where: Path, results: dict, known: dict) -> None:
    """Sets ``wrong`` on each tool's outcome for one instance (see the module doc)."""
    confirmed = {}
    for tool, r in results.items():
        if r.status == "sat":
            r.wrong = confirm(where / inst.onnx, where / inst.vnnlib, r.cex)
            confirmed[tool] = not r.wrong
            if not r.wrong and known.get((inst.onnx, inst.vnnlib)) == "unsat":
                r.notes.append("confirmed sat where VNN-COMP 2021's tools said unsat")
    for tool, r in results.items():
        if r.status != "unsat":
            continue
        others = [t for t, ok in confirmed.items() if ok and t != tool]
        if others:
            r.wrong = f"unsat, but {others[0]}'s counterexample holds"
        elif known.get((inst.onnx, inst.vnnlib)) == "sat":
            r.wrong = "unsat where VNN-COMP 2021's tools found a violation"


# -- tables ----------------------------------------------------------------------------

def summary_line(label: str, tool: str, rows: list) -> str:
    n = len(rows)
    sat = sum(r.status == "sat" for r in rows)
    unsat = sum(r.status == "unsat" for r in rows)
    wrong = sum(bool(r.wrong) for r in rows)
    times = [r.seconds for r in rows]
    peak = max(r.peak_mib for r in rows)
    return (f"  {label:16s} {tool:>6s} {n:10d} {sat + unsat:7d} {sat:4d} {unsat:6d} "
            f"{n - sat - unsat:8d} "
            f"{wrong:6d} {statistics.median(times):9.1f} {sum(times):8.0f} {peak:9.0f}")


def print_table(instances: list, results: dict, what: str) -> None:
    """``results``: {tool: [Outcome per instance]}; one block per network and radius."""
    print(f"\nmnistfc, {what}; seconds are each process's wall time (start-up included), "
          "peak is the largest ru_maxrss of one instance:")
    print("  group            tool  instances decided  sat  unsat  unknown  wrong  median s "
          " total s  peak MiB")
    groups = [(f"{n} eps={r}", lambda i, n=n, r=r: i.net == n and i.radius == r)
              for n in NETS for r in RADII] + [("all", lambda i: True)]
    for label, keep in groups:
        idx = [k for k, i in enumerate(instances) if keep(i)]
        if not idx:
            continue
        for j, (tool, rows) in enumerate(results.items()):
            print(summary_line(label if j == 0 else "", tool, [rows[k] for k in idx]))


def describe(r: Outcome) -> str:
    extra = "; ".join(([f"WRONG: {r.wrong}"] if r.wrong else []) + r.notes)
    tail = f"  {extra}" if extra else ""
    return f"{r.status:7s} {r.seconds:6.1f} s {r.peak_mib:6.0f} MiB  ({r.raw}){tail}"


def nnenum_peer() -> dict | None:
    """nnenum's entry from bench_peers' probe, or None (with one line saying why)."""
    if os.environ.get("MNIST_PEERS", "1") == "0":
        return None
    from bench import bench_peers

    lines = []
    peers = bench_peers.find_peers(say=lines.append)
    for line in lines:
        if line.startswith(("nnenum", "peers skipped")):
            print(line)
    return peers.get("nnenum")


def main(default: str = "all") -> None:
    where = folder()
    instances = chosen(where, default)
    known = known_answers()
    mode = os.environ.get("MNIST_TIMEOUT", "60")
    what = (f"{len(instances)} instances, "
            + ("the competition's limits" if mode == "csv" else f"{float(mode):g} s each")
            + ", one process at a time, one thread")
    tools = {}
    if os.environ.get("MNIST_KIT", "1") != "0":
        tools["kit"] = lambda i: run_kit(where / i.onnx, where / i.vnnlib, budget(i))
    peer = nnenum_peer()
    if peer is not None:
        tools["nnenum"] = lambda i: run_nnenum(where / i.onnx, where / i.vnnlib, budget(i), peer)
    results = {t: [] for t in tools}
    for tool, run in tools.items():
        print(f"\n{tool}:", flush=True)
        for inst in instances:
            r = run(inst)
            results[tool].append(r)
            print(f"  {inst.name:16s} {describe(r)}", flush=True)
    for k, inst in enumerate(instances):
        judge(inst, where, {t: rows[k] for t, rows in results.items()}, known)
    bad = [(t, instances[k].name, r.wrong) for t, rows in results.items()
           for k, r in enumerate(rows) if r.wrong]
    for t, name, why in bad:
        print(f"  WRONG: {t} on {name}: {why}")
    for t, rows in results.items():
        for k, r in enumerate(rows):
            for note in r.notes:
                if note.startswith("confirmed sat"):
                    print(f"  note: {t} on {instances[k].name}: {note}")
    if results:
        print_table(instances, results, what)


def main_in_all() -> None:
    """What ``python -m bench`` (and ``make bench``) runs: the 12-instance sample."""
    main(default="sample")


if __name__ == "__main__":
    main()
