"""Example submissions made from any source notebook and its student version.

Each maker takes the instructor's source notebook and the released (student) notebook and
returns what a student could hand in: the perfect answer, nothing at all, half the work, edited
tests, an endless loop, a crash, hostile code. The demo grades some of them; the tests grade
all of them and check each grade. Nothing here knows what lab3 is about.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Callable

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def _meta(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def answer(source_cell: NotebookNode) -> str:
    """A solution cell's code as a student would write it: the source without the markers."""
    return "\n".join(line for line in source_cell.source.splitlines()
                     if line.strip() not in SOLUTION_MARKERS)


def solution_ids(release: NotebookNode) -> list[str]:
    """grade_ids of the cells students write in (solution cells), in notebook order."""
    return [_meta(cell)["grade_id"] for cell in release.cells if _meta(cell).get("solution")]


def test_ids(release: NotebookNode) -> list[str]:
    """grade_ids of the autograded test cells (graded, locked code cells), in notebook order."""
    return [_meta(cell)["grade_id"] for cell in release.cells
            if _meta(cell).get("grade") and _meta(cell).get("locked") and cell.cell_type == "code"]


def filled(source: NotebookNode, release: NotebookNode, answered: Callable[[str], bool]) -> NotebookNode:
    """The student version with the solution cells whose grade_id passes `answered` filled in."""
    answers = {_meta(cell)["grade_id"]: answer(cell) for cell in source.cells if _meta(cell).get("solution")}
    notebook = copy.deepcopy(release)
    for cell in notebook.cells:
        grade_id = _meta(cell).get("grade_id")
        if _meta(cell).get("solution") and answered(grade_id):
            cell.source = answers[grade_id]
    return notebook


def perfect(source: NotebookNode, release: NotebookNode) -> NotebookNode:
    """Every solution cell answered as in the source: full marks."""
    return filled(source, release, lambda grade_id: True)


def blank(source: NotebookNode, release: NotebookNode) -> NotebookNode:
    """The student version handed in untouched: no points (tests fail on NotImplementedError)."""
    return copy.deepcopy(release)


def partial(source: NotebookNode, release: NotebookNode) -> NotebookNode:
    """The first half of the solution cells answered (rounded up), the rest left blank."""
    first_half = set(solution_ids(release)[: (len(solution_ids(release)) + 1) // 2])
    return filled(source, release, first_half.__contains__)


def tampered(source: NotebookNode, release: NotebookNode) -> NotebookNode:
    """Nothing answered, tests gutted: the first test deleted, the others replaced by ``pass``
    with ten times the points. Must score as :func:`blank` does."""
    notebook = blank(source, release)
    tests = test_ids(release)
    notebook.cells = [cell for cell in notebook.cells if _meta(cell).get("grade_id") != tests[0]]
    for cell in notebook.cells:
        if _meta(cell).get("grade_id") in tests[1:]:
            cell.source = "pass"
            cell.metadata.nbgrader["points"] = 10 * cell.metadata.nbgrader["points"]
    return notebook


def with_cell_after(notebook: NotebookNode, grade_id: str, code: str) -> NotebookNode:
    """A copy of `notebook` with a plain code cell holding `code` right after cell `grade_id`."""
    notebook = copy.deepcopy(notebook)
    index = next(i for i, cell in enumerate(notebook.cells) if _meta(cell).get("grade_id") == grade_id)
    cell = new_code_cell(code, id=f"added-after-{grade_id}")  # a fixed id: same files every run
    if notebook.nbformat_minor < 5:  # cell ids came with nbformat 4.5; older notebooks forbid them
        del cell["id"]
    notebook.cells.insert(index + 1, cell)
    return notebook


STUBBORN_LOOP = """\
# An endless loop that even ignores the interrupt the grader sends.
while True:
    try:
        while True:
            pass
    except KeyboardInterrupt:
        pass
"""


def endless_loop(source: NotebookNode, release: NotebookNode) -> NotebookNode:
    """All answered, then an endless loop after the first answer: the later tests never run."""
    return with_cell_after(perfect(source, release), solution_ids(release)[0], STUBBORN_LOOP)


def kernel_death(source: NotebookNode, release: NotebookNode) -> NotebookNode:
    """All answered, but the kernel exits (``os._exit``) after the middle answer."""
    ids = solution_ids(release)
    return with_cell_after(perfect(source, release), ids[len(ids) // 2], "import os\nos._exit(1)")


def noisy(source: NotebookNode, release: NotebookNode) -> NotebookNode:
    """All answered, plus a cell that prints about 20 MB: stored output must be cut."""
    return with_cell_after(perfect(source, release), solution_ids(release)[0],
                           'for _ in range(20_000):\n    print("x" * 1000)')


def hostile(targets: list[Path], marker: str) -> Callable[[NotebookNode, NotebookNode], NotebookNode]:
    """A maker: all answered, plus a cell that tries to damage `targets` and the parent folders,
    to stop the grader, and to leave a process running (its command line holds `marker`)."""
    code = f"""\
import os, signal, subprocess, sys
from pathlib import Path
targets = [Path(p) for p in {json.dumps([str(t) for t in targets])}]
targets += [Path("..") / "pwned.txt", Path("../..") / "pwned.txt", Path("../../..") / "pwned.txt"]
for target in targets:
    for attempt in (lambda: target.write_text("pwned"), lambda: os.remove(target),
                    lambda: (target / "pwned.txt").write_text("pwned")):
        try:
            attempt()
        except Exception:
            pass
for pid in (os.getppid(), os.getpgid(os.getppid())):
    try:
        os.kill(pid, signal.SIGKILL)
    except Exception:
        pass
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # {marker}"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""

    def make(source: NotebookNode, release: NotebookNode) -> NotebookNode:
        return with_cell_after(perfect(source, release), solution_ids(release)[0], code)

    return make


def damaged_json(notebook: NotebookNode) -> str:
    """The notebook's JSON cut in the middle, as a failed upload leaves it."""
    text = nbformat.writes(notebook)
    return text[: len(text) // 2]


MAKERS: dict[str, Callable[[NotebookNode, NotebookNode], NotebookNode]] = {
    "perfect": perfect, "partial": partial, "blank": blank, "tampered": tampered,
    "endless_loop": endless_loop, "kernel_death": kernel_death, "noisy": noisy,
}


def write_submission(notebook: NotebookNode | str, path: Path) -> Path:
    """Write a crafted notebook (or raw text, for damaged files) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(notebook, str):
        path.write_text(notebook, encoding="utf-8")
    else:
        nbformat.write(notebook, path)
    return path
