"""nbgrader's converters, as the grading workflow runs them (one submission per worker process,
:mod:`tpkit.grading.worker`).

:class:`ParallelAutograde` is nbgrader's ``Autograde`` converter unchanged in what it does (copy the
submission, overwrite the data files from ``source/``, sanitize, restore cells from the gradebook,
execute, score, save) with three substitutions in its configured preprocessor lists: ``Execute`` ->
:class:`LimitedExecute` (warm kernel from the converter's ``kernel_supply``, limits) and the gradebook writers -> their serialized versions,
plus the gradebook lock around the student/submission creation, and :class:`LimitOutputBytes` right
after execution (always, whatever the configured list says). :class:`FrenchFeedback` is
``GenerateFeedback`` with a French template, the preprocessors that keep hidden tests out and the
output byte cap, rendered by :class:`~tpkit.grading.feedback_exporter.FeedbackExporter`: nothing a
student wrote or printed runs in the browser that opens the feedback. :func:`regenerate_feedback` runs
it again for a class (``--export-only``).

The exporter and what it keeps out of a page live in :mod:`tpkit.grading.feedback_exporter`,
:mod:`tpkit.grading.safehtml` and :mod:`tpkit.grading.fast_html`; what the page says, in
:mod:`tpkit.grading.feedback` (which imports none of these: no import cycle).
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Optional

from nbconvert.exporters import NotebookExporter
from nbgrader.converters import Autograde, GenerateFeedback
from nbgrader.converters.base import NbGraderException
from nbgrader.preprocessors import (AssignLatePenalties, Execute, GetGrades, OverwriteCells,
                                    SaveAutoGrades)
from traitlets import List
from traitlets.utils.importstring import import_item

from tpkit.grading import compat
from tpkit.grading.feedback_exporter import FEEDBACK_PREPROCESSORS, FeedbackExporter
from tpkit.grading.gradebook import GRADEBOOK_LOCK, shared_engine
from tpkit.grading.logs import student_log
from tpkit.grading.options import Options, coursedir, load_config
from tpkit.grading.preprocessors import (GetGradesFr, HiddenTestsOverwriteCells, LimitedExecute,
                                         LimitOutputBytes, RepairGradedCells,
                                         SerializedAssignLatePenalties, SerializedOverwriteCells,
                                         SerializedSaveAutoGrades)
from tpkit.grading.results import FAILED, RunReport

_SUBSTITUTES = {
    Execute: LimitedExecute,
    OverwriteCells: SerializedOverwriteCells,
    HiddenTestsOverwriteCells: SerializedOverwriteCells,
    SaveAutoGrades: SerializedSaveAutoGrades,
    AssignLatePenalties: SerializedAssignLatePenalties,
    GetGrades: GetGradesFr,
}


def _substitute(preprocessors: list, skip: tuple = ()) -> list:
    """The configured list (classes or import strings), with the kit's versions swapped in."""
    out = []
    for pp in preprocessors:
        pp = import_item(pp) if isinstance(pp, str) else pp
        if pp not in skip:
            out.append(_SUBSTITUTES.get(pp, pp))
    return out


#: Set to 1, plain ``nbgrader autograde`` runs (untrusted mode: checks in the student's kernel), e.g. for
#: the benchmark's baseline; never for grades.
UNTRUSTED_VARIABLE = "TPKIT_AUTOGRADE_NON_SECURISE"
REFUSAL = ("nbgrader autograde (et le bouton Autograde du formgrader) n'est pas utilisé dans ce cours : il "
           "exécuterait les vérifications dans le noyau de l'étudiant·e, sans bac à sable, et la copie pourrait "
           "se donner ses points. Corrigez depuis le dossier du cours avec : python -m tpkit.grading "
           "(--students ID pour un seul rendu, --force pour recorriger un rendu inchangé)")


class TrustedGradingOnly(NotebookExporter):
    """``Autograde.exporter_class`` in nbgrader_config.py: plain ``nbgrader autograde`` and the
    formgrader's Autograde button stop as their converter starts, before it removes or writes anything
    (with ``--force``, nbgrader removes the autograded folder before its first preprocessor), with
    :data:`REFUSAL` in their log. The kit's grading (:class:`ParallelAutograde`) uses nbgrader's exporter."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if os.environ.get(UNTRUSTED_VARIABLE) == "1":
            self.log.warning("correction non sécurisée (%s=1) : notes à ne pas publier", UNTRUSTED_VARIABLE)
            return
        self.log.error(REFUSAL)
        raise NbGraderException(REFUSAL)


class ParallelAutograde(Autograde):
    """``Autograde`` with the kit's executor and its kernel supply (see the module docstring)."""

    def __init__(self, coursedir=None, **kwargs):
        compat.apply()
        super().__init__(coursedir=coursedir, **kwargs)
        # the pre-check already repaired the staged notebook (RepairGradedCells is for plain nbgrader)
        self.sanitize_preprocessors = _substitute(self.sanitize_preprocessors, skip=(RepairGradedCells,))
        # nbgrader_config.py gives plain nbgrader autograde an exporter that refuses (TrustedGradingOnly):
        # this is the trusted grading, with nbgrader's own exporter
        self.exporter_class = NotebookExporter
        self.autograde_preprocessors = _substitute(self.autograde_preprocessors)
        if LimitOutputBytes not in self.autograde_preprocessors:  # a security cap, not an option
            after = self.autograde_preprocessors.index(LimitedExecute) + 1 \
                if LimitedExecute in self.autograde_preprocessors else 0
            self.autograde_preprocessors.insert(after, LimitOutputBytes)

    #: the kernels of this submission (:class:`~tpkit.grading.kernels.KernelSupply`), handed to the
    #: executor; None: it starts its own
    kernel_supply = None

    def _init_preprocessors(self) -> None:
        super()._init_preprocessors()
        for pp in self.exporter._preprocessors:
            if isinstance(pp, LimitedExecute):
                pp.supply = self.kernel_supply

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        with GRADEBOOK_LOCK:
            super().init_assignment(assignment_id, student_id)


class FrenchFeedback(GenerateFeedback):
    """``GenerateFeedback`` with the French template; test cells show failure messages only."""

    preprocessors = List(list(FEEDBACK_PREPROCESSORS)).tag(config=True)

    def __init__(self, coursedir=None, **kwargs):
        compat.apply()
        super().__init__(coursedir=coursedir, **kwargs)
        self.preprocessors = _substitute(self.preprocessors)
        self.exporter_class = FeedbackExporter

    #: Extra values for the template (``resources.tpkit``): student id, remarks of the run.
    tpkit_resources: dict = {}

    def init_single_notebook_resources(self, notebook_filename):
        resources = super().init_single_notebook_resources(notebook_filename)
        resources["tpkit"] = dict(self.tpkit_resources)
        return resources

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        """No file of the submission folder (digitz.npz…) is copied next to the feedback page: the
        page is self-contained (images inline)."""


def regenerate_feedback(options: Options, run: RunReport, students: Optional[set] = None) -> list:
    """Feedback pages again from autograded/ and the gradebook (manual grades included), for
    ``students`` (None: the whole class). Returns the students whose page could not be written."""
    cfg = load_config(options)
    failed = []
    with contextlib.chdir(options.root), shared_engine():
        for student, r in run.results.items():
            if r.status == FAILED or (students is not None and student not in students):
                continue
            with student_log(options, student + ".feedback") as logger:
                try:
                    fb = FrenchFeedback(coursedir=coursedir(cfg, options, student), config=cfg, log=logger)
                    fb.force = True
                    fb.tpkit_resources = {"student": student, "remarks": r.reasons}
                    fb.start()
                except Exception as exc:
                    logging.getLogger("tpkit.grading").error("feedback for %s: %r", student, exc)
                    failed.append(student)
    return failed
