"""Moodle-like files built in code, for tests and examples (no binary blobs in the repository).

* :func:`write_moodle_zip`: a "Download all submissions" zip, folders or flat layout, with the entry
  name encodings met in practice (UTF-8 flagged, UTF-8 without the flag as PHP's ZipArchive writes
  them, genuine cp437).
* :func:`write_worksheet`: a "grading worksheet" CSV as Moodle exports it (English or French headers,
  PHP ``fputcsv`` quoting), optionally with a BOM and CRLF line endings as after an Excel re-save.

Both take the same ``{full name: (participant id, ...)}`` dict, so a test can build a zip and its
worksheet from one description of the class.
"""
from __future__ import annotations

import os
import unicodedata
import zipfile
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

from tpkit import assignments

__all__ = [
    "DEFAULT_DATE_TIME",
    "WORKSHEET_HEADERS",
    "moodle_entry_prefix",
    "write_moodle_zip",
    "write_worksheet",
    "minimal_notebook",
]

PathLike = Union[str, os.PathLike]
DEFAULT_DATE_TIME = (2024, 3, 12, 14, 5, 32)
DEFAULT_NOTEBOOK = f"{assignments.default()}.ipynb"  # the course's first assignment

# Column headers of Moodle's grading worksheet (assignfeedback_offline), English and French strings
# (French "Feedback par commentaires" is the plugin name in Moodle's fr pack; some sites show
# "Commentaires de feedback", which the import also reads).
WORKSHEET_HEADERS = {
    "en": ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
           "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"],
    "fr": ["Identifiant", "Nom complet", "Adresse de courriel", "Statut", "Note", "Note maximale",
           "La note peut être modifiée", "Dernière modification (travail remis)",
           "Dernière modification (note)", "Feedback par commentaires"],
}
_WORDS = {
    "en": dict(participant="Participant ", status="Submitted for grading", yes="Yes", no="No",
               modified="Tuesday, 12 March 2024, 2:05 PM", decimal="."),
    "fr": dict(participant="Participant ", status="Remis pour évaluation", yes="Oui", no="Non",
               modified="mardi 12 mars 2024, 14:05", decimal=","),
}


def minimal_notebook(source: str = "print('bonjour')") -> bytes:
    """A tiny valid nbformat 4 notebook (bytes), for tests that do not execute anything."""
    import json

    nb = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {},
                   "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def moodle_entry_prefix(full_name: str, participant_id: Union[int, str]) -> str:
    """``<Full name>_<participant id>_assignsubmission_file_`` (Moodle turns "_" in names into spaces)."""
    return f"{full_name.replace('_', ' ')}_{participant_id}_assignsubmission_file_"


class _RawNameInfo(zipfile.ZipInfo):
    """ZipInfo whose name is stored as given bytes without the UTF-8 flag (``filename`` holds those
    bytes decoded as cp437, which is what zipfile shows when reading them back)."""

    def _encodeFilenameFlags(self):  # noqa: N802 (zipfile's private hook, stable since 3.x)
        return self.filename.encode("cp437"), self.flag_bits & ~0x800


def _zipinfo(name: str, date_time, names: str) -> zipfile.ZipInfo:
    if names == "utf8":
        info = zipfile.ZipInfo(name, date_time)  # zipfile sets the UTF-8 flag for non-ASCII names
    elif names == "utf8-noflag":
        info = _RawNameInfo(name.encode("utf-8").decode("cp437"), date_time)
    elif names == "cp437":
        info = _RawNameInfo(name.encode("cp437", errors="replace").decode("cp437"), date_time)
    else:
        raise ValueError(f"names must be 'utf8', 'utf8-noflag' or 'cp437', not {names!r}")
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def write_moodle_zip(
    path: PathLike,
    submissions: Mapping[str, tuple],
    *,
    layout: str = "folders",
    notebook_filename: str = DEFAULT_NOTEBOOK,
    names: str = "utf8",
    date_time: tuple = DEFAULT_DATE_TIME,
    nfd: bool = False,
    extra_entries: Optional[Mapping[str, bytes]] = None,
) -> Path:
    """Write a Moodle "Download all submissions" zip.

    ``submissions`` maps a full name to ``(participant id, notebook bytes)`` (one file named
    ``notebook_filename``) or to ``(participant id, {relative path: bytes})`` (any files, sub-folders
    with "/"; in the flat layout only the base name is kept, as Moodle does); an optional third item
    is that student's ``date_time`` (default ``date_time``). ``layout``: "folders"
    (``<prefix>/<path>``) or "flat" (``<prefix><file>``). ``names``: "utf8" (flagged), "utf8-noflag"
    (UTF-8 bytes without the flag, like PHP's ZipArchive) or "cp437". ``nfd``: decomposed accents, as
    a zip made on macOS. ``extra_entries`` are written verbatim (e.g. ``__MACOSX/...``, ``../evil``).
    """
    if layout not in ("folders", "flat"):
        raise ValueError(f"layout must be 'folders' or 'flat', not {layout!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for full_name, spec in submissions.items():
            pid, content = spec[0], spec[1]
            when = spec[2] if len(spec) > 2 else date_time
            files = content if isinstance(content, Mapping) else {notebook_filename: content}
            prefix = moodle_entry_prefix(full_name, pid)
            if layout == "folders":
                # Moodle >= 3.1 also writes the folder entry itself
                zf.writestr(_zipinfo(_maybe_nfd(prefix + "/", nfd), when, names), b"")
            for rel, data in files.items():
                if layout == "folders":
                    name = f"{prefix}/{rel}"
                else:
                    name = prefix + rel.rsplit("/", 1)[-1]
                zf.writestr(_zipinfo(_maybe_nfd(name, nfd), when, names), data)
        for name, data in (extra_entries or {}).items():
            zf.writestr(_zipinfo(name, date_time, names), data)
    return path


def _maybe_nfd(text: str, nfd: bool) -> str:
    return unicodedata.normalize("NFD", text) if nfd else text


def _fputcsv_field(value: str, delimiter: str) -> str:
    """PHP fputcsv quoting (what Moodle's csv_export_writer produces)."""
    if value == "" or not any(c in value for c in (delimiter, '"', "\n", "\r", "\t", " ", "\\")):
        return value
    return '"' + value.replace('"', '""') + '"'


def write_worksheet(
    path: PathLike,
    students: Mapping[str, Union[int, str, tuple]],
    *,
    language: str = "en",
    bom: bool = False,
    line_ending: str = "\n",
    delimiter: str = ",",
    decimal: Optional[str] = None,
    max_grade: str = "20",
    decimals: int = 2,
    locked: Iterable[Union[int, str]] = (),
    grades: Optional[Mapping[Union[int, str], str]] = None,
    comments: Optional[Mapping[Union[int, str], str]] = None,
    columns: Optional[Sequence[str]] = None,
    encoding: str = "utf-8",
) -> Path:
    """Write a Moodle grading worksheet CSV for ``students`` ({full name: participant id or a tuple
    whose first item is the participant id}, e.g. the dict given to :func:`write_moodle_zip`).

    ``language``: "en" or "fr" headers and words (French uses a decimal comma unless ``decimal`` is
    given). ``locked``: participant ids whose "Grade can be changed" is No. ``grades``/``comments``:
    existing values. ``columns``: a subset/order of the language's headers (Moodle's set varies with
    its settings). ``bom``/``line_ending``/``encoding``: as after a re-save by a spreadsheet.
    """
    headers = WORKSHEET_HEADERS[language]
    words = _WORDS[language]
    sep = decimal if decimal is not None else words["decimal"]
    fmt_max = f"{float(max_grade):.{decimals}f}".replace(".", sep)
    locked_ids = {str(p) for p in locked}
    grades = {str(k): v for k, v in (grades or {}).items()}
    comments = {str(k): v for k, v in (comments or {}).items()}
    rows = []
    for full_name, spec in students.items():
        pid = str(spec[0] if isinstance(spec, tuple) else spec)
        email = "".join(c for c in unicodedata.normalize("NFKD", full_name.lower()) if c.isalnum() or c == " ")
        values = [
            words["participant"] + pid,
            full_name,
            email.replace(" ", ".") + "@etu.example.org",
            words["status"],
            grades.get(pid, ""),
            fmt_max,
            words["no"] if pid in locked_ids else words["yes"],
            words["modified"],
            "-",
            comments.get(pid, ""),
        ]
        rows.append(dict(zip(headers, values)))
    cols = list(columns) if columns is not None else headers
    lines = [delimiter.join(_fputcsv_field(h, delimiter) for h in cols)]
    for row in rows:
        lines.append(delimiter.join(_fputcsv_field(row[h], delimiter) for h in cols))
    text = line_ending.join(lines) + line_ending
    data = text.encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
