"""Student text made inert where a person reads it: the terminal, CSV files, the class report, logs.

A student chooses folder names, file names, cell ids, outputs and error messages, and they come back
in statuses, reasons and ids. Written raw, a control character acts on what shows it: ``ESC]52``
writes the instructor's clipboard, ``ESC[2A`` moves the cursor up over earlier lines, ``ESC[8m`` hides
text, a newline forges a row, U+202E (right-to-left override) shows ``02/02`` as ``20/20``, a zero-width
space makes two different ids look alike. :func:`inert` is the one boundary every such string goes
through on its way out (and the pre-check's file names: :func:`tpkit.grading.submission_files.printable`):

* every character that is not shown as itself — C0 and C1 controls (ESC, DEL, NEL…), format
  characters (bidi embeddings, overrides and isolates U+202A–202E and U+2066–2069, marks, zero-width
  spaces and joiners, soft hyphen, BOM, tags), line and paragraph separators, lone surrogates (an
  undecodable byte of a file name), unassigned code points, and the Hangul fillers that draw as blanks —
  is shown escaped as Python writes it (``\\x1b``, ``\\n``, ``\\u202e``), so the reader sees that it
  was there;
* letters, accents, punctuation, emoji and spaces (no-break spaces included) are kept;
* in a log (``drop_colours``), colour codes (complete ``ESC[…m`` sequences: IPython's tracebacks are full
  of them) are removed rather than shown. Not in an id: two folder names that differ only by one must
  not look alike.

HTML pages escape their markup themselves (``html.escape``): :func:`inert` comes first.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Optional

#: Unicode categories not shown as themselves: controls, format, surrogates, unassigned, line and
#: paragraph separators. (Private use, Co, is drawn as a glyph: kept.)
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})
#: Letters that draw as nothing (Hangul fillers): an id "alice" + U+3164 looks like "alice".
BLANK_LETTERS = frozenset({0x115F, 0x1160, 0x3164, 0xFFA0})
_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_BLANK = re.compile("[" + "".join(map(chr, sorted(BLANK_LETTERS))) + "]")
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def _escaped(code: int) -> str:
    if code in _NAMED:
        return _NAMED[code]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


class _Table(dict):
    """``str.translate`` table filled on first use of each code point."""

    def __missing__(self, code: int) -> str:
        hidden = code in BLANK_LETTERS or unicodedata.category(chr(code)) in HIDDEN_CATEGORIES
        value = self[code] = _escaped(code) if hidden else chr(code)
        return value


_TABLE = _Table()


def inert(text, limit: Optional[int] = None, keep: str = "", drop_colours: bool = False) -> str:
    """``text`` (any object: ``str()`` of it) with every hidden character shown escaped (see the module
    docstring), except those of ``keep`` (``"\\n\\t"`` for a log, whose messages span lines), and colour
    codes removed when ``drop_colours``. ``limit``: at most that many characters, the last one ``…``."""
    text = "" if text is None else str(text)
    if not text.isprintable() or _BLANK.search(text):  # (printable: the common case, checked in C)
        if drop_colours:
            text = _SGR.sub("", text)
        if keep:
            text = re.sub(f"[^{re.escape(keep)}]+", lambda m: m.group().translate(_TABLE), text)
        else:
            text = text.translate(_TABLE)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text
