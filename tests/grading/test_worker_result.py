"""A worker's result as the coordinator reads it (tpkit.grading.worker_result): size-capped JSON checked
field by field against what the submission can hold, and the French reasons of a worker that left none."""
import json
import math
import signal
from pathlib import Path

import pytest

from tpkit.grading import worker_result
from tpkit.grading.expected import Expected, ExpectedCell
from tpkit.grading.options import Options

MAIN = "tp_reseaux_neurones"  # the course's main assignment

A = "tp_reseaux_neurones"  # the course's main assignment


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
    path = tmp_path / worker_result.RESULT_NAME
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_a_well_formed_result_is_accepted(tmp_path):
    out = worker_result.read_result(write(tmp_path, good_result()), "s1", expected())
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
    json.dumps(good_result(reasons=["x" * (worker_result.MAX_RESULT_BYTES + 1)])),  # oversized
])
def test_malformed_or_oversized_results_are_refused(tmp_path, bad):
    with pytest.raises(worker_result.ResultError):
        worker_result.read_result(write(tmp_path, bad), "s1", expected())


def test_missing_result_is_refused(tmp_path):
    with pytest.raises(worker_result.ResultError):
        worker_result.read_result(tmp_path / "absent.json", "s1", expected())


def test_a_dead_worker_says_why_in_french():
    options = Options(assignment=MAIN, worker_cpu_limit=7)
    assert worker_result.death_reason(-signal.SIGKILL, options) == "processus de correction mort (signal 9)"
    assert worker_result.death_reason(-signal.SIGXCPU, options) == \
        "temps de calcul du correcteur dépassé (7 s de CPU pour ce rendu)"
    assert worker_result.death_reason(1, options) == "processus de correction mort (code 1)"
    assert worker_result.wall_reason(Options(assignment=MAIN, worker_wall_limit=42)) == \
        "correction interrompue : délai de 42 s dépassé pour ce rendu"
    assert Options(assignment=MAIN, time_limit=100).settings.worker_wall() == 100 + Options(assignment=MAIN).settings.worker_wall_margin
