"""The student notebook's TODO stubs say what is missing (autograde.stubs)."""
from nbformat.v4 import new_code_cell, new_notebook

from autograde.stubs import name_the_todos


def solution_cell(source: str):
    return new_code_cell(source, metadata={"nbgrader": {"solution": True, "grade_id": "x"}})


def test_a_stub_gets_the_todo_above_it_with_its_continuation_lines():
    notebook = new_notebook(cells=[solution_cell(
        "# TODO: call verify on x_specs and y_specs,\n# keep its answer in `ret1`\nret1 = None\n"
        "# YOUR CODE HERE\nraise NotImplementedError()")])
    name_the_todos(notebook)
    assert notebook.cells[0].source.splitlines()[-1] == (
        "raise NotImplementedError('TODO: call verify on x_specs and y_specs, keep its answer in `ret1`')")


def test_an_indented_stub_keeps_its_indentation_and_its_own_todo():
    notebook = new_notebook(cells=[solution_cell(
        "class M:\n    def f(self):\n        # TODO: first\n        # YOUR CODE HERE\n"
        "        raise NotImplementedError()\n"
        "    def g(self):\n        # TODO: second\n        # YOUR CODE HERE\n        raise NotImplementedError()")])
    lines = name_the_todos(notebook).cells[0].source.splitlines()
    assert lines[4] == "        raise NotImplementedError('TODO: first')"
    assert lines[8] == "        raise NotImplementedError('TODO: second')"


def test_cells_that_are_not_solutions_and_stubs_without_a_todo_are_left_alone():
    plain = new_code_cell("# TODO: not a solution cell\nraise NotImplementedError()")
    untold = solution_cell("# YOUR CODE HERE\nraise NotImplementedError()")
    notebook = name_the_todos(new_notebook(cells=[plain, untold]))
    assert [c.source for c in notebook.cells] == [plain.source, untold.source]
