"""Confine the process that runs a student's code: what it may write, how much memory it may use.

Used inside the bubblewrap sandbox (a second wall: the kernel cannot write the runner's files
nor signal it) and, where bubblewrap cannot run, as the only one. Alone it is not a container.
Two things are enforced by the Linux kernel, where it offers them:

* **Writes** (Landlock, Linux >= 5.13): after :func:`confine`, this process and all its children
  can create, change, rename or delete files only beneath the directories it was given (and
  ``/dev``, for ``/dev/null`` and ``/dev/shm``). Reading is not restricted: student code can read
  any file the user running the grader can read, if it knows or finds the path.
  With Landlock ABI >= 6 the process also cannot send signals to processes outside its sandbox
  (the grader, the other submissions).
* **Resources** (``setrlimit``, per process, inherited by children): ``RLIMIT_DATA`` caps the heap
  and private mappings (a ``MemoryError`` instead of an exhausted machine); ``RLIMIT_FSIZE`` caps
  the size of any file it writes; ``RLIMIT_CPU`` ends a process that outlives the grading (a
  leftover background process); ``RLIMIT_CORE`` is 0. ``RLIMIT_AS`` is not used: torch reserves
  gigabytes of address space at import (it fails to load under 2 GiB) and would need a useless limit.

On other platforms, or kernels without Landlock, :func:`confine` applies what it can and says
what it could not in the returned list.
"""
from __future__ import annotations

import ctypes
import os
import resource
import struct
import sys
from pathlib import Path

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # same on all Linux archs
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights that change something (reads are left alone), by Landlock ABI version.
_WRITE_RIGHTS = {
    1: sum(1 << bit for bit in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12)),  # write, remove, make *
    2: 1 << 13,  # refer (rename/link across directories)
    3: 1 << 14,  # truncate
}
_SCOPE_SIGNAL = 1 << 1  # ABI 6
_DEVICE_DIR = "/dev"


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers, or 0 when there is none."""
    if not sys.platform.startswith("linux"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(int(version), 0)


def restrict_writes(writable: list[Path]) -> int:
    """Allow this process (and its future children) to write only beneath `writable` and /dev.

    Returns the Landlock ABI version used; raises OSError if the kernel refuses.
    """
    abi = landlock_abi()
    if abi == 0:
        raise OSError("Landlock is not available on this kernel")
    libc = ctypes.CDLL(None, use_errno=True)
    handled = sum(rights for version, rights in _WRITE_RIGHTS.items() if version <= abi)
    scoped = _SCOPE_SIGNAL if abi >= 6 else 0
    attr = ctypes.create_string_buffer(struct.pack("=QQQ", handled, 0, scoped))
    ruleset = libc.syscall(_SYS_CREATE_RULESET, attr, ctypes.c_size_t(len(attr.raw)), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for directory in [*writable, Path(_DEVICE_DIR)]:
            fd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = ctypes.create_string_buffer(struct.pack("=Qi", handled, fd))
                if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rule, 0) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {directory}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def limit_resources(memory_bytes: int | None, file_bytes: int, cpu_seconds: int) -> None:
    """Cap the data segment (unless `memory_bytes` is None: a cgroup limits memory instead) and
    written files (bytes) and the CPU time (seconds) of each process."""
    limits = [(resource.RLIMIT_FSIZE, file_bytes), (resource.RLIMIT_CPU, cpu_seconds), (resource.RLIMIT_CORE, 0)]
    if memory_bytes is not None:
        limits.append((resource.RLIMIT_DATA, memory_bytes))
    for limit, value in limits:
        _, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(limit, (value, value if hard == resource.RLIM_INFINITY else hard))


def confine(writable: list[Path], memory_bytes: int | None, file_bytes: int, cpu_seconds: int) -> list[str]:
    """Apply every confinement this platform offers; return what could not be applied, in words."""
    missing = []
    try:
        limit_resources(memory_bytes, file_bytes, cpu_seconds)
    except (ValueError, OSError) as error:
        missing.append(f"resource limits: {error}")
    try:
        restrict_writes(writable)
    except OSError as error:
        missing.append(f"write confinement: {error}")
    return missing
