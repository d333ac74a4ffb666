"""The documentation holds together: every relative link of the README, CONTRIBUTING.md,
``docs/`` and ``bench/`` pages reaches a file that exists (and, with ``#anchor``, a heading of
it), and neither the README nor any module of the kit's packages carries a dated benchmark run
(those live in ``bench/HISTORY.md``)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from autograde.packages import KIT_PACKAGES

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "bench" / "README.md",
                ROOT / "bench" / "HISTORY.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_a_file_and_heading(page):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert broken == []


def test_the_docs_have_a_page_per_audience():
    names = {page.name for page in (ROOT / "docs").glob("*.md")}
    assert {"students.md", "instructors.md", "security.md", "gradescope.md", "clusters.md", "install.md",
            "verifier.md", "cli.md"} <= names


def test_no_dated_benchmark_run_outside_bench_history():
    dated = [path.relative_to(ROOT).as_posix() for path in
             [ROOT / "README.md", *(path for package in KIT_PACKAGES for path in (ROOT / package).rglob("*.py"))]
             if DATE.search(path.read_text(encoding="utf-8"))]
    assert dated == []
