"""The class's grades in Moodle: the grading worksheet filled (an nbgrader export plugin, usable alone:
``nbgrader export --exporter=tpkit.grading.lms.moodle.exports.MoodleWorksheetExport``) and the feedback
pages zipped for Moodle's upload. Students are matched by their participant id (:mod:`.ids`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from nbgrader.api import Gradebook
from traitlets import Bool, Unicode

from tpkit.grading.export import ReportExportPlugin, fmt, question_names
from tpkit.grading.lms.moodle.feedback_zip import write_feedback_zip
from tpkit.grading.lms.moodle.ids import ROSTER_NAME, participant_of, read_roster
from tpkit.grading.lms.moodle.worksheet import fill_worksheet, plain_text_to_html
from tpkit.grading.options import Options, course_config, step_folder
from tpkit.grading.results import FAILED, OK, RunReport, StudentResult

WORKSHEET_OUT = "moodle_worksheet.csv"
FEEDBACK_ZIP = "retours_moodle.zip"


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


class MoodleWorksheetExport(ReportExportPlugin):
    """Fill Moodle's grading worksheet: ``worksheet`` (input) -> ``to`` (output)."""

    worksheet = Unicode("", help="The grading worksheet CSV downloaded from Moodle.").tag(config=True)
    roster = Unicode("submitted/" + ROSTER_NAME, help="Roster written by the zip import.").tag(config=True)

    provisional = Bool(False, help="Also write grades still waiting for written answers to be graded "
                       "(each comment says the grade is provisional).").tag(config=True)

    #: the fill report of the last export (worksheet.WorksheetReport)
    fill_report = None

    def results_for_moodle(self, gradebook: Gradebook) -> dict:
        columns, points, results = self._gather(gradebook)
        roster = read_roster(Path(self.roster).parent) if Path(self.roster).is_file() else {}
        out = {}
        for student, r in results.items():
            pid = participant_of(student, roster)
            if not pid:
                self.log.warning("no Moodle participant id for %s", student)
                continue
            final = r.status != FAILED and (self.provisional or not r.manual_pending)
            grade = r.grade20 if final else None
            out[pid] = (grade, plain_text_to_html(moodle_comment(r, points, self.provisional,
                                                                 question_names(columns))))
        return out

    def export(self, gradebook: Gradebook) -> None:
        if not self.worksheet:
            raise ValueError("MoodleWorksheetExport.worksheet: the worksheet downloaded from Moodle")
        dest = Path(self.to or "exports/" + WORKSHEET_OUT)
        self.fill_report = fill_worksheet(self.worksheet, self.results_for_moodle(gradebook), dest)
        self.log.info("%s: %d row(s) updated\n%s", dest, len(self.fill_report.updated),
                      "\n".join(self.fill_report.lines()))


def export_worksheet(options: Options, gb: Gradebook, run: RunReport, students: list, worksheet: Path,
                     provisional: bool) -> list:
    """``exports/moodle_worksheet.csv`` filled from ``worksheet``; French lines saying what was written."""
    out = options.exports / WORKSHEET_OUT
    mw = MoodleWorksheetExport(to=str(out), worksheet=str(worksheet),
                               roster=str(options.root / "submitted" / ROSTER_NAME),
                               assignment=[options.assignment], student=students)
    mw.run_report = run
    mw.provisional = provisional
    mw.export(gb)
    rep = mw.fill_report
    return [f"Feuille Moodle : {out.relative_to(options.root)} ({len(rep.updated)} ligne(s) remplie(s))",
            *rep.lines()]


def feedback_zip(options: Options, run: RunReport) -> list:
    """``exports/retours_moodle.zip``: every Moodle participant's feedback page, laid out for Moodle's
    "Upload multiple feedback files in a zip". Students without a participant id (not imported from
    Moodle) are left out. Returns French lines (none when there is no Moodle participant)."""
    roster = read_roster(options.root / "submitted")
    cfg = course_config(options)
    files = {}
    for student in run.results:
        pid = participant_of(student, roster)
        page = step_folder(cfg, options, "feedback", student) / f"{options.notebook}.html"
        if pid and page.is_file():
            files[pid] = (roster[student].full_name if student in roster else "", page)
    if not files:
        return []
    out = options.exports / FEEDBACK_ZIP
    n = write_feedback_zip(out, files)
    return [f"Retours pour Moodle : {out.relative_to(options.root)} ({n} fichier(s) ; dans Moodle : Consulter "
            "tous les travaux remis → Action d'évaluation « Déposer plusieurs fichiers de feedback dans "
            "un fichier ZIP »)"]
