"""Make each TODO stub of the student notebook say what is missing.

nbgrader replaces every solution with the same stub, ``raise NotImplementedError()``, so a
student who runs a TODO cell sees a bare ``NotImplementedError:``. :func:`name_the_todos` gives
each stub the TODO it stands for: the nearest ``# TODO:`` comment above it in the cell, with the
comment lines that continue it. The cell then stops with, for example::

    NotImplementedError: TODO: tune the hyper-parameters, train, and put your trained network in `nn_circle`
"""
from __future__ import annotations

from nbformat import NotebookNode

STUB = "raise NotImplementedError()"


def todo_above(lines: list[str], stub: int) -> str | None:
    """The ``# TODO:`` comment nearest above ``lines[stub]``, its continuation lines joined."""
    for start in range(stub - 1, -1, -1):
        if lines[start].strip().startswith("# TODO:"):
            words = [lines[start].strip()[2:]]
            for line in lines[start + 1:stub]:
                if not line.strip().startswith("#") or line.strip() == "# YOUR CODE HERE":
                    break
                words.append(line.strip()[1:].strip())
            return " ".join(words)
    return None


def name_the_todos(notebook: NotebookNode) -> NotebookNode:
    """Give every bare stub in a solution cell of `notebook` its TODO as message (in place)."""
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            continue
        lines = cell.source.splitlines()
        for number, line in enumerate(lines):
            todo = todo_above(lines, number) if line.strip() == STUB else None
            if todo:
                lines[number] = line.replace(STUB, f"raise NotImplementedError({todo!r})")
        cell.source = "\n".join(lines)
    return notebook
