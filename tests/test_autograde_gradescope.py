"""The Gradescope autograder: the zip, and ``run_autograder`` in a folder laid out like ``/autograder``.

The zip is built from the fixture notebook with the class's limits, unpacked into a temporary
root, prepared (``python -m autograde.gradescope prepare``, the part of setup.sh that is not
installing), then ``run_autograder`` grades one upload at a time, as root, with the run phase as
a user of its own (a free numeric uid, so that killing its processes touches nothing else). Its
points must equal local grading's (tests/conftest.py ``graded_class``). An attack plays a student
who tries to read the instructor's files, write results.json and leave a process behind, in the
harder of the two container cases: no bubblewrap (``AUTOGRADE_SANDBOX=none``), where only the
user id, the file permissions and Landlock keep the phases apart.

This machine's Python lives under /root (0700), which no other user may enter; a grading
container has its venv in /autograder/venv. :func:`open_python_for` gives the run user this
Python the way a container would: the commands run in a mount namespace of their own where the
closed folder is an empty, open one holding only what the run needs.
"""
from __future__ import annotations

import html
import json
import os
import pwd
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path

import pytest

from autograde import crafted, gradescope
from autograde.run import processes
from autograde.jobs import Limits, MiB
from autograde.run.sandbox import bwrap_binary
from grading_runs import CLASS_LIMITS, autograde, processes_with

KIT = Path(__file__).resolve().parents[1]
TOP_FIELDS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
              "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_FIELDS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
               "visibility", "extra_data"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
SECRETS = ("assert squares == [0, 1, 4, 9, 16", "assert inside == [True, False", "x * x for x in range(10)",
           "math.hypot(x, y) < 1", "BEGIN HIDDEN", "BEGIN SOLUTION")


def free_uid() -> int:
    """A uid with no account and no process: what the run phase's processes run as here."""
    while True:
        uid = random.randint(61000, 64999)
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if not processes.user_processes(uid):
                return uid


def open_python_for() -> list[str]:
    """A command prefix under which any user may run this Python and the kit: each closed folder
    above them (mode without o+x) becomes, in a private mount namespace, an empty open one in which
    only the entries leading to what the run needs are bound back, read-only (bwrap would make
    the folders between closed too). Empty when nothing is closed."""
    needed = {Path(os.path.realpath(sys.base_prefix)), Path(os.path.realpath(sys.prefix)), KIT}
    closed: dict[Path, set[Path]] = {}
    for path in needed:
        for folder in [*reversed(path.parents), path]:
            if not folder.stat().st_mode & stat.S_IXOTH:
                closed.setdefault(folder, set()).add(folder / path.relative_to(folder).parts[0]
                                                     if path != folder else folder)
                break
    if not closed:
        return []
    binary = bwrap_binary()
    if binary is None:
        pytest.skip(f"this Python lives in {', '.join(map(str, closed))}, closed to other users, and bwrap "
                    "cannot run here to open it")
    prefix = [binary, "--dev-bind", "/", "/"]
    for folder, paths in closed.items():
        prefix += ["--tmpfs", str(folder)]
        for path in sorted(paths):
            prefix += ["--ro-bind", str(path), str(path)]
    return prefix


def unpack(archive: Path, folder: Path) -> None:
    """Unpack the zip as Gradescope does, with the mode bits of its entries."""
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            target = folder / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(opened.read(info))
            target.chmod((info.external_attr >> 16) & 0o777)


ATTACK = """\
import json, os, subprocess, sys
from pathlib import Path
root = Path(ROOT)
found = {}
def attempt(name, action):
    try:
        action()
        found[name] = "done"
    except Exception as error:
        found[name] = type(error).__name__
attempt("read the instructor notebook", lambda: (root / "private/instructor/lab3.ipynb").read_bytes())
attempt("list private", lambda: os.listdir(root / "private"))
attempt("list the generated assignment", lambda: os.listdir(root / "private/cache"))
attempt("list work", lambda: os.listdir(root / "work"))
attempt("write results.json", lambda: (root / "results/results.json").write_text('{"score": 100, "tests": []}'))
attempt("write beside results.json", lambda: (root / "results/x.json").write_text("{}"))
attempt("rename results", lambda: os.rename(root / "results", root / "results.old"))
loop = ("import time\\nfor _ in range(3000):\\n    try:\\n        open(%r, 'w').write('{}')\\n"
        "    except OSError:\\n        pass\\n    time.sleep(0.1)  # %s" % (str(root / "results/results.json"), MARKER))
subprocess.Popen(["/usr/bin/env", "-i", sys.executable, "-c", loop], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("ATTACK-REPORT", json.dumps(found))
"""


def attack_notebook(source_nb, release_nb, root: Path, marker: str):
    """Everything answered, `squares` wrong only where the hidden test looks, and the attack."""
    notebook = crafted.perfect(source_nb, release_nb)
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "square":
            cell.source = "squares = [0, 1, 4, 9]"
    code = f"ROOT, MARKER = {str(root)!r}, {marker!r}\n" + ATTACK
    return crafted.with_cell_after(notebook, "square", code)


@pytest.fixture(scope="module")
def autograder(graded_class, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("gradescope")
    root = Path(tempfile.mkdtemp(prefix="autograder-"))  # not under pytest's folder: that one is 0700
    root.chmod(0o755)
    archive = scratch / "autograder.zip"
    built = autograde("gradescope", "--out", archive, "--source", graded_class["source"], *CLASS_LIMITS, cwd=scratch)
    assert built.returncode == 0 and built.stderr == "", built.stderr
    gradescope.build_zip(graded_class["source"], scratch / "again.zip",  # the CLI's limits, in process
                         Limits(cell_timeout=30, budget_seconds=60, memory_bytes=4096 * MiB), "autograde-run")
    unpack(archive, root / "source")
    uid, marker = free_uid(), f"gradescope-attack-{uuid.uuid4().hex}"
    environment = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADE_RUN_AS": f"{uid}:{uid}",
                   "AUTOGRADE_PYTHON": sys.executable, "LAB3_DATA_DIR": str(root / "data")}
    prefix = open_python_for()
    prepared = subprocess.run([*prefix, sys.executable, "-m", "autograde.gradescope", "prepare", "--root", str(root)],
                              env=environment, capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 0 and prepared.stderr == "", prepared.stdout + prepared.stderr

    def grade(files: dict[str, object], **variables: str) -> dict:
        shutil.rmtree(root / "submission", ignore_errors=True)
        shutil.rmtree(root / "results", ignore_errors=True)
        for name, notebook in files.items():
            crafted.write_submission(notebook, root / "submission" / name)
        started = set((root / "work").iterdir())
        result = subprocess.run([*prefix, str(root / "source" / "run_autograder")], env={**environment, **variables},
                                capture_output=True, text=True, timeout=300)
        leftover = processes.user_processes(uid)
        document = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
        grading = next(iter(set((root / "work").iterdir()) - started), None)
        return {"result": result, "results": document, "leftover": leftover, "grading": grading,
                "text": (root / "results" / "results.json").read_text(encoding="utf-8")}

    source_nb, release_nb = graded_class["source_nb"], graded_class["release_nb"]
    runs = {"perfect": grade({"lab3.ipynb": crafted.perfect(source_nb, release_nb)}),
            "blank": grade({"Lab3 (1).ipynb": crafted.blank(source_nb, release_nb)}),
            "damaged_json": grade({"lab3.ipynb": crafted.damaged_json(release_nb)}),
            "empty": grade({}),
            "attack": grade({"lab3.ipynb": attack_notebook(source_nb, release_nb, root, marker)},
                            AUTOGRADE_SANDBOX="none")}
    yield {"root": root, "archive": archive, "again": scratch / "again.zip", "built": built, "runs": runs,
           "uid": uid, "marker": marker, "class": graded_class, "prepared": prepared}
    shutil.rmtree(root, ignore_errors=True)


def test_the_zip_follows_gradescopes_layout(autograder):
    with zipfile.ZipFile(autograder["archive"]) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        settings = json.loads(archive.read("settings.json"))
    for name in ("setup.sh", "run_autograder"):
        assert (infos[name].external_attr >> 16) & 0o777 == 0o755
        assert archive_text(autograder["archive"], name).startswith("#!/usr/bin/env bash\n")
    assert {"instructor/lab3.ipynb", "instructor/assets/dot.png", "kit/pyproject.toml", "kit/requirements.txt",
            "kit/requirements-nodeps.txt", "kit/autograde/gradescope.py", "kit/verifier/__init__.py"} <= set(infos)
    assert not [name for name in infos if "__pycache__" in name or name.startswith("tests/")]
    assert list(infos) == sorted(infos) and {info.date_time for info in infos.values()} == {gradescope.ZIP_TIME}
    assert autograder["archive"].read_bytes() == autograder["again"].read_bytes()
    assert settings["limits"]["cell_timeout"] == 30 and settings["limits"]["budget_seconds"] == 60


def archive_text(archive: Path, name: str) -> str:
    with zipfile.ZipFile(archive) as opened:
        return opened.read(name).decode()


def test_setup_installs_from_the_shipped_requirements():
    script = gradescope.SETUP_SH
    for needed in ("python3-venv", "useradd", "kit/requirements.txt",
                   "--no-deps -r \"$SOURCE/kit/requirements-nodeps.txt\"", "-e \"$SOURCE/kit\"",
                   "autograde.gradescope prepare"):
        assert needed in script
    assert "git clone" not in script


def test_prepare_keeps_the_instructor_files_root_only(autograder):
    root = autograder["root"]
    assert not (root / "source" / "instructor").exists()
    assert stat.S_IMODE((root / "private").stat().st_mode) == 0o700
    assert (root / "private" / "instructor" / "lab3.ipynb").is_file()
    assert stat.S_IMODE((root / "work").stat().st_mode) == 0o711


def validate(document: dict) -> None:
    """The fields and types Gradescope documents for results.json."""
    assert set(document) <= TOP_FIELDS, set(document) - TOP_FIELDS
    assert isinstance(document["score"], (int, float)) and isinstance(document["output"], str)
    assert document["visibility"] in gradescope.VISIBILITIES
    assert document["stdout_visibility"] in gradescope.VISIBILITIES
    assert document["output_format"] in FORMATS and isinstance(document["execution_time"], int)
    for test in document["tests"]:
        assert set(test) <= TEST_FIELDS, set(test) - TEST_FIELDS
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"]
        assert test["visibility"] in gradescope.VISIBILITIES and test["status"] in ("passed", "failed")
        assert test["output_format"] in FORMATS
    assert document["score"] == sum(test["score"] for test in document["tests"])


def test_every_run_writes_valid_results_and_nothing_to_stderr(autograder):
    assert autograder["prepared"].stderr == ""
    for name, run in autograder["runs"].items():
        assert run["result"].returncode == 0, (name, run["result"].stdout)
        assert run["result"].stderr == "", (name, run["result"].stderr)
        validate(run["results"])
        assert [test["name"] for test in run["results"]["tests"]] == ["test_square", "test_inside_circle",
                                                                     "test_picture_bytes"]


def test_points_equal_local_grading(autograder):
    rows = autograder["class"]["rows"]
    for name in ("perfect", "blank", "damaged_json", "empty"):
        document, row = autograder["runs"][name]["results"], rows[name]
        assert document["score"] == float(row["score"]), name
        assert {test["name"]: test["score"] for test in document["tests"]} == \
            {grade_id: float(row[grade_id]) for grade_id in ("test_square", "test_inside_circle", "test_picture_bytes")}
    assert autograder["runs"]["perfect"]["results"]["score"] == 6.0


def test_students_read_why_they_lost_points(autograder):
    runs = autograder["runs"]
    blank = {test["name"]: test["output"] for test in runs["blank"]["results"]["tests"]}
    assert blank["test_square"].startswith("TypeError")  # `squares` is still None: a visible test, its message shown
    assert "graded Lab3 (1).ipynb (expected lab3.ipynb)" in runs["blank"]["results"]["output"]
    assert "invalid notebook" in runs["damaged_json"]["results"]["output"]
    assert all("not graded: invalid notebook" in test["output"] for test in runs["damaged_json"]["results"]["tests"])
    assert "no notebook" in runs["empty"]["results"]["output"]
    assert "not sandboxed" in runs["attack"]["results"]["output"]
    assert "not sandboxed" not in runs["perfect"]["results"]["output"]
    if bwrap_binary() is not None:  # the mode that graded, as the student's results say it
        assert "sandbox: bubblewrap" in runs["perfect"]["results"]["output"]


def test_hidden_tests_stay_hidden(autograder):
    attack = {test["name"]: test for test in autograder["runs"]["attack"]["results"]["tests"]}
    assert attack["test_square"]["output"] == gradescope.HIDDEN_FAILED and attack["test_square"]["score"] == 0
    assert attack["test_inside_circle"]["score"] == 3 and attack["test_picture_bytes"]["score"] == 1
    for name, run in autograder["runs"].items():
        assert not [secret for secret in SECRETS if secret in run["text"]], name


def test_the_run_user_can_neither_read_the_instructors_files_nor_write_the_results(autograder):
    run = autograder["runs"]["attack"]
    assert run["results"]["score"] == 4.0  # the grader's results, not the attack's
    pages = list(run["grading"].glob("run/work/*/feedback.html"))  # the box itself is gone once graded
    assert len(pages) == 1 and not list(run["grading"].glob("run/work/*/box"))
    reports = re.findall(r"ATTACK-REPORT (\{[^\n<]*\})", html.unescape(pages[0].read_text(encoding="utf-8")))
    assert len(reports) == 1, "the attack cell did not run"
    found = json.loads(reports[0])
    assert found == {"read the instructor notebook": "PermissionError", "list private": "PermissionError",
                     "list the generated assignment": "PermissionError", "list work": "PermissionError",
                     "write results.json": "PermissionError", "write beside results.json": "PermissionError",
                     "rename results": "PermissionError"}, found
    assert not (autograder["root"] / "results.old").exists()
    assert sorted(p.name for p in (autograder["root"] / "results").iterdir()) == ["results.json"]


def test_no_process_of_the_run_user_outlives_the_grading(autograder):
    for name, run in autograder["runs"].items():
        assert run["leftover"] == [], name
    assert not processes_with(autograder["marker"])
    assert "leftover processes killed" in autograder["runs"]["attack"]["result"].stdout
    assert f"run as {autograder['uid']}:{autograder['uid']}" in autograder["runs"]["perfect"]["result"].stdout


def test_a_missing_autograder_setup_still_gives_a_result(tmp_path):
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    document = gradescope.run(gradescope.Layout(root))  # no settings.json, no notebook: the grader fails
    validate(document)
    assert document["score"] == 0 and "autograder failed" in document["output"]
    assert json.loads((root / "results" / "results.json").read_text()) == document



def test_a_container_whose_bwrap_cannot_mount_proc_builds_and_grades_with_its_proc(autograder):
    """As in Docker's default containers, bubblewrap cannot mount a /proc of its own (a wrapper
    that refuses ``--proc`` plays it): ``prepare`` (setup.sh) still succeeds, choosing bubblewrap
    with the container's /proc, and the student's results say that this mode graded them."""
    real = bwrap_binary()
    if real is None:
        pytest.skip("bubblewrap cannot run here")
    root, uid = autograder["root"], autograder["uid"]
    folder = Path(tempfile.mkdtemp(prefix="bwrap-wrapper-"))  # the run user must reach it
    try:
        folder.chmod(0o755)
        wrapper = folder / "bwrap"
        wrapper.write_text("#!/bin/sh\nfor argument in \"$@\"; do\n  if [ \"$argument\" = --proc ]; then\n"
                           "    echo \"bwrap: Can't mount proc on /newroot/proc: Operation not permitted\" >&2\n"
                           f"    exit 1\n  fi\ndone\nexec {real} \"$@\"\n")
        wrapper.chmod(0o755)
        environment = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADE_RUN_AS": f"{uid}:{uid}",
                       "AUTOGRADE_PYTHON": sys.executable, "LAB3_DATA_DIR": str(root / "data"),
                       "AUTOGRADE_BWRAP": str(wrapper)}
        prefix = open_python_for()
        prepared = subprocess.run([*prefix, sys.executable, "-m", "autograde.gradescope", "prepare", "--root",
                                   str(root)], env=environment, capture_output=True, text=True, timeout=300)
        assert prepared.returncode == 0 and prepared.stderr == "", prepared.stdout + prepared.stderr
        assert "sandbox: bubblewrap with the host's /proc" in prepared.stdout
        shutil.rmtree(root / "submission", ignore_errors=True)
        source_nb, release_nb = autograder["class"]["source_nb"], autograder["class"]["release_nb"]
        crafted.write_submission(crafted.perfect(source_nb, release_nb), root / "submission" / "lab3.ipynb")
        graded = subprocess.run([*prefix, str(root / "source" / "run_autograder")], env=environment,
                                capture_output=True, text=True, timeout=300)
        assert graded.returncode == 0 and graded.stderr == "", graded.stderr
        document = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
        validate(document)
        assert document["score"] == 6.0, document["output"]
        assert "sandbox: bubblewrap with the host's /proc" in document["output"]
        assert processes.user_processes(uid) == []
    finally:
        shutil.rmtree(folder, ignore_errors=True)
