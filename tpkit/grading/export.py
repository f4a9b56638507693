"""Exports as nbgrader export plugins (usable alone: ``nbgrader export --exporter=<class>``).

* :class:`GradesCsvExport` -> ``exports/grades.csv``: one row per student, one column per graded
  question (notebook order), the total out of 20 and a ``status`` column: ``ok``,
  ``partial: <reasons>`` (graded, but something was repaired or cut short: read the reasons) or
  ``failed: <reason>`` (not graded: the question and total cells are empty, never a silent 0). A
  question awaiting manual grading is an empty cell too. Text cells that a spreadsheet would run as a
  formula are escaped (:mod:`tpkit.grading.csvsafe`).
* :class:`MoodleWorksheetExport` fills Moodle's grading worksheet (grade /20, short French comment)
  through :func:`tpkit.grading.moodle.fill_worksheet`; students are matched by their participant id
  (``submitted/moodle_roster.csv``, or the ``p<id>`` student id itself).

Scores are read from the gradebook (so manual grades entered later are included when exporting
again); statuses come from the last grading run's report (``exports/grading_report.json``).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin
from traitlets import Bool, Unicode

from tpkit.grading import moodle
from tpkit.grading.csvsafe import escape_cell
from tpkit.grading.pipeline import FAILED, OK, REPORT_NAME, RunReport, StudentResult, submission_scores


def question_names(columns, notebook=None) -> dict:
    """{grade id: "Q2.3 pred"} for people (tpkit.labels); the grade id itself when unknown."""
    from tpkit import labels
    try:
        known = labels.question_labels(notebook) if notebook else labels.question_labels()
    except (OSError, ValueError):
        known = {}
    return {c: (known[c].short if c in known else c) for c in columns}


def fmt(value: Optional[float]) -> str:
    """Points as a spreadsheet reads them: '17.5', '20', '' for none."""
    if value is None:
        return ""
    return f"{round(float(value), 2):g}"


def gather(gradebook: Gradebook, assignment: str, students: list, report: Optional[RunReport]) -> tuple:
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


def _load_report(path: Path) -> Optional[RunReport]:
    try:
        return RunReport.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None


class _Base(ExportPlugin):
    report = Unicode("exports/" + REPORT_NAME, help="Report of the grading run (statuses).").tag(config=True)

    #: a RunReport given directly (the grading command passes its own)
    run_report: Optional[RunReport] = None

    def _gather(self, gradebook: Gradebook) -> tuple:
        report = self.run_report or _load_report(Path(self.report))
        assignments = [str(a) for a in self.assignment] or [a.name for a in gradebook.assignments]
        if len(assignments) != 1:
            raise ValueError("export one assignment at a time (--assignment)")
        return gather(gradebook, assignments[0], [str(s) for s in self.student], report)


class GradesCsvExport(_Base):
    """``grades.csv`` with per-question scores, total /20 and status (see the module docstring)."""

    def export(self, gradebook: Gradebook) -> None:
        columns, points, results = self._gather(gradebook)
        dest = Path(self.to or "exports/grades.csv")
        dest.parent.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["student_id"] + columns + ["total_20", "status"])
        for student, r in results.items():
            failed = r.status == FAILED
            # text cells (student id, status quoting file names) escaped; scores are numbers
            writer.writerow([escape_cell(student)] + ["" if failed else fmt(r.scores.get(c)) for c in columns]
                            + ["" if failed else fmt(r.grade20), escape_cell(r.status_text)])
        dest.write_text(buf.getvalue(), encoding="utf-8")
        self.log.info("grades written to %s", dest)


def moodle_comment(result: StudentResult, points: dict, provisional: bool = False,
                   names: Optional[dict] = None) -> str:
    """Short French comment for Moodle's "Feedback comments". While written answers wait for the
    teacher, the grade is final only after them: without ``provisional`` no grade is written and the
    comment says so; with it, the comment says the grade is provisional."""
    names = names or {}
    if result.status == FAILED:
        return ("Rendu non corrigé automatiquement : " + "; ".join(result.reasons)
                + ". Il sera examiné par l'enseignant.")
    pending = result.manual_pending
    if pending:
        pts = sum(points.get(c, 0) for c in pending)
        waiting = f"{len(pending)} réponse(s) rédigée(s) ({fmt(pts)} pt) à corriger par l'enseignant"
        parts = [f"Note provisoire : {fmt(result.grade20)}/20 ({waiting})." if provisional else
                 f"Note en attente : {waiting} ; la note sera saisie ensuite (partie automatique : "
                 f"{fmt(result.grade20)}/20)."]
    else:
        parts = [f"Note : {fmt(result.grade20)}/20."]
    lost = [c for c, v in result.scores.items() if v is not None and v < points.get(c, 0)]
    if lost:
        parts.append("Questions à revoir : " + ", ".join(names.get(c, c) for c in lost) + ".")
    if result.status != OK:
        parts.append("Remarques : " + "; ".join(result.reasons) + ".")
    parts.append("Le détail est dans votre retour de correction.")
    return " ".join(parts)


class MoodleWorksheetExport(_Base):
    """Fill Moodle's grading worksheet: ``worksheet`` (input) -> ``to`` (output)."""

    worksheet = Unicode("", help="The grading worksheet CSV downloaded from Moodle.").tag(config=True)
    roster = Unicode("submitted/" + moodle.ROSTER_NAME, help="Roster written by the zip import.").tag(config=True)

    provisional = Bool(False, help="Also write grades still waiting for written answers to be graded "
                       "(each comment says the grade is provisional).").tag(config=True)

    #: the fill report of the last export (moodle.WorksheetReport)
    fill_report = None

    def results_for_moodle(self, gradebook: Gradebook) -> dict:
        columns, points, results = self._gather(gradebook)
        roster = moodle.read_roster(Path(self.roster).parent) if Path(self.roster).is_file() else {}
        out = {}
        for student, r in results.items():
            pid = roster[student].participant_id if student in roster else \
                moodle.participant_id_from_student_id(student)
            if not pid:
                self.log.warning("no Moodle participant id for %s", student)
                continue
            final = r.status != FAILED and (self.provisional or not r.manual_pending)
            grade = r.grade20 if final else None
            out[pid] = (grade, moodle.plain_text_to_html(moodle_comment(r, points, self.provisional,
                                                                        question_names(columns))))
        return out

    def export(self, gradebook: Gradebook) -> None:
        if not self.worksheet:
            raise ValueError("MoodleWorksheetExport.worksheet: the worksheet downloaded from Moodle")
        dest = Path(self.to or "exports/moodle_worksheet.csv")
        self.fill_report = moodle.fill_worksheet(self.worksheet, self.results_for_moodle(gradebook), dest)
        self.log.info("%s", self.fill_report.summary())
