"""Grade on Gradescope: the autograder zip (:func:`build_zip`) and what runs in Gradescope's
containers (``python -m autograde.gradescope prepare|run [--root /autograder]``).

Gradescope builds one image per assignment from the zip: it unpacks the zip into
``/autograder/source`` and runs ``setup.sh`` there, as root, with network. For each submission it
then starts a fresh container of that image, puts the student's files in
``/autograder/submission/``, runs ``/autograder/run_autograder`` as root and shows the student
``/autograder/results/results.json``.

The layout (:class:`Layout`; the root is ``/autograder`` unless ``--root`` or ``AUTOGRADER_ROOT``
says otherwise, as in the tests)::

    source/       the zip: setup.sh, run_autograder, settings.json (source notebook name, limits,
                  run user), kit/ (the kit's packages and requirements, installed into venv/),
                  instructor/ (moved into private/ by `prepare`)
    private/      root's alone (0700): instructor/ (the source notebook, with its solutions and
                  hidden tests, and its assets) and cache/ (the generated assignment, fonts)
    data/         MNIST, readable by all (the run phase reads it)
    venv/         Python with the kit (setup.sh)
    work/         0711: one folder per grading; in it only the run's box is the run user's
    submission/   what the student uploaded (Gradescope)
    results/      results.json, root's (0755): the run user cannot write there

Grading is the local grading (:func:`autograde.batch.grade_folder`, the same run and check phases,
the same limits, chosen when the zip is built), with one more wall: the run phase executes as
the unprivileged user ``setup.sh`` created (``run_as`` in settings.json, or ``AUTOGRADE_RUN_AS``),
in the best sandbox mode that starts Python there, found by trying each as that user (bubblewrap,
bubblewrap with the container's ``/proc``, or none: two phases apart by user id, Landlock and
rlimits, and the results say "not sandboxed"); the results name the mode, and ``setup.sh``
fails only when no mode can start Python and the kit. That user can
read neither private/ nor the staged submission, and cannot write results/. ``results.json`` is
written by root once no process of that user is left, from the check phase's results only.

One test per graded cell, always visible with its points; a failure in a visible part shows its
assertion message, a failure in a hidden part (``### BEGIN HIDDEN TESTS``) only says so, so no
hidden test's code, message or reference value reaches a student.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograde import report
from autograde.check import source as check_source
from autograde.course import SUPPORT_FOLDERS, CourseError, cached_course, check_source as read_source
from autograde.jobs import Limits, Outcome
from autograde.notebook_checks import MAX_NOTEBOOK_BYTES
from autograde.run.phase import preflight
from autograde.run.sandbox import RunAs, parse_user

SETTINGS = "settings.json"
KIT_FILES = ("pyproject.toml", "requirements.txt", "requirements-nodeps.txt")
KIT_PACKAGES = ("verifier", "circle", "mnist_tools", "labseed", "autograde")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every entry's timestamp: the same kit gives the same bytes
RUN_AS_VARIABLE = "AUTOGRADE_RUN_AS"
STUDENT = "submission"  # the one student id in a container
MAX_NOTEBOOKS = 50  # .ipynb files taken from one upload
MAX_OUTPUT = 2_000  # characters of one test's output
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_FAILED = "failed a hidden test (hidden tests do not show their message)"
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root and with network, when it builds the autograder's image
# (Ubuntu; 22.04 has Python 3.10). It installs Python, the kit's pinned dependencies and the kit
# (shipped in kit/), creates the unprivileged user the run phase executes as, and lays out
# /autograder (python -m autograde.gradescope prepare: private files, the generated assignment,
# MNIST). Nothing is cloned: all the kit needs is in this zip or on the package registries.
set -euo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${AUTOGRADER_ROOT:-/autograder}"
# PyPI's Linux torch wheels pull in the CUDA libraries (gigabytes) that grading never uses; the
# CPU-only build of the same version comes from PyTorch's own index. TORCH_INDEX_URL= (empty)
# installs PyPI's build instead.
TORCH_INDEX_URL="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip ca-certificates >/dev/null

RUN_AS="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run_as"])' "$SOURCE/settings.json")"
case "$RUN_AS" in
  [0-9]*) ;;  # a numeric UID[:GID] needs no account
  *) id -u "$RUN_AS" >/dev/null 2>&1 \
       || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_AS" ;;
esac

python3 -m venv "$ROOT/venv"
pip_install() { "$ROOT/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$@"; }
pip_install --upgrade pip setuptools wheel
pip_install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r "$SOURCE/kit/requirements.txt"
pip_install --no-deps -r "$SOURCE/kit/requirements-nodeps.txt"
# The requirements files decide which Python versions work; the kit itself is plain Python.
pip_install --no-deps --no-build-isolation --ignore-requires-python -e "$SOURCE/kit"
chmod -R a+rX "$ROOT/venv" "$SOURCE/kit"

"$ROOT/venv/bin/python" -m autograde.gradescope prepare --root "$ROOT"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for each submission, as root, in a fresh container of the image setup.sh
# built. It grades /autograder/submission/ and writes /autograder/results/results.json.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADE_PYTHON:-$ROOT/venv/bin/python}"
export LAB3_DATA_DIR="${LAB3_DATA_DIR:-$ROOT/data}" MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1
cd "$ROOT" || exit 1
"$PYTHON" -m autograde.gradescope run --root "$ROOT"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then  # Python itself failed: a result all the same
  mkdir -p "$ROOT/results"
  printf '{"score": 0, "output": "The autograder could not run (exit status %s). Your course staff can see why in its log.", "tests": []}\n' \
    "$status" >"$ROOT/results/results.json"
fi
exit "$status"
"""


@dataclass(frozen=True)
class Layout:
    """The folders under the autograder's root (see the module docstring)."""

    root: Path

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def private(self) -> Path:
        return self.root / "private"

    @property
    def instructor(self) -> Path:
        return self.private / "instructor"

    @property
    def cache(self) -> Path:
        return self.private / "cache"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def submission(self) -> Path:
        return self.root / "submission"

    @property
    def results(self) -> Path:
        return self.root / "results"


# -- the zip ------------------------------------------------------------------------------------

def _kit_root() -> Path:
    return Path(__file__).resolve().parents[1]


def _shipped(folder: Path) -> list[Path]:
    """The files under `folder` worth shipping: no caches, no hidden files."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".pyc"
                  and not any(part.startswith((".", "__pycache__")) for part in p.relative_to(folder).parts))


def settings_for(source: Path, limits: Limits, run_as: str) -> dict:
    return {"source": source.name, "run_as": run_as,
            "limits": {"cell_timeout": limits.cell_timeout, "budget_seconds": limits.budget_seconds,
                       "memory_bytes": limits.memory_bytes, "disk_bytes": limits.disk_bytes,
                       "max_files": limits.max_files}}


def zip_entries(source: Path, limits: Limits, run_as: str) -> list[tuple[str, bytes, int]]:
    """(name, bytes, mode) of every entry of the autograder zip, sorted by name."""
    entries = [("setup.sh", SETUP_SH.encode(), 0o755), ("run_autograder", RUN_AUTOGRADER.encode(), 0o755),
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


# -- inside the container -----------------------------------------------------------------------

def read_settings(layout: Layout) -> dict:
    return json.loads((layout.source / SETTINGS).read_text(encoding="utf-8"))


def _data_folder(layout: Layout) -> Path:
    return Path(os.environ.get("LAB3_DATA_DIR") or layout.data)


def run_user(settings: dict) -> RunAs | None:
    """The run phase's user: ``AUTOGRADE_RUN_AS`` or settings.json's; None when this process is
    not root (it cannot become anyone else; then nothing is kept from the run phase by user)."""
    if os.geteuid() != 0:
        return None
    return parse_user(os.environ.get(RUN_AS_VARIABLE) or settings["run_as"])


def limits_of(settings: dict) -> Limits:
    """The run's limits from settings.json (a zip built before the disk limits existed gets the
    defaults)."""
    given = settings["limits"]
    return Limits(cell_timeout=int(given["cell_timeout"]), budget_seconds=int(given["budget_seconds"]),
                  memory_bytes=int(given["memory_bytes"]), disk_bytes=int(given.get("disk_bytes", Limits.disk_bytes)),
                  max_files=int(given.get("max_files", Limits.max_files)))


def _open_to_all(folder: Path) -> None:
    for directory, _, files in os.walk(folder):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)


def prepare(layout: Layout) -> None:
    """Lay out `layout` once, at image build time: the instructor's files into private/ (root's
    alone), the generated assignment and matplotlib's fonts into its cache, MNIST into data/."""
    from autograde.batch import prepare_matplotlib

    settings = read_settings(layout)
    layout.private.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.private, 0o700)
    shipped = layout.source / "instructor"
    if shipped.is_dir():
        shutil.rmtree(layout.instructor, ignore_errors=True)
        shutil.move(str(shipped), str(layout.instructor))
    for directory, folders, files in os.walk(layout.private):
        for entry in [directory, *(os.path.join(directory, name) for name in folders + files)]:
            os.chmod(entry, os.lstat(entry).st_mode & 0o700)
    source = layout.instructor / settings["source"]
    read_source(source)
    cached_course(source, layout.cache)
    prepare_matplotlib(layout.cache / "matplotlib")
    data = _data_folder(layout)
    try:
        from mnist_tools.provision import MNISTUnavailableError, provision_mnist

        provision_mnist(data, download=False)
        _open_to_all(data)
        print(f"MNIST: {data}")
    except (ImportError, MNISTUnavailableError) as error:
        print(f"MNIST is not available ({error}); a notebook that needs it will fail")
    layout.work.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.work, 0o711)
    user = run_user(settings)
    print("not root: the run phase will run as this user" if user is None
          else f"the run phase will run as {user.name} ({user.uid}:{user.gid})")
    try:  # what a run needs starts where a run starts, now rather than at the first submission; the
        # build fails only when no sandbox mode can start it (each grading tries the modes again)
        mode = preflight(layout.work / "preflight", limits_of(settings), data if data.is_dir() else None, user,
                         modules="autograde.run.runner, torch, verifier")
    except (RuntimeError, OSError, ValueError) as error:
        raise CourseError(str(error)) from None
    print(f"checked: Python, torch and the kit start in the run phase's sandbox; {mode.note}")
    print(f"ready: {source.name}, limits {settings['limits']}")


def stage(upload: Path, target: Path) -> int:
    """Copy the regular ``.ipynb`` files of `upload` (never following a link) into `target`,
    keeping their relative paths; returns how many. A notebook larger than what grading accepts
    is cut one byte past the limit (grading then says it is too large)."""
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    if not upload.is_dir() or upload.is_symlink():
        return 0
    for directory, folders, files in os.walk(upload):
        folders.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if not name.endswith(".ipynb") or not stat.S_ISREG(os.lstat(path).st_mode) or copied >= MAX_NOTEBOOKS:
                continue
            destination = target / path.relative_to(upload)
            destination.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(descriptor, "rb") as handle:
                destination.write_bytes(handle.read(MAX_NOTEBOOK_BYTES + 1))
            copied += 1
    return copied


def hidden_lines(test_source: str) -> set[int]:
    """The lines (from 1) of a test cell between its hidden-test markers, markers included."""
    hidden, inside = set(), False
    for number, line in enumerate(test_source.splitlines(), start=1):
        if HIDDEN_BEGIN in line:
            inside = True
        if inside:
            hidden.add(number)
        if HIDDEN_END in line:
            inside = False
    return hidden


def _cut(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + " [...]"


def test_output(cell: check_source.TestCell, result: dict | None, outcome: Outcome) -> str:
    """What a student reads under one test: never a hidden part's message."""
    if result is None:
        reason = outcome.notes[0] if outcome.notes else ""
        return _cut(f"not graded: {outcome.status}" + (f" ({reason})" if reason else ""))
    if result["passed"]:
        text = "passed"
    elif set(result.get("lines") or []) & hidden_lines(cell.source):
        text = HIDDEN_FAILED
    else:
        text = result["message"] or "failed"
    return _cut("\n".join([text, *result.get("notes", [])]))


def results_document(outcome: Outcome, tests: list[check_source.TestCell], seconds: float) -> dict:
    """Gradescope's results.json for one graded submission."""
    results = {result["grade_id"]: result for result in outcome.results}
    entries = [{"name": cell.grade_id, "score": float(outcome.cells.get(cell.grade_id, 0.0)),
                "max_score": cell.points,
                "status": "passed" if results.get(cell.grade_id, {}).get("passed") else "failed",
                "output": test_output(cell, results.get(cell.grade_id), outcome),
                "output_format": "text", "visibility": "visible"} for cell in tests]
    summary = f"Score: {outcome.score:g} / {outcome.max_score:g} ({outcome.status})"
    return {"score": float(outcome.score), "output": _cut("\n".join([summary, *outcome.notes])),
            "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden",
            "execution_time": round(seconds), "tests": entries}


def failure_document(tests: list[check_source.TestCell], seconds: float) -> dict:
    """results.json when the autograder itself failed: no points, a clear message."""
    message = "The autograder failed while grading this submission; your course staff can see why in its log."
    return {"score": 0.0, "output": message, "output_format": "text", "visibility": "visible",
            "stdout_visibility": "hidden", "execution_time": round(seconds),
            "tests": [{"name": cell.grade_id, "score": 0.0, "max_score": cell.points, "status": "failed",
                       "output": "not graded: autograder error", "output_format": "text", "visibility": "visible"}
                      for cell in tests]}


def write_results(layout: Layout, document: dict) -> Path:
    """results/results.json, written whole (beside it, then renamed)."""
    partial = layout.results / ".results.json.partial"
    partial.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    os.chmod(partial, 0o644)
    os.replace(partial, layout.results / "results.json")
    return layout.results / "results.json"


def _close_results(layout: Layout) -> None:
    """results/ exists, is root's and only root's to write, and holds no earlier results.json."""
    layout.results.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(layout.results, 0, 0)
    os.chmod(layout.results, 0o755)
    (layout.results / "results.json").unlink(missing_ok=True)


def grade_upload(layout: Layout, settings: dict) -> Outcome:
    """Grade the upload in `layout`.submission as local grading would; its outcome."""
    from autograde.batch import grade_folder
    from autograde.run import processes

    source = layout.instructor / settings["source"]
    limits = limits_of(settings)
    user = run_user(settings)
    layout.work.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.work, 0o711)
    grading = Path(tempfile.mkdtemp(prefix="grading-", dir=layout.work))
    os.chmod(grading, 0o711)  # the run user passes through to its box; the staged upload stays root's
    (grading / "run").mkdir()
    count = stage(layout.submission, grading / "submissions" / STUDENT)
    print(f"{count} notebook(s) in the upload; the run phase runs as "
          + (f"{user.name} ({user.uid}:{user.gid})" if user else "this process's user (not root)"))
    _, outcomes = grade_folder(grading / "submissions", source, limits, 1, grading / "run", layout.cache,
                               run_as=user)
    if user is not None:
        _, alive = processes.kill_user(user.uid)
        if alive:
            raise RuntimeError(f"processes of {user.name} are still running: {alive}")
    return outcomes[0]


def run(layout: Layout) -> dict:
    """Grade the submission and write results.json (never raises for a submission's sake)."""
    started = time.monotonic()
    umask = os.umask(0o077)  # what the grader writes is its own unless it says otherwise
    try:
        _close_results(layout)
        tests: list[check_source.TestCell] = []
        try:
            settings = read_settings(layout)
            tests = check_source.tests(nbformat.read(layout.instructor / settings["source"], as_version=4))
            outcome = grade_upload(layout, settings)
            document = results_document(outcome, tests, time.monotonic() - started)
            print(report.summary_table([outcome]))
            if outcome.log is not None and outcome.log.is_file():
                print("\n--- grading log ---\n" + outcome.log.read_text(encoding="utf-8", errors="replace")[-20_000:])
        except Exception:  # the grader's own failure: still a result, and the reason in the log
            print("the autograder failed:\n" + traceback.format_exc())
            document = failure_document(tests, time.monotonic() - started)
        write_results(layout, document)
    finally:
        os.umask(umask)
    print(f"wrote {layout.results / 'results.json'}: {document['score']:g} points")
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograde.gradescope", description=__doc__.split("\n")[0])
    parser.add_argument("verb", choices=("prepare", "run"),
                        help="prepare: lay out the image (setup.sh); run: grade the submission (run_autograder)")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("AUTOGRADER_ROOT") or "/autograder"),
                        help="the autograder's root folder (default: %(default)s)")
    args = parser.parse_args(argv)
    layout = Layout(args.root.resolve())
    os.environ.setdefault("LAB3_DATA_DIR", str(layout.data))
    if args.verb == "prepare":
        try:
            prepare(layout)
        except CourseError as error:
            print(f"autograde: {error}", file=sys.stderr)
            return 2
        return 0
    run(layout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
