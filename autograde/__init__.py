"""Autograding for Lab 3 (see docs/instructors.md): release, run in a sandbox, check, feedback."""
from __future__ import annotations

import sys

# `python -m` puts the working directory first on sys.path, where a submission could place a
# module named like one of ours; Python 3.11's -P leaves it out. Python 3.10 has no -P, so
# there a bootstrap run with -c (which puts '' there instead) takes that entry out, then runs
# the module as `python -m` would.
_SAFE_PATH_BOOTSTRAP = (
    "import runpy, sys\n"
    "if sys.path[0] != '': raise SystemExit('unexpected sys.path[0]: %r' % sys.path[0])\n"
    "del sys.path[0]\n"
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n"
)


def python_module(module: str) -> list[str]:
    """The command line that starts this Python on `module` (``python -m module``) without
    the working directory on sys.path; append the module's own arguments."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-m", module]
    return [sys.executable, "-c", _SAFE_PATH_BOOTSTRAP, module]
