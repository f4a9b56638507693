"""What rendering a feedback page costs, paid once per process instead of once per page: templates
compiled once (:class:`CachedHTMLExporter`), code highlighting memoized (:class:`MemoHighlight2HTML`,
most code cells are the same in every student's page), the final accessibility pass done without a
BeautifulSoup round trip.

Apart from what the page shows and keeps out (:mod:`tpkit.grading.feedback_exporter`,
:mod:`tpkit.grading.safehtml`): the same page, faster; nothing here decides what a student sees.
"""
from __future__ import annotations

import functools
import html
import json

import jinja2
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML, _pygments_highlight
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

from tpkit.grading import accessibility


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
MEMO_MAX_CHARS = 20_000


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
        if keys is None or len(source) > MEMO_MAX_CHARS:
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
