"""tpkit.grading.bookcopy: the workers' copies of the gradebook. That a machine of the cluster gets the
course and its own student's rows only, and that ``copy_gradebook`` copies every row and refuses a
database that has tables, is tested in tests/grading/test_cluster.py; here the run copy (sqlite file or
through SQLAlchemy), a copy made while the gradebook is being written, the student copy's edges and
the command line."""
import sqlite3

from pathlib import Path

import nbgrader
import nbgrader.api
import pytest
from alembic.script import ScriptDirectory
from nbgrader.api import Gradebook

from tpkit.grading import bookcopy


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A gradebook: one assignment, two students, a grade and a comment each (its alembic version read
    in this process: nbgrader would run the `alembic` command, 2-3 s)."""
    path = tmp_path_factory.mktemp("carnet") / "gradebook.db"
    head = ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_current_head()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nbgrader.api, "get_alembic_version", lambda: head)
        with Gradebook(f"sqlite:///{path}", "cours") as gb:
            gb.add_assignment("a")
            gb.add_notebook("a", "a")
            gb.add_grade_cell("q1", "a", "a", max_score=2, cell_type="code")
            gb.add_solution_cell("q1", "a", "a")
            for student, score in (("alice", 2.0), ("bob", 0.5)):
                gb.add_student(student)
                gb.add_submission("a", student)
                gb.find_grade("q1", "a", "a", student).auto_score = score
                gb.find_comment("q1", "a", "a", student).manual_comment = f"commentaire de {student}"
            gb.db.commit()
    return path


def rows(path, table):
    con = sqlite3.connect(path)
    try:
        return sorted(con.execute(f"SELECT * FROM {table}").fetchall())
    finally:
        con.close()


TABLES = ("assignment", "notebook", "grade_cells", "student", "submitted_assignment", "submitted_notebook",
          "grade", "comment", "alembic_version")


def test_sqlite_path_is_the_file_of_a_sqlite_url_only():
    assert str(bookcopy.sqlite_path("sqlite:////srv/cours/gradebook.db")) == "/srv/cours/gradebook.db"
    assert str(bookcopy.sqlite_path("sqlite:///gradebook.db")) == "gradebook.db"
    assert bookcopy.sqlite_path("postgresql://correcteur@serveur/cours") is None


@pytest.mark.parametrize("through_sqlalchemy", [False, True])
def test_the_run_copy_holds_the_course_s_rows(book, tmp_path, monkeypatch, through_sqlalchemy):
    if through_sqlalchemy:  # as for a server database: table by table
        monkeypatch.setattr(bookcopy, "sqlite_path", lambda url: None)
    dest = bookcopy.run_copy(f"sqlite:///{book}", tmp_path / "copie.db")
    assert dest == tmp_path / "copie.db"
    for table in TABLES:
        assert rows(dest, table) == rows(book, table), table
    assert rows(dest, "grade")  # not two empty gradebooks


def test_the_run_copy_of_a_gradebook_being_written_is_a_consistent_database(book, tmp_path):
    """The coordinator copies while nothing else writes; a copy taken mid-transaction (another process
    holding a write lock) still opens and holds the last committed rows."""
    live = tmp_path / "vivant.db"
    live.write_bytes(book.read_bytes())
    writer = sqlite3.connect(live)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE grade SET auto_score = 99")
    try:
        copy = bookcopy.run_copy(f"sqlite:///{live}", tmp_path / "copie.db")
    finally:
        writer.rollback()
        writer.close()
    con = sqlite3.connect(copy)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert sorted(s for (s,) in con.execute("SELECT auto_score FROM grade")) == [0.5, 2.0]
    finally:
        con.close()


def test_a_student_copy_holds_that_student_s_grades_and_comments_and_leaves_no_file(book, tmp_path):
    model = bookcopy.template(book)
    data = bookcopy.student_copy(book, model, "bob", tmp_path)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "bob.db").write_bytes(data)
    assert rows(tmp_path / "bob.db", "student") == [r for r in rows(book, "student") if r[0] == "bob"]
    assert [r for r in rows(tmp_path / "bob.db", "comment") if "commentaire" in str(r)] and \
        all("alice" not in str(r) for r in rows(tmp_path / "bob.db", "comment"))
    assert rows(tmp_path / "bob.db", "grade_cells") == rows(book, "grade_cells")
    assert rows(book, "student") and len(rows(book, "student")) == 2  # the course's own is untouched


def test_a_student_the_gradebook_does_not_know_gets_the_bare_template(book, tmp_path):
    model = bookcopy.template(book)
    (tmp_path / "x.db").write_bytes(bookcopy.student_copy(book, model, "inconnu", tmp_path))
    for table in ("student", "submitted_assignment", "submitted_notebook", "grade", "comment"):
        assert rows(tmp_path / "x.db", table) == []
    assert rows(tmp_path / "x.db", "assignment") == rows(book, "assignment")


def test_the_command_copies_into_an_empty_database_and_explains_its_usage(book, tmp_path, capsys):
    assert bookcopy.main([f"sqlite:///{book}", f"sqlite:///{tmp_path / 'neuf.db'}"]) == 0
    assert rows(tmp_path / "neuf.db", "grade") == rows(book, "grade")
    assert bookcopy.main([f"sqlite:///{book}"]) == 2
    assert "usage : python -m tpkit.grading.bookcopy SRC_URL DEST_URL" in capsys.readouterr().err
