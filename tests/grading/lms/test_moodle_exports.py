"""The class's grades in Moodle (tpkit.grading.lms.moodle.exports): the comment written next to each grade."""
from tpkit.grading.export import fmt
from tpkit.grading.lms.moodle.exports import moodle_comment
from tpkit.grading.results import FAILED, OK, PARTIAL, StudentResult


def test_status_text_and_moodle_comment():
    points = {"q1": 1.0, "q2": 2.0, "m1": 1.0}
    r = StudentResult("p1", PARTIAL, ["cellule q1 interrompue"], {"q1": 0.0, "q2": 2.0, "m1": None}, 2.0, 4.0)
    assert r.status_text == "partial: cellule q1 interrompue"
    assert r.grade20 == 10.0 and r.manual_pending == ["m1"]
    comment = moodle_comment(r, points)  # written answers pending: no final grade yet, said so
    assert "10/20" in comment and "q1" in comment and "en attente" in comment and "provisoire" not in comment
    comment = moodle_comment(r, points, provisional=True)
    assert "Note provisoire : 10/20" in comment
    done = StudentResult("p4", OK, [], {"q1": 0.0, "q2": 2.0, "m1": 1.0}, 3.0, 4.0)
    assert moodle_comment(done, points, names={"q1": "Q1.1 chargement"}).startswith("Note : 15/20.")
    assert "Q1.1 chargement" in moodle_comment(done, points, names={"q1": "Q1.1 chargement"})
    failed = StudentResult("p2", FAILED, ["fichier illisible"])
    assert failed.grade20 is None and "non corrigé" in moodle_comment(failed, points)
    assert StudentResult("p3", OK).status_text == "ok"
    assert fmt(17.5) == "17.5" and fmt(20.0) == "20" and fmt(None) == "" and fmt(2 / 3) == "0.67"
