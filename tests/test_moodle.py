"""Moodle import (submissions zip -> submitted/) and export (grading worksheet). Fast: no execution."""
from __future__ import annotations

import csv
import importlib.util
import io
import re
import zipfile
from pathlib import Path

import pytest

from tpkit.grading.lms import moodle
from tpkit.grading.lms.moodle import (
    fill_worksheet,
    import_moodle_zip,
    participant_id_from_student_id,
    read_roster,
    student_id_for,
)
from tpkit.grading.lms.moodle.fixtures import minimal_notebook, write_moodle_zip, write_worksheet

ASSIGNMENT = "tp_reseaux_neurones"
NB = f"{ASSIGNMENT}.ipynb"
ROOT = Path(__file__).resolve().parent.parent

NB_A = minimal_notebook("a = 1")
NB_B = minimal_notebook("b = 2")
CLASS = {
    "Élodie Lefèvre": (1234567, NB_A),
    "Jean-Noël D'Arcy": (1234568, NB_B),
    "Zoë van der Berg": (1234569, minimal_notebook("z = 'ë'")),
}


def _import(zip_path, tmp_path, **kw):
    return import_moodle_zip(zip_path, tmp_path / "submitted", ASSIGNMENT, NB, **kw)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------
# import: layouts, names, encodings


@pytest.mark.parametrize("layout", ["folders", "flat"])
@pytest.mark.parametrize("names", ["utf8", "utf8-noflag", "cp437"])
def test_both_layouts_and_name_encodings(tmp_path, layout, names):
    z = write_moodle_zip(tmp_path / "dl.zip", CLASS, layout=layout, names=names)
    if names != "utf8":  # really stored without the UTF-8 flag
        assert all(not i.flag_bits & 0x800 for i in zipfile.ZipFile(z).infolist())
    res = _import(z, tmp_path)
    assert res.ok, res.report()
    assert res.layout == layout
    assert res.mapping == {"1234567": "p1234567", "1234568": "p1234568", "1234569": "p1234569"}
    assert res.participants == {"1234567": "Élodie Lefèvre", "1234568": "Jean-Noël D'Arcy",
                                "1234569": "Zoë van der Berg"}
    sub = tmp_path / "submitted"
    for full_name, (pid, data) in CLASS.items():
        s = res.submissions[f"p{pid}"]
        assert s.full_name == full_name and not s.renamed and s.changed and s.layout == layout
        assert s.dest_path == sub / f"p{pid}" / ASSIGNMENT / NB
        assert s.dest_path.read_bytes() == data
        assert full_name in s.source_entry
        assert (sub / f"p{pid}" / ASSIGNMENT / "timestamp.txt").read_text() == "2024-03-12 14:05:32"
    # nothing else written but the roster
    assert sorted(_tree(sub)) == sorted(
        [f"p{pid}/{ASSIGNMENT}/{f}" for _, (pid, _) in CLASS.items() for f in (NB, "timestamp.txt")]
        + ["moodle_roster.csv"]
    )


def test_timestamp_is_read_by_nbgrader(tmp_path):
    from nbgrader.utils import parse_utc

    z = write_moodle_zip(tmp_path / "dl.zip", CLASS, date_time=(2024, 11, 5, 23, 59, 58))
    res = _import(z, tmp_path, timezone="Europe/Paris")
    ts = (tmp_path / "submitted/p1234567" / ASSIGNMENT / "timestamp.txt").read_text()
    assert ts == "2024-11-05 23:59:58 Europe/Paris" == res.submissions["p1234567"].timestamp
    assert str(parse_utc(ts)) == "2024-11-05 22:59:58"


def test_decomposed_accents_from_macos_are_normalized(tmp_path):
    z = write_moodle_zip(tmp_path / "dl.zip", CLASS, nfd=True)
    res = _import(z, tmp_path)
    assert res.submissions["p1234567"].full_name == "Élodie Lefèvre"
    assert res.roster_path.read_text(encoding="utf-8").count("Élodie Lefèvre") >= 1


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


# ------------------------------------------------------------------------------------------------
# import: which notebook


@pytest.mark.parametrize("layout", ["folders", "flat"])
@pytest.mark.parametrize("handed_in", [f"{ASSIGNMENT} (1).ipynb", "TP_Dupont.ipynb", "Untitled.IPYNB"])
def test_single_renamed_notebook_is_imported_under_the_expected_name(tmp_path, layout, handed_in):
    z = write_moodle_zip(tmp_path / "dl.zip", {"Jean-Noël D'Arcy": (1234568, {handed_in: NB_B})}, layout=layout)
    res = _import(z, tmp_path)
    s = res.submissions["p1234568"]
    assert s.renamed and s.original_name == handed_in
    assert (tmp_path / "submitted/p1234568" / ASSIGNMENT / NB).read_bytes() == NB_B
    assert not (tmp_path / "submitted/p1234568" / ASSIGNMENT / handed_in).exists()
    assert res.renamed == [s]
    assert f"handed in as '{handed_in}'" in res.report()
    assert read_roster(tmp_path / "submitted")["p1234568"].status == "renamed"


def test_notebook_in_a_subfolder_is_moved_to_the_top(tmp_path):
    files = {f"TP/rendu/{NB}": NB_A, "TP/rendu/donnees.csv": b"1,2\n"}
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, files)})
    res = _import(z, tmp_path)
    s = res.submissions["p1234567"]
    assert s.renamed and s.original_name == f"TP/rendu/{NB}"
    assert (tmp_path / "submitted/p1234567" / ASSIGNMENT / NB).read_bytes() == NB_A
    assert [i.reason for i in res.ignored] == ["not a notebook"]


def test_several_notebooks_prefer_the_expected_name(tmp_path):
    files = {"brouillon.ipynb": NB_B, NB: NB_A, f"{ASSIGNMENT} (1).ipynb": NB_B}
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, files)})
    res = _import(z, tmp_path)
    assert res.ok
    s = res.submissions["p1234567"]
    assert not s.renamed and s.dest_path.read_bytes() == NB_A


def test_several_notebooks_case_insensitive_match(tmp_path):
    files = {"brouillon.ipynb": NB_B, "TP_Reseaux_Neurones.ipynb": NB_A}
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, files)})
    s = _import(z, tmp_path).submissions["p1234567"]
    assert s.renamed and s.original_name == "TP_Reseaux_Neurones.ipynb" and s.dest_path.read_bytes() == NB_A


@pytest.mark.parametrize("files", [
    {"version1.ipynb": NB_A, "version2.ipynb": NB_B},
    {NB: NB_A, f"sauvegarde/{NB}": NB_B},
])
def test_several_notebooks_without_a_clear_choice_are_flagged(tmp_path, files):
    z = write_moodle_zip(tmp_path / "dl.zip", {"Zoë van der Berg": (1234569, files), "Élodie Lefèvre": (1234567, NB_A)})
    res = _import(z, tmp_path)
    assert list(res.submissions) == ["p1234567"]  # the other student is unaffected
    [p] = res.problems
    assert p.kind == "ambiguous" and p.participant_id == "1234569" and p.student_id == "p1234569"
    assert p.full_name == "Zoë van der Berg" and len(p.entries) == 2
    assert not (tmp_path / "submitted/p1234569").exists()
    assert read_roster(tmp_path / "submitted")["p1234569"].status == "ambiguous"
    assert "ambiguous: p1234569 Zoë van der Berg" in res.report()


def test_no_notebook_and_other_files(tmp_path):
    subs = {
        "Jean-Noël D'Arcy": (1234568, {"rapport.pdf": b"%PDF-1.4", "code.py": b"print(1)\n"}),
        "Élodie Lefèvre": (1234567, {NB: NB_A, "figure.png": b"\x89PNG", "data/x.npz": b"PK"}),
    }
    z = write_moodle_zip(tmp_path / "dl.zip", subs)
    res = _import(z, tmp_path)
    assert list(res.submissions) == ["p1234567"]
    [p] = res.problems
    assert p.kind == "no_notebook" and p.participant_id == "1234568" and len(p.entries) == 2
    assert sorted(i.entry.rsplit("/", 1)[-1] for i in res.ignored) == ["code.py", "figure.png", "rapport.pdf", "x.npz"]
    # other files are not copied next to the notebook
    assert sorted(p.name for p in (tmp_path / "submitted/p1234567" / ASSIGNMENT).iterdir()) == ["timestamp.txt", NB]


def test_macosx_checkpoints_and_hidden_files_are_ignored(tmp_path):
    prefix = "Élodie Lefèvre_1234567_assignsubmission_file_"
    extra = {
        f"__MACOSX/{prefix}/._{NB}": b"\x00\x05\x16\x07",
        f"{prefix}/.ipynb_checkpoints/{ASSIGNMENT}-checkpoint.ipynb": NB_B,
        f"{prefix}/.DS_Store": b"\x00",
        ".DS_Store": b"\x00",
    }
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, NB_A)}, extra_entries=extra)
    res = _import(z, tmp_path)
    assert res.ok, res.report()  # the checkpoint does not make the submission ambiguous
    assert res.submissions["p1234567"].dest_path.read_bytes() == NB_A
    assert sorted(i.reason for i in res.ignored) == [
        "hidden or cache file (.DS_Store)", "hidden or cache file (.DS_Store)", "macOS metadata",
        "notebook checkpoint"]


def test_unattributable_entries_are_reported(tmp_path):
    extra = {
        "lisez-moi.txt": b"x",
        "Sans Identifiant_assignsubmission_file_/tp.ipynb": NB_A,
        "Dupont Jean/tp_reseaux_neurones.ipynb": NB_A,
        "Élodie Lefèvre_1234567_onlinetext_/onlinetext.html": b"<p>x</p>",
    }
    z = write_moodle_zip(tmp_path / "dl.zip", CLASS, extra_entries=extra)
    res = _import(z, tmp_path)
    assert len(res.submissions) == 3
    kinds = sorted((p.kind, p.entries[0]) for p in res.problems)
    assert [k for k, _ in kinds] == ["no_participant_id"] * 4
    assert {e for _, e in kinds} == set(extra)
    assert "lisez-moi.txt" in res.report()


def test_online_text_submission_is_ignored(tmp_path):
    extra = {"Élodie Lefèvre_1234567_assignsubmission_onlinetext_onlinetext.html": b"<p>x</p>"}
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, NB_A)}, extra_entries=extra)
    res = _import(z, tmp_path)
    assert res.ok and [i.reason for i in res.ignored] == ["not a file submission (assignsubmission_onlinetext)"]


def test_zip_slip_is_rejected(tmp_path):
    prefix = "Élodie Lefèvre_1234567_assignsubmission_file_"
    extra = {
        "../../evil.ipynb": b"evil",
        "/tmp/abs_evil.ipynb": b"evil",
        f"{prefix}/../../../evil2.ipynb": b"evil",
        f"..\\{prefix}\\evil3.ipynb": b"evil",
        "C:/evil4.ipynb": b"evil",
    }
    z = write_moodle_zip(tmp_path / "dl.zip", {"Jean-Noël D'Arcy": (1234568, NB_B)}, extra_entries=extra)
    assert {i.filename for i in zipfile.ZipFile(z).infolist()} >= set(extra)  # really in the zip
    work = tmp_path / "course"
    res = import_moodle_zip(z, work / "submitted", ASSIGNMENT, NB)
    assert sorted(p.entries[0] for p in res.problems if p.kind == "unsafe_path") == sorted(extra)
    assert list(res.submissions) == ["p1234568"]
    assert not (tmp_path / "evil.ipynb").exists() and not Path("/tmp/abs_evil.ipynb").exists()
    assert all(b"evil" != d for d in _tree(tmp_path).values() if d != z.read_bytes())
    assert sorted(_tree(work)) == sorted([f"submitted/p1234568/{ASSIGNMENT}/{NB}",
                                          f"submitted/p1234568/{ASSIGNMENT}/timestamp.txt",
                                          "submitted/moodle_roster.csv"])


@pytest.mark.parametrize("bad", [("../x", NB), ("a/b", NB), (ASSIGNMENT, "../x.ipynb"), (ASSIGNMENT, "x.txt")])
def test_bad_arguments(tmp_path, bad):
    z = write_moodle_zip(tmp_path / "dl.zip", CLASS)
    with pytest.raises(ValueError):
        import_moodle_zip(z, tmp_path / "submitted", *bad)


def test_rezipped_in_an_extra_top_folder(tmp_path):
    inner = write_moodle_zip(tmp_path / "in.zip", CLASS, layout="folders")
    z = tmp_path / "dl.zip"
    with zipfile.ZipFile(inner) as src, zipfile.ZipFile(z, "w") as dst:
        for info in src.infolist():
            dst.writestr("TP réseaux - Rendu/" + info.filename, src.read(info))
    res = _import(z, tmp_path)
    assert res.ok and len(res.submissions) == 3


def test_invalid_notebook_is_copied_as_is(tmp_path):
    # Deciding what to do with broken JSON is the pre-check's job, not the import's.
    z = write_moodle_zip(tmp_path / "dl.zip", {"Élodie Lefèvre": (1234567, b'{"cells": [')})
    res = _import(z, tmp_path)
    assert res.submissions["p1234567"].dest_path.read_bytes() == b'{"cells": ['


def test_not_a_zip(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(zipfile.BadZipFile):
        _import(tmp_path / "x.zip", tmp_path)


# ------------------------------------------------------------------------------------------------
# import: idempotency


def test_reimport_is_idempotent(tmp_path):
    subs = dict(CLASS)
    subs["Mathéo Núñez"] = (1234570, {"a.ipynb": NB_A, "b.ipynb": NB_B})  # ambiguous
    z = write_moodle_zip(tmp_path / "dl.zip", subs, extra_entries={"stray.txt": b"x"})
    first = _import(z, tmp_path)
    before = _tree(tmp_path / "submitted")
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "submitted").rglob("*") if p.is_file()}
    second = _import(z, tmp_path)
    assert _tree(tmp_path / "submitted") == before
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "submitted").rglob("*") if p.is_file()} == mtimes
    assert not any(s.changed for s in second.submissions.values())
    assert second.problems == first.problems and second.ignored == first.ignored
    assert second.mapping == first.mapping


def test_new_download_updates_a_resubmitted_notebook(tmp_path):
    _import(write_moodle_zip(tmp_path / "a.zip", CLASS), tmp_path)
    subs = dict(CLASS)
    subs["Élodie Lefèvre"] = (1234567, NB_B, (2024, 3, 13, 9, 0, 0))
    res = _import(write_moodle_zip(tmp_path / "b.zip", subs), tmp_path)
    assert res.submissions["p1234567"].changed and not res.submissions["p1234568"].changed
    d = tmp_path / "submitted/p1234567" / ASSIGNMENT
    assert (d / NB).read_bytes() == NB_B and (d / "timestamp.txt").read_text() == "2024-03-13 09:00:00"


# ------------------------------------------------------------------------------------------------
# worksheet


def _read_csv(path: Path) -> list[list[str]]:
    data = path.read_bytes().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(data, newline="")))


def test_worksheet_english_fills_grade_and_comment_only(tmp_path):
    w = write_worksheet(tmp_path / "w.csv", CLASS)
    out = tmp_path / "out.csv"
    rep = fill_worksheet(w, {"1234567": (15.5, "Bien"), 1234569: (20, "Parfait")}, out)
    expected = write_worksheet(tmp_path / "exp.csv", CLASS, grades={1234567: "15.50", 1234569: "20.00"},
                               comments={1234567: "Bien", 1234569: "Parfait"})
    assert out.read_bytes() == expected.read_bytes()
    assert rep.updated == ["1234567", "1234569"]
    assert rep.ungraded == [("1234568", "Jean-Noël D'Arcy")]
    assert rep.missing_rows == [] and rep.locked == [] and rep.skipped == []
    assert rep.feedback_column == "Feedback comments" and rep.delimiter == "," and not rep.bom


def test_worksheet_french_bom_crlf_decimal_comma(tmp_path):
    w = write_worksheet(tmp_path / "w.csv", CLASS, language="fr", bom=True, line_ending="\r\n")
    raw = w.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfIdentifiant,") and b'"20,00"' in raw and raw.count(b"\r\n") == 4
    out = tmp_path / "out.csv"
    comment = "Q3 : gradient faux, revoir la dérivée de la softmax."
    rep = fill_worksheet(w, {"p1234568": (12.345, comment)}, out)
    expected = write_worksheet(tmp_path / "exp.csv", CLASS, language="fr", bom=True, line_ending="\r\n",
                               grades={1234568: "12,35"}, comments={1234568: comment})
    assert out.read_bytes() == expected.read_bytes()
    assert rep.bom and rep.feedback_column == "Feedback par commentaires"
    assert _read_csv(out)[2][4] == "12,35"


def test_worksheet_comment_with_comma_quote_newline(tmp_path):
    w = write_worksheet(tmp_path / "w.csv", CLASS, line_ending="\r\n")
    comment = 'Très bien, mais "perte" non décroissante ;\nvoir la question 4,\r\nà revoir.'
    out = tmp_path / "out.csv"
    fill_worksheet(w, {1234567: (14, comment)}, out)
    rows = _read_csv(out)
    assert rows[1][-1] == comment and rows[1][4] == "14.00"
    assert len(rows) == 4 and all(len(r) == 10 for r in rows)
    assert rows[2:] == _read_csv(w)[2:]


def _pieces_worksheet(pieces) -> tuple[bytes, bytes, dict]:
    """Join literal pieces; pieces that are tuples (slot, old, new) are the modified fields. Returns
    (input, expected output, slots) so that everything outside the slots must be byte-identical."""
    src, exp = b"", b""
    for p in pieces:
        if isinstance(p, tuple):
            src += p[1].encode() if isinstance(p[1], str) else p[1]
            exp += p[2].encode() if isinstance(p[2], str) else p[2]
        else:
            src += p.encode() if isinstance(p, str) else p
            exp += p.encode() if isinstance(p, str) else p
    return src, exp


def test_worksheet_bytes_outside_modified_fields_are_kept(tmp_path):
    # Unusual but valid quoting of other fields, an extra column, a different column order, a
    # multi-line old comment, a blank line and no newline at the end of the file.
    src, exp = _pieces_worksheet([
        '\ufeff"Full name","Identifier",Status,"Marker","Maximum Grade",Grade,"Grade can be changed",'
        '"Feedback comments","Last modified (grade)"\r\n',
        '"Élodie Lefèvre","Participant 1234567","Submitted",,20.00,', ("g", "", "17.25"), ',"Yes",',
        ("c", '"ancien\r\ncommentaire, ""cité"""', '"Bon travail, ""bravo"""'), ',"-"\r\n',
        'Jean-Noël D\'Arcy,Participant 1234568,"No submission",M. Prof,20.00,,Yes,"garde, ça",-\r\n',
        '\r\n',
        '"Zoë van der Berg","Participant 1234569",Submitted,,"20.00",', ("g", '"3"', '"8.00"'), ',Yes,',
        ("c", "", "Assez"), ",-",
    ])
    w = tmp_path / "w.csv"
    w.write_bytes(src)
    out = tmp_path / "out.csv"
    rep = fill_worksheet(w, {1234567: (17.25, 'Bon travail, "bravo"'), 1234569: (8, "Assez")}, out)
    assert out.read_bytes() == exp
    assert rep.updated == ["1234567", "1234569"] and rep.ungraded == [("1234568", "Jean-Noël D'Arcy")]


def test_worksheet_unmatched_rows_and_results(tmp_path):
    w = write_worksheet(tmp_path / "w.csv", CLASS)
    rep = fill_worksheet(w, {1234567: (10, "Moyen"), 7777777: (12, "Absent du fichier"), "p42": (None, "x")},
                         tmp_path / "out.csv")
    assert rep.updated == ["1234567"]
    assert rep.ungraded == [("1234568", "Jean-Noël D'Arcy"), ("1234569", "Zoë van der Berg")]
    assert rep.missing_rows == ["42", "7777777"]
    text = rep.summary()
    assert "7777777" in text and "Zoë van der Berg" in text


def test_worksheet_grade_cannot_be_changed(tmp_path):
    for lang in ("en", "fr"):
        w = write_worksheet(tmp_path / f"w{lang}.csv", CLASS, language=lang, locked=[1234568])
        out = tmp_path / f"out{lang}.csv"
        rep = fill_worksheet(w, {1234567: (11, "Bien"), 1234568: (19, "Très bien")}, out)
        assert rep.locked == [("1234568", "Jean-Noël D'Arcy")]
        assert rep.updated == ["1234567"] and rep.missing_rows == []
        assert _read_csv(out)[2] == _read_csv(w)[2]
        assert out.read_bytes().splitlines()[2] == w.read_bytes().splitlines()[2]


def test_worksheet_comment_only_and_grade_only(tmp_path):
    w = write_worksheet(tmp_path / "w.csv", CLASS, grades={1234567: "9.00"}, comments={1234568: "ancien"})
    out = tmp_path / "out.csv"
    rep = fill_worksheet(w, {1234567: (None, "Non noté : JSON invalide"), 1234568: (13, None)}, out)
    rows = _read_csv(out)
    assert rows[1][4] == "9.00" and rows[1][9] == "Non noté : JSON invalide"
    assert rows[2][4] == "13.00" and rows[2][9] == "ancien"
    assert rep.comment_only == ["1234567"] and rep.updated == ["1234567", "1234568"]


@pytest.mark.parametrize("max_grade,decimals,grade,expected", [
    ("20", 0, 15.5, "16"),      # no decimals, rounded half up
    ("20", 2, 25, "20.00"),     # clamped to the maximum
    ("20", 2, -1, "0.00"),
    ("100", 2, 15.5, "77.50"),  # rescaled from /20 to /100
    ("10", 1, 15, "7.5"),
])
def test_worksheet_grade_format_follows_maximum_grade(tmp_path, max_grade, decimals, grade, expected):
    w = write_worksheet(tmp_path / "w.csv", CLASS, max_grade=max_grade, decimals=decimals)
    rep = fill_worksheet(w, {1234567: (grade, None)}, tmp_path / "out.csv")
    assert _read_csv(tmp_path / "out.csv")[1][4] == expected
    assert (rep.scale != 1) == (max_grade != "20")


def test_worksheet_semicolon_excel_french(tmp_path):
    w = write_worksheet(tmp_path / "w.csv", CLASS, language="fr", delimiter=";", bom=True, line_ending="\r\n")
    out = tmp_path / "out.csv"
    rep = fill_worksheet(w, {1234569: (16.75, "Bien; continuez")}, out)
    assert rep.delimiter == ";"
    expected = write_worksheet(tmp_path / "exp.csv", CLASS, language="fr", delimiter=";", bom=True,
                               line_ending="\r\n", grades={1234569: "16,75"}, comments={1234569: "Bien; continuez"})
    assert out.read_bytes() == expected.read_bytes()
    assert b";16,75;" in out.read_bytes()


def test_worksheet_cp1252_from_excel(tmp_path):
    w = write_worksheet(tmp_path / "w.csv", CLASS, language="fr", encoding="cp1252", line_ending="\r\n")
    out = tmp_path / "out.csv"
    rep = fill_worksheet(w, {1234567: (12, "Dérivée à revoir, sinon bien")}, out)
    assert rep.encoding == "cp1252"
    expected = write_worksheet(tmp_path / "exp.csv", CLASS, language="fr", encoding="cp1252", line_ending="\r\n",
                               grades={1234567: "12,00"}, comments={1234567: "Dérivée à revoir, sinon bien"})
    assert out.read_bytes() == expected.read_bytes()


def test_worksheet_without_feedback_column(tmp_path):
    cols = ["Identifier", "Full name", "Status", "Grade", "Maximum Grade", "Grade can be changed"]
    w = write_worksheet(tmp_path / "w.csv", CLASS, columns=cols)
    rep = fill_worksheet(w, {1234567: (10, "ignoré")}, tmp_path / "out.csv")
    assert rep.feedback_column is None and rep.updated == ["1234567"]
    assert _read_csv(tmp_path / "out.csv")[1] == ["Participant 1234567", "Élodie Lefèvre", "Submitted for grading",
                                                  "10.00", "20.00", "Yes"]
    assert "comments not written" in rep.summary()


def test_worksheet_identifier_without_space_and_in_place(tmp_path):
    w = tmp_path / "w.csv"
    w.write_bytes(b"Identifiant,Note,\"Note maximale\",\"Commentaires de feedback\"\nParticipant1234567,,\"20,00\",\n")
    rep = fill_worksheet(w, {1234567: (18, "Très bien")}, w)
    assert w.read_bytes() == "Identifiant,Note,\"Note maximale\",\"Commentaires de feedback\"\n" \
                             "Participant1234567,\"18,00\",\"20,00\",Très bien\n".encode()
    assert rep.updated == ["1234567"]


def test_not_a_worksheet(tmp_path):
    w = tmp_path / "w.csv"
    w.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="not a Moodle grading worksheet"):
        fill_worksheet(w, {}, tmp_path / "out.csv")


def test_plain_text_to_html():
    assert moodle.plain_text_to_html("a < b\nligne 2") == "a &lt; b<br>ligne 2"


# ------------------------------------------------------------------------------------------------
# example generator


def test_example_script_round_trip(tmp_path):
    spec = importlib.util.spec_from_file_location("make_example", ROOT / "examples/moodle/make_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    files = mod.make_example([NB_A, NB_B], tmp_path / "ex")
    again = mod.make_example([NB_A, NB_B], tmp_path / "ex2")
    assert all(files[k].read_bytes() == again[k].read_bytes() for k in files)  # deterministic
    for kind in ("zip", "zip_flat"):
        res = import_moodle_zip(files[kind], tmp_path / kind / "submitted", ASSIGNMENT, NB)
        assert res.ok and len(res.submissions) == len(mod.CLASS) and len(res.renamed) == 1
    results = {pid: (10.0, "Exemple") for pid in res.mapping}
    rep = fill_worksheet(files["worksheet"], results, tmp_path / "filled.csv")
    assert len(rep.updated) == len(mod.CLASS) and not rep.missing_rows and not rep.ungraded


# ------------------------------------------------------------------------------------------------
# issue #9: feedback zip for Moodle's bulk upload, checks before anything is written

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


def test_zip_participants_and_worksheet_check(tmp_path):
    z = tmp_path / "travaux.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("Élodie Lefèvre_1234567_assignsubmission_file_/tp.ipynb", "{}")
        zf.writestr("Zoë_0042_assignsubmission_file_notes.txt", "x")
        zf.writestr("__MACOSX/._x", "")
    assert moodle.zip_participants(z) == {"p1234567", "p42"}
    sheet = tmp_path / "feuille.csv"
    sheet.write_text("Identifiant,Nom complet,Note,Note maximale\nParticipant 1,A,,20,00\n", encoding="utf-8")
    moodle.check_worksheet(sheet)
    grades = tmp_path / "grades.csv"
    grades.write_text("student_id,q1,total_20,status\na,1,20,ok\n", encoding="utf-8")
    with pytest.raises(ValueError):
        moodle.check_worksheet(grades)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feuille.csv", "grades.csv", "travaux.zip"]
