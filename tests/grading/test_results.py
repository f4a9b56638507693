"""Results of a run (tpkit.grading.results): statuses as an enum written as plain strings, the JSON
report read back as it was written."""
import json

from tpkit.grading.results import FAILED, OK, PARTIAL, RunReport, Status, StudentResult


def test_status_is_written_as_its_value():
    r = StudentResult("s", PARTIAL, ["cellule q2_cout supprimée : rétablie"])
    assert r.status_text == "partial: cellule q2_cout supprimée : rétablie"
    assert f"{FAILED}" == "failed" and str(OK) == "ok"
    assert json.loads(json.dumps({"status": r.status})) == {"status": "partial"}


def test_report_round_trip():
    run = RunReport("tp", ["q1"], {"q1": 1.0}, 20.0,
                    {"a": StudentResult("a", OK, scores={"q1": 1.0}, score=20.0, max_score=20.0),
                     "b": StudentResult("b", "failed", ["aucun rendu"], max_score=20.0)})
    back = RunReport.from_json(run.to_json())
    assert back == run
    assert back.results["b"].status is Status.FAILED
    assert '"status": "failed"' in run.to_json()
