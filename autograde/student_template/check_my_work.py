"""Run your notebook from the top, in a fresh kernel, and say how its visible tests do.

    python check_my_work.py [lab3.ipynb] [--timeout SECONDS]

(`make check` runs it.) The notebook runs headless, as a grader runs it: a new Python kernel,
seeded first, every cell in order, the next cell run even when one fails. Your file is not
changed. Then each test cell you can see is listed with its points and, when it fails, why. The
grader also runs hidden tests, so passing every test here is necessary, not sufficient.

Exit status: 0 when every visible test passes, 1 when one fails, 2 when the notebook could not run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# Seeded as the grader seeds: the course's own seeding when the lab ships it, else the same fixed seeds.
SEED = """\
try:
    import labseed
except ImportError:
    import random
    import numpy
    import torch
    random.seed(0)
    numpy.random.seed(0)
    torch.manual_seed(0)
    torch.set_num_threads(1)
else:
    labseed.seed_everything()
"""


def kernel_folder(root: Path) -> Path:
    """A ``python3`` kernelspec running this Python, whatever other kernels are installed."""
    folder = root / "kernels" / "python3"
    folder.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python"}
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return root


def grading(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def failure(cell) -> str | None:
    """The first line of the error a cell raised, or None when it ran cleanly."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            message = str(output.get("evalue", "")).strip().splitlines()
            return f"{output.get('ename', 'Error')}: {message[0] if message else '(no message)'}"
    return None


def run(path: Path, timeout: int):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(SEED))
    with tempfile.TemporaryDirectory(prefix="check-my-work-") as scratch:
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            filter(None, [str(kernel_folder(Path(scratch))), os.environ.get("JUPYTER_PATH")]))
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        log = Path(scratch) / "kernel.log"
        with open(log, "w", encoding="utf-8") as kernel_output:  # the kernel's own start-up messages
            try:
                client.execute(stdout=kernel_output, stderr=kernel_output)
            except Exception as error:
                said = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(" / ".join([str(error)] + said)) from error
    return notebook.cells[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", default="lab3.ipynb", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="most seconds one cell may run (default: 600)")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        print(f"check_my_work: no notebook at {args.notebook}")
        return 2
    print(f"running {args.notebook} from the top in a fresh kernel (a few minutes) ...", flush=True)
    started = time.monotonic()
    try:
        cells = run(args.notebook.resolve(), args.timeout)
    except Exception as error:  # a kernel that dies or a cell that runs past the timeout
        print(f"check_my_work: the notebook could not run to the end: {type(error).__name__}: {error}")
        return 2
    print(f"ran in {time.monotonic() - started:.0f} s\n")

    earned = at_stake = 0.0
    failed = 0
    for number, cell in enumerate(cells, start=1):
        meta = grading(cell)
        error = failure(cell)
        if meta.get("grade") and cell.get("cell_type") == "code":
            points = float(meta.get("points", 0))
            at_stake += points
            if error is None:
                earned += points
            else:
                failed += 1
            verdict = "passed" if error is None else f"FAILED  {error}"
            print(f"  {meta.get('grade_id', f'cell {number}'):<28} {points:>5g} points  {verdict}")
        elif error is not None:
            print(f"  (cell {number}, not a test)             {error}")
    print(f"\nvisible tests: {earned:g} of {at_stake:g} points pass"
          + ("" if not failed else f"; {failed} test(s) fail"))
    print("The grader also runs hidden tests: their points are not counted here.")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
