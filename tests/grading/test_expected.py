"""What a submission must contain (tpkit.grading.expected), read from the notebooks and, the same, from
the gradebook (tpkit.grading.gradebook.load_expected: test_gradebook.py)."""
import nbformat

from tpkit import paths
from tpkit.grading import expected as E

MAIN = "tp_reseaux_neurones"  # the course's main assignment


def _expected():
    return E.expected_from_notebooks(paths.source_notebook(MAIN), paths.release_notebook(MAIN), MAIN)


def test_expected_matches_the_notebook():
    exp = _expected()
    assert exp.max_score == 20 and exp.filename == f"{MAIN}.ipynb"
    assert len(exp.graded_ids) >= 15 and exp.graded_ids[0].startswith("q1_")
    assert exp.order.index(exp.graded_ids[0]) < exp.order.index(exp.graded_ids[-1])
    roles = {c.role for c in exp.cells.values()}
    assert {"test", "answer", "manual"} <= roles


def test_the_release_text_has_no_hidden_region():
    exp = _expected()
    for cell in exp.cells.values():
        if cell.release_source is not None:
            assert E.visible_source(cell.release_source) == cell.release_source


def test_roles_follow_nbgrader_s_flags():
    assert E.role_of_flags(True, True, False, False) == "manual"
    assert E.role_of_flags(True, False, True, False) == "test"
    assert E.role_of_flags(False, True, False, False) == "answer"
    assert E.role_of_flags(False, False, True, False) == "readonly"
    assert E.role_of_flags(False, False, False, True) == "task"
    cell = nbformat.v4.new_code_cell("x", metadata={"nbgrader": {"grade": True, "solution": False,
                                                                  "locked": True, "grade_id": "q"}})
    assert E.role_of(cell) == "test" and E.role_of(nbformat.v4.new_markdown_cell("y")) == "none"
    assert E.same_text("a  \nb\n\n", "a\nb") and not E.same_text("a", "b")
