"""The class's exports (``exports/``), written from the gradebook at the end of every grading run and
by ``--export-only``.

* :class:`GradesCsvExport` (an nbgrader export plugin, usable alone: ``nbgrader export
  --exporter=tpkit.grading.export.GradesCsvExport``) -> ``exports/grades.csv``: one row per student,
  one column per graded question (notebook order), the total out of 20 and a ``status`` column: ``ok``,
  ``partial: <reasons>`` (graded, but something was repaired or cut short: read the reasons) or
  ``failed: <reason>`` (not graded: the question and total cells are empty, never a silent 0). A
  question awaiting manual grading is an empty cell too. Text cells show control characters escaped
  (:mod:`tpkit.grading.inert`); those that a spreadsheet would run as a formula are escaped too
  (:mod:`tpkit.grading.csvsafe`).
* the LMS's files, written by its hooks (:data:`tpkit.grading.lms.LMS`): Moodle's grading worksheet,
  the feedback zip.

Scores are read from the gradebook (so manual grades entered later are included when exporting
again); statuses come from the last grading run's report (``exports/grading_report.json``). A new run
first sets the previous run's exports aside (:func:`set_aside_previous_exports`).
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import time
from pathlib import Path
from typing import Optional

from nbgrader.api import Gradebook
from nbgrader.plugins import ExportPlugin
from traitlets import Unicode

from tpkit.grading.csvsafe import escape_cell
from tpkit.grading.gradebook import GRADEBOOK_LOCK, class_results, open_gradebook
from tpkit.grading.inert import inert
from tpkit.grading.lms import LMS
from tpkit.grading.options import Options, load_config
from tpkit.grading.results import FAILED, PREVIOUS_EXPORTS, REPORT_NAME, RunReport, read_report

#: The exports a run writes (in ``exports/``, every LMS's files included), and where a new run first moves those
#: of the previous one.
EXPORT_NAMES = ("grades.csv", REPORT_NAME, "rapport_classe.html") + tuple(n for lms in LMS.values() for n in lms.exports)
PREVIOUS_README = """Exports de la correction précédente ({when}).

Une nouvelle correction a commencé le {now} : elle les a déplacés ici avant de corriger. Si exports/
ne contient pas de grades.csv, cette correction ne s'est pas terminée (interrompue, plantée) : les
fichiers de ce dossier ne sont PAS à jour. La commande python -m tpkit.grading --export-only réécrit les exports
depuis le gradebook (avec les statuts du dernier rapport trouvé).
"""


def question_names(columns, notebook) -> dict:
    """{grade id: "Q2.3 pred"} for people (tpkit.labels, from the assignment's source `notebook`); the
    grade id itself when unknown (no notebook, or one that cannot be read)."""
    from tpkit import labels
    try:
        known = labels.question_labels(notebook) if notebook else {}
    except (OSError, ValueError):
        known = {}
    return {c: (known[c].short if c in known else c) for c in columns}


def fmt(value: Optional[float]) -> str:
    """Points as a spreadsheet reads them: '17.5', '20', '' for none."""
    if value is None:
        return ""
    return f"{round(float(value), 2):g}"


class ReportExportPlugin(ExportPlugin):
    """An export plugin that reads scores from the gradebook and statuses from the run's report."""

    report = Unicode("exports/" + REPORT_NAME, help="Report of the grading run (statuses).").tag(config=True)

    #: a RunReport given directly (the grading command passes its own)
    run_report: Optional[RunReport] = None

    def _gather(self, gradebook: Gradebook) -> tuple:
        report = self.run_report or read_report(Path(self.report))
        assignments = [str(a) for a in self.assignment] or [a.name for a in gradebook.assignments]
        if len(assignments) != 1:
            raise ValueError("export one assignment at a time (--assignment)")
        return class_results(gradebook, assignments[0], [str(s) for s in self.student], report)


class GradesCsvExport(ReportExportPlugin):
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
            # text cells (student id, status quoting file names) inert and escaped; scores are numbers
            writer.writerow([escape_cell(inert(student))] + ["" if failed else fmt(r.scores.get(c)) for c in columns]
                            + ["" if failed else fmt(r.grade20), escape_cell(inert(r.status_text))])
        dest.write_text(buf.getvalue(), encoding="utf-8")
        self.log.info("grades written to %s", dest)


def export_all(options: Options, run: Optional[RunReport], worksheet: Optional[Path] = None,
               provisional: bool = False, lms: Optional[str] = None) -> tuple:
    """grades.csv (+ ``worksheet``, the grading worksheet of the LMS ``lms``, a key of
    :data:`tpkit.grading.lms.LMS`, filled) for the whole class of the gradebook, statuses and
    times from ``run`` (the class's report; None: none known). Returns (the report, its results
    refreshed from the gradebook for every student; French lines saying what was written)."""
    students = []  # every submission of the gradebook: grading a subset keeps the others
    lines = []
    worksheet = Path(os.getcwd(), worksheet) if worksheet is not None else None  # before the chdir
    with contextlib.chdir(options.root), GRADEBOOK_LOCK, open_gradebook(load_config(options)) as gb:
        columns, points, fresh = class_results(gb, options.assignment, students, run)
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
        lines += _worksheet(options, gb, run, students, worksheet, provisional, lms)
    if options.feedback:
        lines.append(f"Retours : feedback/<étudiant>/{options.assignment}/{options.notebook}.html")
    return run, lines


def _worksheet(options: Options, gb, run: RunReport, students: list, worksheet: Optional[Path],
               provisional: bool, lms: Optional[str]) -> list:
    """The LMS worksheet filled from ``worksheet``, or from the one this assignment's last run filled
    (:func:`tpkit.grading.incremental.remembered_worksheet`): every export is current, or a line says
    which is not and why."""
    from tpkit.grading import incremental
    if worksheet is None:
        remembered = incremental.remembered_worksheet(options)
        if remembered is None:
            return []
        lms, worksheet = remembered
        if lms not in LMS:
            return [f"Feuille de notes NON mise à jour : LMS « {lms} » inconnu (etat.json)"]
        if not worksheet.is_file():
            return [f"Feuille de notes {lms.capitalize()} NON mise à jour : la feuille d'origine « {worksheet} » "
                    "est introuvable ; redonnez-la avec --moodle-worksheet FEUILLE.csv"]
    try:
        lines = LMS[lms].export_worksheet(options, gb, run, students, worksheet, provisional)
    except (OSError, ValueError) as exc:
        return [f"Feuille de notes {lms.capitalize()} NON mise à jour : « {worksheet} » illisible "
                f"({type(exc).__name__} : {str(exc)[:120]}) ; redonnez-la avec --moodle-worksheet FEUILLE.csv"]
    incremental.remember_worksheet(options, lms, worksheet)
    return lines


def set_aside_previous_exports(exports: Path) -> list:
    """Move the previous run's exports (:data:`EXPORT_NAMES`) into ``exports/precedent/`` with a French
    README, so that a run that dies leaves no stale file passed off as current. Nothing to move: the
    folder is left as it is (it keeps the last complete exports). Returns the names moved."""
    present = [n for n in EXPORT_NAMES if (exports / n).is_file()]
    if not present:
        return []
    previous = exports / PREVIOUS_EXPORTS
    previous.mkdir(parents=True, exist_ok=True)
    for name in EXPORT_NAMES + ("LISEZMOI.txt",):
        if (previous / name).is_file():
            (previous / name).unlink()

    def stamp(t):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    when = max((exports / n).stat().st_mtime for n in present)
    for name in present:
        os.replace(exports / name, previous / name)
    (previous / "LISEZMOI.txt").write_text(PREVIOUS_README.format(when=stamp(when), now=stamp(time.time())),
                                           encoding="utf-8")
    return present
