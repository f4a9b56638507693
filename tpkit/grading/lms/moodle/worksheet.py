"""Moodle's grading worksheet filled with the grades and comments: the Grade and Feedback comments fields
of each row, every other byte of the file kept, so that it can be uploaded back."""
from __future__ import annotations

import html
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Mapping, Optional, Union

from tpkit.grading.csvsafe import escape_cell
from tpkit.grading.inert import inert
from tpkit.grading.lms.moodle.csvbytes import Field, encode_field, parse_csv, sniff_delimiter
from tpkit.grading.lms.moodle.ids import PathLike, trailing_pid

def _norm_header(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\ufeff", "")
    return " ".join(text.split()).casefold()


# Header names of the worksheet columns we read or write (Moodle's English and French strings).
_H_IDENT = {"identifier", "identifiant"}
_H_FULLNAME = {"full name", "nom complet"}
_H_GRADE = {"grade", "note"}
_H_MAX = {"maximum grade", "note maximale", "note maximum"}
_H_CANCHANGE = {"grade can be changed", "la note peut être modifiée", "note modifiable"}
_H_FEEDBACK = {
    "feedback comments", "commentaires de feedback", "feedback par commentaires",
    "commentaires du feedback", "commentaires",
}
_NO = {"no", "non"}

_NUMBER_RE = re.compile(r"^\s*(\d+)(?:([.,])(\d*))?\s*$")


def _number_format(text: str) -> Optional[tuple[Decimal, str, int]]:
    """(value, decimal separator, decimals) of "20.00" / "20,00" / "20"; None if not a number."""
    m = _NUMBER_RE.match(text)
    if not m:
        return None
    sep = m.group(2) or ""
    decimals = len(m.group(3) or "")
    value = Decimal(m.group(1) + ("." + m.group(3) if m.group(3) else ""))
    return value, sep, decimals


@dataclass
class WorksheetReport:
    """Result of :func:`fill_worksheet`. Participants are given as (participant id, full name)."""

    out_path: Path
    encoding: str
    delimiter: str
    bom: bool
    updated: list[str] = field(default_factory=list)  # participant ids whose grade/comment was written
    comment_only: list[str] = field(default_factory=list)  # result without a grade: comment written only
    ungraded: list[tuple[str, str]] = field(default_factory=list)  # worksheet rows with no result
    missing_rows: list[str] = field(default_factory=list)  # results whose participant has no row
    locked: list[tuple[str, str]] = field(default_factory=list)  # "Grade can be changed" = No: untouched
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (record number, reason): malformed rows
    feedback_column: Optional[str] = None  # header of the comments column (None: no such column)
    scale: Decimal = Decimal(1)  # factor applied to grades /20 to reach the worksheet's maximum grade

    def lines(self) -> list:
        """What the teacher reads about the fill (French), after the line naming the file written."""
        out = []
        if self.scale != 1:
            out.append(f"  notes /20 mises à l'échelle de la note maximale de la feuille (× {self.scale})")
        if self.feedback_column is None:
            out.append("  pas de colonne de commentaires dans la feuille : commentaires non écrits")
        if self.comment_only:
            out.append("  commentaire seul (note en attente) : " + ", ".join(self.comment_only))
        if self.ungraded:
            out.append("  lignes sans rendu corrigé : " + ", ".join(f"{p} {n}" for p, n in self.ungraded))
        if self.missing_rows:
            out.append("  rendus sans ligne dans la feuille : " + ", ".join(self.missing_rows))
        if self.locked:
            out.append("  note verrouillée dans Moodle : " + ", ".join(f"{p} {n}" for p, n in self.locked))
        for number, reason in self.skipped:
            out.append(f"  ligne {number} ignorée : {reason}")
        return out


def fill_worksheet(
    worksheet_in: PathLike,
    results: Mapping[Union[str, int], tuple[Optional[float], Optional[str]]],
    out_path: PathLike,
    *,
    out_of: float = 20.0,
) -> WorksheetReport:
    """Fill Moodle's grading worksheet with grades and comments, keeping every other byte.

    ``results`` maps a participant id (``"1234567"``, ``1234567``, ``"p1234567"``) to ``(grade out of
    `out_of` or None, comment or None)``. For each worksheet row whose ``Identifier``/``Identifiant``
    ("Participant 1234567") has a result, the ``Grade``/``Note`` field and the ``Feedback comments``/
    ``Feedback par commentaires`` field are replaced; nothing else changes: BOM, line endings, delimiter
    (``,``, ``;`` or tab), the quoting of other fields and rows without a result stay byte-for-byte.
    A grade None leaves the grade field alone (comment only); a comment None leaves the comment alone.

    The grade is written like the row's ``Maximum Grade`` (decimal separator and number of decimals,
    e.g. ``15.50`` or ``15,50``), rescaled when that maximum is not ``out_of`` and clamped to
    [0, maximum]. A row with ``Grade can be changed`` = No/Non is left untouched and reported.
    Comments are written as given (Moodle reads them as HTML, see :func:`plain_text_to_html`), except
    that one a spreadsheet would run as a formula gets a leading ``'`` (:mod:`tpkit.grading.csvsafe`) and
    control characters show escaped, line breaks and tabs excepted (:mod:`tpkit.grading.inert`: comments
    quote file names and reasons).
    The file is decoded as UTF-8, or cp1252 if it is not valid UTF-8 (an Excel re-save).
    """
    src = Path(worksheet_in)
    out = Path(out_path)
    data = src.read_bytes()
    bom = data.startswith(b"\xef\xbb\xbf")
    start = 3 if bom else 0
    try:
        data[start:].decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = "cp1252"
    delim_byte = sniff_delimiter(data, start)
    delim = chr(delim_byte)
    records = parse_csv(data, start, delim_byte)

    def text(f: Field) -> str:
        return f.raw_value.decode(encoding, errors="replace")

    header_idx = next((k for k, r in enumerate(records) if any(text(f).strip() for f in r.fields)), None)
    if header_idx is None:
        raise ValueError(f"{src}: empty worksheet")
    header = [_norm_header(text(f)) for f in records[header_idx].fields]

    def col(names: set[str]) -> Optional[int]:
        return next((k for k, h in enumerate(header) if h in names), None)

    i_id, i_grade = col(_H_IDENT), col(_H_GRADE)
    if i_id is None or i_grade is None:
        raise ValueError(
            f"{src}: not a Moodle grading worksheet (no Identifier/Identifiant or Grade/Note column; "
            f"header: {[text(f) for f in records[header_idx].fields]})"
        )
    i_name, i_max, i_can, i_fb = col(_H_FULLNAME), col(_H_MAX), col(_H_CANCHANGE), col(_H_FEEDBACK)

    report = WorksheetReport(
        out_path=out, encoding=encoding, delimiter=delim, bom=bom,
        feedback_column=text(records[header_idx].fields[i_fb]) if i_fb is not None else None,
    )
    wanted: dict[str, tuple[Optional[float], Optional[str]]] = {}
    for key, value in results.items():
        pid = trailing_pid(str(key).strip())
        if pid is None:
            raise ValueError(f"cannot read a participant id from {key!r}")
        wanted[pid] = value

    # file-wide fallback format: first parseable Maximum Grade, else 2 decimals with "."
    default_fmt: tuple[Optional[Decimal], str, int] = (None, ".", 2)
    if i_max is not None:
        for r in records[header_idx + 1:]:
            if len(r.fields) > i_max and (fmt := _number_format(text(r.fields[i_max]))):
                default_fmt = fmt
                break

    splices: list[tuple[int, int, bytes]] = []
    seen: set[str] = set()
    for r in records[header_idx + 1:]:
        if len(r.fields) == 1 and not r.fields[0].raw_value.strip():
            continue  # blank line
        if len(r.fields) <= i_id:
            report.skipped.append((r.number, "too few fields"))
            continue
        pid = trailing_pid(text(r.fields[i_id]))
        if pid is None:
            report.skipped.append((r.number, f"no participant id in {text(r.fields[i_id])!r}"))
            continue
        name = text(r.fields[i_name]).strip() if i_name is not None and len(r.fields) > i_name else ""
        if pid not in wanted:
            report.ungraded.append((pid, name))
            continue
        seen.add(pid)
        grade, comment = wanted[pid]
        if i_can is not None and len(r.fields) > i_can and _norm_header(text(r.fields[i_can])) in _NO:
            report.locked.append((pid, name))
            continue
        needed = max(i_grade, i_fb if (i_fb is not None and comment is not None) else -1)
        if len(r.fields) <= needed:
            report.skipped.append((r.number, f"participant {pid}: too few fields"))
            continue
        if grade is not None:
            fmt = _number_format(text(r.fields[i_max])) if i_max is not None and len(r.fields) > i_max else None
            maximum, sep, decimals = fmt or default_fmt
            value = Decimal(repr(float(grade)))
            if maximum is not None and maximum != Decimal(repr(float(out_of))):
                scale = maximum / Decimal(repr(float(out_of)))
                report.scale = scale
                value = value * scale
            value = max(Decimal(0), value)
            if maximum is not None:
                value = min(value, maximum)
            q = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
            gtext = f"{q:.{decimals}f}".replace(".", sep or ".")
            f = r.fields[i_grade]
            splices.append((f.start, f.end, encode_field(gtext, encoding, delim, f.quoted)))
        if comment is not None and i_fb is not None:
            f = r.fields[i_fb]  # text: inert (lines kept), never a formula (the grade is a number we format)
            comment = escape_cell(inert(comment, keep="\r\n\t"))
            splices.append((f.start, f.end, encode_field(comment, encoding, delim, f.quoted)))
        if grade is None:
            report.comment_only.append(pid)
        if grade is not None or (comment is not None and i_fb is not None):
            report.updated.append(pid)
    report.missing_rows = sorted((p for p in wanted if p not in seen), key=lambda p: (len(p), p))

    pieces, pos = [], 0
    for s, e, new in sorted(splices):
        pieces.append(data[pos:s])
        pieces.append(new)
        pos = e
    pieces.append(data[pos:])
    result = b"".join(pieces)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=".csv")
    with os.fdopen(fd, "wb") as fh:
        fh.write(result)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return report


def plain_text_to_html(text: str) -> str:
    """Plain-text comment -> the HTML Moodle expects in Feedback comments (escaped, newlines as <br>)."""
    return "<br>".join(html.escape(line, quote=False) for line in text.splitlines()) if text else ""


def check_worksheet(worksheet: PathLike) -> None:
    """Raise ValueError unless ``worksheet`` reads as a Moodle grading worksheet (identifier and grade
    columns); the trial fill is written to a temporary folder, nothing next to the worksheet."""
    with tempfile.TemporaryDirectory(prefix="tpkit-worksheet-") as tmp:
        fill_worksheet(worksheet, {}, Path(tmp) / "check.csv")
