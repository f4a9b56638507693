"""The exporter of every feedback page (:class:`FeedbackExporter`): the French template, student content
made inert (:class:`SanitizedHTMLExporter`, with :func:`tpkit.grading.safehtml.safe_html`), and the
preprocessors that keep hidden tests, tracebacks and the formgrader's model answers out, whoever asks
for the page (the kit's grading, ``nbgrader generate_feedback``, the formgrader's button).

Apart from nbgrader's converters (:mod:`tpkit.grading.converters`) because ``nbgrader_config.py`` names
this exporter for nbgrader's own ``GenerateFeedback`` too: what a page may show is decided here once.
"""
from __future__ import annotations

from pathlib import Path

import nbgrader
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests
from traitlets.config import Config

from tpkit import rubrics
from tpkit.grading import feedback
from tpkit.grading.fast_html import CachedHTMLExporter
from tpkit.grading.feedback import TEMPLATES
from tpkit.grading.inert import inert
from tpkit.grading.options import exports_dir
from tpkit.grading.preprocessors import GetGradesFr, LimitOutputBytes, StudentSafeOutputs
from tpkit.grading.results import student_remarks
from tpkit.grading.safehtml import safe_html, safe_output_metadata


class SanitizedHTMLExporter(CachedHTMLExporter):
    """``HTMLExporter`` for pages of student content: nbconvert's ``sanitize_html`` always on (no
    ``application/javascript`` output, no widget state; ``text/html``/``text/markdown`` outputs, raw
    and Markdown cells cleaned: the kit's templates call ``clean_html`` too) with :func:`safe_html` as
    ``clean_html``, output metadata reduced to safe values and the notebook's widget state dropped. The kit's own page (template, styles,
    MathJax with its ``Safe`` extension) and images (PNG/JPEG/SVG outputs as ``data:`` images) stay."""

    def default_filters(self):
        for name, function in super().default_filters():
            yield name, (safe_html if name == "clean_html" else function)
        yield "question_label", feedback.question_label  # the page's content (questions, failures)
        yield "test_failure", feedback.failure
        yield "from_statement", feedback.from_statement  # what is framed as the student's
        yield "rubric_criteria", rubrics.criteria  # a written answer's criteria (never its model answer)
        yield "inert", inert

    def _init_resources(self, resources):
        resources = super()._init_resources(resources)
        resources["should_sanitize_html"] = True
        return resources

    def from_notebook_node(self, nb, resources=None, **kw):
        nb.metadata.pop("widgets", None)  # never rendered when sanitized; a malformed one crashes nbconvert
        for cell in nb.cells:
            for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
                if "metadata" in out:
                    out["metadata"] = NotebookNode(safe_output_metadata(out["metadata"]))
        return super().from_notebook_node(nb, resources, **kw)


def feedback_html_config(extra_template_paths=()) -> Config:
    """HTMLExporter settings of the French feedback page (template ``feedback_fr``, which extends
    nbgrader's ``feedback/index.html.j2``)."""
    c = Config()
    c.HTMLExporter.template_name = "feedback_fr"
    nbgrader_templates = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
    c.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(nbgrader_templates)]
    c.HTMLExporter.extra_template_paths = list(extra_template_paths) + [str(nbgrader_templates)]
    return c


#: The feedback's preprocessors, in order (``GenerateFeedback.preprocessors`` of nbgrader_config.py
#: names the same list, checked by a test): grades and French comments from the gradebook, test cells
#: reduced to their failure message, hidden tests removed, outputs capped.
FEEDBACK_PREPROCESSORS = (GetGradesFr, StudentSafeOutputs, ClearHiddenTests, LimitOutputBytes,
                          CSSHTMLHeaderPreprocessor)
#: What no feedback page goes without, whatever a configuration says (see :class:`FeedbackExporter`).
_REQUIRED_SAFETY = (StudentSafeOutputs, ClearHiddenTests, LimitOutputBytes)


class FeedbackExporter(SanitizedHTMLExporter):
    """The exporter of every feedback page, whoever asks for it: the kit's grading command, ``nbgrader
    generate_feedback`` and the formgrader's Generate Feedback button (``GenerateFeedback.exporter_class``
    in nbgrader_config.py). The French template is imposed here because the formgrader's API sets
    ``HTMLExporter.template_name = 'feedback'`` after reading the configuration; and a preprocessor list
    configured without the hidden-test safety gets it back (:data:`_REQUIRED_SAFETY`)."""

    def __init__(self, config=None, **kw):
        parent = kw.get("parent")
        base = config if config is not None else (parent.config if parent is not None else Config())
        cfg = Config()
        cfg.merge(base)
        cfg.merge(feedback_html_config(base.HTMLExporter.get("extra_template_paths", [])))
        # the formgrader's model answers (HTMLExporter.preprocessors, nbgrader_config.py) never reach a student
        cfg.HTMLExporter.preprocessors = [p for p in base.HTMLExporter.get("preprocessors", [])
                                          if p not in (rubrics.GraderRubrics, "tpkit.rubrics.GraderRubrics")]
        super().__init__(config=cfg, **kw)

    def _preprocess(self, nb, resources):
        nb, resources = super()._preprocess(nb, resources)
        for cls in _REQUIRED_SAFETY:
            if not any(isinstance(pp, cls) for pp in self._preprocessors):
                nb, resources = cls(parent=self).preprocess(nb, resources)
        return nb, resources

    def _init_resources(self, resources):
        resources = super()._init_resources(resources)
        if "tpkit" not in resources:  # not the kit's grading command: the student's id and remarks
            student = str((resources.get("nbgrader") or {}).get("student", ""))
            assignment = str((resources.get("nbgrader") or {}).get("assignment") or "")
            # the converters run from the course root: the assignment's exports hold its last report
            exports = exports_dir(Path("."), assignment) if assignment else None
            resources["tpkit"] = {"student": student,
                                  "remarks": student_remarks(exports, student) if student and exports else []}
        return resources
