"""Grade on Gradescope: what runs in Gradescope's containers
(``python -m autograde.gradescope prepare|run [--root /autograder]``).

The zip itself is :mod:`autograde.gradescope_zip` (:func:`build_zip`, re-exported here), the
scripts it carries are the files in ``autograde/gradescope_files/``, and ``results.json`` is
made by :mod:`autograde.gradescope_results`.

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
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograde import report
from autograde.check import source as check_source
from autograde.course import CourseError, cached_course, check_source as read_source
from autograde.gradescope_results import HIDDEN_FAILED, VISIBILITIES, failure_document, results_document
from autograde.gradescope_zip import SETTINGS, SETUP_SH, ZIP_TIME, build_zip
from autograde.jobs import Limits, Outcome
from autograde.notebook_checks import MAX_NOTEBOOK_BYTES
from autograde.run.phase import preflight
from autograde.run.sandbox import RunAs, parse_user

__all__ = ["HIDDEN_FAILED", "SETUP_SH", "VISIBILITIES", "ZIP_TIME", "Layout", "build_zip", "main", "prepare", "run"]
RUN_AS_VARIABLE = "AUTOGRADE_RUN_AS"
STUDENT = "submission"  # the one student id in a container
MAX_NOTEBOOKS = 50  # .ipynb files taken from one upload

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
    from autograde.batch import Batch, grade_folder
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
    _, outcomes = grade_folder(grading / "submissions", Batch(source, limits, layout.cache, run_as=user),
                               grading / "run")
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
