"""The run phase's determinism, its sandbox mode chosen by trying, and its disk and process limits.

Real runs on the fixture notebook: a submission that trains a small network graded twice (with
one worker, then two) must train the same network (the fingerprint it prints) and get the same
row; a bwrap that cannot mount /proc (a wrapper that refuses ``--proc``, as bubblewrap does in
Docker's default containers) makes the grader fall back to binding the host's /proc, and one
that never runs to grading without bubblewrap; a run that writes past its disk quota or file
limit is stopped or refused, in the mount mode (root) and the watch mode. The cgroup v2 code is
tried on a folder laid out like a cgroup2 hierarchy (this machine has cgroup v1 controllers only).
"""
from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

import labseed
from autograde import crafted
from autograde.jobs import Limits, MiB
from autograde.run import phase, sandbox
from grading_runs import autograde, instructor_folder, read_rows

# Trains a small network on random data with a shuffled loader, from the generators the grader
# seeds; prints its fingerprint and the first draws. `squares` is right only when the fingerprint
# is even, so a run that trained another network would also (half the time) score otherwise.
TRAIN = """\
import hashlib, random
import numpy as np
import torch
draws = [random.random(), float(np.random.rand()), float(torch.rand(1))]
net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
data = torch.rand(256, 2)
target = (data.sum(dim=1, keepdim=True) > 1).float()
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data, target), batch_size=32, shuffle=True)
for epoch in range(5):
    for x, y in loader:
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
fingerprint = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.parameters())).hexdigest()[:16]
print(f"FINGERPRINT {fingerprint} DRAWS {draws!r} THREADS {torch.get_num_threads()} "
      f"DETERMINISTIC {torch.are_deterministic_algorithms_enabled()}")
squares = [x * x for x in range(10)] if int(fingerprint, 16) % 2 == 0 else [0] * 10
"""


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The fixture released, with (source, released) notebooks."""
    root = tmp_path_factory.mktemp("course")
    source = instructor_folder(root)
    done = autograde("release", "--out", root / "release", "--source", source, cwd=root)
    assert done.returncode == 0, done.stderr
    return {"root": root, "source": source, "source_nb": nbformat.read(source, as_version=4),
            "release_nb": nbformat.read(root / "release" / "lab3.ipynb", as_version=4)}


def fingerprints(feedback: Path) -> list[str]:
    """The FINGERPRINT lines a feedback page shows (the executed notebook's output)."""
    return re.findall(r"FINGERPRINT [0-9a-f]{16} [^\n<]*", html.unescape(feedback.read_text(encoding="utf-8")))


def home_fingerprint() -> str:
    """The TRAIN cell run the way a student runs it at home: a plain Python, seeded by the same
    helper the notebook's set-up cell calls."""
    code = "import labseed\nlabseed.seed_everything()\n" + TRAIN
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout.strip()


def test_seed_everything_repeats_the_draws_and_prints_nothing():
    code = textwrap.dedent("""
        import random
        import numpy as np, torch
        import labseed
        from circle import gen_data
        def draw():
            labseed.seed_everything()
            return (random.random(), float(np.random.rand()), float(torch.rand(1)), gen_data(3).tolist(),
                    torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
        first, second = draw(), draw()
        assert first == second, (first, second)
        assert first[4:] == (1, True), first
        print("same")
    """)
    # what the grader's kernel does: numpy and torch seeded as they are imported, the same draws
    lazily = textwrap.dedent("""
        import random, sys
        import labseed
        labseed.seed_on_import()
        assert "torch" not in sys.modules and "numpy" not in sys.modules
        first = random.random()
        import numpy as np, torch
        from circle import gen_data
        print((first, float(np.random.rand()), float(torch.rand(1)), gen_data(3).tolist(),
               torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()))
        labseed.seed_everything()
        print((random.random(), float(np.random.rand()), float(torch.rand(1)), gen_data(3).tolist(),
               torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()))
    """)
    both = subprocess.run([sys.executable, "-c", lazily], capture_output=True, text=True, timeout=300)
    assert both.returncode == 0 and both.stderr == "", both.stderr
    on_import, everything = both.stdout.strip().splitlines()
    assert on_import == everything
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "same", ""), done.stderr
    with pytest.raises(ValueError, match="seed must be an int"):
        labseed.seed_everything(-1)


def test_the_released_notebook_seeds_as_the_grader_does():
    """The set-up cell of lab3.ipynb calls the helper the grader's kernel calls: run its set-up
    cells, then a draw, and the draw is the one right after the grader's seeding."""
    source = nbformat.read(Path(__file__).resolve().parents[1] / "lab3.ipynb", as_version=4)
    setup = [cell.source for cell in source.cells if cell.cell_type == "code"][:2]
    assert "seed_everything()" in setup[1] and "from labseed import seed_everything" in setup[1]
    plain = "\n".join(line for cell in setup for line in cell.splitlines() if not line.startswith("%"))
    draw = "\nimport random, numpy\nprint(random.random(), numpy.random.rand(), float(torch.rand(1)))\n"
    home = subprocess.run([sys.executable, "-c", plain + draw], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    grader = subprocess.run([sys.executable, "-c", "import labseed, torch\nlabseed.seed_everything()" + draw],
                            capture_output=True, text=True, timeout=300)
    assert home.returncode == 0 and home.stderr == "", home.stderr
    assert home.stdout.strip().splitlines()[-1] == grader.stdout.strip()


def test_a_submission_graded_twice_trains_the_same_network_whatever_the_workers(course, tmp_path):
    notebook = crafted.with_cell_after(crafted.perfect(course["source_nb"], course["release_nb"]), "square", TRAIN)
    for name in ("ann", "bob"):  # the same notebook twice: two runs side by side with --workers 2
        crafted.write_submission(notebook, tmp_path / "subs" / f"{name}.ipynb")
    runs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out-{workers}"
        done = autograde("grade", tmp_path / "subs", "--out", out, "--source", course["source"], "--workers", workers,
                         "--timeout", "60", "--cache", tmp_path / "cache", cwd=tmp_path)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        runs[workers] = (read_rows(out / "grades.csv"), {name: fingerprints(out / "feedback" / f"{name}.html")
                                                         for name in ("ann", "bob")})
    (rows_one, prints_one), (rows_two, prints_two) = runs["1"], runs["2"]
    assert rows_one == rows_two
    assert rows_one["ann"] == {**rows_one["bob"], "student_id": "ann"}
    assert prints_one == prints_two and prints_one["ann"] == prints_one["bob"] and len(prints_one["ann"]) == 1
    assert "THREADS 1 DETERMINISTIC True" in prints_one["ann"][0]
    assert prints_one["ann"][0] == home_fingerprint()  # the same network as at home, on this machine


# -- the sandbox mode, chosen by trying ---------------------------------------------------------

REFUSES_PROC = """#!/bin/sh
# bubblewrap as it behaves in a container whose /proc has masked paths (Docker's default)
for argument in "$@"; do
  if [ "$argument" = "--proc" ]; then
    echo "bwrap: Can't mount proc on /newroot/proc: Operation not permitted" >&2
    exit 1
  fi
done
exec REAL "$@"
"""

NEVER_RUNS = """#!/bin/sh
echo "bwrap: No permissions to create new namespace" >&2
exit 1
"""


def wrapper(folder: Path, text: str) -> Path:
    """A bwrap program on disk, written from `text` (REAL: the real bwrap)."""
    real = sandbox.bwrap_binary()
    path = folder / "bwrap"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("REAL", str(real)))
    path.chmod(0o755)
    return path


needs_bwrap = pytest.mark.skipif(sandbox.bwrap_binary() is None, reason="bubblewrap cannot run here")


@needs_bwrap
def test_a_bwrap_that_cannot_mount_proc_grades_with_the_hosts_proc(course, tmp_path):
    fake = wrapper(tmp_path / "bin", REFUSES_PROC)
    for kind in ("perfect", "blank"):
        crafted.write_submission(crafted.MAKERS[kind](course["source_nb"], course["release_nb"]),
                                 tmp_path / "subs" / f"{kind}.ipynb")
    done = subprocess.run([sys.executable, "-m", "autograde", "grade", str(tmp_path / "subs"), "--out",
                           str(tmp_path / "out"), "--source", str(course["source"]), "--cache", str(tmp_path / "cache"),
                           "--workers", "2", "--timeout", "30"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, sandbox.BWRAP_VARIABLE: str(fake)})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    rows = read_rows(tmp_path / "out" / "grades.csv")
    assert (float(rows["perfect"]["score"]), float(rows["blank"]["score"])) == (6.0, 0.0), rows
    for row in rows.values():
        assert "sandbox: bubblewrap with the host's /proc" in row["notes"] and "not sandboxed" not in row["notes"]


@needs_bwrap
def test_the_mode_is_the_best_one_that_starts_python(tmp_path, monkeypatch):
    limits = Limits(cell_timeout=30, budget_seconds=60)
    assert phase.preflight(tmp_path / "a", limits, None).name == "bwrap"
    monkeypatch.setenv(sandbox.BWRAP_VARIABLE, str(wrapper(tmp_path / "proc", REFUSES_PROC)))
    assert phase.preflight(tmp_path / "b", limits, None).name == "bwrap-hostproc"
    monkeypatch.setenv(sandbox.BWRAP_VARIABLE, str(wrapper(tmp_path / "never", NEVER_RUNS)))
    mode = phase.preflight(tmp_path / "c", limits, None)
    assert mode.name == "none" and mode.note.startswith("not sandboxed: bubblewrap failed: bwrap: No permissions")
    monkeypatch.setenv(sandbox.SANDBOX_VARIABLE, "bwrap")  # bubblewrap required: no mode left
    with pytest.raises(RuntimeError, match="cannot start Python .* in any sandbox mode .*No permissions"):
        phase.preflight(tmp_path / "d", limits, None)
    monkeypatch.setenv(sandbox.SANDBOX_VARIABLE, "sometimes")
    with pytest.raises(RuntimeError, match="AUTOGRADE_SANDBOX='sometimes'"):
        phase.preflight(tmp_path / "e", limits, None)


# -- disk quota and file count --------------------------------------------------------------------

FILL_DISK = """\
import os
written = 0
try:
    with open("big.bin", "wb") as handle:
        for _ in range(200):
            handle.write(os.urandom(1 << 20))
            handle.flush()
            written += 1
except OSError as error:
    print("stopped at", written, "MiB:", error.strerror)
import time
time.sleep(1.5)  # the grader looks at the box every half second
os.remove("big.bin")  # room again for the exports
"""

MANY_FILES = """\
import os, tempfile
made = 0
try:
    for index in range(5000):
        open(os.path.join(tempfile.gettempdir(), f"f{index}"), "w").close()
        made += 1
except OSError as error:
    print("stopped at", made, "files:", error.strerror)
"""


@pytest.mark.parametrize("mode", ["tmpfs", "watch", "watch-unsandboxed"])
def test_a_run_past_its_disk_quota_or_file_limit_is_stopped_and_its_box_removed(course, tmp_path, monkeypatch, mode):
    """tmpfs: the grader may mount (root); watch: it may not; watch-unsandboxed: nor is there
    bubblewrap (a laptop without user namespaces: the run's /tmp is its box's tmp/ all the same)."""
    from autograde.batch import Batch, grade_folder

    if mode == "tmpfs" and os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for each box needs root")
    if mode.startswith("watch"):
        monkeypatch.setenv(sandbox.QUOTA_VARIABLE, "watch")
    if mode == "watch-unsandboxed":
        monkeypatch.setenv(sandbox.SANDBOX_VARIABLE, "none")
    perfect = crafted.perfect(course["source_nb"], course["release_nb"])
    subs = tmp_path / "subs"
    crafted.write_submission(perfect, subs / "honest.ipynb")
    crafted.write_submission(crafted.with_cell_after(perfect, "square", FILL_DISK), subs / "filler.ipynb")
    crafted.write_submission(crafted.with_cell_after(perfect, "square", MANY_FILES), subs / "files.ipynb")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    boxes_left = {}

    def done(outcome) -> None:  # as each submission finishes: its box is gone already
        boxes_left[outcome.student_id] = (outcome.log.parent / "box").exists()

    limits = Limits(cell_timeout=60, budget_seconds=120, disk_bytes=32 * MiB, max_files=600)
    _, outcomes = grade_folder(subs, Batch(course["source"], limits, tmp_path / "cache", workers=2), run_dir,
                               on_done=done)
    rows = {outcome.student_id: outcome for outcome in outcomes}
    assert (rows["honest"].status, rows["honest"].score) == ("ok", 6.0), rows["honest"].notes
    assert not [note for note in rows["honest"].notes if "disk" in note]
    assert rows["filler"].status == rows["files"].status == "disk limit reached", (rows["filler"], rows["files"])
    assert any(note.startswith("disk limit reached (32 MiB per run)") for note in rows["filler"].notes)
    assert any(note.startswith("disk limit reached (600 files per run)") for note in rows["files"].notes)
    assert boxes_left == {"honest": False, "filler": False, "files": False}
    mounts = Path("/proc/self/mounts").read_text()
    assert str(run_dir) not in mounts
    if mode == "tmpfs":  # the kernel refused the writes; the run went on to its end
        assert rows["filler"].score == 6.0, rows["filler"].notes
    else:  # the watcher stopped the run
        assert any(note.endswith("(the run was stopped)") for note in rows["filler"].notes)


# -- cgroup v2 ----------------------------------------------------------------------------------

def cgroup2_tree(root: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    """A folder laid out like the root of a cgroup v2 hierarchy (the files the code reads)."""
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("memory pids\n")
    (root / "cgroup.procs").write_text("")
    return root


def test_cgroup_v2_groups_are_laid_out_and_closed_as_the_kernel_expects(tmp_path):
    root = cgroup2_tree(tmp_path / "cgroup")
    group = sandbox.Cgroup.create("run-1", 512 * MiB, 64, root=root)
    assert isinstance(group, sandbox.Cgroup2) and group.version == 2
    parent = root / sandbox.Cgroup2.PARENT
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids"
    folder = parent / "run-1"
    assert ((folder / "memory.max").read_text(), (folder / "memory.swap.max").read_text(),
            (folder / "pids.max").read_text()) == (str(512 * MiB), "0", "64")
    # the wrapped command moves itself into the group before it runs
    process = subprocess.Popen(group.wrap(["/bin/sh", "-c", "exec sleep 60"]), start_new_session=True)
    procs, deadline = folder / "cgroup.procs", time.monotonic() + 30
    while not (procs.exists() and procs.read_text().strip() == str(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (folder / "cgroup.procs").read_text().strip() == str(process.pid)
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
    group.close()  # kills what cgroup.procs lists, reads memory.events
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert group.hit_memory_limit
    # a second group reuses the parent, whose controllers are already enabled
    second = sandbox.Cgroup.create("run-2", MiB, 8, root=root)
    assert isinstance(second, sandbox.Cgroup2) and not (parent / "run-2" / "memory.events").exists()
    second.close()
    assert not second.hit_memory_limit


def test_no_cgroup_where_v2_lacks_a_controller_or_cannot_be_written(tmp_path):
    assert sandbox.Cgroup.create("run", MiB, 8, root=cgroup2_tree(tmp_path / "a", "cpu io pids")) is None
    assert sandbox.Cgroup.create("run", MiB, 8, root=tmp_path / "nothing") is None
    closed = cgroup2_tree(tmp_path / "closed")
    (closed / sandbox.Cgroup2.PARENT).mkdir()
    (closed / sandbox.Cgroup2.PARENT / "run").write_text("a file where the group would go")
    assert sandbox.Cgroup.create("run", MiB, 8, root=closed) is None


def test_this_machine_uses_cgroup_v1_where_it_is_mounted():
    group = sandbox.Cgroup.create(f"autograde-test-{os.getpid()}", 256 * MiB, 16)
    if group is None:
        pytest.skip("no writable cgroup controller here")
    try:
        assert group.version == (1 if (sandbox.CGROUP_ROOT / "memory").is_dir() else 2)
    finally:
        group.close()
