"""What makes a run incremental (tpkit.grading.incremental): the fingerprints of a submission and of the
grading code, and the course's memory of its worksheet (--export-only refreshes it)."""
import os
import shutil
import time
from pathlib import Path

from tpkit import paths
from tpkit.grading import export, incremental
from tpkit.grading.options import Options
from tpkit.grading.results import RunReport, StudentResult

MAIN = "tp_reseaux_neurones"  # the course's main assignment

A = MAIN


def test_a_submission_is_the_same_while_its_bytes_are(tmp_path):
    folder = tmp_path / "s1" / A
    folder.mkdir(parents=True)
    (folder / f"{A}.ipynb").write_text('{"cells": []}', encoding="utf-8")
    (folder / "timestamp.txt").write_text("2026-12-01 10:00:00", encoding="utf-8")
    first = incremental.submission_hash(folder)
    copy = tmp_path / "copie" / A
    shutil.copytree(folder, copy)  # --examples copies the examples again at each run
    os.utime(copy / f"{A}.ipynb", (time.time() + 100, time.time() + 100))
    assert incremental.submission_hash(copy) == first
    (copy / f"{A}.ipynb").write_text('{"cells": [1]}', encoding="utf-8")
    assert incremental.submission_hash(copy) != first
    (copy / f"{A}.ipynb").write_text('{"cells": []}', encoding="utf-8")
    (copy / "extra.py").write_text("x = 1", encoding="utf-8")  # a dropped file is part of the submission
    assert incremental.submission_hash(copy) != first


def test_the_grading_code_changes_with_the_secret_the_tests_and_the_config(tmp_path):
    root = tmp_path / "cours"
    (root / "source" / A).mkdir(parents=True)
    (root / "release" / A).mkdir(parents=True)
    shutil.copy(paths.ROOT / "nbgrader_config.py", root)
    (root / ".grading_secret").write_text("123", encoding="utf-8")
    (root / "source" / A / f"{A}.ipynb").write_text("source", encoding="utf-8")
    options = Options(assignment=MAIN, root=root, workers=1)
    first = incremental.grading_hash(options)
    assert incremental.grading_hash(options) == first
    for path, text in ((root / ".grading_secret", "456"), (root / "source" / A / f"{A}.ipynb", "tests changés"),
                       (root / "nbgrader_config.py", "c = get_config()\n")):
        before = path.read_text(encoding="utf-8")
        path.write_text(text, encoding="utf-8")
        assert incremental.grading_hash(options) != first, path.name
        path.write_text(before, encoding="utf-8")
    assert incremental.grading_hash(options) == first
    # another assignment of the course is not this one's grading code
    (root / "source" / "autre").mkdir()
    (root / "source" / "autre" / "autre.ipynb").write_text("x", encoding="utf-8")
    assert incremental.grading_hash(options) == first


def test_unchanged_needs_both_hashes_and_a_grade_still_in_the_course(tmp_path, monkeypatch):
    """Only a student whose submission and grading code are those of their last grade, and whose grade
    is still in the gradebook, is left as it is."""
    options = Options(assignment=MAIN, root=tmp_path, workers=1)
    shutil.copy(paths.ROOT / "nbgrader_config.py", tmp_path)
    folders = {}
    for s in ("s1", "s2", "s3"):
        folders[s] = tmp_path / "submitted" / s / A
        folders[s].mkdir(parents=True)
        (folders[s] / f"{A}.ipynb").write_text(s, encoding="utf-8")
        (tmp_path / "autograded" / s / A).mkdir(parents=True)
        (tmp_path / "autograded" / s / A / f"{A}.ipynb").write_text(s, encoding="utf-8")
    results = {s: StudentResult(s, submission_hash=incremental.submission_hash(folders[s]), grading_hash="code")
               for s in folders}
    results["s3"].grading_hash = "ancien code"
    report = RunReport(A, [], {}, 20.0, results)
    monkeypatch.setattr("tpkit.grading.gradebook.graded_students", lambda root, a: {"s1", "s2", "s3"})
    assert incremental.unchanged(options, ["s1", "s2", "s3"], report, "code", folders.get) == ["s1", "s2"]
    (folders["s2"] / f"{A}.ipynb").write_text("s2, rendu à nouveau", encoding="utf-8")
    (tmp_path / "autograded" / "s1" / A / f"{A}.ipynb").unlink()  # its grade's outputs are gone
    assert incremental.unchanged(options, ["s1", "s2", "s3"], report, "code", folders.get) == []
    assert incremental.unchanged(options, ["s1"], None, "code", folders.get) == []


def test_the_worksheet_is_remembered_and_said_when_it_cannot_be_refreshed(tmp_path):
    options = Options(assignment=MAIN, root=tmp_path, workers=1)
    assert incremental.remembered_worksheet(options) is None
    assert export._worksheet(options, None, None, [], None, False, "moodle") == []  # never had one
    sheet = tmp_path / "telechargements" / "feuille.csv"
    sheet.parent.mkdir()
    sheet.write_text("Identifiant,Note\n", encoding="utf-8")
    incremental.remember_worksheet(options, "moodle", sheet)
    assert incremental.remembered_worksheet(options) == ("moodle", sheet.resolve())
    assert (options.exports / incremental.STATE_NAME).is_file()
    sheet.unlink()
    lines = export._worksheet(options, None, None, [], None, False, "moodle")
    assert len(lines) == 1 and "NON mise à jour" in lines[0] and "feuille.csv" in lines[0] \
        and "--moodle-worksheet" in lines[0], lines
    # the state file is not one of the exports a new run sets aside
    assert incremental.STATE_NAME not in export.EXPORT_NAMES


def test_every_assignments_checks_are_part_of_the_grading_code():
    """A threshold or a check of any assignment changed: its submissions are graded again."""
    from tpkit import assignments
    kit = paths.ROOT / "tpkit"
    hashed = [kit / part for part in incremental.KIT_PARTS]
    for a in assignments.registry():
        for role in ("checks", "reference", "thresholds", "reexec"):
            if not getattr(a, role):  # no re-executed training cell (the worked example)
                continue
            path = Path(a.module(role).__file__).resolve()
            assert any(path.is_relative_to(part) for part in hashed), (a.name, role)
