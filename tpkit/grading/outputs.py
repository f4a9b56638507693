"""Write the exports of a run (and, for ``--export-only``, the feedback again) from the gradebook."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

from tpkit.grading import moodle
from tpkit.grading.converters import FrenchFeedback
from tpkit.grading.export import GradesCsvExport, MoodleWorksheetExport, gather
from tpkit.grading.pipeline import (FAILED, GRADEBOOK_LOCK, Options, RunReport, _close_logger, _coursedir,
                                    _student_logger, load_config, open_gradebook)


def export_all(options: Options, run: Optional[RunReport], worksheet: Optional[Path] = None,
               provisional: bool = False) -> tuple:
    """grades.csv (+ the filled Moodle worksheet) for the whole class of the gradebook, statuses and
    times from ``run`` (the class's report; None: none known). Returns (the report, its results
    refreshed from the gradebook for every student; French lines saying what was written)."""
    students = []  # every submission of the gradebook: grading a subset keeps the others
    lines = []
    cwd = os.getcwd()
    os.chdir(options.root)
    try:
        with GRADEBOOK_LOCK, open_gradebook(load_config(options)) as gb:
            columns, points, fresh = gather(gb, options.assignment, students, run)
            if run is None:
                run = RunReport(options.assignment, columns, points,
                                float(gb.find_assignment(options.assignment).max_score), {})
            for s, r in fresh.items():
                r.seconds = run.results[s].seconds if s in run.results else 0.0
            run.results = fresh
            csv_path = options.exports / "grades.csv"
            plugin = GradesCsvExport(to=str(csv_path), assignment=[options.assignment], student=students)
            plugin.run_report = run
            plugin.export(gb)
            lines.append(f"Notes : {csv_path.relative_to(options.root)}")
            if worksheet is not None:
                out = options.exports / "moodle_worksheet.csv"
                mw = MoodleWorksheetExport(to=str(out), worksheet=str(Path(cwd, worksheet)),
                                           roster=str(options.root / "submitted" / "moodle_roster.csv"),
                                           assignment=[options.assignment], student=students)
                mw.run_report = run
                mw.provisional = provisional
                mw.export(gb)
                rep = mw.fill_report
                lines.append(f"Feuille Moodle : {out.relative_to(options.root)} ({len(rep.updated)} ligne(s) "
                             "remplie(s))")
                if rep.ungraded:
                    lines.append("  lignes sans rendu corrigé : "
                                 + ", ".join(f"{p} {n}" for p, n in rep.ungraded))
                if rep.missing_rows:
                    lines.append("  rendus sans ligne dans la feuille : " + ", ".join(rep.missing_rows))
                if rep.locked:
                    lines.append("  note verrouillée dans Moodle : " + ", ".join(f"{p} {n}" for p, n in rep.locked))
                for number, reason in rep.skipped:
                    lines.append(f"  ligne {number} ignorée : {reason}")
    finally:
        os.chdir(cwd)
    if options.feedback:
        lines.append(f"Retours : feedback/<étudiant>/{options.assignment}/{options.notebook}.html")
    return run, lines


def regenerate_feedback(options: Options, run: RunReport, students: Optional[set] = None) -> None:
    """Feedback pages again from autograded/ and the gradebook (manual grades included), for
    ``students`` (None: the whole class)."""
    cfg = load_config(options)
    cwd = os.getcwd()
    os.chdir(options.root)
    try:
        for student, r in run.results.items():
            if r.status == FAILED or (students is not None and student not in students):
                continue
            logger = _student_logger(options, student + ".feedback")
            try:
                fb = FrenchFeedback(coursedir=_coursedir(cfg, options, student), config=cfg, log=logger)
                fb.force = True
                fb.tpkit_resources = {"student": student, "remarks": r.reasons}
                fb.start()
            except Exception as exc:
                logging.getLogger("tpkit.grading").error("feedback for %s: %r", student, exc)
            finally:
                _close_logger(logger)
    finally:
        os.chdir(cwd)


FEEDBACK_ZIP = "retours_moodle.zip"


def feedback_zip(options: Options, run: RunReport) -> list:
    """``exports/retours_moodle.zip``: every Moodle participant's feedback page, laid out for Moodle's
    "Upload multiple feedback files in a zip". Students without a participant id (not imported from
    Moodle) are left out. Returns French lines (none when there is no Moodle participant)."""
    roster = moodle.read_roster(options.root / "submitted")
    files = {}
    for student in run.results:
        pid = roster[student].participant_id if student in roster else moodle.participant_id_from_student_id(student)
        page = options.root / "feedback" / student / options.assignment / f"{options.notebook}.html"
        if pid and page.is_file():
            files[pid] = (roster[student].full_name if student in roster else "", page)
    if not files:
        return []
    out = options.exports / FEEDBACK_ZIP
    n = moodle.write_feedback_zip(out, files)
    return [f"Retours pour Moodle : {out.relative_to(options.root)} ({n} fichier(s) ; dans Moodle : Consulter "
            "tous les travaux remis → Action d'évaluation « Déposer plusieurs fichiers de feedback dans "
            "un fichier ZIP »)"]
