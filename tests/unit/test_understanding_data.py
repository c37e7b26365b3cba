"""The mail-understanding evaluation sets are well formed (their scores are bench/understanding.py's)."""

from __future__ import annotations

import json

import pytest

from tests.understanding_sets import ROOT, SPLITS, TASKS, load_sets, problems, reply_right

SETS = load_sets()


def test_every_set_directory_is_listed_in_sets_json():
    listed = {s.name for s in SETS}
    on_disk = {str(p.parent.relative_to(ROOT)) for p in ROOT.glob("*/*/manifest.json")}
    assert on_disk == listed


def test_each_task_has_a_develop_and_a_holdout_set():
    for task in TASKS:
        assert {s.split for s in SETS if s.task == task} == set(SPLITS), task


@pytest.mark.parametrize("s", SETS, ids=[s.name for s in SETS])
def test_manifest_is_well_formed_and_every_file_exists(s):
    assert problems(s) == []
    assert s.cases, f"{s.name} has no cases"


@pytest.mark.parametrize("s", SETS, ids=[s.name for s in SETS])
def test_every_message_file_is_in_the_manifest(s):
    listed = {c["file"] for c in s.cases}
    present = {str(p.relative_to(s.path)) for p in (s.path / "messages").iterdir()}
    assert present == listed


def test_problems_reports_a_malformed_bounce_entry(tmp_path):
    bad = {"task": "bounce", "source": "x", "licence": "MIT",
           "cases": [{"file": "messages/missing.eml", "is_bounce": True, "recipients": ["User@Example.com"],
                      "status_class": "2", "dead": "yes"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(bad))
    from tests.understanding_sets import EvalSet
    found = problems(EvalSet("x", "bounce", "develop", tmp_path, bad))
    assert any("file missing" in p for p in found)
    assert any("lower-case" in p for p in found)
    assert any("status_class" in p for p in found)
    assert any("dead" in p for p in found)
    assert any("README.md" in p for p in found)


def test_reply_comparison_ignores_trailing_spaces_and_outer_blank_lines_only():
    case = {"reply": "Hi\n\nThanks,\nAnna"}
    assert reply_right("\n\nHi  \n\nThanks,\nAnna\n\n", case)
    assert not reply_right("Hi\nThanks,\nAnna", case)
    assert reply_right("Hi Thanks, Anna", {**case, "compare": "words"})


def _content(path):
    """A message's text with line-end and per-line whitespace differences removed."""
    text = path.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n")
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())


@pytest.mark.parametrize("task", TASKS)
def test_no_holdout_message_is_a_develop_message_again(task):
    # A holdout set measures mail nobody developed on: a message the develop sets already hold
    # (another package shipping the same fixture) would be scored as unseen.
    develop = {_content(s.path / c["file"]): f"{s.name}/{c['file']}"
               for s in SETS if s.task == task and s.split == "develop" for c in s.cases}
    again = [f"{s.name}/{c['file']} = {develop[_content(s.path / c['file'])]}"
             for s in SETS if s.task == task and s.split == "holdout" for c in s.cases
             if _content(s.path / c["file"]) in develop]
    assert again == []
