"""Learning management systems the grading exchanges files with: one package per LMS (``moodle``), and
the registry :data:`LMS` through which the rest of the kit reaches them.

An LMS package brings its submissions into ``submitted/`` (``zip_import``), maps its ids to nbgrader
student ids (``ids``) and fills its grade file (``worksheet``, ``exports``). The grading knows an LMS
only by the hooks of its :class:`Lms` entry, called by ``__main__``, :mod:`tpkit.grading.collect` and
:mod:`tpkit.grading.export`. Supporting another LMS: a package ``lms/<name>/`` and one entry in
:data:`LMS` (the command-line options that pick it are ``__main__``'s). A hook names its function
``"module:function"`` and imports it on its first call: the grading command starts without loading
any LMS (Moodle's exports load nbgrader).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


def _hook(target: str) -> Callable:
    """The function ``"module:function"`` of this package, imported when first called."""
    module, name = target.split(":")

    def call(*args, **kwargs):
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)(*args, **kwargs)
    call.__name__ = call.__qualname__ = name
    return call


@dataclass(frozen=True)
class Lms:
    """What the kit calls of an LMS. French lines: printed with the run's summary."""

    #: (zip, submitted dir, assignment, notebook name) -> the import: ``student_ids`` and ``failures()``,
    #: ``remarks()``, ``notes()`` (those of :class:`tpkit.grading.collect.Collection`)
    import_zip: Callable
    #: (zip) -> the student ids the zip names, nothing extracted (``--students`` is checked before the import)
    participants: Callable
    #: (worksheet) -> None; ValueError or OSError when the file is not this LMS's grading worksheet
    check_worksheet: Callable
    #: (options, gradebook, run report, students, worksheet, provisional) -> French lines: the worksheet
    #: filled into exports/
    export_worksheet: Callable
    #: (options, run report) -> French lines: the feedback pages of this LMS's students zipped into
    #: exports/ for upload ([] when the run has none)
    feedback_zip: Callable
    #: (submitted dir) -> {student id: full name} of this LMS's students
    full_names: Callable
    #: the files that export_worksheet and feedback_zip write into exports/ (set aside when a run starts)
    exports: tuple


LMS = {
    "moodle": Lms(
        import_zip=_hook("moodle.zip_import:import_moodle_zip"),
        participants=_hook("moodle.zip_import:zip_participants"),
        check_worksheet=_hook("moodle.worksheet:check_worksheet"),
        export_worksheet=_hook("moodle.exports:export_worksheet"),
        feedback_zip=_hook("moodle.exports:feedback_zip"),
        full_names=_hook("moodle.ids:full_names"),
        # moodle.exports.WORKSHEET_OUT, FEEDBACK_ZIP (not imported here: nbgrader; tests/grading/lms checks them)
        exports=("moodle_worksheet.csv", "retours_moodle.zip"),
    ),
}


def full_names(submitted_dir) -> dict:
    """{student id: full name} of every LMS's students in ``submitted_dir``."""
    names = {}
    for lms in LMS.values():
        names.update(lms.full_names(submitted_dir))
    return names


def feedback_zips(options, run) -> list:
    """Every LMS's feedback zip of the run; French lines."""
    return [line for lms in LMS.values() for line in lms.feedback_zip(options, run)]
