"""The lab's random seed and thread count, applied the same way at home and by the grader.

:func:`seed_everything` seeds Python's ``random``, numpy's global generator and torch's default
generator with :data:`SEED`, runs torch on :data:`THREADS` thread(s) and turns on torch's
deterministic algorithms (warn-only: an operation without a deterministic version still runs).
The notebook's set-up cell calls it. The grader's kernel calls :func:`seed_on_import` as its
first cell starts (:mod:`autograde.run.kernel`): the same seeding, except that numpy and torch,
when not imported yet, are seeded as soon as they are (no draw from them can come earlier), so a
notebook pays no import it does not make. A student who runs the notebook top to bottom
therefore gets the same random draws (data, initial weights, batch order) as the grader;
floating-point results may still differ in the last digits on another CPU.

Reading :data:`SEED` imports nothing.
"""
from __future__ import annotations

import importlib.abc
import os
import random
import sys
from types import ModuleType
from typing import Callable

SEED = 3003  # fixed for the assignment: the notebook and the grader use this value
THREADS = 1  # one thread: the lab's networks are small, and sums then add up in one order

__all__ = ["SEED", "THREADS", "seed_everything", "seed_on_import"]


def _check(seed: int, threads: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    # cuBLAS needs this before its first use to run deterministically on a GPU (without it,
    # deterministic mode warns at the first matrix product on CUDA)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def _seeders(seed: int, threads: int) -> dict[str, Callable[[ModuleType], None]]:
    """What seeding numpy and torch does, by module name."""
    def seed_numpy(numpy: ModuleType) -> None:
        numpy.random.seed(seed)

    def seed_torch(torch: ModuleType) -> None:
        torch.manual_seed(seed)  # every device's default generator
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)

    return {"numpy": seed_numpy, "torch": seed_torch}


def seed_everything(seed: int = SEED, threads: int = THREADS) -> None:
    """Seed ``random``, numpy's global generator and torch's default generator with `seed`,
    set torch's thread count to `threads` and turn on its deterministic algorithms (warn-only)."""
    _check(seed, threads)
    import numpy
    import torch

    random.seed(seed)
    seeders = _seeders(seed, threads)
    seeders["numpy"](numpy)
    seeders["torch"](torch)


def seed_on_import(seed: int = SEED, threads: int = THREADS) -> None:
    """What :func:`seed_everything` does, with numpy and torch seeded now if they are imported,
    else as soon as they are (their first import runs the seeding right after the module's own
    code)."""
    _check(seed, threads)
    random.seed(seed)
    waiting = {}
    for name, seeder in _seeders(seed, threads).items():
        if name in sys.modules:
            seeder(sys.modules[name])
        else:
            waiting[name] = seeder
    if waiting:
        sys.meta_path.insert(0, _SeedAfterImport(waiting))


class _SeedAfterImport(importlib.abc.MetaPathFinder):
    """A finder that finds nothing itself: for a module it waits for, it asks the finders after
    it, and wraps the loader they return so that the seeding runs once the module is executed.
    It leaves ``sys.meta_path`` once nothing is waiting."""

    def __init__(self, waiting: dict[str, Callable[[ModuleType], None]]):
        self.waiting = waiting

    def find_spec(self, name, path, target=None):
        if name not in self.waiting:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        seeder = self.waiting.pop(name)
        if not self.waiting:
            sys.meta_path.remove(self)
        execute = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            seeder(module)

        spec.loader.exec_module = exec_module  # this spec's own loader (finders make one per spec)
        return spec
