"""Moodle's grading worksheet (tpkit.grading.lms.moodle.worksheet): grade and comment fields filled, every
other byte kept."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tpkit.grading.lms import moodle
from tpkit.grading.lms.moodle import (
    fill_worksheet,
)
from tpkit.grading.lms.moodle.fixtures import minimal_notebook, write_worksheet


def _rows(path: Path) -> list:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_moodle_worksheet_comment_escaped_grade_a_number(tmp_path):
    sheet = write_worksheet(tmp_path / "ws.csv", {"Élodie": 1234567, "Jean": 1234568})
    out = tmp_path / "out.csv"
    moodle.fill_worksheet(sheet, {"1234567": (-2.0, "=cmd|' /C calc'!A0"), "1234568": (15.5, "Bien.")}, out)
    rows = {r[0]: r for r in _rows(out)}
    assert rows["Participant 1234567"][4] == "0.00"  # a number, clamped: never escaped
    assert rows["Participant 1234567"][-1] == "'=cmd|' /C calc'!A0"
    assert rows["Participant 1234568"][4] == "15.50" and rows["Participant 1234568"][-1] == "Bien."


NB_A = minimal_notebook("a = 1")


NB_B = minimal_notebook("b = 2")


CLASS = {
    "Élodie Lefèvre": (1234567, NB_A),
    "Jean-Noël D'Arcy": (1234568, NB_B),
    "Zoë van der Berg": (1234569, minimal_notebook("z = 'ë'")),
}


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
    text = "\n".join(rep.lines())
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
    assert "commentaires non écrits" in "\n".join(rep.lines())


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
