"""Copies of the gradebook for the grading workers, which never write the course's own.

The coordinator of a grading run is the only writer of the course's gradebook (``db_url``: the sqlite
file ``gradebook.db`` or a PostgreSQL server). nbgrader's ``Autograde`` and ``GenerateFeedback`` still
need a gradebook to run on, so each worker gets a private sqlite copy:

* :func:`run_copy`, once per run: the course's gradebook as a sqlite file in the run's staging folder
  (a file copy for sqlite; a table-by-table copy through SQLAlchemy for a server database);
* :func:`template` and :func:`student_copy`, for workers on other machines (:mod:`tpkit.grading.cluster`):
  the assignments, notebooks and cells of the run copy, and the rows of **one** student (their earlier
  scores, manual ones included, so the feedback page shows what the gradebook will hold), nobody
  else's. A machine of the cluster never sees the class's grades.

``python -m tpkit.grading.bookcopy SRC_URL DEST_URL`` copies a whole gradebook into an empty database
(e.g. the course's ``sqlite:///…/gradebook.db`` into a new PostgreSQL database, docs/scale.md).
"""
from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

#: The tables that hold a student's rows, parents first, and how one student's rows are selected
#: (``{src}``: the schema prefix; ``:s``: the student id). Everything else describes the course.
_STUDENT_ROWS = (
    ("student", "id = :s"),
    ("submitted_assignment", "student_id = :s"),
    ("submitted_notebook", "assignment_id IN (SELECT id FROM {src}submitted_assignment WHERE student_id = :s)"),
    ("grade", "notebook_id IN (SELECT n.id FROM {src}submitted_notebook n JOIN {src}submitted_assignment a "
              "ON n.assignment_id = a.id WHERE a.student_id = :s)"),
    ("comment", "notebook_id IN (SELECT n.id FROM {src}submitted_notebook n JOIN {src}submitted_assignment a "
                "ON n.assignment_id = a.id WHERE a.student_id = :s)"),
)


def sqlite_path(db_url: str):
    """The file of a ``sqlite:///`` URL, None for a server database."""
    return Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite:///") else None


def copy_gradebook(src_url: str, dest_url: str) -> None:
    """Every row of nbgrader's gradebook at ``src_url`` into the empty database ``dest_url`` (same schema,
    same alembic version, same ids). ValueError when the destination already has tables."""
    from nbgrader.api import Base
    from sqlalchemy import create_engine, inspect, select, text
    src, dest = create_engine(src_url, future=True), create_engine(dest_url, future=True)
    try:
        if inspect(dest).get_table_names():
            raise ValueError(f"the destination gradebook is not empty: {dest.url!r}")
        with src.connect() as s, dest.begin() as d:
            version = s.execute(text("SELECT version_num FROM alembic_version")).scalar()
            Base.metadata.create_all(bind=d)
            d.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            d.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": version})
            for table in Base.metadata.sorted_tables:  # parents before children (the server checks keys)
                rows = [dict(r) for r in s.execute(select(table)).mappings()]
                if rows:
                    d.execute(table.insert(), rows)
    finally:
        src.dispose()
        dest.dispose()


def run_copy(db_url: str, dest: Path) -> Path:
    """The course's gradebook as the sqlite file ``dest`` (the run's copy, which the workers' copies are
    made from)."""
    path = sqlite_path(db_url)
    if path is not None:
        shutil.copyfile(path, dest)
    else:
        copy_gradebook(db_url, f"sqlite:///{dest}")
    return dest


def template(run_copy_path: Path) -> bytes:
    """The run copy without any student's row: the course's assignments, notebooks and cells."""
    with tempfile.TemporaryDirectory(prefix="tpkit-gradebook-") as tmp:
        path = Path(tmp) / "modele.db"
        shutil.copyfile(run_copy_path, path)
        con = sqlite3.connect(path)
        try:
            for table, _ in reversed(_STUDENT_ROWS):
                con.execute(f"DELETE FROM {table}")
            con.commit()
            con.execute("VACUUM")  # the deleted pages go: what is sent holds no trace of them
        finally:
            con.close()
        return path.read_bytes()


def student_copy(run_copy_path: Path, template_bytes: bytes, student: str, folder: Path) -> bytes:
    """:func:`template` plus ``student``'s rows of the run copy (made in ``folder``, returned as bytes)."""
    path = Path(folder) / "gradebook-etudiant.db"
    path.write_bytes(template_bytes)
    con = sqlite3.connect(path)
    try:
        con.execute("ATTACH DATABASE ? AS src", (str(run_copy_path),))
        for table, where in _STUDENT_ROWS:  # the same file's schema: the columns are in the same order
            con.execute(f"INSERT INTO main.{table} SELECT * FROM src.{table} WHERE "
                        + where.format(src="src."), {"s": student})
        con.commit()
        con.execute("DETACH DATABASE src")
    finally:
        con.close()
    data = path.read_bytes()
    path.unlink()
    return data


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage : python -m tpkit.grading.bookcopy SRC_URL DEST_URL (DEST vide)", file=sys.stderr)
        return 2
    copy_gradebook(*args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
