"""The grading pipeline's parts, one at a time: finding submissions, checking notebooks,
crafting submissions, releasing, and the sandbox the kernel runs in."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from autograde import crafted
from autograde.collect import find_submissions
from autograde.course import release
from autograde.notebook_checks import InvalidSubmission, find_tampering, read_submission
from autograde.run.confine import landlock_abi

FIXTURE = Path(__file__).parent / "fixtures" / "lab3.ipynb"


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    """(source, released) notebooks of the fixture, released by nbgrader."""
    folder = tmp_path_factory.mktemp("release")
    released = release(FIXTURE, folder / "out", folder / "work")
    return nbformat.read(FIXTURE, as_version=4), nbformat.read(released, as_version=4), folder / "out"


def test_release_strips_solutions_and_hidden_tests_and_copies_assets(notebooks):
    _, released, folder = notebooks
    text = (folder / "lab3.ipynb").read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "64, 81" not in text
    assert "raise NotImplementedError" in text
    assert (folder / "assets" / "dot.png").read_bytes().startswith(b"\x89PNG")


def test_submissions_are_found_as_files_and_folders(tmp_path):
    for path in ("alice.ipynb", "bob/lab3.ipynb", "carol/Lab3.ipynb", "dave/x.ipynb", "dave/y.ipynb",
                 "erin/.ipynb_checkpoints/lab3-checkpoint.ipynb", "frank.ipynb", "frank/lab3.ipynb",
                 ".hidden.ipynb", "notes.txt"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    found = {s.student_id: s for s in find_submissions(tmp_path, "lab3")}
    assert sorted(found) == ["alice", "bob", "carol", "dave", "erin", "frank"]
    assert found["bob"].notebook == tmp_path / "bob" / "lab3.ipynb"
    assert found["carol"].notebook == tmp_path / "carol" / "Lab3.ipynb" and "Lab3.ipynb" in found["carol"].notes[0]
    assert found["dave"].notebook is None and found["dave"].problem.startswith("several notebooks")
    assert found["erin"].notebook is None and found["erin"].problem.startswith("no notebook")
    assert found["frank"].notebook == tmp_path / "frank" / "lab3.ipynb" and "frank.ipynb" in found["frank"].notes[0]


def test_damaged_notebook_is_rejected_with_a_reason(tmp_path, notebooks):
    _, released, _ = notebooks
    path = crafted.write_submission(crafted.damaged_json(released), tmp_path / "x.ipynb")
    with pytest.raises(InvalidSubmission, match="not a valid notebook"):
        read_submission(path)


def test_tampering_is_described_and_untouched_notebooks_are_clean(notebooks):
    source, released, _ = notebooks
    assert find_tampering(crafted.perfect(source, released), released) == []
    changes = find_tampering(crafted.tampered(source, released), released)
    assert changes == ["test_square deleted", "test_inside_circle edited", "test_picture_bytes edited"]


def test_crafted_submissions_answer_what_they_should(notebooks):
    source, released, _ = notebooks
    solutions = crafted.solution_ids(released)
    assert solutions == ["square", "inside_circle", "picture_bytes"]
    perfect = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
               for c in crafted.perfect(source, released).cells}
    assert "x * x for x" in perfect["square"] and "BEGIN SOLUTION" not in perfect["square"]
    partial = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
               for c in crafted.partial(source, released).cells}
    assert "x * x for x" in partial["square"] and "NotImplementedError" in partial["picture_bytes"]


def _confined_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    prelude = textwrap.dedent(f"""
        from pathlib import Path
        from autograde.run.confine import confine
        problems = confine([Path({str(tmp_path / 'box')!r})], memory_bytes=4096 << 20,
                           file_bytes=64 << 20, cpu_seconds=60)
        assert not problems, problems
    """)
    (tmp_path / "box").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=tmp_path / "box",
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(landlock_abi() == 0, reason="this kernel has no Landlock")
def test_sandbox_allows_writes_only_inside_its_folder(tmp_path):
    result = _confined_python("""
        Path("inside.txt").write_text("fine")
        for target in ("../outside.txt", str(Path.cwd().parent / "outside.txt")):
            try:
                open(target, "w")
            except PermissionError:
                continue
            raise SystemExit(f"wrote {target}")
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "box" / "inside.txt").exists() and not (tmp_path / "outside.txt").exists()


def test_sandbox_memory_limit_stops_a_huge_allocation_but_torch_still_runs(tmp_path):
    result = _confined_python("""
        import torch
        net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
        loss = net(torch.randn(256, 2)).sum()
        loss.backward()
        try:
            hog = bytearray(8 << 30)
        except MemoryError:
            print("stopped")
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stopped"
    assert result.stderr == ""


def test_without_bubblewrap_grading_still_works_and_says_not_sandboxed(tmp_path, notebooks):
    source, released, _ = notebooks
    for kind in ("perfect", "blank"):
        crafted.write_submission(crafted.MAKERS[kind](source, released), tmp_path / "subs" / f"{kind}.ipynb")
    result = subprocess.run([sys.executable, "-m", "autograde", "grade", str(tmp_path / "subs"), "--out",
                             str(tmp_path / "out"), "--source", str(FIXTURE), "--cache", str(tmp_path / "cache"),
                             "--workers", "2", "--timeout", "30"],
                            env={**os.environ, "AUTOGRADE_SANDBOX": "none"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    with open(tmp_path / "out" / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert (float(rows["perfect"]["score"]), float(rows["blank"]["score"])) == (6.0, 0.0), rows
    assert all("not sandboxed" in row["notes"] for row in rows.values()), rows


def test_python_module_leaves_the_working_directory_off_sys_path(tmp_path):
    """Our processes start as `python -m ...` from folders a submission can write to; a module
    there named like one we import (here `json`) must not be picked up (-P, or 3.10's bootstrap)."""
    from autograde import python_module

    (tmp_path / "json.py").write_text("raise SystemExit('the json.py of the working directory ran')\n")
    (tmp_path / "in.json").write_text('{"b": 1, "a": [2]}')
    proc = subprocess.run(python_module("json.tool") + ["--sort-keys", "--compact", "in.json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.strip() == '{"a":[2],"b":1}'


def test_preflight_starts_python_where_a_run_starts_it_and_says_what_failed(tmp_path):
    from autograde.jobs import Limits
    from autograde.run import phase

    limits = Limits(cell_timeout=30, budget_seconds=60)
    phase.preflight(tmp_path / "ok", limits, None)              # the kit's own Python starts
    with pytest.raises(RuntimeError, match="cannot start Python .*No module named 'no_such_module_here'"):
        phase.preflight(tmp_path / "bad", limits, None, modules="no_such_module_here")
    assert not (tmp_path / "ok").exists() and not (tmp_path / "bad").exists()


def test_a_grader_whose_python_the_sandbox_cannot_start_stops_before_grading(tmp_path, notebooks):
    """The grader's venv reaches its interpreter through a link into a folder the sandbox does not
    bind: every run would die at once. With bubblewrap required (``AUTOGRADE_SANDBOX=bwrap``; by
    default the grader would fall back to running without it) the batch stops first, saying why,
    and grades nobody."""
    from autograde.run.sandbox import bwrap_binary

    if bwrap_binary() is None:
        pytest.skip("bubblewrap cannot run here: without it the run uses the grader's own Python")
    source, released, _ = notebooks
    crafted.write_submission(crafted.MAKERS["perfect"](source, released), tmp_path / "subs" / "perfect.ipynb")
    (tmp_path / "hidden-bin").mkdir()
    (tmp_path / "hidden-bin" / "python3").symlink_to(os.path.realpath(sys.executable))
    subprocess.run([str(tmp_path / "hidden-bin" / "python3"), "-m", "venv", "--without-pip", str(tmp_path / "venv")],
                   check=True, timeout=120)
    site = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    Path(site, "kit.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    result = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-m", "autograde", "grade",
                             str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--source", str(FIXTURE),
                             "--cache", str(tmp_path / "cache"), "--workers", "1", "--timeout", "30"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "AUTOGRADE_SANDBOX": "bwrap",
                                 # nbgrader's alembic script is in our venv only
                                 "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the run phase cannot start Python" in result.stdout + result.stderr
    assert not (tmp_path / "out" / "grades.csv").exists()


# A kernel that finds its shell port taken, as happens when another kernel started at the same
# moment got the same free port (outside bubblewrap's own network): ipykernel exits at once.
# `FAILS` says how many starts fail that way before one starts normally.
_PORT_TAKEN_KERNEL = """
import json, socket, sys
from pathlib import Path
count = Path(sys.argv[1])
tries = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(tries))
taken = None
if tries <= FAILS:
    info = json.loads(Path(sys.argv[3]).read_text())
    taken = socket.socket()
    taken.bind((info["ip"], info["shell_port"]))
    taken.listen()
sys.argv = [sys.argv[0], "-f", sys.argv[3]]
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


_JOB = SimpleNamespace(limits=SimpleNamespace(cell_timeout=30, budget_seconds=60))  # what run_status reads


def _port_taken_client(tmp_path: Path, fails: int, notebook, monkeypatch):
    from autograde.run.execute import GuardedClient

    spec = tmp_path / "jupyter" / "kernels" / "port-taken"
    spec.mkdir(parents=True)
    (tmp_path / "kernel.py").write_text(_PORT_TAKEN_KERNEL.replace("FAILS", str(fails)))
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(tmp_path / "kernel.py"), str(tmp_path / "tries"), "-f", "{connection_file}"],
        "display_name": "port taken", "language": "python"}))
    for name, folder in (("JUPYTER_PATH", "jupyter"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                         ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_CONFIG_DIR", "config")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    return lambda: GuardedClient(notebook, kernel_name="port-taken", cell_timeout=60, startup_timeout=60,
                                 shutdown_kernel="immediate", resources={"metadata": {"path": str(tmp_path)}})


def test_a_kernel_that_finds_its_port_taken_is_started_again(tmp_path, monkeypatch):
    """The run's kernel dies before its first cell twice (its port taken): the third start runs
    the notebook, and the journal says what happened; the grader's row says it too."""
    from autograde.run import runner
    from autograde.run.sandbox import RunReport
    from autograde.worker import run_status

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    events = runner.execute(_port_taken_client(tmp_path, 2, notebook, monkeypatch), time.monotonic() + 300)
    assert [e["event"] for e in events] == ["kernel_start_failed", "kernel_start_failed"]
    assert "Kernel died before replying" in events[0]["message"]
    assert (tmp_path / "tries").read_text() == "3"
    assert notebook.cells[0].outputs[0]["text"] == "42\n"
    status, notes = run_status(_JOB, events + [{"event": "finished", "cell": -1}], RunReport(1.0, False, True))
    assert status == "ok" and notes[0].startswith("the kernel started on try 3 (before: "), notes


def test_a_kernel_that_never_starts_makes_the_row_an_error_that_says_why(tmp_path, monkeypatch):
    from autograde.run import runner
    from autograde.run.sandbox import RunReport
    from autograde.worker import run_status

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    events = runner.execute(_port_taken_client(tmp_path, 5, notebook, monkeypatch), time.monotonic() + 300, starts=2)
    assert [e["event"] for e in events] == ["kernel_start_failed", "kernel_start_failed", "error"]
    assert events[-1]["message"].startswith("the kernel did not start: ")
    assert notebook.cells[0].outputs == [] and (tmp_path / "tries").read_text() == "2"
    status, notes = run_status(_JOB, events + [{"event": "finished", "cell": -1}], RunReport(1.0, False, True))
    assert status == "error" and notes == [f"the run failed: {events[-1]['message']}"], notes
