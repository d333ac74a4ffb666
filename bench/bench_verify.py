"""verify(): speed against raw auto-LiRPA, MNIST one-pixel time, oracle suite, a deep net.

Run: ``.venv/bin/python -c "from bench import bench_verify; bench_verify.main()"``
(or ``python -m bench verify``). Takes about 7 minutes on 2 CPU cores, mostly (d).

(a) A CROWN-provable pass on a 2-32-32-1 net. "raw" is what a one-off auto-LiRPA
    script does per question: ``BoundedModule(net, x)`` + ``BoundedTensor`` +
    ``compute_bounds(method="CROWN")`` (float32). We also show raw
    ``compute_bounds`` alone on a prebuilt module, which verify cannot beat: it
    adds spec parsing, sampling, a float64 CROWN call and the rounding margin.
(b) The handout's one-pixel MNIST question (784-128-64-10 + Softmax, random
    weights, students' y_specs with eps = 0.01): first call (traces the net and
    builds the bounded module) and warm calls.
(c) The MILP oracle suite of tests/test_verify_oracle.py (64 specs): decided
    fraction and median time, for both branching heuristics.
(d) A 5-input net with six hidden layers of 50 (random init at two weight scales),
    box [-1, 1]^5: properties at several distances from the sampled range, 60 s each.
"""
from __future__ import annotations

import itertools
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import verifier  # noqa: F401  (patches torch for auto-LiRPA)
from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm
from verifier import output_bounds, verify

TESTS = Path(__file__).resolve().parents[1] / "tests"


def _median_time(fn, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_crown_overhead(reps=30):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                        nn.Linear(32, 1))
    box = [(0.45, 0.55), (0.45, 0.55)]
    lo, hi = output_bounds(net, box)
    spec = [(float(lo[0]) - 0.05, float(hi[0]) + 0.05)]
    lb = torch.tensor([[a for a, _ in box]])
    ub = torch.tensor([[b for _, b in box]])

    def raw_full():
        m = BoundedModule(net, torch.zeros(1, 2))
        x = BoundedTensor((lb + ub) / 2, PerturbationLpNorm(norm=math.inf, x_L=lb, x_U=ub))
        m.compute_bounds(x=(x,), method="CROWN")

    module = BoundedModule(net, torch.zeros(1, 2))

    def raw_bounds():
        x = BoundedTensor((lb + ub) / 2, PerturbationLpNorm(norm=math.inf, x_L=lb, x_U=ub))
        with torch.no_grad():
            module.compute_bounds(x=(x,), method="CROWN")

    def ours():
        r = verify(net, box, spec, progress=False)
        assert r == "pass" and r.method == "CROWN"

    for f in (raw_full, raw_bounds, ours):
        f()
    t_full, t_bounds, t_ours = (_median_time(f, reps) for f in (raw_full, raw_bounds, ours))
    print("(a) CROWN-provable pass, 2-32-32-1 net (median of %d, warm)" % reps)
    print(f"    raw auto-LiRPA: BoundedModule + compute_bounds  {t_full * 1e3:7.2f} ms")
    print(f"    raw auto-LiRPA: compute_bounds only (prebuilt)  {t_bounds * 1e3:7.2f} ms")
    print(f"    verify()                                        {t_ours * 1e3:7.2f} ms")
    print(f"    ratio verify / raw (with construction)  {t_ours / t_full:5.2f}x  (goal <= 1.5x)")
    print(f"    ratio verify / raw (bounds only)        {t_ours / t_bounds:5.2f}x")


def bench_mnist(reps=10):
    sys.path.insert(0, str(TESTS))
    from verify_nets import one_pixel_question

    model, x_specs, avg = one_pixel_question()
    y_specs = [[avg[0, i].item() - 0.01, avg[0, i].item() + 0.01] for i in range(10)]
    t = time.perf_counter()
    first = verify(model, x_specs, y_specs, progress=False)
    t_first = time.perf_counter() - t
    warm = _median_time(lambda: verify(model, x_specs, y_specs, progress=False), reps)
    print("(b) one-pixel MNIST, 784-128-64-10 + Softmax, eps = 0.01")
    print(f"    verdict {first.status} by {first.method}; first call {t_first:.3f} s, "
          f"warm median {warm:.3f} s  (goal <= 0.2 s)")


def bench_oracle():
    sys.path.insert(0, str(TESTS))
    from milp_oracle import output_range
    import test_verify_oracle as suite

    cases = []
    for k in range(suite.N_CASES):
        net, sizes, lb, ub = suite._case(k)
        i = k % sizes[-1]
        mn, _, mx, _ = output_range(net, lb, ub)[i]
        d = suite.DELTA * (mx - mn) + 1e-5
        free = [(-math.inf, math.inf)] * sizes[-1]
        ok, bad = list(free), list(free)
        ok[i] = (mn - d, mx + d)
        bad[i] = (mn + d, math.inf) if k % 2 == 0 else (-math.inf, mx - d)
        cases += [(net, list(zip(lb, ub)), ok, "pass"), (net, list(zip(lb, ub)), bad, "fail")]
    print(f"(c) MILP oracle suite: {len(cases)} specs just inside/outside the exact range")
    for branching in ("widest", "smear-full", "smear"):
        times, decided, wrong = [], 0, 0
        for net, box, ys, expect in cases:
            r = verify(net, box, ys, timeout=8, progress=False, branching=branching)
            times.append(r.time)
            decided += r.status != "unknown"
            wrong += r.status not in ("unknown", expect)
        print(f"    branching={branching:10s}: decided {decided}/{len(cases)}, wrong {wrong}, "
              f"median {statistics.median(times) * 1e3:.1f} ms, max {max(times):.2f} s, "
              f"total {sum(times):.1f} s")


def bench_deep(timeout=60.0):
    sys.path.insert(0, str(TESTS))
    from verify_nets import mlp

    box = [(-1.0, 1.0)] * 5
    g = torch.Generator().manual_seed(0)
    corners = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=5)))
    x = torch.cat([torch.rand(100_000, 5, generator=g) * 2 - 1, corners])
    # scale 1.0: weights ~ N(0, 1/fan_in), like PyTorch's default init; scale 1.5 makes
    # every layer amplify, and CROWN's bound on the whole box is far looser.
    for scale in (1.0, 1.5):
        net = mlp((5, 50, 50, 50, 50, 50, 50, 1), seed=2, scale=scale)
        with torch.no_grad():
            y = net(x)
        ymin, ymax = float(y.min()), float(y.max())
        span = ymax - ymin
        props = [("y >= min - 100% range", [(ymin - 1.0 * span, math.inf)]),
                 ("y >= min - 20% range", [(ymin - 0.2 * span, math.inf)]),
                 ("y <= max + 50% range", [(-math.inf, ymax + 0.5 * span)]),
                 ("y >= min + 1% range", [(ymin + 0.01 * span, math.inf)])]
        print(f"(d) 5-50x6-1 net, weight scale {scale}, box [-1, 1]^5, {timeout:.0f} s each")
        decided = 0
        for name, ys in props:
            r = verify(net, box, ys, timeout=timeout, progress=False)
            decided += r.status != "unknown"
            print(f"    {name:24s} {r.status:8s} {r.time:6.1f} s  {r.method}")
        print(f"    decided {decided}/{len(props)}")


def main():
    bench_crown_overhead()
    bench_mnist()
    bench_oracle()
    bench_deep()


if __name__ == "__main__":
    main()
