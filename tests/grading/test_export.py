"""The class's exports (tpkit.grading.export): grades CSV, previous exports set aside, a run that dies
leaves nothing that looks current."""
import csv
import io
from pathlib import Path

import pytest

from tpkit.grading import pipeline, results
from tpkit.grading.export import GradesCsvExport
from tpkit.grading.options import Options
from tpkit.grading.results import FAILED, PARTIAL, StudentResult

MAIN = "tp_reseaux_neurones"  # the course's main assignment

ASSIGNMENT = MAIN


FORMULA = '=HYPERLINK("x","y")'


def _rows(path: Path) -> list:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_grades_csv_escapes_student_text_not_numbers(tmp_path, monkeypatch):
    results = {
        FORMULA: StudentResult(FORMULA, PARTIAL, ["notebook rendu sous le nom « =1+1.ipynb »"],
                               {"q1": -0.5}, -0.5, 20.0),
        "@moi": StudentResult("@moi", FAILED, ["aucun rendu"], max_score=20.0),
        "-x": StudentResult("-x", scores={"q1": 1.0}, score=20.0, max_score=20.0),
    }
    plugin = GradesCsvExport(to=str(tmp_path / "grades.csv"))
    monkeypatch.setattr(plugin, "_gather", lambda gb: (["q1"], {"q1": 1.0}, results))
    plugin.export(None)
    rows = _rows(tmp_path / "grades.csv")
    assert rows[0] == ["student_id", "q1", "total_20", "status"]
    assert rows[1] == ["'" + FORMULA, "-0.5", "-0.5", "partial: notebook rendu sous le nom « =1+1.ipynb »"]
    assert rows[2] == ["'@moi", "", "", "failed: aucun rendu"]
    assert rows[3] == ["'-x", "1", "20", "ok"]


def old_exports(exports: Path) -> None:
    """A previous run's exports (CSV, worksheet, report), also used by test_cli."""
    exports.mkdir(parents=True)
    (exports / "grades.csv").write_text("student_id,total_20,status\nancien,12,ok\n")
    (exports / "moodle_worksheet.csv").write_text("ancienne feuille\n")
    report = results.RunReport(ASSIGNMENT, ["q1"], {"q1": 1.0}, 20.0,
                                {"ancien": StudentResult("ancien", score=12.0, max_score=20.0)})
    (exports / results.REPORT_NAME).write_text(report.to_json())


def test_a_run_that_dies_leaves_no_current_looking_exports(tmp_path, monkeypatch):
    """Before its first grade is written, a run that dies leaves the previous exports current (the
    gradebook did not change); once it has written one, they are set aside with a README."""
    exports = tmp_path / "exports"
    old_exports(exports)

    def crash_before_writing(self, students, failures, staging):
        raise RuntimeError("plantage simulé")

    monkeypatch.setattr(pipeline.Grader, "_run", crash_before_writing)
    with pytest.raises(RuntimeError):
        pipeline.grade(["s"], Options(assignment=MAIN, root=tmp_path, workers=1))
    assert "ancien,12" in (exports / "grades.csv").read_text() and not (exports / "precedent").exists()

    def crash(self, students, failures, staging):
        self._written = False
        self._set_aside()  # what writing the run's first grade does
        raise RuntimeError("plantage simulé")

    monkeypatch.setattr(pipeline.Grader, "_run", crash)
    with pytest.raises(RuntimeError):
        pipeline.grade(["s"], Options(assignment=MAIN, root=tmp_path, workers=1))
    for name in ("grades.csv", "moodle_worksheet.csv", results.REPORT_NAME):  # those old_exports wrote
        assert not (exports / name).exists()
        assert (exports / "precedent" / name).is_file()
    readme = (exports / "precedent" / "LISEZMOI.txt").read_text(encoding="utf-8")
    assert "correction précédente" in readme and "PAS à jour" in readme
    # a second crash keeps the last complete exports
    with pytest.raises(RuntimeError):
        pipeline.grade(["s"], Options(assignment=MAIN, root=tmp_path, workers=1))
    assert "ancien,12" in (exports / "precedent" / "grades.csv").read_text()
    assert results.find_report(exports) == (exports / "precedent" / results.REPORT_NAME, True)
