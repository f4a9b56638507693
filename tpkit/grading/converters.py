"""nbgrader's converters, as the grading workflow runs them (one submission per worker process,
:mod:`tpkit.grading.worker`).

:class:`ParallelAutograde` is nbgrader's ``Autograde`` converter unchanged in what it does (copy the
submission, overwrite the data files from ``source/``, sanitize, restore cells from the gradebook,
execute, score, save) with three substitutions in its configured preprocessor lists: ``Execute`` ->
:class:`LimitedExecute` (warm kernel from the converter's ``kernel_supply``, limits) and the gradebook writers -> their serialized versions,
plus the gradebook lock around the student/submission creation, and :class:`LimitOutputBytes` right
after execution (always, whatever the configured list says). :class:`FrenchFeedback` is
``GenerateFeedback`` with a French template, the preprocessors that keep hidden tests out and the
output byte cap, rendered by :class:`SanitizedHTMLExporter`: nothing a student wrote or printed runs in
the browser that opens the feedback.
"""
from __future__ import annotations

import functools
import html
import json
import os
import re
from pathlib import Path

import bleach
import jinja2
import nbgrader
from nbconvert.exporters import HTMLExporter, NotebookExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML, _pygments_highlight
from pygments.token import STANDARD_TYPES
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.notebooknode import NotebookNode
from nbgrader.converters import Autograde, GenerateFeedback
from nbgrader.converters.base import NbGraderException
from nbgrader.preprocessors import (AssignLatePenalties, ClearHiddenTests, Execute, GetGrades,
                                    OverwriteCells, SaveAutoGrades)
from traitlets import List
from traitlets.utils.importstring import import_item
from traitlets.config import Config

from tpkit import rubrics
from tpkit.grading import accessibility, compat, feedback
from tpkit.grading.feedback import TEMPLATES
from tpkit.grading.gradebook import GRADEBOOK_LOCK
from tpkit.grading.inert import inert
from tpkit.grading.options import exports_dir
from tpkit.grading.preprocessors import (GetGradesFr, HiddenTestsOverwriteCells, LimitedExecute,
                                         LimitOutputBytes, RepairGradedCells,
                                         SerializedAssignLatePenalties, SerializedOverwriteCells,
                                         SerializedSaveAutoGrades, StudentSafeOutputs)
from tpkit.grading.results import student_remarks

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


#: Texts longer than this are not memoized (a class's distinct cells are short; outputs can be MB).
_MEMO_MAX_CHARS = 20_000


@functools.lru_cache(maxsize=4096)
def _highlighted(source: str, language: str, cssclass: str, formatter_options: str, metadata: str) -> str:
    from pygments.formatters import HtmlFormatter
    return _pygments_highlight(source, HtmlFormatter(cssclass=cssclass, **json.loads(formatter_options)),
                               language, json.loads(metadata))


class MemoHighlight2HTML(Highlight2HTML):
    """nbconvert's code highlighter, memoized for the process: most code cells (given code, the
    visible part of test cells) are the same in every student's page."""

    def __call__(self, source, language=None, metadata=None):
        language = language or self.pygments_lexer
        try:
            # of the cell's metadata, nbconvert's highlighting reads only ``magics_language`` (the
            # rest holds execution timestamps, different in every page)
            magics = {"magics_language": metadata["magics_language"]} \
                if metadata and "magics_language" in metadata else {}
            keys = (json.dumps(self.extra_formatter_options, sort_keys=True), json.dumps(magics, sort_keys=True))
        except (TypeError, ValueError):
            keys = None
        if keys is None or len(source) > _MEMO_MAX_CHARS:
            return super().__call__(source, language, metadata)
        return _highlighted(source if len(source) > 0 else " ", language,
                            html.escape(f" highlight hl-{language}"), *keys)


class CachedHTMLExporter(HTMLExporter):
    """``HTMLExporter`` whose templates are compiled once per process (each feedback converter makes
    a new exporter, and compiling its ~30 templates cost 0.7 s of CPU per student), whose code
    highlighting is memoized (:class:`MemoHighlight2HTML`) and whose final accessibility pass is
    :func:`tpkit.grading.accessibility.mark` instead of a BeautifulSoup round trip of the whole page
    (0.3 s per student; same page once parsed)."""

    _bytecode_cache = _MemoryBytecodeCache()

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = self._bytecode_cache
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        # HTMLExporter.from_notebook_node (nbconvert 7.17) with the two substitutions above
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        highlight_code = self.filters.get("highlight_code", MemoHighlight2HTML(pygments_lexer=lexer, parent=self))
        resources = self._init_resources(resources)
        filter_data_type = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self,
                                                 resources=resources)
        self.register_filter("highlight_code", highlight_code)
        self.register_filter("filter_data_type", filter_data_type)
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        return accessibility.mark(page), resources


#: What student HTML (Markdown cells, ``text/html`` and ``text/markdown`` outputs, raw cells) may keep
#: in the feedback: formatting, tables, links and inline images; no script, style, form, frame, object,
#: embed, link, meta, base or event handler (shown as text).
SAFE_TAGS = frozenset(bleach.ALLOWED_TAGS) | {
    "p", "br", "hr", "div", "span", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "img", "sub", "sup",
    "del", "s", "u", "mark", "small", "kbd", "samp", "var", "dl", "dt", "dd", "details", "summary",
    "figure", "figcaption", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "colgroup", "col",
}
#: URL schemes of links and images (``data:`` for images only, see :func:`_safe_attribute`).
SAFE_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})
#: Classes student HTML may keep: code highlighting (Markdown code blocks: ``highlight`` and Pygments'
#: token classes), nothing of the page's own look (Bootstrap's ``panel``, ``alert``, ``label``…: a
#: student's look-alike of the kit's grade box stays plain text).
SAFE_CLASSES = frozenset({"highlight"} | set(STANDARD_TYPES.values())) - {""}
#: Ids the page itself uses (its styles, the kit's anchors): a student heading cannot take them.
RESERVED_IDS = frozenset({"top", "notebook", "notebook-container", "scores"})
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp)[;,]")
_URI_NOISE = re.compile(r"[`\x00-\x20\x7f-\xa0\s]+")
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)


def _safe_attribute(tag: str, name: str, value: str) -> bool:
    if name == "title":
        return True
    if name == "class":
        return all(c in SAFE_CLASSES for c in value.split())
    if name == "id":  # (Markdown headings' anchors)
        return tag in ("h1", "h2", "h3", "h4", "h5", "h6") and value not in RESERVED_IDS \
            and not value.startswith("tpkit")
    if (tag, name) in (("a", "href"), ("img", "src")):
        uri = _URI_NOISE.sub("", html.unescape(value)).lower()
        if tag == "img":  # an image is loaded by the page: only one it holds (never a remote or local file)
            return bool(_DATA_IMAGE.match(uri))
        return not uri.startswith("data:")  # then bleach keeps http(s), mailto, relative links and #anchors
    if tag == "img":
        return name in ("alt", "width", "height")
    if tag in ("td", "th"):
        return name in ("colspan", "rowspan", "align")
    return tag == "ol" and name in ("start", "type")


def safe_html(text) -> str:
    """Student HTML made inert (the feedback's ``clean_html`` filter): ``<script>``/``<style>`` elements
    removed with their content, other tags outside :data:`SAFE_TAGS` shown as text, attributes outside
    :func:`_safe_attribute` (``onerror``, ``style``, ``srcset``, a class of the page's look…),
    ``javascript:`` URLs and image sources other than inline ``data:`` images dropped: the page loads
    nothing (its Content-Security-Policy says so too) and a student cannot dress text as the kit's."""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return _cleaned(text) if len(text) <= _MEMO_MAX_CHARS else _clean(text)


def _clean(text: str) -> str:
    cleaned = bleach.clean(_SCRIPT_OR_STYLE.sub("", text), tags=SAFE_TAGS, attributes=_safe_attribute,
                           protocols=SAFE_PROTOCOLS, strip=False, strip_comments=True)
    # an image whose source was dropped (remote, a file) says so instead of a broken-image icon
    return _IMG.sub(_image_not_shown, cleaned) if "<img" in cleaned else cleaned


#: An ``<img>`` as bleach writes it (attribute values double-quoted, their text escaped).
_IMG = re.compile(r'<img((?:\s+[^\s="<>/]+(?:="[^"]*")?)*)\s*/?>')
_ATTR = re.compile(r'\s+([^\s="<>/]+)(?:="([^"]*)")?')


def _image_not_shown(m: re.Match) -> str:
    attrs = dict(_ATTR.findall(m.group(1)))
    if "src" in attrs:
        return m.group(0)
    alt = attrs.get("alt")
    return f"[image non affichée{' : ' + alt if alt else ''} — seules les images enregistrées dans le " \
        "notebook s'affichent]"


#: The statement's Markdown cells are the same in every page: cleaned once per process.
_cleaned = functools.lru_cache(maxsize=4096)(_clean)


def _safe_output_metadata(md) -> dict:
    """The output metadata keys the templates use, with values that cannot break out of an attribute
    (nbconvert writes ``width={{ width }}`` unquoted): numbers, ``alt`` text, flags; no ``filenames``."""
    out = {}
    for key, value in (md or {}).items():
        if isinstance(value, dict):
            inner = _safe_output_metadata(value)
            if inner:
                out[key] = inner
        elif key in ("width", "height") and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
        elif key == "alt" and isinstance(value, str):
            out[key] = value
        elif key in ("unconfined", "isolated") and value is True:
            out[key] = True
    return out


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
                    out["metadata"] = NotebookNode(_safe_output_metadata(out["metadata"]))
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
