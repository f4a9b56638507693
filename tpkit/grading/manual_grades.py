"""A cell graded by hand stays graded across regrades while what was graded did not change.

nbgrader's ``SaveAutoGrades`` flags every cell with a manual score "needs manual grading" again at each
autograde. The worker reads which cells the instructor graded (:func:`graded_by_hand`) before grading,
and after it clears the flag of those whose text (a written answer) or automatic score (a test cell) is
unchanged (:func:`keep_manual_grades`); the others stay flagged with a French remark. The coordinator
applies the flags (:func:`tpkit.grading.writeback.apply_grades`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from tpkit.grading.expected import Expected
from tpkit.grading.options import Options
from tpkit.vocabulary import grade_id


def graded_by_hand(cfg, options: Options, student: str) -> dict:
    """{grade id: auto score} of the cells the instructor graded (a manual score, no longer flagged),
    read from the private gradebook before this grading: nbgrader's SaveAutoGrades flags each of them
    "needs manual grading" again."""
    from nbgrader.api import MissingEntry

    from tpkit.grading.gradebook import open_gradebook
    try:
        with open_gradebook(cfg) as gb:
            snb = gb.find_submission_notebook(options.notebook, options.assignment, student)
            return {g.cell.name: g.auto_score for g in snb.grades
                    if g.manual_score is not None and not g.needs_manual_grade}
    except MissingEntry:
        return {}


def _cell_sources(path: Optional[Path]) -> Optional[dict]:
    """{grade id: source} of a notebook the kit wrote (the last autograded one); None when unreadable."""
    import nbformat
    if path is None:
        return None
    try:
        nb = nbformat.read(str(path), as_version=4)
        return {grade_id(c): c.get("source", "") for c in nb.cells if grade_id(c)}
    except Exception:
        return None


def _points(value) -> str:
    return "—" if value is None else f"{float(value):g}"


def keep_manual_grades(cfg, options: Options, student: str, expected: Expected, by_hand: dict,
                       graded_nb, previous: Optional[Path]) -> list:
    """A cell graded by hand stays graded (its manual score, not flagged) when what was graded did not
    change: a written answer's text (compared with the last autograded notebook, the one the formgrader
    showed), a test cell's automatic score. Otherwise it stays flagged and a French remark says why.
    Written in the private gradebook before the feedback page is rendered; the coordinator applies the
    flags (:func:`tpkit.grading.writeback.apply_grades`). Returns the remarks."""
    if not by_hand:
        return []
    from tpkit.grading.feedback import question_label
    from tpkit.grading.gradebook import open_gradebook
    before = _cell_sources(previous)
    now = {grade_id(c): c.get("source", "") for c in graded_nb.cells if grade_id(c)}
    remarks = []
    with open_gradebook(cfg) as gb:
        snb = gb.find_submission_notebook(options.notebook, options.assignment, student)
        for grade in snb.grades:
            name = grade.cell.name
            if name not in by_hand:
                continue
            cell = expected.cells.get(name)
            label = question_label(name, options.assignment)
            if cell is not None and cell.grade and not cell.solution and not cell.task:
                same = grade.auto_score == by_hand[name]
                why = (f"{label} : note automatique changée ({_points(by_hand[name])} → {_points(grade.auto_score)}) "
                       "depuis sa correction à la main, à revoir dans le formgrader")
            else:
                same = before is not None and name in now and before.get(name) == now[name]
                why = (f"{label} : réponse rédigée modifiée depuis sa correction à la main, à corriger de "
                       "nouveau dans le formgrader" if before is not None else
                       f"{label} : réponse rédigée à corriger de nouveau dans le formgrader (texte corrigé "
                       "introuvable)")
            if same:
                grade.needs_manual_grade = False
            else:
                grade.needs_manual_grade = True
                remarks.append(why)
        gb.db.commit()
    return remarks
