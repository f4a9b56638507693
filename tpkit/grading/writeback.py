"""The coordinator's writes of one submission's result into the course: its checked gradebook
entries (nbgrader's Gradebook API, manual scores untouched), its autograded notebook and feedback page
copied from the worker's private folder (regular files only), or a failed submission's outputs removed.

Apart from the run's scheduling (:mod:`tpkit.grading.pipeline`) because this is what the gradebook's
single writer does with a result, whoever scheduled the worker (a local run or a Dask cluster's).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from tpkit.grading.gradebook import GRADEBOOK_LOCK, open_gradebook
from tpkit.grading.options import Options, step_folder


def remove_outputs(cfg, options: Options, student: str) -> None:
    for step in ("autograded", "feedback"):
        folder = step_folder(cfg, options, step, student)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


def copy_outputs(cfg, options: Options, student: str, private: Path) -> None:
    """A worker's ``autograded/`` and ``feedback/`` folders of ``student`` (in its ``private`` folder)
    in place of the course's."""
    for step in ("autograded", "feedback"):
        dest = step_folder(cfg, options, step, student)
        if dest.exists():
            shutil.rmtree(dest, ignore_errors=True)
        src = private / step / student / options.assignment
        if src.is_dir():
            copy_regular_files(src, dest)


def copy_regular_files(src: Path, dest: Path) -> None:
    """``src`` (a worker's output folder) into ``dest``: regular files and folders, never a link."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(src):
        if entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            copy_regular_files(Path(entry.path), dest / entry.name)
        elif entry.is_file(follow_symlinks=False):
            shutil.copy2(entry.path, dest / entry.name, follow_symlinks=False)


def apply_grades(cfg, options: Options, student: str, book: dict) -> None:
    """A worker's checked gradebook entries (:func:`tpkit.grading.worker_result.read_result`) into the course's
    gradebook with nbgrader's API: automatic scores, flags, comments, timestamp, late penalty; manual
    scores stay as they are, and a cell graded by hand stays graded only when the worker found it
    unchanged (:func:`tpkit.grading.manual_grades.keep_manual_grades`)."""
    with GRADEBOOK_LOCK, open_gradebook(cfg) as gb:
        gb.update_or_create_student(student)
        extra = {"timestamp": book["timestamp"]} if book["timestamp"] is not None else {}
        gb.update_or_create_submission(options.assignment, student, **extra)
        snb = gb.find_submission_notebook(options.notebook, options.assignment, student)
        for grade in snb.grades:
            entry = book["grades"].get(grade.cell.name)
            if entry is not None:
                needs = entry["needs_manual_grade"]
                # the worker may keep a cell the instructor graded as graded (its text unchanged), never
                # clear a flag the instructor has not: a changed answer stays to grade until graded again
                if grade.manual_score is not None and grade.needs_manual_grade:
                    needs = True
                elif grade.manual_score is None and entry["auto_score"] is None:
                    needs = True
                grade.auto_score = entry["auto_score"]
                grade.needs_manual_grade = needs
        for comment in snb.comments:
            if comment.cell.name in book["comments"]:
                comment.auto_comment = book["comments"][comment.cell.name]
        snb.late_submission_penalty = book["late_penalty"]
        gb.db.commit()
