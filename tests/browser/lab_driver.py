"""Drive JupyterLab 4 in Chromium the way a student does: with the mouse and the menus.

:class:`JupyterLab` starts ``jupyter lab`` from this venv on a free localhost port, with a
temporary root folder, a token and its own Jupyter config, data and runtime folders (so a TA's
own settings and kernels play no part). :class:`NotebookPage` opens one notebook in a Chromium
page and runs its cells through the *Run* menu; :meth:`NotebookPage.cells` reads back what
JupyterLab rendered, one :class:`RenderedCell` per notebook cell, in order.

Only two settings differ from a fresh install, both for the test's sake and both written in
:meth:`JupyterLab._write_settings`: the notebook renders every cell (``windowingMode: none``,
so cells scrolled out of view stay in the page to be read), and the news announcements
plugin, which would ask to reach the internet, is off.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STARTUP_SECONDS = 90
KERNEL_START_SECONDS = 120
CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"  # the open notebook's cells


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JupyterLab:
    """``jupyter lab`` serving `root` on 127.0.0.1; its log goes to `home`/jupyterlab.log."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.home = root, home
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.log_path = home / "jupyterlab.log"
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: str) -> str:
        """The address that opens `notebook` (a path under the root) in JupyterLab."""
        return f"{self.base_url}/lab/tree/{notebook}?token={self.token}"

    def _write_settings(self) -> dict:
        config, data, kernels = self.home / "config", self.home / "data", self.home / "kernels"
        tracker = config / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        (config / "labconfig").mkdir(parents=True)
        (config / "labconfig" / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        # The kernel a student gets from `make lab`: this venv's Python, named python3.
        (kernels / "kernels" / "python3").mkdir(parents=True)
        (kernels / "kernels" / "python3" / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python"}))
        # No JUPYTER_* of the TA's, and no MPLBACKEND (`make` exports Agg): the kernel starts
        # as in a plain `jupyter lab`, and the notebook's own `%matplotlib inline` picks the backend.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MPLBACKEND"))}
        env.update(JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(data),
                   JUPYTER_RUNTIME_DIR=str(self.home / "runtime"), JUPYTER_PATH=str(kernels),
                   IPYTHONDIR=str(self.home / "ipython"))
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    def start(self) -> "JupyterLab":
        env = self._write_settings()
        command = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                   "--ServerApp.port_retries=0", f"--ServerApp.root_dir={self.root}",
                   f"--IdentityProvider.token={self.token}",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   "--LabApp.extension_manager=readonly"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            command.append("--allow-root")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, cwd=self.root, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.process.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/status?token={self.token}",
                                            timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not answer in {STARTUP_SECONDS} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # jupyter shuts its kernels down on SIGTERM
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class RenderedCell:
    """What JupyterLab shows for one cell: its prompt, outputs and pictures."""

    index: int
    kind: str                 # "code", "markdown" or "raw"
    prompt: str               # "[12]:", "[*]:", "[ ]:" (code cells), "" otherwise
    text: str                 # the rendered outputs' text (code), the rendered text (markdown)
    mime_types: list[str]     # data-mime-type of each rendered output, in order
    images: int               # <img> elements in the outputs (code) or the body (markdown)
    broken_images: int        # of which not loaded or with no pixels
    stderr: list[str]         # text of each output rendered as stderr (errors, stderr streams)
    coloured: list[str]       # text of the ANSI-coloured spans in the outputs
    formulas: int             # formulas typeset by MathJax (markdown)

    @property
    def execution_count(self) -> int | None:
        digits = self.prompt.strip("[]: ")
        return int(digits) if digits.isdigit() else None


_READ_CELLS = """
() => Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell'))
    .map((cell, index) => {
  const kind = cell.classList.contains('jp-CodeCell') ? 'code'
             : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw';
  const area = kind === 'code' ? cell.querySelector('.jp-OutputArea') : cell.querySelector('.jp-MarkdownOutput');
  const outputs = kind === 'code' ? Array.from(cell.querySelectorAll('.jp-OutputArea-output')) : [];
  const images = area ? Array.from(area.querySelectorAll('img')) : [];
  const stderr = outputs.filter(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr');
  const prompt = kind === 'code' ? (cell.querySelector('.jp-InputPrompt')?.innerText || '').trim() : '';
  return {
    index, kind, prompt,
    text: area ? area.innerText : '',
    mime_types: outputs.map(o => o.getAttribute('data-mime-type') || ''),
    images: images.length,
    broken_images: images.filter(i => !i.complete || i.naturalWidth === 0).length,
    stderr: stderr.map(o => o.innerText),
    coloured: area ? Array.from(area.querySelectorAll('span[class*="ansi-"]')).map(s => s.innerText) : [],
    formulas: area ? area.querySelectorAll('mjx-container').length : 0,
  };
})
"""


_ANY_QUEUED = """
() => Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt'))
          .some(p => p.innerText.includes('*'))
"""


_KERNEL_READY = """
() => /Python 3 \\| Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText || '')
"""

_IS_ACTIVE = """
(index) => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')[index]
              ?.classList.contains('jp-mod-active')
"""

_RAN = """
(index) => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const prompt = panel.querySelectorAll('.jp-Notebook .jp-Cell')[index].querySelector('.jp-InputPrompt');
  const prompts = Array.from(panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt'));
  const status = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status');
  return /\\[\\d+\\]/.test(prompt.innerText) && !prompts.some(p => p.innerText.includes('*')) && status === 'idle';
}
"""


_STARTED = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const prompts = Array.from(panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt'));
  const status = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status');
  return status !== 'idle' || prompts.some(p => /\\[(\\*|\\d+)\\]/.test(p.innerText));
}
"""

#: Seconds for a menu command to show that it ran (a cell queued, or the kernel busy).
STARTED_SECONDS = 30


class NotebookPage:
    """One notebook opened in JupyterLab in a Chromium `page` (a Playwright ``Page``)."""

    def __init__(self, page, lab: JupyterLab, notebook: str) -> None:
        self.page, self.lab, self.notebook = page, lab, notebook

    def open(self) -> "NotebookPage":
        self.page.goto(self.lab.url(self.notebook))
        self.page.locator(CELLS).first.wait_for(timeout=STARTUP_SECONDS * 1000)
        # The toolbar's indicator says "idle" before a kernel exists: wait for the status bar.
        self.page.wait_for_function(_KERNEL_READY, timeout=KERNEL_START_SECONDS * 1000, polling=100)
        self.wait_until_idle(KERNEL_START_SECONDS, settle=0.5)
        return self

    # --- running cells through the UI -------------------------------------------------------

    def _menu(self, menu: str, item: str) -> None:
        self.page.locator("#jp-MainMenu").get_by_text(menu, exact=True).click()
        self.page.locator(".lm-Menu-content").get_by_text(item, exact=True).click()

    def run_all(self, timeout: float) -> None:
        """*Run > Run All Cells*, then wait until the kernel is done (see :meth:`wait_until_ran`)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        first = next(c.index for c in self.cells() if c.kind == "code")
        self._menu("Run", "Run All Cells")
        try:
            self.page.wait_for_function(_STARTED, timeout=STARTED_SECONDS * 1000, polling=100)
        except PlaywrightTimeout:
            # Nothing queued and the kernel idle: on a loaded machine the click can land before
            # the menu takes it. Nothing ran, so asking again runs nothing twice.
            self.page.keyboard.press("Escape")
            self._menu("Run", "Run All Cells")
        self.wait_until_ran(first, timeout)

    def run_from(self, index: int, timeout: float) -> None:
        """Select cell `index` with the mouse, *Run > Run Selected Cell and All Below*, wait.

        On the last cell, where JupyterLab disables that item, *Run Selected Cell and Do not
        Advance* (plain *Run Selected Cell* would add a new cell below)."""
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").click()
        self.page.wait_for_function(_IS_ACTIVE, arg=index, timeout=10_000)
        last = index == self.page.locator(CELLS).count() - 1
        self._menu("Run", "Run Selected Cell and Do not Advance" if last else "Run Selected Cell and All Below")
        self.wait_until_ran(index, timeout)

    def kernel_status(self) -> str:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator") \
            .first.get_attribute("data-status") or ""

    def wait_until_idle(self, timeout: float, settle: float = 1.0) -> None:
        """Wait until the kernel has been idle with no cell queued (``[*]``) for `settle` s."""
        deadline, idle_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.kernel_status() != "idle" or self.page.evaluate(_ANY_QUEUED):
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= settle:
                return
            self.page.wait_for_timeout(100)
        raise TimeoutError(f"the kernel was still busy after {timeout:.0f} s "
                           f"(status {self.kernel_status()!r})")

    def wait_until_ran(self, index: int, timeout: float) -> None:
        """Wait until code cell `index`, which had not run, has an execution count, no cell is
        queued (``[*]``) and the kernel is idle: JupyterLab marks every cell a command queues at
        once, so this is the end of the command, with no guessing at delays."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(_RAN, arg=index, timeout=timeout * 1000, polling=100)
        except PlaywrightTimeout:
            raise TimeoutError(f"cell {index} and the cells it queued did not finish in {timeout:.0f} s "
                               f"(kernel {self.kernel_status()!r})") from None

    # --- reading what is rendered -----------------------------------------------------------

    def cells(self) -> list[RenderedCell]:
        return [RenderedCell(**cell) for cell in self.page.evaluate(_READ_CELLS)]

    def cell(self, index: int):
        """The Playwright locator of cell `index`."""
        return self.page.locator(CELLS).nth(index)


def new_context(browser, allowed_prefix: str):
    """A fresh browser context that may only load `allowed_prefix`, data:, blob: and file: URLs;
    what it blocked is in ``context.outside_requests``."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.outside_requests = []

    def only_local(route):
        url = route.request.url
        if url.startswith((allowed_prefix, "data:", "file:", "blob:")):
            route.continue_()
        else:
            context.outside_requests.append(url)
            route.abort()

    context.route("**/*", only_local)
    return context


def release_student_notebook(out: Path) -> Path:
    """``python -m autograde release --out OUT``, as an instructor runs it; the notebook's path."""
    done = subprocess.run([sys.executable, "-m", "autograde", "release", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out / "lab3.ipynb"
