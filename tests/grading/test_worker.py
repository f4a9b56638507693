"""One submission, one box (issue #22): each submission is graded by a worker process of its own
(tpkit.grading.worker) whose failure costs that submission only, and whose result the coordinator
(tpkit.grading.pipeline) accepts as checked data only. A run whose first kernels all die at start-up
stops with the reason and writes nothing.

Faults are injected with the test-only variable TPKIT_TEST_WORKER_FAULTS (see tpkit.grading.worker).
"""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import generated_course
from nbgrader.api import Gradebook

from tpkit import examples, release
from tpkit.grading import pipeline, worker
from tpkit.grading.gradebook import graded_students
from tpkit.grading.options import Options
from tpkit.grading.expected import Expected, ExpectedCell

MAIN = "tp_reseaux_neurones"  # the course's main assignment

A = MAIN
HONEST = "partiel"  # a mix of full, partial and zero scores


def expected() -> Expected:
    cells = {"q1": ExpectedCell("q1", "code", grade=True, points=1.0),
             "r1": ExpectedCell("r1", "code", solution=True)}
    return Expected(A, A, cells, ["r1", "q1"], 1.0)


def good_result(**changes) -> dict:
    data = {"version": 1, "student": "s1", "status": "ok", "reasons": [], "kernel_start": "ok",
            "seconds": 1.0, "cpu_seconds": 0.5, "kernels_cpu_seconds": 2.0,
            "gradebook": {"timestamp": "2026-12-01T10:00:00", "late_penalty": None,
                          "grades": {"q1": {"auto_score": 1.0, "needs_manual_grade": False}},
                          "comments": {"r1": None}},
            "outputs": {"autograded": True, "feedback": True}}
    data.update(changes)
    return data


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / worker.RESULT_NAME
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_a_well_formed_result_is_accepted(tmp_path):
    out = worker.read_result(write(tmp_path, good_result()), "s1", expected())
    assert out["status"] == "ok" and out["gradebook"]["grades"]["q1"]["auto_score"] == 1.0
    assert out["gradebook"]["timestamp"].year == 2026


@pytest.mark.parametrize("bad", [
    "{pas du json",
    json.dumps([1, 2]),
    json.dumps(good_result(student="s2")),  # another submission's
    json.dumps(good_result(status="excellent")),
    json.dumps(good_result(reasons="pas une liste")),
    json.dumps(good_result(gradebook=None)),
    json.dumps(good_result(gradebook={**good_result()["gradebook"],
                                      "grades": {"q1": {"auto_score": 2.0, "needs_manual_grade": False}}})),
    json.dumps(good_result(gradebook={**good_result()["gradebook"],
                                      "grades": {"q1": {"auto_score": -1, "needs_manual_grade": False}}})),
    json.dumps(good_result(gradebook={**good_result()["gradebook"],
                                      "grades": {"q9": {"auto_score": 0.0, "needs_manual_grade": False}}})),
    json.dumps(good_result(gradebook={**good_result()["gradebook"],
                                      "grades": {"q1": {"auto_score": 1.0, "needs_manual_grade": "non"}}})),
    json.dumps(good_result(gradebook={**good_result()["gradebook"], "timestamp": "hier"})),
    json.dumps(good_result(seconds=math.inf), allow_nan=True),
    json.dumps(good_result(status="failed", reasons=[])),
    json.dumps(good_result(reasons=["x" * (worker.MAX_RESULT_BYTES + 1)])),  # oversized
])
def test_malformed_or_oversized_results_are_refused(tmp_path, bad):
    with pytest.raises(worker.ResultError):
        worker.read_result(write(tmp_path, bad), "s1", expected())


def test_missing_result_is_refused(tmp_path):
    with pytest.raises(worker.ResultError):
        worker.read_result(tmp_path / "absent.json", "s1", expected())


def test_a_dead_worker_says_why_in_french():
    options = Options(worker_cpu_limit=7)
    assert worker.death_reason(-signal.SIGKILL, options) == "processus de correction mort (signal 9)"
    assert worker.death_reason(-signal.SIGXCPU, options) == \
        "temps de calcul du correcteur dépassé (7 s de CPU pour ce rendu)"
    assert worker.death_reason(1, options) == "processus de correction mort (code 1)"
    assert worker.wall_reason(Options(worker_wall_limit=42)) == \
        "correction interrompue : délai de 42 s dépassé pour ce rendu"
    assert Options(time_limit=100).settings.worker_wall() == 100 + Options().settings.worker_wall_margin


def test_a_worker_cannot_ask_for_a_fork_into_a_process_it_did_not_start():
    """The coordinator forwards a fork only into a sandbox holder that the asking worker started."""
    with pytest.raises(ValueError):
        worker.check_holder(os.getpid(), os.getppid(), None)  # not a holder
    with pytest.raises(ValueError):
        worker.check_holder(1, os.getpid(), None)  # not a descendant of the asker


def test_faults_are_read_per_student():
    assert worker.faults_for("a", "a:raise,b:sleep") == "raise"
    assert worker.faults_for("b", "a:raise,b:sleep") == "sleep"
    assert worker.faults_for("c", "a:raise") == "" and worker.faults_for("c", "*:kernel") == "kernel"


# ------------------------------------------------------------------ class runs (slow)

FAULTS = {  # student: (fault, the reason its row must give)
    "panne": ("raise", "erreur interne de correction : RuntimeError : panne simulée du correcteur"),
    "dort": ("sleep", "correction interrompue : délai de {wall} s dépassé pour ce rendu"),
    "gourmand": ("memory", "mémoire du correcteur dépassée (limite de 4096 Mo pour ce rendu)"),
    "tue": ("signal", "processus de correction mort (signal 9)"),
    "illisible": ("garbage", "résultat du correcteur refusé : résultat illisible (JSON invalide)"),
    "enorme": ("huge", "résultat du correcteur refusé : résultat trop gros (plus de 1024 ko)"),
}
#: the wall limit of every worker in the faults' run: above what the honest notebook needs on a loaded
#: machine, and what the sleeping worker costs the class
WALL = 60


def lay_out(course: Path, students) -> None:
    name, data = examples.build(MAIN)[HONEST]
    for student in students:
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def gradebook_rows(course: Path, student: str) -> dict:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "rn_pytorch") as gb:
        nb = gb.find_submission_notebook(A, A, student)
        return {g.cell.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in nb.grades}


def feedback_page(course: Path, student: str) -> str:
    return (course / "feedback" / student / A / f"{A}.html").read_text(encoding="utf-8")


@pytest.fixture
def fault_course(session_dir, tmp_path, monkeypatch) -> Path:
    """A copy of the generated course for a run with injected faults, nbgrader's executables on PATH."""
    monkeypatch.setenv("PATH", release.nbgrader_env()["PATH"])
    return generated_course(session_dir, tmp_path / "course")


@pytest.mark.slow
def test_a_broken_worker_costs_its_own_submission_only(fault_course, monkeypatch):
    """A worker that raises, overruns its wall limit, allocates past its memory limit, is killed by a
    signal or returns a malformed or oversized result: that submission fails with the reason in French
    (its row, its feedback page, its automatic scores cleared), the run completes, and the honest
    submission graded beside them gets exactly the grades and page it gets when graded alone."""
    course = fault_course
    options = Options(root=course, workers=2, cell_timeout=10, worker_wall_limit=WALL)
    lay_out(course, [HONEST])
    t0 = time.monotonic()
    alone = pipeline.grade([HONEST], options)
    alone_s = time.monotonic() - t0
    alone_scores, alone_page = gradebook_rows(course, HONEST), feedback_page(course, HONEST)
    assert alone.results[HONEST].status == "ok" and alone.results[HONEST].score == 8.0

    lay_out(course, FAULTS)
    monkeypatch.setenv(worker.FAULTS_VARIABLE, ",".join(f"{s}:{f}" for s, (f, _) in FAULTS.items()))
    t0 = time.monotonic()
    run = pipeline.grade([HONEST, *FAULTS], options)
    print(f"\nhonest alone: {alone_s:.1f} s; with {len(FAULTS)} broken workers (wall {WALL} s): "
          f"{time.monotonic() - t0:.1f} s")
    assert run.results[HONEST].status == "ok"
    assert gradebook_rows(course, HONEST) == alone_scores
    assert _without_addresses(feedback_page(course, HONEST)) == _without_addresses(alone_page)
    for student, (_, reason) in FAULTS.items():
        r = run.results[student]
        assert r.status == "failed" and r.reasons == [reason.format(wall=WALL)], (student, r.reasons)
        assert r.score is None
        assert all(auto is None and needs for auto, _, needs in gradebook_rows(course, student).values())
        assert reason.format(wall=WALL) in feedback_page(course, student)  # the failure page
        assert not (course / "autograded" / student).exists()
    rows = (course / "exports" / "grading_report.json").read_text(encoding="utf-8")
    assert json.loads(rows)["results"]["tue"]["status"] == "failed"
    import psutil  # nothing a worker started outlives the run
    from multiprocessing import forkserver
    server = psutil.Process(forkserver._forkserver._forkserver_pid)
    assert server.children(recursive=True) == []


def _without_addresses(page: str) -> str:
    import re
    return re.sub(r" at 0x[0-9a-f]+", "", page)


@pytest.mark.slow
def test_a_run_whose_first_kernels_all_die_at_start_stops_and_writes_nothing(fault_course):
    """Every kernel exits at start-up (a setting that cannot work): the command stops after the first
    three with the reason in one French line, exit 2; no grade, no feedback, the previous exports in
    place (not moved aside)."""
    course = fault_course
    exports = course / "exports"
    exports.mkdir(exist_ok=True)
    previous = {"grades.csv": "student_id,total_20,status\nancien,12,ok\n", "grading_report.json": "{}"}
    for name, text in previous.items():
        (exports / name).write_text(text, encoding="utf-8")
    env = dict(release.nbgrader_env(), **{worker.FAULTS_VARIABLE: "*:kernel"})
    students = ["partiel", "vierge", "reference", "erreurs_typiques", "test_supprime"]
    proc = subprocess.run([sys.executable, "-m", "tpkit.grading", "--root", str(course), "--workers", "2",
                           "--examples", "--students", ",".join(students)],
                          cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(
        "erreur : correction arrêtée : les 3 premiers noyaux se sont arrêtés au démarrage (le noyau Python "
        "s'est arrêté"), proc.stderr
    assert graded_students(course, A) == set()
    for name, text in previous.items():
        assert (exports / name).read_text(encoding="utf-8") == text
    assert not (exports / "precedent").exists()
    assert not any((course / "feedback").glob(f"*/{A}")) if (course / "feedback").exists() else True
    assert not any((course / "autograded").glob(f"*/{A}"))
    shutil.rmtree(course, ignore_errors=True)


@pytest.fixture
def manual_gradebook(tmp_path, monkeypatch):
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


def test_the_coordinator_applies_a_result_and_keeps_manual_scores(tmp_path, manual_gradebook):
    """A checked result goes into the gradebook with nbgrader's API: automatic scores, flags, comments,
    timestamp; a manual score already there stays (the feedback the worker rendered showed it too)."""
    from datetime import datetime as dt
    url, cfg = manual_gradebook(needs=False)
    book = {"timestamp": dt(2026, 12, 1, 10, 0), "late_penalty": None,
            "grades": {"q1": {"auto_score": 1.0, "needs_manual_grade": False},
                       "m1": {"auto_score": None, "needs_manual_grade": True}},
            "comments": {"r1": "Pas de réponse.", "m1": None}}
    pipeline.apply_grades(cfg, Options(root=tmp_path, assignment=A), "s1", book)
    with Gradebook(url, "cours") as gb:
        q1, m1 = gb.find_grade("q1", A, A, "s1"), gb.find_grade("m1", A, A, "s1")
        assert (q1.auto_score, q1.needs_manual_grade) == (1.0, False)
        assert (m1.manual_score, m1.score, m1.needs_manual_grade) == (1.5, 1.5, True)
        assert gb.find_comment("r1", A, A, "s1").auto_comment == "Pas de réponse."
        assert gb.find_submission(A, "s1").timestamp == dt(2026, 12, 1, 10, 0)


@pytest.mark.parametrize("before, worker_says, after", [
    (False, False, False),  # graded by hand, found unchanged by the worker: stays graded
    (False, True, True),  # graded by hand, changed: to grade again
    (True, False, True),  # flagged (changed at an earlier regrade), not graded since: stays flagged
])
def test_the_coordinator_keeps_a_hand_grade_only_where_the_instructor_gave_it(tmp_path, manual_gradebook, before,
                                                                              worker_says, after):
    url, cfg = manual_gradebook(needs=before)
    book = {"timestamp": None, "late_penalty": None, "comments": {},
            "grades": {"q1": {"auto_score": 1.0, "needs_manual_grade": False},
                       "m1": {"auto_score": None, "needs_manual_grade": worker_says}}}
    pipeline.apply_grades(cfg, Options(root=tmp_path, assignment=A), "s1", book)
    with Gradebook(url, "cours") as gb:
        m1 = gb.find_grade("m1", A, A, "s1")
        assert (m1.manual_score, m1.needs_manual_grade) == (1.5, after)
        # an answer never graded by hand is never cleared by a worker either
        m1.manual_score = None
        gb.db.commit()
    pipeline.apply_grades(cfg, Options(root=tmp_path, assignment=A), "s1",
                          dict(book, grades={"m1": {"auto_score": None, "needs_manual_grade": False}}))
    with Gradebook(url, "cours") as gb:
        assert gb.find_grade("m1", A, A, "s1").needs_manual_grade


@pytest.mark.parametrize("answer, kept", [("Ma réponse rédigée.", True), ("Ma réponse, modifiée.", False)])
def test_a_written_answer_graded_by_hand_stays_graded_while_its_text_is_the_same(tmp_path, manual_gradebook,
                                                                                  answer, kept):
    """After nbgrader's SaveAutoGrades flagged it again (what a regrade does), the worker clears the flag
    of an answer whose text is the one the formgrader showed (the last autograded notebook), and says
    when it changed."""
    import nbformat
    from nbformat.v4 import new_markdown_cell, new_notebook
    url, cfg = manual_gradebook(needs=False)
    by_hand = worker.graded_by_hand(cfg, Options(root=tmp_path, assignment=A), "s1")
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
    remarks = worker.keep_manual_grades(cfg, Options(root=tmp_path, assignment=A), "s1", expected, by_hand,
                                        notebook(answer), previous)
    with Gradebook(url, "cours") as gb:
        m1 = gb.find_grade("m1", A, A, "s1")
        assert (m1.manual_score, m1.needs_manual_grade) == (1.5, not kept)
    if kept:
        assert remarks == []
    else:
        assert len(remarks) == 1 and "modifiée depuis sa correction à la main" in remarks[0], remarks
    # no previous notebook to compare with: to grade again, said so
    remarks = worker.keep_manual_grades(cfg, Options(root=tmp_path, assignment=A), "s1", expected, by_hand,
                                        notebook(answer), None)
    assert len(remarks) == 1 and "à corriger de nouveau" in remarks[0]
