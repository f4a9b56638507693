"""Every query of the course's gradebook (``gradebook.db``, nbgrader's sqlite database), and the lock
that serializes them.

There is one writer at a time: every nbgrader step that touches the gradebook runs under
:data:`GRADEBOOK_LOCK` (a few milliseconds per step, never held while a notebook executes).
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Optional

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from sqlalchemy.orm import scoped_session, sessionmaker

from tpkit.grading import compat
from tpkit.grading.expected import Expected, ExpectedCell, visible_source
from tpkit.grading.options import Options, course_id
from tpkit.grading.results import FAILED, RunReport, StudentResult
from tpkit.vocabulary import grade_id

#: One lock for every gradebook access of this process (sqlite allows one writer at a time, and two
#: connections that both upgrade a read to a write get "database is locked" instead of waiting).
GRADEBOOK_LOCK = threading.RLock()


class RunGradebook(Gradebook):
    """nbgrader's ``Gradebook`` on one engine per database for the whole grading run.

    nbgrader opens a ``Gradebook`` about eleven times per submission (each preprocessor, each step of
    ``Autograde``), and each opening creates an engine, lists the tables and checks all of them
    (``create_all``): ~18 ms of CPU, 6 % of the grading process's. Inside :func:`shared_engine`, the
    first opening of a database does all that; the next ones reuse its engine (a pool of sqlite
    connections; nbgrader's own sessions, queries and commits unchanged) and only check the course."""

    engines: Optional[dict] = None  # {db_url: engine} inside shared_engine(); None: nbgrader's behaviour
    _lock = threading.Lock()

    def __init__(self, db_url: str, course_id: str = "default_course", authenticator=None):
        with self._lock:
            engine = None if self.engines is None else self.engines.get(db_url)
            if engine is None:
                super().__init__(db_url, course_id, authenticator)
                if self.engines is not None:
                    self.engines[db_url] = self.engine
                return
        self.engine = engine
        self.db = scoped_session(sessionmaker(autoflush=True, bind=engine, future=True))
        self.check_course(course_id=course_id)
        self.course_id = course_id
        self.authenticator = authenticator

    def close(self):
        if self.engine in (RunGradebook.engines or {}).values():
            self.db.remove()  # the engine stays for the run's next opening
        else:
            super().close()


@contextlib.contextmanager
def shared_engine():
    """While grading: nbgrader's steps and this module's queries share one engine per database; when
    the last run of the process ends, the engines are closed and nbgrader's modules have their class
    back (:func:`tpkit.grading.compat.nbgrader_gradebook`)."""
    global _runs
    with RunGradebook._lock:
        _runs += 1
        if _runs == 1:
            RunGradebook.engines = {}
    try:
        with compat.nbgrader_gradebook(RunGradebook):
            yield
    finally:
        with RunGradebook._lock:
            _runs -= 1
            engines = {}
            if _runs == 0:
                engines, RunGradebook.engines = RunGradebook.engines, None
        for engine in engines.values():
            engine.dispose()


_runs = 0


def open_gradebook(cfg) -> Gradebook:
    """The course's gradebook (nbgrader's Gradebook API)."""
    return RunGradebook(CourseDirectory(config=cfg).db_url, course_id(cfg))


def load_expected(db_url: str, course: Optional[str], assignment: str, notebook: str,
                  release_notebook: Optional[Path] = None) -> Expected:
    """Read the expected cells from the gradebook (flags, points, sources) and the release (order,
    student-visible text). Falls back to the gradebook's order when the release is missing."""
    cells: dict = {}
    order: list = []
    with (RunGradebook(db_url, course) if course else RunGradebook(db_url)) as gb:
        nb = gb.find_notebook(notebook, assignment)
        max_score = float(nb.max_score)
        for sc in nb.source_cells:
            cells[sc.name] = ExpectedCell(sc.name, sc.cell_type, locked=bool(sc.locked),
                                                   release_source=visible_source(sc.source))
            order.append(sc.name)
        for gc in nb.grade_cells:
            cells[gc.name].grade = True
            cells[gc.name].points = float(gc.max_score)
        for sc in nb.solution_cells:
            cells[sc.name].solution = True
        for tc in nb.task_cells:
            cells[tc.name].task = True
            cells[tc.name].points = float(tc.max_score)
    if release_notebook is not None and Path(release_notebook).is_file():
        release = nbformat.read(str(release_notebook), as_version=4)
        release_order = []
        for cell in release.cells:
            gid = grade_id(cell)
            if gid in cells:
                cells[gid].release_source = cell.source
                cells[gid].release_cell = cell
                release_order.append(gid)
        order = release_order + [g for g in order if g not in release_order]
    return Expected(assignment, notebook, cells, order, max_score)


def submission_scores(gb: Gradebook, assignment: str, student: str, columns: list) -> tuple:
    """({graded id: points or None when awaiting manual grading}, total after late penalty, maximum).
    Awaiting manual grading: flagged "needs manual grading" (what the feedback page and the formgrader
    say), or no score at all; every export reads it here, so they agree on final or provisional."""
    sub = gb.find_submission(assignment, student)
    scores = {}
    for snb in sub.notebooks:
        for grade in snb.grades:
            pending = bool(grade.needs_manual_grade) or (grade.manual_score is None and grade.auto_score is None)
            scores[grade.cell.name] = None if pending else float(grade.score)
    total = float(sub.score) - float(sub.late_submission_penalty or 0.0)
    return {c: scores[c] for c in columns if c in scores}, round(total, 4), float(sub.max_score)


def read_scores(cfg, result: StudentResult, expected: Expected) -> None:
    with GRADEBOOK_LOCK, open_gradebook(cfg) as gb:
        result.scores, result.score, result.max_score = submission_scores(
            gb, expected.assignment, result.student, expected.graded_ids)


def name_student(cfg, student: str, full_name: str) -> None:
    """The student's name in the gradebook (what the formgrader lists, « None, None » otherwise), from
    an LMS's roster: the first word as first name, the rest as last name."""
    from tpkit.grading.inert import inert
    first, _, last = " ".join(inert(full_name).split()).partition(" ")
    with GRADEBOOK_LOCK, open_gradebook(cfg) as gb:
        gb.update_or_create_student(student, first_name=first or None, last_name=last or first or None)
        gb.db.commit()


def reset_scores(options: Options, cfg, student: str) -> None:
    """A submission that cannot be graded: its automatic scores are cleared (not left from an earlier
    run, not a silent 0) and it is marked for manual grading; manual scores are kept."""
    with GRADEBOOK_LOCK, open_gradebook(cfg) as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(options.assignment, student)
        for nb in sub.notebooks:
            for grade in nb.grades:
                grade.auto_score = None
                grade.needs_manual_grade = True
        gb.db.commit()


def class_results(gradebook: Gradebook, assignment: str, students: list, report: Optional[RunReport]) -> tuple:
    """(columns, points, {student: StudentResult}) from the gradebook, statuses from ``report``."""
    a = gradebook.find_assignment(assignment)
    nb = a.notebooks[0]
    columns = list(report.columns) if report else []
    points = dict(report.points) if report else {}
    for gc in list(nb.grade_cells) + list(nb.task_cells):
        if gc.name not in points:
            columns.append(gc.name)
            points[gc.name] = float(gc.max_score)
    if not students:
        students = sorted(s.student.id for s in a.submissions)
    results = {}
    for student in sorted(students):
        known = report.results.get(student) if report else None
        result = StudentResult(student, max_score=float(a.max_score))
        if known is not None:
            result.status, result.reasons = known.status, list(known.reasons)
        if result.status != FAILED:
            try:
                result.scores, score, _ = submission_scores(gradebook, assignment, student, columns)
            except MissingEntry:
                result.status, result.reasons = FAILED, ["aucun rendu"]
            else:
                if known is None and result.scores and all(v is None for v in result.scores.values()):
                    result.status, result.reasons = FAILED, ["non corrigé"]
                else:
                    result.score = score
        results[student] = result
    return columns, points, results


_GRADED = ("SELECT s.student_id FROM submitted_assignment s JOIN assignment a ON s.assignment_id = a.id "
           "WHERE a.name = {}")


def graded_students(root: Path, assignment: str) -> set:
    """Students with a submission of ``assignment`` in the gradebook (``gradebook.db`` or the course's
    PostgreSQL ``db_url``), read without writing (nbgrader's Gradebook would create or migrate it)."""
    from tpkit.grading.options import server_db_url
    url = server_db_url(root)
    if url is not None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError
        engine = create_engine(url)
        try:
            with engine.connect() as con:
                return {r[0] for r in con.execute(text(_GRADED.format(":a")), {"a": assignment})}
        except SQLAlchemyError:
            return set()
        finally:
            engine.dispose()
    db = root / "gradebook.db"
    if not db.is_file():
        return set()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(_GRADED.format("?"), (assignment,)).fetchall()
    except sqlite3.Error:
        return set()
    finally:
        con.close()
    return {r[0] for r in rows}
