"""CSV cells that a spreadsheet never runs as formulas (tpkit.grading.csvsafe)."""
import pytest

from tpkit.grading import csvsafe

FORMULA = '=HYPERLINK("x","y")'


@pytest.mark.parametrize("value, escaped", [
    (FORMULA, "'" + FORMULA), ("+33 6", "'+33 6"), ("-1+2", "'-1+2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("'=1", "''=1"), ("Élodie", "Élodie"), ("'t Hooft", "'t Hooft"),
    ("", ""), ("p123", "p123"),
])
def test_escape_cell_round_trip(value, escaped):
    assert csvsafe.escape_cell(value) == escaped
    assert csvsafe.unescape_cell(escaped) == value
