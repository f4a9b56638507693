"""Who is who in Moodle: participant ids, nbgrader student ids, and the roster that keeps the names.

A Moodle submission is named ``<Full name>_<participant id>_assignsubmission_file_...``. The
participant id is Moodle's per-assignment identifier of a student: it is the same in every download of
the same assignment and it is also the number in the worksheet's ``Identifier`` column
("Participant 1234567"). The nbgrader student id is ``"p" + participant id`` (``p1234567``): ASCII, a
valid folder name and a valid nbgrader id, stable across re-downloads, and mapped back by
:func:`participant_id_from_student_id`. Caveat: Moodle gives the same student a *different*
participant id in another assignment, so ids are only comparable within one Moodle assignment. The
full name is kept in the roster (``submitted/moodle_roster.csv``), never in the id.

Every conversion between the forms of an id goes through this module.
"""
from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from tpkit.grading.csvsafe import escape_cell, unescape_cell

PathLike = Union[str, os.PathLike]

#: Roster written by the zip import at ``<submitted_dir>/moodle_roster.csv``.
ROSTER_NAME = "moodle_roster.csv"
ROSTER_FIELDS = ("student_id", "participant_id", "full_name", "source_entry", "status")


def student_id_for(participant_id: Union[str, int]) -> str:
    """nbgrader student id of a Moodle participant id: ``1234567`` -> ``"p1234567"``."""
    pid = str(participant_id).strip()
    if not pid.isdigit() or not pid.isascii():
        raise ValueError(f"not a Moodle participant id: {participant_id!r}")
    return "p" + pid


def participant_id_from_student_id(student_id: str) -> Optional[str]:
    """Inverse of :func:`student_id_for` (``"p1234567"`` -> ``"1234567"``); None if not of that form."""
    m = re.fullmatch(r"p(\d+)", student_id.strip())
    return m.group(1) if m else None


def canonical_pid(text: str) -> str:
    """A participant id as digits without leading zeros (zip entries and worksheets may pad it)."""
    return text.lstrip("0") or "0"


def trailing_pid(text: str) -> Optional[str]:
    """The participant id ending ``text`` (``"Participant 1234567"``, ``"p1234567"``, ``1234567``),
    canonical; None when it does not end with digits."""
    m = re.search(r"(\d+)\s*$", str(text))
    return canonical_pid(m.group(1)) if m else None


def participant_of(student: str, roster: dict) -> Optional[str]:
    """The participant id of a student: from the roster, else from a ``p<id>`` student id."""
    return roster[student].participant_id if student in roster else participant_id_from_student_id(student)


@dataclass
class RosterEntry:
    student_id: str
    participant_id: str
    full_name: str
    source_entry: str
    status: str  # "imported", "renamed", "ambiguous", "no_notebook"


def read_roster(submitted_dir: PathLike) -> dict[str, RosterEntry]:
    """Roster written by the zip import, keyed by student id ({} if there is none)."""
    path = Path(submitted_dir) / ROSTER_NAME
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for row in rows:
        if not row.get("student_id"):
            continue
        out[unescape_cell(row["student_id"])] = RosterEntry(
            **{k: unescape_cell(row.get(k) or "") for k in ROSTER_FIELDS})
    return out


def full_names(submitted_dir: PathLike) -> dict:
    """{student id: full name} of the roster ({} without one)."""
    return {s: e.full_name for s, e in read_roster(submitted_dir).items()}


def write_roster(submitted_dir: Path, entries: dict[str, RosterEntry]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ROSTER_FIELDS)
    for sid in sorted(entries, key=lambda s: (len(s), s)):
        e = entries[sid]
        # every roster field is text (full names and zip entries are the students'): no formulas
        writer.writerow([escape_cell(getattr(e, k)) for k in ROSTER_FIELDS])
    path = submitted_dir / ROSTER_NAME
    write_if_changed(path, buf.getvalue().encode("utf-8"))
    return path


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomic write; returns False (and writes nothing) when the file already holds these bytes."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True
