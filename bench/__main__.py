"""Run every benchmark (`python -m bench`) or some (`python -m bench verify grading`)."""
from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(here)])
                  if m.name.startswith("bench_"))


def _in_all(name: str) -> bool:
    return getattr(importlib.import_module(f"bench.bench_{name}"), "IN_ALL", True)


def main(argv: list[str]) -> int:
    # a bench can ask to run only when named (IN_ALL = False): bench_peers, which
    # bench_acasxu already runs after the kit
    whole = not argv
    names = argv or [n for n in available() if _in_all(n)]
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available()}")
        return 2
    for name in names:
        print(f"\n=== bench_{name} ===", flush=True)
        start = time.perf_counter()
        module = importlib.import_module(f"bench.bench_{name}")
        # a bench may run less of itself in the whole run than when named (main_in_all)
        (getattr(module, "main_in_all", module.main) if whole else module.main)()
        print(f"(bench_{name} took {time.perf_counter() - start:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
