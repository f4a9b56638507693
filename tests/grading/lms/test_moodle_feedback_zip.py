"""Feedback pages zipped for Moodle's upload (tpkit.grading.lms.moodle.feedback_zip)."""
from __future__ import annotations

import zipfile

from tpkit.grading.lms import moodle


def test_feedback_zip_layout(tmp_path):
    page = tmp_path / "tp.html"
    page.write_text("<html>retour</html>", encoding="utf-8")
    out = tmp_path / "retours.zip"
    assert moodle.write_feedback_zip(out, {"1234567": ("Élodie Lefèvre", page),
                                           "42": ("Jean_Noël  D'Arcy", page)}) == 2
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["Jean Noël D'Arcy_42_assignsubmission_file_/tp.html",
                                         "Élodie Lefèvre_1234567_assignsubmission_file_/tp.html"]
        assert zf.read("Élodie Lefèvre_1234567_assignsubmission_file_/tp.html") == page.read_bytes()
    # what Moodle's importer reads: the participant id is the second '_' field of the folder name
    for name in zipfile.ZipFile(out).namelist():
        assert name.split("/")[0].split("_", 4)[2:4] == ["assignsubmission", "file"]
