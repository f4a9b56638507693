"""A small gradebook where a written answer was graded by hand: the fixture of test_manual_grades.py and
test_writeback.py (import it: ``from manual_book import gradebook_graded_by_hand``)."""
import pytest
from nbgrader.api import Gradebook

from tpkit import release

A = "tp_reseaux_neurones"  # the course's main assignment


@pytest.fixture(name="manual_gradebook")
def gradebook_graded_by_hand(tmp_path, monkeypatch):
    """make(needs) -> (url, config) of a gradebook where s1's written answer m1 has a manual score of
    1.5 (``needs``: still flagged), beside an autograded cell q1 and an answer cell r1."""
    from traitlets.config import Config
    monkeypatch.setenv("PATH", release.nbgrader_env()["PATH"])  # a new gradebook runs alembic

    def make(needs: bool):
        url = f"sqlite:///{tmp_path / 'gradebook.db'}"
        with Gradebook(url, "cours") as gb:
            gb.add_assignment(A)
            gb.add_notebook(A, A)
            gb.add_grade_cell("q1", A, A, max_score=1.0, cell_type="code")
            gb.add_grade_cell("m1", A, A, max_score=2.0, cell_type="markdown")
            gb.add_solution_cell("r1", A, A)
            gb.add_solution_cell("m1", A, A)
            gb.add_student("s1")
            gb.add_submission(A, "s1")
            grade = gb.find_grade("m1", A, A, "s1")
            grade.manual_score, grade.needs_manual_grade = 1.5, needs
            gb.db.commit()
        cfg = Config()
        cfg.CourseDirectory.db_url = url
        cfg.CourseDirectory.course_id = "cours"
        return url, cfg
    return make
