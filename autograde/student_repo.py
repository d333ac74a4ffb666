"""The student repository that ``release`` writes around the student notebook.

``course.release`` writes the student notebook and ``assets/``; :func:`write` then makes the
folder a repository a student can clone and set up alone (a GitHub Classroom template):

- the helper packages the notebook imports (``verifier``, ``circle``, ``mnist_tools``, and
  ``labseed`` when the kit has it), copied from the kit, and a ``pyproject.toml`` that declares
  only them, their dependencies and the verifier's command ``lab3-verify``;
- the files of ``autograde/student_template/``: a README for students, a Makefile
  (``setup``, ``lab``, ``check``), requirements, ``environment.yml``, ``.gitignore``, a Jupyter
  configuration with nbgrader's extensions off (``jupyter/``), and ``check_my_work.py``;
- a set-up cell inserted before the notebook's first code cell: where the packages are missing
  (Colab, a JupyterHub) it installs them, from the folder the notebook runs in when that is the
  repository, else from ``repo_url``.

Nothing of the grader, the kit's tests, its benchmarks or the source notebook is copied: only
what is named here.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from autograde.packages import OPTIONAL_MODULES, STUDENT_PACKAGES

KIT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).resolve().parent / "student_template"
PACKAGES = STUDENT_PACKAGES  # the packages the notebook imports; OPTIONAL_MODULES are shipped when the kit has them
# template file -> its name in the student repository (a dotfile is not kept as package data)
FILES = {"README.md": "README.md", "Makefile": "Makefile", "gitignore": ".gitignore",
         "environment.yml": "environment.yml", "requirements.txt": "requirements.txt",
         "requirements-nodeps.txt": "requirements-nodeps.txt", "check_my_work.py": "check_my_work.py",
         # JupyterLab with nbgrader's extensions off, should the environment have nbgrader (make lab
         # puts this folder on JUPYTER_CONFIG_PATH; the lab's own requirements do not install nbgrader)
         "jupyter_server_config.json": "jupyter/jupyter_server_config.json",
         "page_config.json": "jupyter/labconfig/page_config.json"}
SETUP_CELL_TAG = "lab-setup"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def _template(name: str, **values: str) -> str:
    text = (TEMPLATE / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def _shipped(kit: Path) -> tuple[list[str], list[str]]:
    """The packages (with subpackages) and single-file modules copied into the repository."""
    packages = list(PACKAGES)
    modules = []
    for name in OPTIONAL_MODULES:
        if (kit / name / "__init__.py").is_file():
            packages.append(name)
        elif (kit / f"{name}.py").is_file():
            modules.append(name)
    with_subpackages = sorted({str(init.parent.relative_to(kit)).replace("/", ".")
                               for name in packages for init in (kit / name).rglob("__init__.py")
                               if "__pycache__" not in init.parts})
    return with_subpackages, modules


def setup_cell(repo_url: str | None, shipped: tuple[str, ...] = PACKAGES) -> nbformat.NotebookNode:
    """The notebook's set-up cell: installs the lab's packages (`shipped`, the top-level names the
    repository holds) where they are missing."""
    text = _template("setup_cell.py", REPOSITORY=repr(repo_url), SHIPPED=", ".join(f'"{n}"' for n in shipped))
    cell = nbformat.v4.new_code_cell(text.rstrip("\n"))
    cell.metadata["tags"] = [SETUP_CELL_TAG]
    return cell


def _fit(cell: nbformat.NotebookNode, notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """`cell` as `notebook`'s format version has it: cell ids only from nbformat 4.5 on."""
    if (notebook.nbformat, notebook.nbformat_minor) < (4, 5):
        cell.pop("id", None)
    return cell


def add_setup_cell(notebook: nbformat.NotebookNode, repo_url: str | None,
                   shipped: tuple[str, ...] = PACKAGES) -> nbformat.NotebookNode:
    """Insert :func:`setup_cell` before the first code cell (once: an existing one is replaced)."""
    notebook.cells = [c for c in notebook.cells if SETUP_CELL_TAG not in c.get("metadata", {}).get("tags", [])]
    first_code = next((i for i, c in enumerate(notebook.cells) if c.cell_type == "code"), len(notebook.cells))
    notebook.cells.insert(first_code, _fit(setup_cell(repo_url, shipped), notebook))
    return notebook


def write(out: Path, notebook: Path, repo_url: str | None = None, kit: Path = KIT) -> None:
    """Make `out`, which holds the student `notebook` and its ``assets/``, a student repository."""
    packages, modules = _shipped(kit)
    tops = sorted({p.split(".")[0] for p in packages})
    for name in tops:
        shutil.rmtree(out / name, ignore_errors=True)
        shutil.copytree(kit / name, out / name, ignore=_IGNORE)
    for name in modules:
        shutil.copyfile(kit / f"{name}.py", out / f"{name}.py")
    pyproject = _template("pyproject.toml", NAME=notebook.stem,
                          PACKAGES="[" + ", ".join(f'"{p}"' for p in packages) + "]",
                          MODULES="py-modules = [" + ", ".join(f'"{m}"' for m in modules) + "]" if modules else "")
    (out / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    for name, target in FILES.items():
        (out / target).parent.mkdir(parents=True, exist_ok=True)
        (out / target).write_text(_template(name, NOTEBOOK=notebook.name), encoding="utf-8")
    student = nbformat.read(notebook, as_version=4)
    nbformat.write(add_setup_cell(student, repo_url, tuple(tops + modules)), notebook)
