"""CSV cells that a spreadsheet will not run as formulas (CSV/formula injection).

Excel, LibreOffice and Google Sheets evaluate a cell that begins with ``=``, ``+``, ``-`` or ``@``
(and, on some versions, a tab or a carriage return before them). Every *text* cell of the kit's CSV
files that can hold something a student chose (a folder name, a full name, a zip entry, a status that
quotes a file name) goes through :func:`escape_cell`, which prefixes such a value with ``'`` (OWASP's
advice; spreadsheets show the text as it is). Numbers the kit formats itself (scores, grades) are not
student text and are written as they are: a ``-0.5`` must stay a number.

The escape is reversible (:func:`unescape_cell`, for the files the kit reads back, such as the Moodle
roster): a value already made of quotes followed by a formula character gets one more quote.
"""
from __future__ import annotations

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _risky(text: str) -> bool:
    return text.lstrip("'").startswith(FORMULA_PREFIXES)


def escape_cell(value) -> str:
    """``value`` as text, with a leading ``'`` when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if _risky(text) else text


def unescape_cell(text: str) -> str:
    """Inverse of :func:`escape_cell`."""
    return text[1:] if text.startswith("'") and _risky(text) else text
