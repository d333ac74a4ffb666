"""The run phase's kernel: confine this process as the runner asks, then become an IPython
kernel that seeds itself before the first cell.

The runner starts it with ``AUTOGRADE_CONFINE`` in the environment (JSON: ``writable`` folders,
``memory_bytes`` or null, ``file_bytes``, ``cpu_seconds``, and ``seed`` and ``threads``); the
variable is removed before any student code runs. With Landlock ABI 6+ the kernel can then signal
no process outside itself (not the runner that records its outputs); with any ABI it can write
only where it is told. As the first cell starts, the kernel seeds itself as
:func:`labseed.seed_everything` (the function the notebook's set-up cell calls) does: ``random``,
numpy and torch seeded with the assignment's seed (numpy and torch as they are imported, see
:func:`labseed.seed_on_import`), torch's thread count fixed, its deterministic algorithms on.
The same notebook then draws the same numbers every time it is graded, whichever worker grades
it. The call leaves no name in the notebook's namespace and no entry in its history.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from autograde.run import confine

CONFINE_VARIABLE = "AUTOGRADE_CONFINE"


def seed_at_first_cell(shell, seed: int, threads: int) -> None:
    """Have `shell` (the kernel's IPython) call :func:`labseed.seed_on_import` as its first cell
    starts, once. Not earlier: until then the kernel draws from ``random`` a varying number of
    times (IPython picks a random tip for its banner at each ``kernel_info_request``, which
    clients send until the kernel answers). numpy and torch are seeded as the notebook imports
    them, so the seeding costs a cell's time limit nothing."""
    def before_first_cell(info) -> None:
        shell.events.unregister("pre_run_cell", before_first_cell)
        from labseed import seed_on_import

        seed_on_import(seed, threads)

    shell.events.register("pre_run_cell", before_first_cell)


def main() -> None:
    settings = json.loads(os.environ.pop(CONFINE_VARIABLE, "{}") or "{}")
    if settings:
        problems = confine.confine([Path(p) for p in settings["writable"]], settings.get("memory_bytes"),
                                   settings["file_bytes"], settings["cpu_seconds"])
        for problem in problems:  # the kernel's own stderr goes to the run log, not to a cell
            print(f"[autograde kernel] not enforced: {problem}", file=sys.stderr)
    startup = []
    if "seed" in settings:
        startup.append(f"__import__('autograde.run.kernel', fromlist=['_']).seed_at_first_cell("
                       f"get_ipython(), {int(settings['seed'])}, {int(settings.get('threads', 1))})")
    from ipykernel import kernelapp

    if startup:  # on the command line: the app's configuration replaces traits given to its constructor
        sys.argv.append(f"--IPKernelApp.exec_lines={json.dumps(startup)}")
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
