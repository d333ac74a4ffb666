"""The feedback page: the student's own executed notebook and one row per test, nothing secret.

Everything that came from the run (cell sources, outputs, messages) is untrusted text: it is
escaped with ``html.escape`` and cut to a size; pictures are shown only as PNG data whose bytes
were checked. No HTML, JavaScript or style from the submission reaches the page. The tests'
code is never shown, only the grade id, the points and the assertion message; with
``show_hidden_tests`` (for instructors) the tests' full source follows the table.
"""
from __future__ import annotations

import base64
import binascii
import html
import re

from nbformat import NotebookNode

MAX_TEXT = 20_000  # characters per output shown
MAX_IMAGE = 2_000_000  # bytes per picture shown
MAX_CELLS = 500
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STYLE = ("body{font-family:sans-serif;max-width:60em;margin:auto}pre{background:#f6f6f6;padding:.5em;"
          "white-space:pre-wrap}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
          ".fail{color:#a00}.pass{color:#070}")


def _text(value: object, limit: int = MAX_TEXT) -> str:
    text = "".join(value) if isinstance(value, list) else str(value)
    text = _ANSI.sub("", text)
    if len(text) > limit:
        text = text[:limit] + f"\n[... cut: {len(text) - limit} more characters]"
    return html.escape(text)


def _png(data: object) -> str:
    if not isinstance(data, str) or len(data) > MAX_IMAGE * 4 // 3:
        return ""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return ""
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return ""
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(raw).decode()}">'


def _output(output: NotebookNode) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return f"<pre>{_text(output.get('text', ''))}</pre>"
    if kind == "error":
        return f"<pre class=fail>{_text(chr(10).join(map(str, output.get('traceback', []))))}</pre>"
    if kind in ("execute_result", "display_data"):
        data = output.get("data", {}) if isinstance(output.get("data"), dict) else {}
        picture = _png(data.get("image/png"))
        return picture or f"<pre>{_text(data.get('text/plain', ''))}</pre>"
    return ""


def _cell(cell: NotebookNode) -> str:
    export = cell.get("metadata", {}).get("autograde", {}).get("export") if cell.cell_type == "code" else None
    if export:
        return f"<p><em>Test cell {html.escape(str(export))}: graded by the grader, see the table above.</em></p>"
    if cell.cell_type == "markdown":
        return f"<pre>{_text(cell.source)}</pre>"
    if cell.cell_type != "code":
        return ""
    outputs = "".join(_output(output) for output in cell.get("outputs", [])[:50])
    return f"<h4>In:</h4><pre>{_text(cell.source)}</pre>{outputs}"


def render(student_id: str, score: float, max_score: float, results: list[dict], notes: list[str],
           executed: NotebookNode | None, hidden_tests: dict[str, str] | None = None) -> str:
    """The whole page. `hidden_tests` (grade id -> source) only for ``--show-hidden-tests``."""
    rows = "".join(
        f"<tr><td>{html.escape(r['grade_id'])}</td><td>{r['points']:g} / {r['max_points']:g}</td>"
        f"<td class={'pass' if r['passed'] else 'fail'}>{'passed' if r['passed'] else 'failed'}</td>"
        f"<td>{_text(r['message'], 1_000)}{''.join('<br>' + _text(n, 1_000) for n in r['notes'])}</td></tr>"
        for r in results)
    parts = [f"<!DOCTYPE html><html><head><meta charset=utf-8><title>Feedback: {html.escape(student_id)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>Feedback: {html.escape(student_id)}</h1>",
             f"<p>Score: {score:g} / {max_score:g}</p>",
             "".join(f"<p>{_text(note, 1_000)}</p>" for note in notes),
             "<table><tr><th>test</th><th>points</th><th>result</th><th>message</th></tr>", rows, "</table>"]
    if hidden_tests:
        parts.append("<h2>Tests (with hidden parts)</h2>")
        parts += [f"<h4>{html.escape(gid)}</h4><pre>{_text(code)}</pre>" for gid, code in hidden_tests.items()]
    parts.append("<h2>Your notebook, as it ran</h2>")
    if executed is None:
        parts.append("<p>The run did not finish: no executed notebook.</p>")
    else:
        parts += [_cell(cell) for cell in executed.cells[:MAX_CELLS]]
    parts.append("</body></html>")
    return "".join(parts)
