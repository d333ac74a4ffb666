"""The reference notebook as a student runs it: JupyterLab 4 in Chromium, *Run > Run All Cells*.

What JupyterLab renders is compared with the same notebook run headless (nbclient): every
code cell ran, nothing is rendered as an error or on stderr, every picture of the headless run
is an image that loaded, the training cells show their live view and end with the final loss,
the verdicts of ``verify`` read PASS / FAIL, in colour, and the formulas of the text are typeset.
"""
from __future__ import annotations

import re
import shutil
from types import SimpleNamespace

import pytest
from PIL import Image, ImageStat

from lab_driver import NotebookPage, new_context
from notebooks import ASSETS, NOTEBOOK

RUN_ALL_SECONDS = 420
VERDICT = re.compile(r"^(?:\x1b\[[\d;]*m)+(PASS|FAIL)\x1b\[0m:", re.M)   # a printed verify() result
FINAL_LOSS = re.compile(r"^(\d+) epochs in [\d.]+ s: (train_loss [\d.]+.*)$", re.M)
TERMINAL_CODE = re.compile(r"\x1b|\[\d+(;\d+)*m")

# Records each state of the watched cells' outputs while they run (the live training view).
_WATCH = """
(indexes) => {
  const cells = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell');
  window.__frames = {};
  for (const index of indexes) {
    const frames = window.__frames[index] = [];
    const area = cells[index].querySelector('.jp-OutputArea');
    new MutationObserver(() => {
      const state = {text: area.innerText,
                     pictures: Array.from(area.querySelectorAll('img'))
                       .map(i => i.src.length + ':' + i.src.slice(-64))};
      const last = frames[frames.length - 1];
      if (!last || last.text !== state.text || last.pictures.join() !== state.pictures.join()) frames.push(state);
    }).observe(cells[index], {subtree: true, childList: true, attributes: true, characterData: true});
  }
}
"""


def outputs_text(cell) -> str:
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                     for o in cell.get("outputs", []))


def pictures(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


@pytest.fixture(scope="module")
def headless(executed_reference):
    return executed_reference


@pytest.fixture(scope="module")
def training_cells(headless) -> list[int]:
    return [i for i, c in enumerate(headless.cells) if c.cell_type == "code" and ".fit(" in c.source]


@pytest.fixture(scope="module")
def run(browser, lab, lab_root, training_cells):
    """The reference notebook opened in JupyterLab and run through *Run > Run All Cells*."""
    folder = lab_root / "reference"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / "lab3.ipynb")
    shutil.copytree(ASSETS, folder / "assets")
    context = new_context(browser, lab.base_url)
    page = context.new_page()
    notebook = NotebookPage(page, lab, "reference/lab3.ipynb").open()
    page.evaluate(_WATCH, training_cells)
    notebook.run_all(RUN_ALL_SECONDS)
    yield SimpleNamespace(notebook=notebook, cells=notebook.cells(), context=context,
                          frames=page.evaluate("window.__frames"))
    context.close()


@pytest.fixture(scope="module")
def rendered(run, headless):
    cells = run.cells
    assert len(cells) == len(headless.cells), "JupyterLab shows a different number of cells"
    return cells


def test_every_code_cell_ran_and_has_an_execution_count(rendered):
    not_run = [c.index for c in rendered if c.kind == "code" and c.execution_count is None]
    assert not not_run, f"cells without an execution count after Run All: {not_run}"
    counts = [c.execution_count for c in rendered if c.kind == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"cells ran out of order: {counts}"


def test_no_error_or_stderr_output_is_rendered(rendered):
    noisy = {c.index: c.stderr for c in rendered if c.stderr or
             any("stderr" in m or "error" in m for m in c.mime_types)}
    assert not noisy, f"cells showing an error or stderr output: {noisy}"


def test_every_picture_of_the_headless_run_is_rendered_as_an_image(rendered, headless):
    expected = {i: pictures(c) for i, c in enumerate(headless.cells) if pictures(c)}
    shown = {c.index: c.images for c in rendered if c.kind == "code" and c.images}
    assert shown == expected, f"pictures per cell, in JupyterLab {shown} vs headless {expected}"
    assert sum(expected.values()) >= 15
    in_text = {i: c.source.count("](assets/") for i, c in enumerate(headless.cells)
               if c.cell_type == "markdown" and "](assets/" in c.source}
    markdown = {c.index: c.images for c in rendered if c.kind == "markdown" and c.images}
    assert markdown == in_text, f"pictures from assets/ in the text: shown {markdown}, in the source {in_text}"
    broken = {c.index: c.broken_images for c in rendered if c.broken_images}
    assert not broken, f"images that did not load (no pixels): {broken}"


def test_training_cells_show_a_live_view_and_end_with_the_final_loss(run, rendered, headless,
                                                                     training_cells):
    frames = run.frames
    assert len(training_cells) == 2, training_cells
    for index in training_cells:
        seen = [state for state in frames[str(index)] if state["text"] or state["pictures"]]
        code = "\n".join(line for line in headless.cells[index].source.splitlines()
                         if not line.lstrip().startswith("#"))
        epochs = int(re.search(r"max_epochs=(\d+)", code).group(1))
        assert seen and seen[0]["text"].startswith(f"training for {epochs} epochs"), \
            f"cell {index}: the live view did not start with 'training for {epochs} epochs...': {seen[:1]}"
        final = FINAL_LOSS.search(rendered[index].text)
        assert final and int(final.group(1)) == epochs, \
            f"cell {index} does not end with the final loss: {rendered[index].text!r}"
        assert rendered[index].images == 1, f"cell {index}: the live view left {rendered[index].images} pictures"
        headless_final = FINAL_LOSS.search(outputs_text(headless.cells[index]))
        assert headless_final and final.group(2) == headless_final.group(2), \
            f"cell {index}: final loss {final.group(2)!r} in JupyterLab, headless {headless_final}"
    longest = training_cells[-1]  # MNIST: several seconds, so several drawings
    drawings = {p for state in frames[str(longest)] for p in state["pictures"]}
    assert len(drawings) >= 2, f"cell {longest}: the loss curve was drawn {len(drawings)} time(s), not live"


def test_verify_verdicts_show_as_coloured_pass_fail_text(rendered, headless):
    expected = {i: VERDICT.findall(outputs_text(c)) for i, c in enumerate(headless.cells)}
    expected = {i: words for i, words in expected.items() if words}
    assert len(expected) >= 3 and {"PASS", "FAIL"} <= {w for ws in expected.values() for w in ws}
    for index, words in expected.items():
        shown = re.findall(r"^(PASS|FAIL|UNKNOWN):", rendered[index].text, re.M)
        assert shown == words, f"cell {index}: verdicts {shown} in JupyterLab, {words} headless"
        assert [w for w in rendered[index].coloured if w in ("PASS", "FAIL")] == words, \
            f"cell {index}: the verdict is not coloured: {rendered[index].coloured}"


def test_the_formulas_in_the_text_are_typeset(rendered, headless):
    with_math = [i for i, c in enumerate(headless.cells) if c.cell_type == "markdown" and "$" in c.source]
    assert len(with_math) >= 5
    raw = {i: rendered[i].text[:120] for i in with_math if not rendered[i].formulas or "$" in rendered[i].text}
    assert not raw, f"markdown cells showing raw $...$ instead of formulas: {raw}"


def test_no_raw_terminal_codes_are_shown(rendered):
    raw = {c.index: c.text[:200] for c in rendered if TERMINAL_CODE.search(c.text)}
    assert not raw, f"terminal colour codes shown as text: {raw}"


def test_nothing_is_fetched_from_outside_localhost(run):
    assert run.context.outside_requests == [], "the page tried to reach the internet"


def not_blank(path) -> float:
    """The standard deviation of the picture's grey levels (0 for a blank picture)."""
    return ImageStat.Stat(Image.open(path).convert("L")).stddev[0]


def test_screenshots_of_the_first_picture_and_a_verdict_are_not_blank(run, rendered, headless,
                                                                      tmp_path_factory):
    notebook = run.notebook
    folder = tmp_path_factory.mktemp("screenshots")
    first_picture = next(c.index for c in rendered if c.kind == "code" and c.images)
    notebook.cell(first_picture).locator(".jp-OutputArea img").first.screenshot(
        path=folder / "first-picture.png")
    verdict = next(i for i, c in enumerate(headless.cells) if VERDICT.search(outputs_text(c)))
    notebook.cell(verdict).locator(".jp-OutputArea-output").first.screenshot(path=folder / "verdict.png")
    for name in ("first-picture.png", "verdict.png"):
        spread = not_blank(folder / name)
        assert spread > 10, f"{folder / name} looks blank (grey-level spread {spread:.1f})"
