"""The instructor's command line: ``check``, ``release``, ``grade``, ``merge``, ``gradescope``, ``demo``.

    python -m autograde check [--source lab3.ipynb]
    python -m autograde release --out DIR [--source lab3.ipynb] [--repo-url URL]
    python -m autograde grade SUBMISSIONS --out DIR [--workers N] [--timeout S] [--shard K/N] [--source lab3.ipynb]
                                          [--gradebook sqlite:///PATH/gradebook.db] [--regrade [STUDENT ...]]
    python -m autograde merge OUT1 OUT2 ... --out DIR
    python -m autograde gradescope --out autograder.zip [--timeout S] [--source lab3.ipynb]
    python -m autograde demo --out DIR [--source lab3.ipynb]

Exit status: 0 when the command ran (a submission that failed has its status in grades.csv);
1 when ``merge`` wrote the grades it had but some students have no row (listed on stderr);
2 when it could not run at all (a missing folder, an invalid source notebook, a failed check,
shards that do not belong together).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nbformat

from autograde import crafted, gradebook, ledger, report, shards
from autograde.batch import Batch, grade_submissions, graded_cells
from autograde.collect import find_submissions
from autograde.course import CourseError, check_source, default_cache, default_source, fingerprint, release
from autograde.reference import run_reference
from autograde.jobs import MiB, Limits
from autograde.progress import progress

INCOMPLETE = 1
CANNOT_RUN = 2


def _shard(text: str) -> shards.Shard:
    try:
        return shards.parse_shard(text)
    except shards.ShardError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograde", description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)

    def with_source(command: argparse.ArgumentParser, out: str = "folder to write into") -> argparse.ArgumentParser:
        command.add_argument("--source", type=Path, default=default_source(),
                             help="instructor notebook with nbgrader metadata (default: %(default)s)")
        command.add_argument("--out", type=Path, required=True, help=out)
        return command

    check = verbs.add_parser("check", help="say what each test reads and how it reaches the grader; "
                                           "find what would stop a release")
    check.add_argument("--source", type=Path, default=default_source(),
                       help="instructor notebook with nbgrader metadata (default: %(default)s)")
    with_source(verbs.add_parser("release", help="write the student repository: notebook, assets, packages, README")
                ).add_argument("--repo-url", help="the student repository's URL: the notebook's set-up cell installs "
                                                  "the lab from it where the lab is missing (Colab)")
    merge = verbs.add_parser("merge", help="merge the outputs of `grade --shard K/N` into one grades.csv")
    merge.add_argument("shards", type=Path, nargs="+", help="the --out folders of the shards")
    merge.add_argument("--out", type=Path, required=True, help="folder to write the merged grades into")
    for name, text in (("grade", "grade a folder of submissions"),
                       ("gradescope", "write a Gradescope autograder zip (setup.sh, run_autograder, the kit)"),
                       ("demo", "check the reference notebook, release it, grade example submissions")):
        command = with_source(verbs.add_parser(name, help=text),
                              "the zip to write" if name == "gradescope" else "folder to write into")
        if name == "grade":
            command.add_argument("submissions", type=Path,
                                 help="folder of <student>.ipynb files or <student>/<name>.ipynb folders")
            command.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                                 help="grade only slice K of N (by student id); merge the slices with `merge`")
        if name == "gradescope":
            command.add_argument("--run-as", default="autograde-run",
                                 help="the unprivileged user setup.sh creates for the run phase (default: %(default)s)")
        if name != "gradescope":  # Gradescope grades one submission per container
            command.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                                 help="submissions graded at once (default: %(default)s, the CPU count)")
        command.add_argument("--timeout", type=int, default=600,
                             help="most seconds one cell may run (default: %(default)s)")
        command.add_argument("--submission-timeout", type=int, default=None,
                             help="seconds for the whole run of one submission, all cells together "
                                  "(default: 2 x --timeout)")
        command.add_argument("--memory-mb", type=int, default=4096,
                             help="memory for one submission's run, all its processes, MiB (default: %(default)s)")
        command.add_argument("--disk-mb", type=int, default=Limits.disk_bytes // MiB,
                             help="disk for one submission's run, all it writes (its folder, /tmp), MiB "
                                  "(default: %(default)s)")
        command.add_argument("--max-files", type=int, default=Limits.max_files,
                             help="files and folders one submission's run may have (default: %(default)s)")
        if name == "gradescope":
            continue
        command.add_argument("--show-hidden-tests", action="store_true",
                             help="show the tests' code, hidden parts included, in feedback (for instructors)")
        if name == "grade":
            command.add_argument("--regrade", nargs="*", metavar="STUDENT", default=None,
                                 help="grade again even if unchanged: everyone, or the students named "
                                      "(put it after SUBMISSIONS)")
            command.add_argument("--gradebook", metavar="URL", default=None,
                                 help="also record the points in this existing nbgrader gradebook "
                                      "(e.g. sqlite:///course/gradebook.db); OUT/gradebook.db is always written")
        command.add_argument("--cache", type=Path, default=default_cache(),
                             help="where generated assignments are kept between runs (default: %(default)s)")
    return parser


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(cell_timeout=args.timeout, budget_seconds=args.submission_timeout or 2 * args.timeout,
                  memory_bytes=args.memory_mb * MiB, disk_bytes=args.disk_mb * MiB, max_files=args.max_files)


def grade(submissions: Path, out: Path, batch: Batch, gradebook_url: str | None = None,
          shard: shards.Shard | None = None, regrade: list[str] | None = None) -> list:
    """Grade `submissions` (only `shard`'s slice of them, if given) into the ledger `out`
    (grades.csv, gradebook.db, feedback/, logs/, ledger/, and shard.json for a shard); print
    progress, a table and a closing line. Only new or changed submissions are graded (see
    :mod:`autograde.ledger`); `regrade` forces it: [] for everyone, else the ids named. Rows of
    students not in the folder are kept. With `gradebook_url`, the points of the submissions
    graded also go into that nbgrader gradebook. Returns every row of `out`."""
    if not submissions.is_dir():
        raise CourseError(f"submissions folder not found: {submissions}")
    source = batch.source
    check_source(source)
    found = find_submissions(submissions, source.stem, protected=[source])
    everyone = [s.student_id for s in found]
    keep = shard.holds if shard else (lambda student_id: True)
    given = [s for s in found if keep(s.student_id)]
    ids = {s.student_id for s in given}
    unknown = [student_id for student_id in regrade or [] if student_id not in ids]
    if unknown:
        raise CourseError(f"--regrade: no submission for {', '.join(map(report.shown, unknown))} in {submissions}"
                          + (f" (shard {shard})" if shard else ""))
    book = ledger.Ledger(out)
    for name in book.damaged:
        print(f"ignored a damaged ledger entry: {out / ledger.LEDGER / name}")
    source_fingerprint = fingerprint(source)
    options = ledger.grading_options(batch.limits, batch.show_hidden_tests)
    keys = {s.student_id: ledger.submission_key(s, source_fingerprint, options) for s in given}
    forced = ids if regrade == [] else set(regrade or [])
    todo = {student_id for student_id in ids if student_id in forced or not book.matches(student_id, keys[student_id])}
    reused = len(ids) - len(todo)
    absent = sorted(set(book.entries) - ids)
    if shard:
        print(f"shard {shard}: {len(given)} of the {len(everyone)} submissions")
        manifest = lambda points, finished: shards.write_manifest(  # noqa: E731
            out, shard, source.stem, source_fingerprint, points, everyone, sorted(ids | set(book.entries)), finished)
        manifest(book.points or {}, False)  # a shard that dies before the end says so
    if reused:
        print(f"reusing {reused} rows graded earlier (their submissions and the grading are unchanged; "
              f"--regrade grades again)")
    name = source.stem  # nbgrader names the assignment and its notebook after the source file
    failed = []
    if todo:
        with tempfile.TemporaryDirectory(prefix="autograde-", ignore_cleanup_errors=True) as run_dir:
            shown = progress(len(todo))

            def ready(assignment) -> None:
                if gradebook_url:  # a gradebook that cannot take the points is found before grading
                    gradebook.check(gradebook_url, name, name, assignment.points)
                clash = book.set_points(assignment.points, todo)
                if clash:
                    raise CourseError(f"{out} holds the rows of {len(clash)} students graded for other graded cells "
                                      f"or points ({', '.join(report.shown(c, 40) for c in clash[:5])}"
                                      f"{', ...' if len(clash) > 5 else ''}): grade into a new --out")
                book.write_table()
                gradebook.write_batch_gradebook(book.outcomes(), assignment.gradebook, out, name, name,
                                                assignment.points)
                shown.start()

            def done(outcome) -> None:
                book.record(outcome, keys[outcome.student_id])
                gradebook.add_to_batch_gradebook(outcome, out, name, name, book.points)
                if gradebook_url:
                    gradebook.record([outcome], gradebook_url, name, name, book.points)
                if outcome.status != "ok":
                    failed.append(outcome.student_id)
                shown(outcome)

            try:
                grade_submissions([s for s in given if s.student_id in todo], batch, Path(run_dir), on_done=done,
                                  on_ready=ready)
            finally:
                shown.close()
    else:
        if book.points is None:
            book.set_points(dict(graded_cells(check_source(source))), set())
        book.write_table()
    if shard:
        manifest(book.points or {}, True)
    outcomes = book.outcomes()
    print(report.summary_table(outcomes))
    print(f"\nwrote {out / 'grades.csv'}, {out / 'gradebook.db'}, {out / 'feedback'}/, {out / 'logs'}/"
          + (f", {out / shards.MANIFEST}" if shard else "")
          + (f"; recorded the points in {gradebook_url}" if gradebook_url else ""))
    print(f"{len(todo)} graded, {reused} reused, {len(failed)} failed"
          + (f" (status other than ok: {', '.join(report.shown(f, 40) for f in sorted(failed))})" if failed else "")
          + (f"; kept the rows of {len(absent)} students not in {submissions}" if absent else ""))
    return outcomes


def merge(folders: list[Path], out: Path) -> int:
    """Merge shard outputs into `out`; the exit status (INCOMPLETE when someone has no row)."""
    merged = shards.merge(folders, out)
    print(f"merged {len(folders)} shards: {merged.rows} rows into {out / 'grades.csv'}, {out / 'feedback'}/, "
          f"{out / 'logs'}/")
    if not merged.missing_students and not merged.missing_shards:
        return 0
    if merged.missing_shards:
        print(f"autograde: shards missing or unfinished: {', '.join(merged.missing_shards)}", file=sys.stderr)
    if merged.missing_students:
        print(f"autograde: {len(merged.missing_students)} students have no row: "
              f"{', '.join(merged.missing_students)}", file=sys.stderr)
    return INCOMPLETE


DEMO_KINDS = ("perfect", "partial", "blank", "tampered", "kernel_death")


def demo(out: Path, source: Path, limits: Limits, workers: int, cache: Path) -> None:
    """Check the reference notebook, release it, craft example submissions and grade them."""
    check_source(source)
    print(f"1. running the reference notebook {source.name} headless ...", flush=True)
    reference = run_reference(source, kernel_log=out / "reference-kernel.log")
    if reference.problems:
        raise CourseError(f"the reference notebook failed its check: {'; '.join(reference.problems)}")
    print(f"   ran cleanly in {reference.seconds:.0f} s")
    with tempfile.TemporaryDirectory(prefix="autograde-release-") as scratch:
        released = release(source, out / "release", Path(scratch))
    print(f"2. student version: {released}")
    source_nb, release_nb = nbformat.read(source, as_version=4), nbformat.read(released, as_version=4)
    submissions = out / "submissions"
    for kind in DEMO_KINDS:
        crafted.write_submission(crafted.MAKERS[kind](source_nb, release_nb), submissions / f"{kind}.ipynb")
    crafted.write_submission(crafted.damaged_json(release_nb), submissions / "damaged_json.ipynb")
    print(f"3. example submissions: {submissions}/ ({', '.join(DEMO_KINDS)}, damaged_json)")
    print("4. grading them")
    outcomes = grade(submissions, out / "grades", Batch(source.resolve(), limits, cache.resolve(), workers), regrade=[])
    perfect = next(o for o in outcomes if o.student_id == "perfect")
    if perfect.score < perfect.max_score:
        worth = dict(graded_cells(source_nb))
        lost = [f"{grade_id} ({points:g} of {worth[grade_id]:g})" for grade_id, points in perfect.cells.items()
                if points < worth[grade_id]]
        raise CourseError(f"the reference's answers scored {perfect.score:g} of {perfect.max_score:g}: "
                          f"{', '.join(lost) or perfect.status}; see {perfect.feedback or out / 'grades'}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.verb == "check":
            from autograde import source_check

            check_source(args.source)
            found = source_check.check(args.source)
            print(found.text())
            return CANNOT_RUN if found.problems else 0
        if args.verb == "release":
            check_source(args.source)
            with tempfile.TemporaryDirectory(prefix="autograde-release-") as scratch:
                print(f"wrote {release(args.source, args.out, Path(scratch), args.repo_url)}")
        elif args.verb == "grade":
            batch = Batch(args.source.resolve(), _limits(args), args.cache.resolve(), args.workers,
                          args.show_hidden_tests)
            grade(args.submissions, args.out, batch, args.gradebook, args.shard, args.regrade)
        elif args.verb == "merge":
            return merge(args.shards, args.out)
        elif args.verb == "gradescope":
            from autograde import gradescope

            check_source(args.source)
            zip_path = gradescope.build_zip(args.source.resolve(), args.out, _limits(args), args.run_as)
            print(f"wrote {zip_path}: upload it as the assignment's autograder on Gradescope")
        else:
            demo(args.out, args.source, _limits(args), args.workers, args.cache)
    except (CourseError, shards.ShardError) as error:
        print(f"autograde: {error}", file=sys.stderr)
        return CANNOT_RUN
    return 0
