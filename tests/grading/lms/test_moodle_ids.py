"""Moodle ids and roster (tpkit.grading.lms.moodle.ids): participant id <-> student id, the roster, its text
escaped."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from tpkit import paths
from tpkit.grading import csvsafe
from tpkit.grading.lms import moodle
from tpkit.grading.lms.moodle import (
    import_moodle_zip,
    participant_id_from_student_id,
    read_roster,
    student_id_for,
)
from tpkit.grading.lms.moodle.fixtures import minimal_notebook, write_moodle_zip

ASSIGNMENT = paths.ASSIGNMENT


NB_NAME = f"{ASSIGNMENT}.ipynb"


def _rows(path: Path) -> list:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_moodle_roster_escapes_names_and_reads_them_back(tmp_path):
    name = '=HYPERLINK("http:evil","clic")'
    z = write_moodle_zip(tmp_path / "dl.zip", {name: (1234567, minimal_notebook()),
                                               "+Zoé": (1234568, {"sous/@carnet.ipynb": minimal_notebook()})})
    imp = moodle.import_moodle_zip(z, tmp_path / "submitted", ASSIGNMENT, NB_NAME)
    rows = _rows(imp.roster_path)
    by_pid = {r[1]: r for r in rows[1:]}
    assert by_pid["1234567"][2] == "'" + name
    assert by_pid["1234568"][2] == "'+Zoé"
    assert all(not cell.startswith(csvsafe.FORMULA_PREFIXES) for row in rows for cell in row)
    roster = moodle.read_roster(tmp_path / "submitted")
    assert roster["p1234567"].full_name == name and roster["p1234568"].full_name == "+Zoé"



NB = f"{ASSIGNMENT}.ipynb"


NB_A = minimal_notebook("a = 1")


NB_B = minimal_notebook("b = 2")


CLASS = {
    "Élodie Lefèvre": (1234567, NB_A),
    "Jean-Noël D'Arcy": (1234568, NB_B),
    "Zoë van der Berg": (1234569, minimal_notebook("z = 'ë'")),
}


def _import(zip_path, tmp_path, **kw):
    return import_moodle_zip(zip_path, tmp_path / "submitted", ASSIGNMENT, NB, **kw)


def test_student_id_scheme():
    assert student_id_for(1234567) == student_id_for("1234567") == "p1234567"
    assert participant_id_from_student_id("p1234567") == "1234567"
    assert participant_id_from_student_id("dupont") is None
    assert re.fullmatch(r"[A-Za-z0-9_-]+", student_id_for(42))
    with pytest.raises(ValueError):
        student_id_for("12a")


def test_roster(tmp_path):
    z = write_moodle_zip(tmp_path / "dl.zip", CLASS)
    res = _import(z, tmp_path)
    assert res.roster_path == tmp_path / "submitted" / "moodle_roster.csv"
    with open(res.roster_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["student_id", "participant_id", "full_name", "source_entry", "status"]
    assert [(r["student_id"], r["participant_id"], r["full_name"], r["status"]) for r in rows] == [
        ("p1234567", "1234567", "Élodie Lefèvre", "imported"),
        ("p1234568", "1234568", "Jean-Noël D'Arcy", "imported"),
        ("p1234569", "1234569", "Zoë van der Berg", "imported"),
    ]
    assert rows[1]["source_entry"] == f"Jean-Noël D'Arcy_1234568_assignsubmission_file_/{NB}"
    roster = read_roster(tmp_path / "submitted")
    assert roster["p1234569"].full_name == "Zoë van der Berg"
    assert read_roster(tmp_path / "nowhere") == {}


def test_roster_is_merged_across_downloads(tmp_path):
    a = write_moodle_zip(tmp_path / "a.zip", dict(list(CLASS.items())[:2]))
    b = write_moodle_zip(tmp_path / "b.zip", {"Zoë van der Berg": (1234569, NB_A)})
    _import(a, tmp_path)
    _import(b, tmp_path)
    assert sorted(read_roster(tmp_path / "submitted")) == ["p1234567", "p1234568", "p1234569"]
