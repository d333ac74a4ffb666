"""The run phase's kernel: confine this process as the runner asks, then become an IPython kernel.

The runner starts it with ``AUTOGRADE_CONFINE`` in the environment (JSON: ``writable`` folders,
``memory_bytes`` or null, ``file_bytes``, ``cpu_seconds``); the variable is removed before any
student code runs. With Landlock ABI 6+ the kernel can then signal no process outside itself
(not the runner that records its outputs); with any ABI it can write only where it is told.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from autograde.run import confine

CONFINE_VARIABLE = "AUTOGRADE_CONFINE"


def main() -> None:
    settings = json.loads(os.environ.pop(CONFINE_VARIABLE, "{}") or "{}")
    if settings:
        problems = confine.confine([Path(p) for p in settings["writable"]], settings.get("memory_bytes"),
                                   settings["file_bytes"], settings["cpu_seconds"])
        for problem in problems:  # the kernel's own stderr goes to the run log, not to a cell
            print(f"[autograde kernel] not enforced: {problem}", file=sys.stderr)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
