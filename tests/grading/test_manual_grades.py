"""A cell graded by hand stays graded while what was graded is unchanged (tpkit.grading.manual_grades)."""
from manual_book import gradebook_graded_by_hand  # noqa: F401  (the fixture manual_gradebook)
from nbgrader.api import Gradebook

import pytest

from tpkit.grading import manual_grades
from tpkit.grading.expected import Expected, ExpectedCell
from tpkit.grading.options import Options

A = "tp_reseaux_neurones"  # the course's main assignment


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


@pytest.mark.parametrize("auto_after, kept", [(0.5, True), (0.0, False)])
def test_a_test_cell_graded_by_hand_stays_graded_while_its_automatic_score_is_the_same(tmp_path, manual_gradebook,
                                                                                     auto_after, kept):
    """A test cell the instructor graded by hand (a manual score over the automatic one): kept while the
    regrade gives the same automatic score, flagged again with both scores said otherwise."""
    from nbformat.v4 import new_notebook
    url, cfg = manual_gradebook(needs=False)
    options = Options(root=tmp_path, assignment=A)
    with Gradebook(url, "cours") as gb:
        q1 = gb.find_grade("q1", A, A, "s1")
        q1.auto_score, q1.manual_score, q1.needs_manual_grade = 0.5, 1.0, False
        gb.db.commit()
    by_hand = manual_grades.graded_by_hand(cfg, options, "s1")
    assert by_hand == {"q1": 0.5, "m1": None}
    with Gradebook(url, "cours") as gb:  # the regrade: a new automatic score, flagged by SaveAutoGrades
        q1 = gb.find_grade("q1", A, A, "s1")
        q1.auto_score, q1.needs_manual_grade = auto_after, True
        gb.db.commit()
    expected = Expected(A, A, {"q1": ExpectedCell("q1", "code", grade=True, points=1.0)}, ["q1"], 1.0)
    remarks = manual_grades.keep_manual_grades(cfg, options, "s1", expected, {"q1": 0.5}, new_notebook(), None)
    with Gradebook(url, "cours") as gb:
        q1 = gb.find_grade("q1", A, A, "s1")
        assert (q1.manual_score, q1.needs_manual_grade) == (1.0, not kept)
    if kept:
        assert remarks == []
    else:
        assert remarks == ["q1 : note automatique changée (0.5 → 0) depuis sa correction à la main, à revoir "
                           "dans le formgrader"]
