"""The notebooks' vocabulary (tpkit/vocabulary.py), which every reader of a notebook uses."""
import re
from pathlib import Path

from tpkit import vocabulary as v

CELL = "a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\n# BEGIN HIDDEN TESTS\nverifier('q', globals())\n# END HIDDEN TESTS\nc = 3"


def test_regions_and_markers():
    assert v.split_solution(CELL)[1] == ["b = 2"]
    assert v.split_hidden(CELL) == (["a = 1", "### BEGIN SOLUTION", "b = 2", "### END SOLUTION", "c = 3"],
                                    ["verifier('q', globals())"])
    assert v.strip_solution_markers(CELL).split("\n")[:2] == ["a = 1", "b = 2"]
    assert [v.hidden_marker(line) for line in CELL.split("\n")].count("begin") == 1


def test_grade_id_reads_any_json_a_student_may_write():
    assert v.grade_id({"metadata": {"nbgrader": {"grade_id": "q1", "solution": True}}}) == "q1"
    for broken in ({}, {"metadata": []}, {"metadata": {"nbgrader": "x"}}, {"metadata": {"nbgrader": None}}):
        assert v.grade_id(broken) is None and not v.is_answer(broken)


def test_no_module_spells_the_markers_itself():
    # one source of truth: a marker written out anywhere else in the package would drift from this one
    here = Path(v.__file__).parent
    spelled = re.compile(r"""["'][^"'\n]*(BEGIN|END) (SOLUTION|HIDDEN TESTS)""")
    offenders = [str(p.relative_to(here)) for p in here.rglob("*.py")
                 if p.name != "vocabulary.py" and spelled.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
