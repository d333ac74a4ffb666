"""What the check phase takes from the instructor's source notebook (trusted, never the student's).

* :func:`tests`: each graded test cell, its points and its full source (visible and hidden);
* :func:`prelude`: the provided cells' imports, and their assignments of a kit call with literal
  arguments (``mnist_data = MNISTData(batch_size_test=1000)``): the helpers tests use, bound
  fresh from the kit, so a student who shadows ``inside_circle`` shadows nothing here;
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


def prelude(source: NotebookNode) -> tuple[list[str], set[str]]:
    """(statements, names they bind) from the provided code cells, in notebook order."""
    lines, bound = [], set()
    for cell in source.cells:
        meta = _meta(cell)
        if cell.cell_type != "code" or meta.get("grade") or meta.get("solution"):
            continue
        try:
            tree = ast.parse(python_only(cell.source))
        except SyntaxError:
            continue
        for statement in tree.body:
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                bound |= {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
            elif not (isinstance(statement, ast.Assign) and _kit_call(statement.value, bound)
                      and all(isinstance(t, ast.Name) for t in statement.targets)):
                continue
            else:
                bound |= {t.id for t in statement.targets}
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
