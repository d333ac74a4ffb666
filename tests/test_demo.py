"""`make demo` end to end on the real lab: reference run, release, crafted submissions, grades.

This is the README's main job; it must finish cleanly (exit 0, nothing on stderr) and give
each example submission the grade it deserves.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_grades_the_example_submissions_of_the_real_lab(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "autograde", "demo", "--out", str(out),
                           "--workers", "2", "--cache", str(tmp_path / "cache")],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stderr == ""
    assert (out / "release" / "lab3.ipynb").is_file()

    with open(out / "grades" / "grades.csv", newline="") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"perfect", "partial", "blank", "tampered", "kernel_death", "damaged_json"}
    score = {name: float(row["score"]) for name, row in rows.items()}
    assert {float(row["max_score"]) for row in rows.values()} == {100.0}

    assert score["perfect"] == 100 and rows["perfect"]["status"] == "ok"
    assert score["blank"] == 0 and rows["blank"]["status"] == "ok"
    assert score["tampered"] == 0, "editing the test cells must not gain points"
    assert 0 < score["partial"] < 100
    assert rows["kernel_death"]["status"] == "kernel died" and score["kernel_death"] < 100
    assert rows["damaged_json"]["status"] == "invalid notebook" and score["damaged_json"] == 0
    for name in rows:
        if name != "damaged_json":
            assert (out / "grades" / "feedback" / f"{name}.html").is_file()
