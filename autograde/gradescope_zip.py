"""The Gradescope autograder zip: what ``python -m autograde gradescope --out FILE`` writes.

Gradescope builds one image per assignment from the zip: it unpacks it into
``/autograder/source`` and runs its ``setup.sh``. The zip holds, sorted and with fixed times so
that the same kit gives the same bytes:

- ``setup.sh`` and ``run_autograder``, real files in ``autograde/gradescope_files/`` (where
  ``shellcheck`` reads them: ``tests/test_shell_scripts.py``), executable;
- ``settings.json``: the source notebook's name, the run user and the limits, fixed at build time;
- ``kit/``: the kit's packages (:data:`autograde.packages.KIT_PACKAGES`) and requirements files,
  which ``setup.sh`` installs (nothing is cloned);
- ``instructor/``: the source notebook and its support folders, which ``prepare`` moves out of
  the run user's reach (:mod:`autograde.gradescope`).
"""
from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

from autograde.course import SUPPORT_FOLDERS, check_source as read_source
from autograde.jobs import Limits
from autograde.packages import KIT_PACKAGES
from autograde.run.sandbox import parse_user

SCRIPTS = Path(__file__).resolve().parent / "gradescope_files"
SCRIPT_NAMES = ("setup.sh", "run_autograder")  # the two files Gradescope runs, at the zip's top
SETUP_SH = (SCRIPTS / "setup.sh").read_text(encoding="utf-8")
SETTINGS = "settings.json"
KIT_FILES = ("pyproject.toml", "requirements.txt", "requirements-nodeps.txt")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every entry's timestamp: the same kit gives the same bytes


def _kit_root() -> Path:
    return Path(__file__).resolve().parents[1]


def _shipped(folder: Path) -> list[Path]:
    """The files under `folder` worth shipping: no caches, no hidden files."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".pyc"
                  and not any(part.startswith((".", "__pycache__")) for part in p.relative_to(folder).parts))


def settings_for(source: Path, limits: Limits, run_as: str) -> dict:
    """settings.json: the source notebook's name, the run user and the limits grading uses."""
    return {"source": source.name, "run_as": run_as,
            "limits": {"cell_timeout": limits.cell_timeout, "budget_seconds": limits.budget_seconds,
                       "memory_bytes": limits.memory_bytes, "disk_bytes": limits.disk_bytes,
                       "max_files": limits.max_files}}


def zip_entries(source: Path, limits: Limits, run_as: str) -> list[tuple[str, bytes, int]]:
    """(name, bytes, mode) of every entry of the autograder zip, sorted by name."""
    entries = [(name, (SCRIPTS / name).read_bytes(), 0o755) for name in SCRIPT_NAMES]
    entries += [
        (SETTINGS, (json.dumps(settings_for(source, limits, run_as), indent=1) + "\n").encode(), 0o644),
        (f"instructor/{source.name}", source.read_bytes(), 0o644)]
    kit = _kit_root()
    entries += [(f"kit/{name}", (kit / name).read_bytes(), 0o644) for name in KIT_FILES]
    entries += [(f"kit/{path.relative_to(kit).as_posix()}", path.read_bytes(), 0o644)
                for package in KIT_PACKAGES for path in _shipped(kit / package)]
    entries += [(f"instructor/{path.relative_to(source.parent).as_posix()}", path.read_bytes(), 0o644)
                for folder in SUPPORT_FOLDERS if (source.parent / folder).is_dir()
                for path in _shipped(source.parent / folder)]
    return sorted(entries)


def build_zip(source: Path, out: Path, limits: Limits, run_as: str) -> Path:
    """Write the autograder zip for `source` to `out` (deterministic: fixed times, sorted
    entries; setup.sh and run_autograder executable). Returns `out`."""
    read_source(source)
    if run_as[:1].isdigit():  # a numeric user is checked now; a name is created by setup.sh
        parse_user(run_as)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in zip_entries(source, limits, run_as):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.create_system = 3  # unix: the mode bits below are honoured by unzip
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    os.replace(partial, out)
    return out
