"""Grading in slices: ``grade --shard K/N`` then ``merge``, against one unsharded run.

The class (tests/conftest.py ``graded_class``) is graded as 1/3, 2/3 and 3/3; the merge must
equal the unsharded grades.csv byte for byte, with the same feedback and logs. Refusals (a shard
given twice, a student graded twice, shards of different N) and the report of missing students
are checked on fabricated shard outputs, without grading.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from autograde import shards
from grading_runs import CLASS_LIMITS, autograde, read_rows

EVERYONE = ["blank", "damaged_json", "empty", "no_notebook", "perfect", "two_notebooks"]
SLICES = {1: ["no_notebook"], 2: ["empty", "perfect"], 3: ["blank", "damaged_json", "two_notebooks"]}


@pytest.fixture(scope="module")
def sharded(graded_class, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    runs = {index: autograde("grade", graded_class["subs"], "--out", root / f"shard{index}", "--shard", f"{index}/3",
                             "--source", graded_class["source"], "--workers", "1", *CLASS_LIMITS,
                             "--cache", graded_class["cache"], cwd=root)
            for index in SLICES}
    merged = autograde("merge", *(root / f"shard{index}" for index in SLICES), "--out", root / "merged", cwd=root)
    return {"root": root, "runs": runs, "merged": merged, "class": graded_class}


def test_the_split_is_stable_and_by_student_id():
    assert {index: [s for s in EVERYONE if shards.slice_of(s, 3) == index] for index in SLICES} == SLICES
    assert shards.parse_shard("2/3").holds("perfect") and not shards.parse_shard("1/3").holds("perfect")
    assert all(shards.slice_of(s, 1) == 1 for s in EVERYONE)


def test_each_shard_grades_its_slice_and_says_so(sharded):
    for index, run in sharded["runs"].items():
        assert run.returncode == 0 and run.stderr == "", run.stderr
        out = sharded["root"] / f"shard{index}"
        assert sorted(read_rows(out / "grades.csv")) == SLICES[index]
        manifest = json.loads((out / shards.MANIFEST).read_text())
        assert manifest["shard"] == [index, 3] and manifest["finished"] is True
        assert manifest["students"] == SLICES[index] and manifest["class"] == EVERYONE


def test_merged_shards_equal_one_unsharded_run(sharded):
    merged, whole = sharded["root"] / "merged", sharded["class"]["out"]
    assert sharded["merged"].returncode == 0 and sharded["merged"].stderr == "", sharded["merged"].stderr
    assert (merged / "grades.csv").read_bytes() == (whole / "grades.csv").read_bytes()
    for folder in ("feedback", "logs"):
        assert sorted(p.name for p in (merged / folder).iterdir()) == sorted(p.name for p in (whole / folder).iterdir())
    for page in (whole / "feedback").iterdir():
        assert (merged / "feedback" / page.name).read_bytes() == page.read_bytes()
    with sqlite3.connect(merged / "gradebook.db") as db:
        students = {row[0] for row in db.execute("select id from student")}
    assert students == set(EVERYONE)


def test_bad_shard_arguments_are_refused(tmp_path):
    for text, message in (("4/3", "between 1 and N"), ("x", "K/N"), ("0/2", "between 1 and N")):
        result = autograde("grade", tmp_path, "--out", tmp_path / "out", "--shard", text, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, (text, result.stderr)


def test_merge_refuses_a_folder_that_is_not_a_shard(graded_class, tmp_path):
    result = autograde("merge", graded_class["out"], "--out", tmp_path / "merged", cwd=tmp_path)
    assert result.returncode == 2 and "not the output of `grade --shard`" in result.stderr
    assert not (tmp_path / "merged").exists()


def fake_shard(folder: Path, index: int, count: int, rows: dict[str, str], everyone: list[str],
               given: list[str] | None = None, source: str = "abc") -> Path:
    """A shard output as `grade --shard` writes it, without grading: `rows` maps student ids to scores."""
    shards.write_manifest(folder, shards.Shard(index, count), "lab3", source, {"test_one": 1.0}, everyone,
                          given if given is not None else sorted(rows), True)
    lines = ["student_id,score,max_score,status,test_one,notes"]
    lines += [f"{student},{score},1,ok,{score}," for student, score in sorted(rows.items())]
    (folder / "grades.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for sub in ("feedback", "logs"):
        (folder / sub).mkdir()
    for student in rows:
        (folder / "feedback" / f"{student}.html").write_text(f"<p>{student}</p>", encoding="utf-8")
    return folder


def test_merge_refuses_duplicates_and_mixed_shards(tmp_path):
    everyone = ["ada", "alan", "grace"]
    one = fake_shard(tmp_path / "one", 1, 2, {"ada": "1"}, everyone)
    again = fake_shard(tmp_path / "again", 1, 2, {"ada": "1"}, everyone)
    stolen = fake_shard(tmp_path / "stolen", 2, 2, {"ada": "0", "alan": "1"}, everyone)
    other_n = fake_shard(tmp_path / "other_n", 2, 3, {"alan": "1"}, everyone)
    other_source = fake_shard(tmp_path / "other_source", 2, 2, {"alan": "1"}, everyone, source="def")
    cases = [((one, again), "given twice"), ((one, stolen), "ada was graded twice"),
             ((one, other_n), "a different number of shards"), ((one, other_source), "a different source notebook")]
    for folders, message in cases:
        with pytest.raises(shards.ShardError, match=message):
            shards.merge(list(folders), tmp_path / "merged")
        assert not (tmp_path / "merged").exists()


def test_merge_reports_missing_students(tmp_path):
    everyone = ["ada", "alan", "barbara", "grace"]
    one = fake_shard(tmp_path / "one", 1, 3, {"ada": "1"}, everyone, given=["ada", "alan"])  # alan has no row
    two = fake_shard(tmp_path / "two", 2, 3, {"grace": "0"}, everyone)
    result = autograde("merge", one, two, "--out", tmp_path / "merged", cwd=tmp_path)
    assert result.returncode == 1
    assert "3/3" in result.stderr and "2 students have no row: alan, barbara" in result.stderr
    assert sorted(read_rows(tmp_path / "merged" / "grades.csv")) == ["ada", "grace"]
    assert sorted(p.name for p in (tmp_path / "merged" / "feedback").iterdir()) == ["ada.html", "grace.html"]
    shutil.rmtree(tmp_path / "merged")


def test_merge_reads_neutralised_ids_back(tmp_path):
    from autograde import ledger
    from autograde.jobs import Outcome

    everyone = ["=ada", "@alan", "grace"]
    folders = []
    for index in (1, 2):
        given = [s for s in everyone if shards.slice_of(s, 2) == index]
        folder = tmp_path / f"shard{index}"
        shards.write_manifest(folder, shards.Shard(index, 2), "lab3", "abc", {"test_one": 1.0}, everyone, given, True)
        outcomes = [Outcome(s, "ok", 1.0, 1.0, {"test_one": 1.0}) for s in given]
        (folder / "grades.csv").write_bytes(ledger.table_bytes(outcomes, ["test_one"]))
        for sub in ("feedback", "logs"):
            (folder / sub).mkdir()
        for student in given:
            (folder / "feedback" / f"{ledger.file_stem(student)}.html").write_text(student, encoding="utf-8")
        folders.append(folder)
    result = autograde("merge", *folders, "--out", tmp_path / "merged", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    rows = read_rows(tmp_path / "merged" / "grades.csv")
    assert sorted(rows) == ["'=ada", "'@alan", "grace"]
    assert sorted(p.name for p in (tmp_path / "merged" / "feedback").iterdir()) == ["=ada.html", "@alan.html",
                                                                                   "grace.html"]
