"""A cell graded by hand stays graded while what was graded is unchanged (tpkit.grading.manual_grades)."""
from manual_book import gradebook_graded_by_hand  # noqa: F401  (the fixture manual_gradebook)
from nbgrader.api import Gradebook

import pytest

from tpkit import paths
from tpkit.grading import manual_grades
from tpkit.grading.expected import Expected, ExpectedCell
from tpkit.grading.options import Options

A = paths.ASSIGNMENT


@pytest.mark.parametrize("answer, kept", [("Ma réponse rédigée.", True), ("Ma réponse, modifiée.", False)])
def test_a_written_answer_graded_by_hand_stays_graded_while_its_text_is_the_same(tmp_path, manual_gradebook,
                                                                                  answer, kept):
    """After nbgrader's SaveAutoGrades flagged it again (what a regrade does), the worker clears the flag
    of an answer whose text is the one the formgrader showed (the last autograded notebook), and says
    when it changed."""
    import nbformat
    from nbformat.v4 import new_markdown_cell, new_notebook
    url, cfg = manual_gradebook(needs=False)
    by_hand = manual_grades.graded_by_hand(cfg, Options(root=tmp_path, assignment=A), "s1")
    assert by_hand == {"m1": None}
    with Gradebook(url, "cours") as gb:  # what SaveAutoGrades does to a cell with a manual score
        gb.find_grade("m1", A, A, "s1").needs_manual_grade = True
        gb.db.commit()

    def notebook(text):
        cell = new_markdown_cell(text)
        cell.metadata["nbgrader"] = {"grade_id": "m1", "grade": True, "solution": True, "points": 2.0}
        return new_notebook(cells=[cell])
    previous = tmp_path / "previous.ipynb"
    nbformat.write(notebook("Ma réponse rédigée."), str(previous))
    expected = Expected(A, A, {"m1": ExpectedCell("m1", "markdown", grade=True, solution=True, points=2.0)},
                        ["m1"], 2.0)
    remarks = manual_grades.keep_manual_grades(cfg, Options(root=tmp_path, assignment=A), "s1", expected, by_hand,
                                        notebook(answer), previous)
    with Gradebook(url, "cours") as gb:
        m1 = gb.find_grade("m1", A, A, "s1")
        assert (m1.manual_score, m1.needs_manual_grade) == (1.5, not kept)
    if kept:
        assert remarks == []
    else:
        assert len(remarks) == 1 and "modifiée depuis sa correction à la main" in remarks[0], remarks
    # no previous notebook to compare with: to grade again, said so
    remarks = manual_grades.keep_manual_grades(cfg, Options(root=tmp_path, assignment=A), "s1", expected, by_hand,
                                        notebook(answer), None)
    assert len(remarks) == 1 and "à corriger de nouveau" in remarks[0]
