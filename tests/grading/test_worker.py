"""One submission, one box (issue #22): each submission is graded by a worker process of its own
(tpkit.grading.worker) whose failure costs that submission only, and whose result the coordinator
(tpkit.grading.pipeline) accepts as checked data only. A run whose first kernels all die at start-up
stops with the reason and writes nothing.

Faults are injected with the test-only variable TPKIT_TEST_WORKER_FAULTS (see tpkit.grading.worker).
"""
import json
import shutil
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

MAIN = "tp_reseaux_neurones"  # the course's main assignment

A = MAIN
HONEST = "partiel"  # a mix of full, partial and zero scores


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
    options = Options(assignment=MAIN, root=course, workers=2, cell_timeout=10, worker_wall_limit=WALL)
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
