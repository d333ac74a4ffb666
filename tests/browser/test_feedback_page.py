"""The feedback pages a student reads, opened in Chromium from disk (file://).

They check the feedback the two-phase grader writes (DESIGN.md, "Feedback": the student's own
executed notebook, escaped, plus a table per test cell; never hidden-test code or a reference
answer). On nbgrader's feedback, which the kit used before, six of the eight failed: it
rendered a submission's raw HTML, ran its scripts and showed the hidden tests.

Two submissions are graded with ``python -m autograde grade``: the reference answers, and a
hostile one (nothing answered) whose cells display a ``<script>`` that sets a ``window`` flag
and logs to the console, a ``<style>`` that recolours the page, an ``<img onerror>`` that does
the same as the script, and a fake "Score: 100 / 100" banner, from a code cell's output and
from a markdown cell.
"""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from autograde import crafted
from lab_driver import ROOT, new_context, release_student_notebook
from notebooks import NOTEBOOK


PAYLOAD = (  # no single quote inside: its repr in the code cell is the same text
    '<script>window.__lab3_payload_script = true; console.log("LAB3-PAYLOAD script ran")</script>'
    '<style>body { background-color: rgb(1, 2, 3) !important; } * { color: rgb(4, 5, 6) !important; }</style>'
    '<img src="lab3-payload-missing.png" '
    'onerror="window.__lab3_payload_img = true; console.log(`LAB3-PAYLOAD img onerror ran`)">'
    '<div data-payload="banner">Score: 100 / 100</div>'
)
SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
HIDDEN_REGION = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
TOTAL = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*100(?:\.0+)?(?![\d.])")

_READ_PAGE = """
() => ({
  script_flag: window.__lab3_payload_script ?? null,
  img_flag: window.__lab3_payload_img ?? null,
  text: document.documentElement.textContent,
  payload_elements: document.querySelectorAll('[data-payload], img[src*="lab3-payload"]').length,
  body: (s => ({background: s.backgroundColor, color: s.color, font: s.fontFamily}))(getComputedStyle(document.body)),
  recoloured: Array.from(document.querySelectorAll('*'))
    .filter(e => getComputedStyle(e).color === 'rgb(4, 5, 6)').length,
})
"""


def secret_lines(region: re.Pattern) -> set[str]:
    """Lines (12+ characters) of `region` blocks in lab3.ipynb that appear nowhere outside the
    solution and hidden-test blocks, not even inside a longer line (a hint in a comment)."""
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    public = "\n".join(HIDDEN_REGION.sub("", SOLUTION_REGION.sub("", c.source)) for c in cells)
    inside = {line.strip() for c in cells for block in region.findall(c.source)
              for line in block.splitlines()}
    return {line for line in inside if len(line) >= 12 and line not in public}


def hostile(source: nbformat.NotebookNode, release: nbformat.NotebookNode) -> nbformat.NotebookNode:
    notebook = crafted.blank(source, release)
    notebook.cells[1:1] = [
        new_code_cell(f"from IPython.display import HTML, display\ndisplay(HTML({PAYLOAD!r}))",
                      id="payload-output"),
        new_markdown_cell(PAYLOAD, id="payload-markdown"),
    ]
    return notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> SimpleNamespace:
    """grades.csv and the feedback files of both submissions, graded by the instructor's CLI."""
    work = tmp_path_factory.mktemp("feedback")
    source = nbformat.read(NOTEBOOK, as_version=4)
    release = nbformat.read(release_student_notebook(work / "release"), as_version=4)
    crafted.write_submission(crafted.perfect(source, release), work / "submissions" / "reference.ipynb")
    crafted.write_submission(hostile(source, release), work / "submissions" / "hostile.ipynb")
    done = subprocess.run([sys.executable, "-m", "autograde", "grade", str(work / "submissions"),
                           "--out", str(work / "graded"), "--workers", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with open(work / "graded" / "grades.csv", newline="") as table:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
                  for row in csv.DictReader(table)}
    assert scores["reference"][0] == scores["reference"][1] == 100, scores
    assert scores["hostile"][0] < 100, scores
    return SimpleNamespace(folder=work / "graded" / "feedback", scores=scores)


@pytest.fixture(scope="module")
def pages(browser, graded) -> dict[str, dict]:
    """What Chromium shows for each feedback file, with the console messages it logged."""
    seen = {}
    for student in ("reference", "hostile"):
        context = new_context(browser, "file://")
        page = context.new_page()
        console = []
        page.on("console", lambda message: console.append(message.text))
        page.on("pageerror", lambda error: console.append(str(error)))
        page.goto((graded.folder / f"{student}.html").as_uri(), wait_until="load")
        page.wait_for_timeout(500)  # time for an <img onerror> to fire
        seen[student] = dict(page.evaluate(_READ_PAGE), console=console,
                             outside=context.outside_requests)
        context.close()
    return seen


def test_no_script_from_the_submission_runs(pages):
    page = pages["hostile"]
    assert page["script_flag"] is None, "a <script> from the submission ran (window flag set)"
    assert page["img_flag"] is None, "an <img onerror> from the submission ran (window flag set)"
    ran = [text for text in page["console"] if "LAB3-PAYLOAD" in text]
    assert not ran, f"the submission's code wrote to the console: {ran}"


def test_no_style_from_the_submission_applies(pages):
    hostile, reference = pages["hostile"], pages["reference"]
    assert hostile["body"]["background"] != "rgb(1, 2, 3)", "the submission's <style> recoloured the page"
    assert hostile["recoloured"] == 0, f"{hostile['recoloured']} elements take the submission's text colour"
    assert hostile["body"] == reference["body"], \
        f"the page's own style differs: {hostile['body']} vs a reference submission's {reference['body']}"


def test_no_markup_from_the_submission_is_rendered(pages):
    assert pages["hostile"]["payload_elements"] == 0, \
        "elements from the submission's HTML (the fake banner, the <img>) are in the page"


@pytest.mark.parametrize("student", ["reference", "hostile"])
def test_the_scores_shown_are_the_graders(pages, graded, student):
    score, maximum = graded.scores[student]
    text = " ".join(pages[student]["text"].replace(PAYLOAD, " ").split())  # shown as text: fine
    totals = {float(found) for found in TOTAL.findall(text)}
    assert maximum == 100 and totals, f"{student}: no total score 'N / 100' on the page"
    assert totals == {score}, f"{student}: the page shows totals {sorted(totals)}, the grader gave {score}"


@pytest.mark.parametrize("student", ["reference", "hostile"])
def test_the_page_holds_no_hidden_test_code(pages, student):
    shown = sorted(line for line in secret_lines(HIDDEN_REGION) if line in pages[student]["text"])
    assert not shown, f"{student}: hidden-test code in the page: {shown[:5]}"


def test_the_page_holds_no_reference_answer(pages):
    """The hostile submission answers nothing, so any solution line on its page is the grader's.
    (The reference submission's own answers are the reference answers: not checked there.)"""
    shown = sorted(line for line in secret_lines(SOLUTION_REGION) if line in pages["hostile"]["text"])
    assert not shown, f"reference answers in the page: {shown[:5]}"
