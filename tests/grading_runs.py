"""What the grading tests share: running the instructor's CLI, and looking at what it left."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path


FIXTURE = Path(__file__).parent / "fixtures" / "lab3.ipynb"


def instructor_folder(root: Path) -> Path:
    """``root/instructor`` holding a copy of the fixture notebook and its assets; returns the
    notebook's path (the ``--source`` of the CLI)."""
    instructor = root / "instructor"
    instructor.mkdir()
    shutil.copyfile(FIXTURE, instructor / "lab3.ipynb")
    shutil.copytree(FIXTURE.parent / "assets", instructor / "assets")
    return instructor / "lab3.ipynb"


def autograde(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m autograde ARGS`` in ``cwd``, output captured."""
    return subprocess.run([sys.executable, "-m", "autograde", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def processes_with(marker: str) -> list[int]:
    """Pids of the processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found
