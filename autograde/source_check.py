"""Checks of an instructor's source notebook before it reaches students.

``check(source)`` reads the source and reports, for each graded test, every name it reads and how
that value reaches the check phase:

* ``provided``: bound in the check from the source notebook itself (imports, the instructor's own
  functions, classes and constants; see :func:`autograde.check.source.prelude`);
* ``value``: made in the student's kernel (by a solution cell, or by a provided cell that reads
  what a solution made) and exported as data: numbers, arrays, tensors, networks of the layers
  ``verify`` reads, verify results; what else it turns out to be is known only when a notebook runs
  (``demo --source`` runs the reference);
* ``call``: a function or class a solution cell defines. It stays in the student's kernel and the
  test's calls go there (:mod:`autograde.check.channel`): the arguments the test passes are seen
  by student code, and what comes back is data the student's code produced;
* ``undefined``: no cell of the notebook binds it: a problem.

It also lists the files the notebook refers to (pictures in markdown, ``assets/...`` paths in code)
that are missing beside the source: each is a problem, since the released notebook would show a
broken picture or fail to open a file. ``release`` stops on any problem, naming the test and the
name, or the cell and the file.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograde.check import source as check_source

_MARKDOWN_LINK = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_SOURCE = re.compile(r"""<(?:img|source|video|audio)\b[^>]*?\bsrc\s*=\s*["']([^"']+)["']""", re.I)
_LOCAL_PATH = re.compile(r"^(?:\./)?(?:assets|data|images|img|figures)/[^\s]+$")


@dataclass
class Crossing:
    name: str
    how: str     # "provided", "value", "call" or "undefined"
    where: str   # the cell that binds it (its grade_id, or "cell N"), or ""


@dataclass
class Report:
    tests: dict = field(default_factory=dict)          # grade_id -> [Crossing, ...]
    points: dict = field(default_factory=dict)         # grade_id -> points
    student_made: list = field(default_factory=list)   # (cell, names): provided cells that make,
    #                                                    from students' names, what a test reads
    missing_files: list = field(default_factory=list)  # (cell, path)

    @property
    def problems(self) -> list[str]:
        out = []
        for grade_id, crossings in self.tests.items():
            for c in crossings:
                if c.how == "undefined":
                    out.append(f"test {grade_id} reads {c.name}, which no cell of the notebook "
                               "defines")
        out += [f"{cell} refers to {path}, which is not beside the source notebook"
                for cell, path in self.missing_files]
        return out

    def text(self) -> str:
        """The report in words, one line a test, then the problems."""
        lines = []
        for grade_id, crossings in self.tests.items():
            parts = [f"{c.name} ({c.how}{', ' + c.where if c.where else ''})" for c in crossings]
            points = self.points[grade_id]
            lines.append(f"{grade_id} ({points:g} point{'' if points == 1 else 's'}): "
                         + (", ".join(parts) if parts else "reads nothing from the student"))
        for cell, names in self.student_made:
            lines.append(f"{cell} is provided but reads {', '.join(names)}: it runs in the "
                         "student's kernel, and what it makes crosses as a value")
        problems = self.problems
        lines.append(f"{len(problems)} problem(s)" + (":" if problems else ""))
        lines += [f"  - {p}" for p in problems]
        return "\n".join(lines)


def _cell_name(cell, index: int) -> str:
    grade_id = check_source._meta(cell).get("grade_id")
    return f"cell {grade_id}" if grade_id else f"cell {index + 1}"


def _referenced_files(notebook) -> list[tuple[str, str]]:
    """(cell, path) of every local file the notebook's cells refer to."""
    found = []
    for index, cell in enumerate(notebook.cells):
        where = _cell_name(cell, index)
        if cell.cell_type == "markdown":
            paths = _MARKDOWN_LINK.findall(cell.source) + _HTML_SOURCE.findall(cell.source)
            found += [(where, p) for p in paths
                      if not re.match(r"^[a-z][a-z0-9+.-]*:", p, re.I) and not p.startswith("#")]
        elif cell.cell_type == "code":
            try:
                tree = ast.parse(check_source.python_only(cell.source))
            except SyntaxError:
                continue
            found += [(where, node.value) for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and isinstance(node.value, str)
                      and _LOCAL_PATH.match(node.value)]
    return found


def check(source: Path) -> Report:
    """The report on ``source`` (see the module's docstring)."""
    notebook = nbformat.read(source, as_version=4)
    report = Report()
    _, bound = check_source.prelude(notebook)
    tests = check_source.tests(notebook)
    reads = check_source.names_read(tests, bound)
    # every binding of a name outside the tests: (cell, made by a solution cell, a definition)
    binders: dict[str, list[tuple[str, bool, bool]]] = {}
    provided_reads = []
    for index, cell in enumerate(notebook.cells):
        meta = check_source._meta(cell)
        if cell.cell_type != "code" or (meta.get("grade") and not meta.get("solution")):
            continue
        try:
            tree = ast.parse(check_source.python_only(cell.source))
        except SyntaxError:
            continue
        where, solution = _cell_name(cell, index), bool(meta.get("solution"))
        for statement in tree.body:
            defines = isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or (
                isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Lambda))
            for name in check_source._names(ast.Module(body=[statement], type_ignores=[]))["stored"]:
                binders.setdefault(name, []).append((where, solution, defines))
        if not solution:
            found = check_source._names(tree)
            provided_reads.append((where, (found["read"] | found["inner_read"]) - found["stored"] - bound,
                                   found["stored"]))
    made_by_students = {name for name, places in binders.items() if any(s for _, s, _ in places)}
    tested = {name for names in reads.values() for name in names}
    # provided cells that make, from what students made, something a test reads
    report.student_made = [(where, sorted(names & made_by_students))
                           for where, names, stored in provided_reads
                           if names & made_by_students and stored & tested]
    for cell in tests:
        report.points[cell.grade_id] = cell.points
        found = check_source._names(ast.parse(check_source.python_only(cell.source)))
        crossings = [Crossing(name, "provided", "")
                     for name in sorted((found["read"] | found["inner_read"]) & bound)]
        for name in reads[cell.grade_id]:
            places = binders.get(name)
            if not places:
                crossings.append(Crossing(name, "undefined", ""))
                continue
            students = [(where, defines) for where, solution, defines in places if solution]
            where, defines = (students or [(places[0][0], places[0][2])])[-1]
            crossings.append(Crossing(name, "call" if defines and students else "value", where))
        report.tests[cell.grade_id] = crossings
    folder = Path(source).parent
    report.missing_files = [(cell, path) for cell, path in _referenced_files(notebook)
                            if not (folder / path.split("#")[0].split("?")[0]).exists()]
    return report
