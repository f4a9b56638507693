"""nbgrader's converters, as the grading workflow runs them (several at once, in threads).

:class:`ParallelAutograde` is nbgrader's ``Autograde`` converter unchanged in what it does (copy the
submission, overwrite the data files from ``source/``, sanitize, restore cells from the gradebook,
execute, score, save) with three substitutions in its configured preprocessor lists: ``Execute`` ->
:class:`LimitedExecute` (warm kernel, limits) and the gradebook writers -> their serialized versions,
plus the gradebook lock around the student/submission creation. :class:`FrenchFeedback` is
``GenerateFeedback`` with a French template and the preprocessors that keep hidden tests out.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import jinja2
import nbgrader
from nbconvert.exporters import HTMLExporter
from nbgrader import utils as nbgrader_utils
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import Autograde, GenerateFeedback
from nbgrader.preprocessors import (AssignLatePenalties, ClearHiddenTests, Execute, GetGrades,
                                    OverwriteCells, SaveAutoGrades)
from traitlets import List
from traitlets.utils.importstring import import_item
from traitlets.config import Config

from tpkit.grading.precheck import RepairGradedCells
from tpkit.grading.preprocessors import (GRADEBOOK_LOCK, GetGradesFr, LimitedExecute, StudentSafeOutputs,
                                         SerializedAssignLatePenalties, SerializedOverwriteCells,
                                         SerializedSaveAutoGrades)

TEMPLATES = Path(__file__).resolve().parent / "templates"

_SUBSTITUTES = {
    Execute: LimitedExecute,
    OverwriteCells: SerializedOverwriteCells,
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


@contextlib.contextmanager
def thread_safe_nbgrader():
    """While grading threads run: ``NBGRADER_EXECUTION=autograde`` is set process-wide, and
    ``nbgrader.utils.setenv`` (used by ``Autograde`` around execution) does nothing when the variables
    already hold the requested values. nbgrader's version is not thread-safe: on exit it deletes the
    variable (it saves ``os.environ.get(value)`` instead of ``get(key)``), so a second thread's exit
    raises KeyError. Kernels get their environment explicitly (:mod:`tpkit.grading.kernels`)."""
    original = nbgrader_utils.setenv
    previous = os.environ.get("NBGRADER_EXECUTION")

    @contextlib.contextmanager
    def setenv(**kwargs):
        if all(os.environ.get(k) == v for k, v in kwargs.items()):
            yield
        else:
            with original(**kwargs):
                yield

    os.environ["NBGRADER_EXECUTION"] = "autograde"
    nbgrader_utils.setenv = setenv
    try:
        yield
    finally:
        nbgrader_utils.setenv = original
        if previous is None:
            os.environ.pop("NBGRADER_EXECUTION", None)
        else:
            os.environ["NBGRADER_EXECUTION"] = previous


class ParallelAutograde(Autograde):
    """``Autograde`` safe to run in several threads of one process (see the module docstring)."""

    def __init__(self, coursedir=None, **kwargs):
        super().__init__(coursedir=coursedir, **kwargs)
        # the pre-check already repaired the staged notebook (RepairGradedCells is for plain nbgrader)
        self.sanitize_preprocessors = _substitute(self.sanitize_preprocessors, skip=(RepairGradedCells,))
        self.autograde_preprocessors = _substitute(self.autograde_preprocessors)

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        with GRADEBOOK_LOCK:
            super().init_assignment(assignment_id, student_id)


class _MemoryBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates kept in memory for the whole run (thread-safe dict operations)."""

    def __init__(self):
        self._store = {}

    def load_bytecode(self, bucket):
        code = self._store.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        self._store[bucket.key] = bucket.bytecode_to_string()


class CachedHTMLExporter(HTMLExporter):
    """``HTMLExporter`` whose templates are compiled once per process: each feedback converter makes
    a new exporter, and compiling its ~30 templates cost 0.7 s of CPU per student."""

    _bytecode_cache = _MemoryBytecodeCache()

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = self._bytecode_cache
        return environment


class FrenchFeedback(GenerateFeedback):
    """``GenerateFeedback`` with the French template; test cells show failure messages only."""

    preprocessors = List([GetGradesFr, StudentSafeOutputs, ClearHiddenTests,
                          CSSHTMLHeaderPreprocessor]).tag(config=True)

    def __init__(self, coursedir=None, **kwargs):
        super().__init__(coursedir=coursedir, **kwargs)
        self.preprocessors = _substitute(self.preprocessors)
        self.exporter_class = CachedHTMLExporter
        c = Config()
        c.HTMLExporter.template_name = "feedback_fr"
        nbgrader_templates = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
        c.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(nbgrader_templates)]
        # the French template extends 'feedback/index.html.j2' (nbgrader's)
        c.HTMLExporter.extra_template_paths = list(self.config.HTMLExporter.extra_template_paths) + \
            [str(nbgrader_templates)]
        self.update_config(c)

    #: Extra values for the template (``resources.tpkit``): student id, remarks of the run.
    tpkit_resources: dict = {}

    def init_single_notebook_resources(self, notebook_filename):
        resources = super().init_single_notebook_resources(notebook_filename)
        resources["tpkit"] = dict(self.tpkit_resources)
        return resources
