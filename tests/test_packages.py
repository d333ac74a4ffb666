"""Each list of the kit's packages is derived from ``autograde.packages`` and is what it should be:
the student repository ships the helpers and the seed, the sandbox shows them and
``autograde/run`` alone of the grader (never the check), the Gradescope zip and the ledger's
digest cover the whole kit."""
from __future__ import annotations

from pathlib import Path

from autograde import gradescope_zip, ledger, packages, student_repo
from autograde.jobs import Limits
from autograde.run import sandbox

ROOT = Path(__file__).resolve().parents[1]


def test_the_packages_are_named_once():
    assert packages.STUDENT_PACKAGES == ("verifier", "circle", "mnist_tools")
    assert packages.SANDBOX_PACKAGES == ("verifier", "circle", "mnist_tools", "labseed")
    assert packages.KIT_PACKAGES == ("verifier", "circle", "mnist_tools", "labseed", "autograde")
    assert student_repo.PACKAGES is packages.STUDENT_PACKAGES
    assert student_repo.OPTIONAL_MODULES is packages.OPTIONAL_MODULES
    assert sandbox.VISIBLE_PACKAGES is packages.SANDBOX_PACKAGES
    assert ledger.KIT_PACKAGES is gradescope_zip.KIT_PACKAGES is packages.KIT_PACKAGES


def test_the_sandbox_shows_the_helpers_and_only_the_run_part_of_the_grader():
    kit = ROOT.resolve()
    inside = {Path(host).relative_to(kit).as_posix() for host, _ in sandbox.read_only_paths(None)
              if Path(host).resolve().is_relative_to(kit) and not Path(host).resolve().is_relative_to(kit / ".venv")}
    assert inside == {"verifier", "circle", "mnist_tools", "labseed", "autograde/__init__.py", "autograde/run"}


def test_the_student_repository_ships_the_helpers_and_the_seed():
    packages_shipped, modules = student_repo._shipped(ROOT)
    assert {name.split(".")[0] for name in packages_shipped} | set(modules) == {
        "verifier", "circle", "mnist_tools", "labseed"}
    assert not any(name.startswith("autograde") for name in packages_shipped + modules)


def test_the_gradescope_zip_ships_the_whole_kit(tmp_path):
    source = tmp_path / "lab.ipynb"
    source.write_bytes((ROOT / "tests" / "fixtures" / "lab3.ipynb").read_bytes())
    names = [name for name, _, _ in gradescope_zip.zip_entries(source, Limits(), "autograde-run")]
    tops = {name.split("/")[1] for name in names if name.startswith("kit/") and name.count("/") > 1}
    assert tops == {"verifier", "circle", "mnist_tools", "labseed", "autograde"}
    assert "kit/autograde/check/runner.py" in names and "kit/autograde/gradescope_files/setup.sh" in names


def test_the_ledger_digest_changes_with_every_kit_package(tmp_path, monkeypatch):
    """A change in any of the kit's packages (the seed included) makes every grade stale."""
    for package in packages.KIT_PACKAGES:
        copy = tmp_path / package
        for name in packages.KIT_PACKAGES:
            (copy / name).mkdir(parents=True)
            (copy / name / "__init__.py").write_text("")
        fake = copy / "autograde" / "ledger.py"
        monkeypatch.setattr(ledger, "__file__", str(fake))
        ledger.kit_digest.cache_clear()
        before = ledger.kit_digest()
        (copy / package / "__init__.py").write_text("# changed\n")
        ledger.kit_digest.cache_clear()
        assert ledger.kit_digest() != before, package
    ledger.kit_digest.cache_clear()
