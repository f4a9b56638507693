"""tpkit.grading.gradebook's queries on a small gradebook made here: scores as every export reads them
(pending manual grading, late penalty), a submission reset, a student named from an LMS roster, the
class's results, the expected cells, the students already graded (read only). That nbgrader's steps
share one engine during a run only is tested in tests/grading/test_pipeline_units.py; a server
(PostgreSQL) gradebook in tests/grading/test_cluster.py."""
import shutil
from pathlib import Path

import nbformat
import nbgrader
import nbgrader.api
import pytest
from alembic.script import ScriptDirectory
from traitlets.config import Config

from tpkit.grading import gradebook
from tpkit.grading.options import Options
from tpkit.grading.results import FAILED, OK, PARTIAL, RunReport, StudentResult

A = "devoir"
v4 = nbformat.v4


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Assignment ``devoir``: q1 (test, 2 points), m1 (written answer, 1 point, graded by hand). alice: q1
    2, m1 0.5 by hand; bob: q1 1, m1 awaiting; dan: submitted, nothing graded; carole: no submission.
    (Its alembic version read in this process: nbgrader would run the `alembic` command, 2-3 s.)"""
    path = tmp_path_factory.mktemp("carnet") / "gradebook.db"
    head = ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_current_head()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nbgrader.api, "get_alembic_version", lambda: head)
        with nbgrader.api.Gradebook(f"sqlite:///{path}", "cours") as gb:
            gb.add_assignment(A)
            gb.add_notebook(A, A)
            for name, cell_type, source in (("intro", "markdown", "# TP"), ("q1_pred", "code", "def pred(): ..."),
                                            ("q1", "code", "### BEGIN HIDDEN TESTS\nx\n### END HIDDEN TESTS\nassert 1"),
                                            ("m1", "markdown", "VOTRE RÉPONSE")):
                gb.add_source_cell(name, A, A, cell_type=cell_type, source=source, locked=name != "q1_pred")
            gb.add_grade_cell("q1", A, A, max_score=2, cell_type="code")
            gb.add_grade_cell("m1", A, A, max_score=1, cell_type="markdown")
            gb.add_solution_cell("q1_pred", A, A)
            gb.add_solution_cell("m1", A, A)
            for student in ("alice", "bob", "dan", "carole"):
                gb.add_student(student)
            for student in ("alice", "bob", "dan"):
                gb.add_submission(A, student)
            for student, q1, m1 in (("alice", 2.0, 0.5), ("bob", 1.0, None)):
                for grade_id, score in (("q1", q1), ("m1", m1)):
                    grade = gb.find_grade(grade_id, A, A, student)
                    grade.needs_manual_grade = score is None  # (nbgrader's new grades await it)
                    if grade_id == "q1":
                        grade.auto_score = score
                    else:
                        grade.manual_score = score
            gb.db.commit()
    return path


@pytest.fixture
def course(template, tmp_path, monkeypatch):
    """A course folder holding a copy of the template, and its nbgrader configuration."""
    shutil.copyfile(template, tmp_path / "gradebook.db")
    cfg = Config({"CourseDirectory": {"root": str(tmp_path), "course_id": "cours",
                                      "db_url": f"sqlite:///{tmp_path / 'gradebook.db'}"}})
    return tmp_path, cfg


def test_scores_say_which_grades_await_manual_grading(course):
    _, cfg = course
    with gradebook.open_gradebook(cfg) as gb:
        assert gradebook.submission_scores(gb, A, "alice", ["q1", "m1", "absente"]) == (
            {"q1": 2.0, "m1": 0.5}, 2.5, 3.0)
        assert gradebook.submission_scores(gb, A, "bob", ["m1", "q1"]) == ({"m1": None, "q1": 1.0}, 1.0, 3.0)
        assert gradebook.submission_scores(gb, A, "dan", ["q1", "m1"]) == ({"q1": None, "m1": None}, 0.0, 3.0)


def test_the_late_penalty_is_taken_off_the_total(course):
    _, cfg = course
    with gradebook.open_gradebook(cfg) as gb:
        gb.find_submission_notebook(A, A, "alice").late_submission_penalty = 1.25
        gb.db.commit()
        assert gradebook.submission_scores(gb, A, "alice", ["q1"])[1:] == (1.25, 3.0)


def test_a_submission_that_cannot_be_graded_loses_its_automatic_scores_not_its_manual_ones(course):
    root, cfg = course
    gradebook.reset_scores(Options(root=root, assignment=A), cfg, "alice")
    with gradebook.open_gradebook(cfg) as gb:
        q1, m1 = (gb.find_grade(g, A, A, "alice") for g in ("q1", "m1"))
        assert q1.auto_score is None and q1.needs_manual_grade and m1.manual_score == 0.5
        # the whole submission awaits a person (m1 too), its total keeps the manual points
        assert gradebook.submission_scores(gb, A, "alice", ["q1", "m1"]) == ({"q1": None, "m1": None}, 0.5, 3.0)
    gradebook.reset_scores(Options(root=root, assignment=A), cfg, "nouveau")  # created, not an error
    with gradebook.open_gradebook(cfg) as gb:
        assert gb.find_submission(A, "nouveau").student.id == "nouveau"


@pytest.mark.parametrize("full_name, first, last", [
    ("Élodie  de la  Fontaine", "Élodie", "de la Fontaine"),
    ("Madonna", "Madonna", "Madonna"),
    ("   ", None, None),
    ("Eve\u202e\u200bLyne Martin", "Eve\\u202e\\u200bLyne", "Martin"),  # hidden characters shown, inert
])
def test_a_student_is_named_from_the_roster_first_word_first(course, full_name, first, last):
    _, cfg = course
    gradebook.name_student(cfg, "bob", full_name)
    with gradebook.open_gradebook(cfg) as gb:
        student = gb.find_student("bob")
        assert (student.first_name, student.last_name) == (first, last)
        assert gradebook.submission_scores(gb, A, "bob", ["q1"])[0] == {"q1": 1.0}  # grades untouched


def test_class_results_without_a_run_report(course):
    _, cfg = course
    with gradebook.open_gradebook(cfg) as gb:
        columns, points, results = gradebook.class_results(gb, A, [], None)
    assert columns == ["q1", "m1"] and points == {"q1": 2.0, "m1": 1.0}
    assert list(results) == ["alice", "bob", "dan"]  # those who submitted, in order
    assert (results["alice"].status, results["alice"].score, results["alice"].max_score) == (OK, 2.5, 3.0)
    assert results["bob"].scores == {"q1": 1.0, "m1": None} and results["bob"].score == 1.0
    assert (results["dan"].status, results["dan"].reasons, results["dan"].score) == (FAILED, ["non corrigé"], None)


def test_class_results_keep_the_run_s_statuses_and_fail_a_student_without_submission(course):
    _, cfg = course
    report = RunReport(A, ["m1", "q1"], {"m1": 1.0, "q1": 2.0}, 3.0, {
        "alice": StudentResult("alice", PARTIAL, ["notebook renommé"]),
        "bob": StudentResult("bob", FAILED, ["noyau arrêté"]),
        "dan": StudentResult("dan")})
    with gradebook.open_gradebook(cfg) as gb:
        columns, _, results = gradebook.class_results(gb, A, ["dan", "carole", "bob", "alice"], report)
    assert columns == ["m1", "q1"] and list(results) == ["alice", "bob", "carole", "dan"]
    assert (results["alice"].status, results["alice"].reasons, results["alice"].score) == (
        PARTIAL, ["notebook renommé"], 2.5)
    assert (results["bob"].status, results["bob"].scores, results["bob"].score) == (FAILED, {}, None)
    assert (results["carole"].status, results["carole"].reasons) == (FAILED, ["aucun rendu"])
    assert results["dan"].status == OK and results["dan"].score == 0.0  # the run graded it: its zero stands


def test_expected_cells_come_from_the_gradebook_in_the_release_s_order(course, tmp_path):
    root, _ = course
    url = f"sqlite:///{root / 'gradebook.db'}"
    expected = gradebook.load_expected(url, "cours", A, A)
    assert expected.order == ["intro", "q1_pred", "q1", "m1"] and expected.max_score == 3.0
    q1, m1, pred = expected.cells["q1"], expected.cells["m1"], expected.cells["q1_pred"]
    assert q1.grade and q1.points == 2.0 and q1.locked and not q1.solution
    assert "HIDDEN" not in q1.release_source and "assert 1" in q1.release_source  # what students see
    assert m1.grade and m1.solution and pred.solution and not pred.grade and not pred.locked
    assert expected.graded_ids == ["q1", "m1"]
    release = tmp_path / "release.ipynb"
    md = {"nbgrader": {"grade_id": "m1", "solution": True, "grade": True, "points": 1}}
    nbformat.write(v4.new_notebook(cells=[v4.new_markdown_cell("Réponse, texte de la release", metadata=md),
                                          v4.new_code_cell("x", metadata={"nbgrader": {"grade_id": "q1"}})]),
                   str(release))
    expected = gradebook.load_expected(url, "cours", A, A, release)
    assert expected.order == ["m1", "q1", "intro", "q1_pred"]
    assert expected.cells["m1"].release_source == "Réponse, texte de la release"


def test_graded_students_are_read_without_creating_or_writing_the_gradebook(course, tmp_path):
    root, _ = course
    before = (root / "gradebook.db").read_bytes()
    assert gradebook.graded_students(root, A) == {"alice", "bob", "dan"}
    assert gradebook.graded_students(root, "autre") == set()
    assert (root / "gradebook.db").read_bytes() == before
    empty = tmp_path / "sans_carnet"
    empty.mkdir()
    assert gradebook.graded_students(empty, A) == set() and list(empty.iterdir()) == []
    (empty / "gradebook.db").write_bytes(b"pas une base sqlite" * 100)
    assert gradebook.graded_students(empty, A) == set()
