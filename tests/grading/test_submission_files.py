"""A submission folder read as hostile input (tpkit.grading.submission_files): notebooks read with French
reasons, JSON nesting measured without parsing, entries seen without following links. (The pre-check's
use of them: test_staging.py; a cluster machine's packing: test_remote.py.)"""
import json
import os

import nbformat
import pytest

from tpkit.grading import submission_files
from tpkit.submissions import solution_submission

MAIN = "tp_reseaux_neurones"  # the course's main assignment


@pytest.fixture(scope="module")
def reference():
    return solution_submission(assignment=MAIN)


def test_read_notebook_reasons(tmp_path, reference):
    text = nbformat.writes(reference)
    cases = {"tronque.ipynb": text[: len(text) // 2], "vide.ipynb": "", "autre.ipynb": json.dumps({"a": 1}),
             "ok.ipynb": text}
    for name, content in cases.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    assert "JSON invalide" in submission_files.read_notebook(tmp_path / "tronque.ipynb")[1]
    assert "vide" in submission_files.read_notebook(tmp_path / "vide.ipynb")[1]
    assert "pas un notebook" in submission_files.read_notebook(tmp_path / "autre.ipynb")[1]
    assert submission_files.read_notebook(tmp_path / "ok.ipynb")[1] is None


def test_json_depth_counts_brackets_outside_strings():
    def depth(value):
        inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        return 0 if not isinstance(value, (dict, list)) else 1 + max(map(depth, inner), default=0)

    samples = [{}, [], "x", {"a": "[[{{", "b": [1, {"c": '\\"]]}}'}]}, [[[[]]], {"\\": "\\\\"}],
               {"cells": [{"source": ['"[', "\\\\\\\"{"]}], "metadata": {"x": [[["]"]]]}}]
    for value in samples:
        for text in (json.dumps(value), json.dumps(value, indent=1, ensure_ascii=False)):
            assert submission_files.json_depth(text.encode()) == depth(value), text
    assert submission_files.json_depth(b'"' * 1001 + b"[[[") in (0, 3)  # invalid text: some number, no error


def test_scan_sees_links_and_special_files_without_following_them(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.ipynb").write_text("{}")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    os.symlink("/etc", tmp_path / "lien")
    os.mkfifo(tmp_path / "tube")
    entries, complete = submission_files.scan(tmp_path)
    kinds = {e.rel: e.kind for e in entries}
    assert complete and kinds == {"a": "dir", "a/x.ipynb": "file", "lien": "link", "tube": "other"}
    assert next(e for e in entries if e.kind == "link").describe() == "lien (lien → /etc)"
    assert submission_files.notebook_candidates(tmp_path) == [tmp_path / "a" / "x.ipynb"]
    assert submission_files.scan(tmp_path, limit=2) == (entries[:2], False)
    with pytest.raises(OSError):
        submission_files.read_bytes_nofollow(tmp_path / "lien", 10)
    assert submission_files.printable("a\x1bb") == "a\\x1bb"
