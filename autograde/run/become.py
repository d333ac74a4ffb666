"""Become the run phase's user, then run a command: ``python -m autograde.run.become UID GID CMD...``.

The grader may run as root (Gradescope runs everything as root, and ``/autograder`` is readable
by every user there), so the run phase can be made to execute as a dedicated unprivileged user
(see :func:`autograde.run.sandbox.parse_user`). This small program is the last step taken as root:
it drops every supplementary group, sets the group and the user, forbids gaining privileges again
(``PR_SET_NO_NEW_PRIVS``: no set-user-id program can give root back), then replaces itself with the
command (bubblewrap, or the runner where bubblewrap cannot run). It is started from a shell that
has already moved itself into the run's cgroup, which only root may do.
"""
from __future__ import annotations

import ctypes
import os
import sys

_PR_SET_NO_NEW_PRIVS = 38


def drop_to(uid: int, gid: int) -> None:
    """Give up root for good: no supplementary groups, `gid`, `uid`, no new privileges."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise OSError(f"could not become {uid}:{gid}")
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def main(argv: list[str]) -> None:
    uid, gid, command = int(argv[0]), int(argv[1]), argv[2:]
    drop_to(uid, gid)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
