"""Student HTML made inert for the feedback page: what Markdown cells, ``text/html`` and
``text/markdown`` outputs and raw cells may keep (formatting, tables, links, inline images), and output
metadata reduced to values that cannot break out of an attribute.

Apart from the exporter that calls it (:mod:`tpkit.grading.feedback_exporter`) because it is a pure
text-to-text policy, tested on its own against what a student could write.
"""
from __future__ import annotations

import functools
import html
import re

import bleach
from pygments.token import STANDARD_TYPES

from tpkit.grading.fast_html import MEMO_MAX_CHARS


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
    return _cleaned(text) if len(text) <= MEMO_MAX_CHARS else _clean(text)


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


def safe_output_metadata(md) -> dict:
    """The output metadata keys the templates use, with values that cannot break out of an attribute
    (nbconvert writes ``width={{ width }}`` unquoted): numbers, ``alt`` text, flags; no ``filenames``."""
    out = {}
    for key, value in (md or {}).items():
        if isinstance(value, dict):
            inner = safe_output_metadata(value)
            if inner:
                out[key] = inner
        elif key in ("width", "height") and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
        elif key == "alt" and isinstance(value, str):
            out[key] = value
        elif key in ("unconfined", "isolated") and value is True:
            out[key] = True
    return out
