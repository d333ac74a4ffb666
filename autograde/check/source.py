"""What the check phase takes from the instructor's source notebook (trusted, never the student's).

* :func:`tests`: each graded test cell, its points and its full source (visible and hidden);
* :func:`prelude`: the provided cells' imports, assignments of a kit call with literal arguments
  (``mnist_data = MNISTData(batch_size_test=1000)``), and the instructor's own functions, classes
  and constants: bound fresh from the source, so a student who shadows ``inside_circle`` or
  changes ``RADIUS`` changes nothing here;
* :func:`names_read`: for each test, the names it reads that neither the prelude nor a test
  binds: the student's values, which the run phase exports.
"""
from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass

from nbformat import NotebookNode


@dataclass(frozen=True)
class TestCell:
    grade_id: str
    points: float
    source: str


def _meta(cell: NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def python_only(source: str) -> str:
    """`source` without IPython magics and shell escapes (``%matplotlib inline``, ``!ls``)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def tests(source: NotebookNode) -> list[TestCell]:
    return [TestCell(_meta(cell)["grade_id"], float(_meta(cell).get("points", 0)), cell.source)
            for cell in source.cells
            if cell.cell_type == "code" and _meta(cell).get("grade") and not _meta(cell).get("solution")]


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except ValueError:
        return False


def _kit_call(node: ast.AST, imported: set[str]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    root = node.func
    while isinstance(root, ast.Attribute):
        root = root.value
    return (isinstance(root, ast.Name) and root.id in imported and all(_is_literal(a) for a in node.args)
            and all(_is_literal(k.value) for k in node.keywords))


_NOT_CONSTANT = (ast.Call, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Await,
                 ast.Yield, ast.YieldFrom, ast.NamedExpr, ast.JoinedStr)


_MUTABLE = (ast.List, ast.Dict, ast.Set)


def _constant(node: ast.AST, bound: set[str], mutable_ok: bool) -> bool:
    """An expression of literals and names already bound, with no call: ``RADIUS = 0.5``,
    ``CENTRE = (0.0, 0.0)``, ``Y_SPECS = [[0.5, math.inf]]``; a list, dict or set only when
    ``mutable_ok`` (nothing outside the tests reads the name, so nothing can change it in place)."""
    nodes = list(ast.walk(node))
    return (not any(isinstance(n, _NOT_CONSTANT) for n in nodes)
            and (mutable_ok or not any(isinstance(n, _MUTABLE) for n in nodes))
            and all(n.id in bound for n in nodes if isinstance(n, ast.Name)))


def _statements(source: NotebookNode):
    """(cell metadata, statement) of every code cell that parses, in notebook order."""
    for cell in source.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(python_only(cell.source))
        except SyntaxError:
            continue
        for statement in tree.body:
            yield _meta(cell), statement


def _free(definition: ast.AST) -> set[str]:
    """The names a function or class definition reads from outside itself (decorators,
    defaults and body alike)."""
    found = _names(ast.Module(body=[definition], type_ignores=[]))
    return (found["read"] | found["inner_read"]) - found["inner_stored"] - {definition.name}


def prelude(source: NotebookNode) -> tuple[list[str], set[str]]:
    """(statements, names they bind) from the provided code cells, in notebook order: what the
    check binds from the instructor's source, never from a student's kernel.

    * imports;
    * assignments of a kit call with literal arguments (``mnist_data = MNISTData(...)``);
    * functions and classes, and constants (literals, and expressions of them and of imported
      names, with no call; a list, dict or set only when no cell but the tests reads it), bound
      nowhere else in the notebook: the instructor's helpers (``def in_box(point, box)``) and
      settings (``RADIUS = 0.5``). A definition that reads a name the check does not bind (a
      student's network, say) is left to the student's kernel, and what it makes crosses like any
      other value.
    """
    statements = list(_statements(source))
    counts: dict[str, int] = {}
    read_outside_tests: set[str] = set()
    for meta, statement in statements:
        found = _names(ast.Module(body=[statement], type_ignores=[]))
        for name in found["stored"]:
            counts[name] = counts.get(name, 0) + 1
        if not meta.get("grade") or meta.get("solution"):
            read_outside_tests |= found["read"] | found["inner_read"]
    provided = [statement for meta, statement in statements if not meta.get("grade") and not meta.get("solution")]
    once = {name for name, count in counts.items() if count == 1}
    definitions = {statement.name: statement for statement in provided
                   if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                   and statement.name in once}

    def binds(statement: ast.stmt, bound: set[str]) -> set[str]:
        """The names an import or an assignment binds in the check (none: left to the student)."""
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
        if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
            targets = {t.id for t in statement.targets}
            if _kit_call(statement.value, bound) or (
                    targets <= once and _constant(statement.value, bound, mutable_ok=not targets & read_outside_tests)):
                return targets
        return set()

    # definitions whose free names the check binds: imports, constants, each other, builtins
    assigned: set[str] = set()
    for statement in provided:
        assigned |= binds(statement, assigned)
    known = assigned | set(dir(builtins)) | {"__name__"}
    usable = set(definitions)
    while True:
        dropped = {name for name in usable if not _free(definitions[name]) <= known | usable}
        if not dropped:
            break
        usable -= dropped
    lines, bound = [], set()
    for statement in provided:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if statement.name not in usable:
                continue
            bound.add(statement.name)
        else:
            names = binds(statement, bound)
            if not names:
                continue
            bound |= names
        lines.append(ast.unparse(statement))
    return lines, bound


def _names(tree: ast.Module) -> dict[str, set[str]]:
    """Names read and bound in a parsed cell, at its top level ("read", "stored") and inside
    functions, classes and comprehensions ("inner_read", "inner_stored")."""
    found: dict[str, set[str]] = {"read": set(), "stored": set(), "inner_read": set(), "inner_stored": set()}
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp,
              ast.DictComp, ast.GeneratorExp)

    def visit(node: ast.AST, inner: bool) -> None:
        prefix = "inner_" if inner else ""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[prefix + "stored"].add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found[prefix + "stored"].update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.arg):
            found["inner_stored"].add(node.arg)
        elif isinstance(node, ast.Name):
            found[prefix + ("read" if isinstance(node.ctx, ast.Load) else "stored")].add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, inner or isinstance(node, scopes))

    visit(tree, False)
    return found


def names_read(cells: list[TestCell], bound: set[str]) -> dict[str, list[str]]:
    """For each test, the names it reads that the prelude, the tests and builtins do not bind."""
    parsed = {cell.grade_id: _names(ast.parse(python_only(cell.source))) for cell in cells}
    known = bound | set(dir(builtins))
    top = known.union(*(found["stored"] for found in parsed.values()))
    anywhere = top.union(*(found["inner_stored"] for found in parsed.values()))
    return {grade_id: sorted((found["read"] - top) | (found["inner_read"] - anywhere))
            for grade_id, found in parsed.items()}
