"""Moodle import and export for the grading workflow.

Two jobs, both independent from nbgrader's own apps:

* :func:`import_moodle_zip` reads Moodle's "Download all submissions" zip (both layouts) and lays the
  notebooks out as nbgrader expects them: ``submitted/<student id>/<assignment>/<notebook>`` plus
  ``timestamp.txt``. It also keeps a roster, ``submitted/moodle_roster.csv``.
* :func:`fill_worksheet` fills the Grade and Feedback comments fields of Moodle's "grading worksheet"
  CSV, keeping every other byte of the file, so that it can be uploaded back.

Student ids
-----------
A Moodle submission is named ``<Full name>_<participant id>_assignsubmission_file_...``. The
participant id is Moodle's per-assignment identifier of a student: it is the same in every download of
the same assignment and it is also the number in the worksheet's ``Identifier`` column
("Participant 1234567"). The nbgrader student id is ``"p" + participant id`` (``p1234567``): ASCII, a
valid folder name and a valid nbgrader id, stable across re-downloads, and trivially mapped back
(:func:`participant_id_from_student_id`). Caveat: Moodle gives the same student a *different*
participant id in another assignment, so ids are only comparable within one Moodle assignment. The
full name is kept in the roster (and in :class:`MoodleImport`), never in the id.
"""
from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Mapping, Optional, Union

from tpkit.grading.csvsafe import escape_cell, unescape_cell

__all__ = [
    "ROSTER_NAME",
    "ROSTER_FIELDS",
    "ImportedSubmission",
    "ImportProblem",
    "IgnoredEntry",
    "MoodleImport",
    "RosterEntry",
    "WorksheetReport",
    "import_moodle_zip",
    "fill_worksheet",
    "read_roster",
    "student_id_for",
    "participant_id_from_student_id",
    "plain_text_to_html",
]

PathLike = Union[str, os.PathLike]

#: Roster written by :func:`import_moodle_zip` at ``<submitted_dir>/moodle_roster.csv``.
ROSTER_NAME = "moodle_roster.csv"
ROSTER_FIELDS = ("student_id", "participant_id", "full_name", "source_entry", "status")

# "<Full name>_<participant id>_assignsubmission_<plugin>_<rest>". Moodle replaces "_" by " " in the
# full name, so the first "_<digits>_assignsubmission_" is the separator. With blind marking the
# name part is "Participant".
_SUBMISSION_RE = re.compile(
    r"^(?P<name>.*?)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[A-Za-z0-9]+)_(?P<rest>.*)$", re.S
)
_UTF8_FLAG = 0x800
_IGNORED_DIRS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}


# --------------------------------------------------------------------------------------------------
# student ids


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


def _normalize_pid(key: Union[str, int]) -> str:
    """Participant id from a results key: ``1234567``, ``"1234567"``, ``"p1234567"`` or
    ``"Participant 1234567"``."""
    text = str(key).strip()
    m = re.search(r"(\d+)$", text)
    if not m:
        raise ValueError(f"cannot read a participant id from {key!r}")
    return m.group(1)


# --------------------------------------------------------------------------------------------------
# zip import


@dataclass
class ImportedSubmission:
    """One notebook written to ``submitted/``."""

    student_id: str
    participant_id: str
    full_name: str
    source_entry: str  # zip entry name (decoded) the notebook was taken from
    original_name: str  # path of the file inside the student's submission, e.g. "TP_Dupont.ipynb"
    dest_path: Path  # submitted/<student id>/<assignment>/<notebook name>
    timestamp: str  # content of timestamp.txt
    layout: str  # "folders" or "flat"
    renamed: bool  # handed in under another name (or in a sub-folder): imported under the expected name
    changed: bool  # False when the same notebook and timestamp were already there (re-import)


@dataclass
class ImportProblem:
    """Something that could not be imported: an entry or a whole participant, with the reason."""

    kind: str  # "unsafe_path" | "no_participant_id" | "no_notebook" | "ambiguous" | "read_error"
    reason: str
    entries: list[str] = field(default_factory=list)
    participant_id: Optional[str] = None
    full_name: Optional[str] = None

    @property
    def student_id(self) -> Optional[str]:
        return student_id_for(self.participant_id) if self.participant_id else None


@dataclass
class IgnoredEntry:
    """A zip entry skipped on purpose (macOS metadata, checkpoint, hidden or non-notebook file)."""

    entry: str
    reason: str
    participant_id: Optional[str] = None


@dataclass
class MoodleImport:
    """Result of :func:`import_moodle_zip`."""

    zip_path: Path
    submitted_dir: Path
    assignment: str
    notebook_name: str
    layout: str  # "folders", "flat", "mixed" or "empty"
    submissions: dict[str, ImportedSubmission]  # student id -> imported notebook
    problems: list[ImportProblem]
    ignored: list[IgnoredEntry]
    roster_path: Path
    participants: dict[str, str] = field(default_factory=dict)  # participant id -> full name (all seen)

    @property
    def mapping(self) -> dict[str, str]:
        """participant id -> student id, for every imported submission."""
        return {s.participant_id: s.student_id for s in self.submissions.values()}

    @property
    def student_ids(self) -> list[str]:
        return sorted(self.submissions)

    @property
    def renamed(self) -> list[ImportedSubmission]:
        return [s for s in self.submissions.values() if s.renamed]

    @property
    def ok(self) -> bool:
        """True when every participant seen in the zip got a notebook and no entry was unattributable."""
        return not self.problems

    def report(self) -> str:
        """Plain-text report for the instructor (English)."""
        lines = [
            f"Moodle import of {self.zip_path.name} ({self.layout} layout): "
            f"{len(self.submissions)} notebook(s) imported for {len(self.participants)} participant(s), "
            f"{len(self.problems)} problem(s), {len(self.ignored)} entr(y/ies) ignored."
        ]
        for s in sorted(self.submissions.values(), key=lambda s: s.student_id):
            note = f"  (handed in as '{s.original_name}', imported as '{self.notebook_name}')" if s.renamed else ""
            lines.append(f"  {s.student_id}  {s.full_name}{note}")
        if self.problems:
            lines.append("Problems (nothing imported for these):")
            for p in self.problems:
                who = f"{p.student_id} {p.full_name}: " if p.participant_id else ""
                ents = f" [{'; '.join(p.entries)}]" if p.entries else ""
                lines.append(f"  - {p.kind}: {who}{p.reason}{ents}")
        if self.ignored:
            lines.append("Ignored entries:")
            for i in self.ignored:
                lines.append(f"  - {i.entry}: {i.reason}")
        return "\n".join(lines)


@dataclass
class RosterEntry:
    student_id: str
    participant_id: str
    full_name: str
    source_entry: str
    status: str  # "imported", "renamed", "ambiguous", "no_notebook"


@dataclass
class _Candidate:
    entry: str
    info: zipfile.ZipInfo
    relpath: str  # path inside the student's submission
    layout: str


@dataclass
class _Participant:
    pid: str
    full_name: str
    notebooks: dict[str, _Candidate] = field(default_factory=dict)  # relpath -> candidate
    others: list[str] = field(default_factory=list)  # entries of non-notebook files


def _decode_entry_name(info: zipfile.ZipInfo) -> str:
    """Entry name as the student saw it. zipfile decodes names without the UTF-8 flag as cp437; many
    zip writers (PHP's ZipArchive among them) store UTF-8 without setting the flag, so re-decode as
    UTF-8 when the cp437 bytes round-trip. NFC-normalized (macOS writes decomposed accents)."""
    name = info.filename
    if not info.flag_bits & _UTF8_FLAG:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return unicodedata.normalize("NFC", name)


def _is_unsafe(name: str) -> bool:
    """Absolute names, drive letters and '..' components (zip-slip)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return any(part == ".." for part in re.split(r"[/\\]", name))


def _check_simple_name(value: str, what: str) -> None:
    if (
        not value
        or value in (".", "..")
        or value.startswith(".")
        or "/" in value
        or "\\" in value
        or "\0" in value
    ):
        raise ValueError(f"invalid {what}: {value!r}")


def _timestamp(info: zipfile.ZipInfo, timezone: Optional[str]) -> str:
    """nbgrader's timestamp.txt format (``datetime.isoformat(' ')``), from the entry's date_time."""
    try:
        ts = datetime(*info.date_time).isoformat(" ")
    except ValueError:  # 1980-00-00 from some zip writers
        ts = datetime(1980, 1, 1).isoformat(" ")
    return f"{ts} {timezone}" if timezone else ts


def _write_if_changed(path: Path, data: bytes) -> bool:
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


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _choose(p: _Participant, notebook_name: str) -> tuple[Optional[_Candidate], Optional[str]]:
    """Pick the notebook to grade for one participant; (None, reason) when there is none or several."""
    cands = list(p.notebooks.values())
    if not cands:
        return None, "no .ipynb file in the submission"

    def base(c: _Candidate) -> str:
        return c.relpath.rsplit("/", 1)[-1]

    for same in (lambda c: base(c) == notebook_name, lambda c: base(c).casefold() == notebook_name.casefold()):
        matches = [c for c in cands if same(c)]
        if len(matches) == 1:
            return matches[0], None
        if len(matches) > 1:
            return None, f"{len(matches)} files named {notebook_name}: none chosen"
    if len(cands) == 1:
        return cands[0], None
    names = ", ".join(sorted(c.relpath for c in cands))
    return None, f"{len(cands)} notebooks handed in and none is named {notebook_name}: {names}"


def read_roster(submitted_dir: PathLike) -> dict[str, RosterEntry]:
    """Roster written by :func:`import_moodle_zip`, keyed by student id ({} if there is none)."""
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


def _write_roster(submitted_dir: Path, entries: dict[str, RosterEntry]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ROSTER_FIELDS)
    for sid in sorted(entries, key=lambda s: (len(s), s)):
        e = entries[sid]
        # every roster field is text (full names and zip entries are the students'): no formulas
        writer.writerow([escape_cell(getattr(e, k)) for k in ROSTER_FIELDS])
    path = submitted_dir / ROSTER_NAME
    _write_if_changed(path, buf.getvalue().encode("utf-8"))
    return path


def import_moodle_zip(
    zip_path: PathLike,
    submitted_dir: PathLike,
    assignment: str,
    notebook_name: str,
    *,
    timezone: Optional[str] = None,
) -> MoodleImport:
    """Import a Moodle "Download all submissions" zip into nbgrader's ``submitted/`` folder.

    Both Moodle layouts are read: ``<Full name>_<pid>_assignsubmission_file_/<path>/<file>`` (folders,
    Moodle >= 3.1 default) and ``<Full name>_<pid>_assignsubmission_file_<file>`` (flat); a zip that
    was re-packed inside one extra top folder is read too. For each participant the notebook to grade
    is the one named ``notebook_name``; failing that, the only ``.ipynb`` handed in, whatever its name
    or sub-folder (nbgrader would silently skip it): it is imported under ``notebook_name`` and marked
    ``renamed``. Several notebooks and none with the expected name: nothing is imported, the
    participant is reported as ``ambiguous``.

    Writes ``<submitted_dir>/p<pid>/<assignment>/<notebook_name>`` and ``timestamp.txt`` (the zip
    entry's modification time, naive local time as stored in the zip, or followed by ``timezone``,
    e.g. ``"Europe/Paris"``, which nbgrader's ``parse_utc`` understands), and merges the participants
    into ``<submitted_dir>/moodle_roster.csv``. Only files whose content changes are rewritten, so
    importing the same zip again changes nothing. Other files already in a student's folder are left
    alone (a previously imported notebook stays when the new zip has a problem for that student).

    Nothing is ever written from an entry name: names with ``..`` or absolute names are rejected and
    reported (zip-slip). ``__MACOSX/``, ``.ipynb_checkpoints/``, hidden files and non-notebook files
    are ignored (listed in ``ignored``). Raises ``zipfile.BadZipFile`` for a file that is not a zip.
    """
    zip_path = Path(zip_path)
    submitted_dir = Path(submitted_dir)
    _check_simple_name(assignment, "assignment name")
    _check_simple_name(notebook_name, "notebook name")
    if not notebook_name.endswith(".ipynb"):
        raise ValueError(f"notebook name must end with .ipynb: {notebook_name!r}")

    problems: list[ImportProblem] = []
    ignored: list[IgnoredEntry] = []
    participants: dict[str, _Participant] = {}
    layouts: set[str] = set()

    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            name = _decode_entry_name(info)
            if info.is_dir() or name.endswith(("/", "\\")):
                continue
            if _is_unsafe(name):
                problems.append(ImportProblem("unsafe_path", "absolute path or '..' in the entry name: rejected", [name]))
                continue
            parts = [p for p in re.split(r"[/\\]", name) if p not in ("", ".")]
            if not parts:
                continue
            skip = next((p for p in parts if p in _IGNORED_DIRS or p.startswith(".")), None)
            if skip is not None:
                reason = "macOS metadata" if skip == "__MACOSX" else (
                    "notebook checkpoint" if skip == ".ipynb_checkpoints" else f"hidden or cache file ({skip})"
                )
                ignored.append(IgnoredEntry(name, reason))
                continue
            idx, m = next(((i, m) for i, p in enumerate(parts) if (m := _SUBMISSION_RE.match(p))), (None, None))
            if m is None:
                problems.append(ImportProblem(
                    "no_participant_id",
                    "name does not follow Moodle's '<name>_<participant id>_assignsubmission_...' pattern",
                    [name],
                ))
                continue
            pid = m.group("pid").lstrip("0") or "0"
            full_name = " ".join(m.group("name").split())
            inner = ([m.group("rest")] if m.group("rest") else []) + parts[idx + 1:]
            participant = participants.setdefault(pid, _Participant(pid, full_name))
            if not participant.full_name and full_name:
                participant.full_name = full_name
            if m.group("plugin") != "file":
                ignored.append(IgnoredEntry(name, f"not a file submission (assignsubmission_{m.group('plugin')})", pid))
                continue
            if not inner:
                ignored.append(IgnoredEntry(name, "empty file name", pid))
                continue
            relpath = "/".join(inner)
            layout = "folders" if len(parts) > idx + 1 else "flat"
            if inner[-1].lower().endswith(".ipynb"):
                layouts.add(layout)
                # a duplicated entry name in the zip: the later one wins, as with unzip
                participant.notebooks[relpath] = _Candidate(name, info, relpath, layout)
            else:
                participant.others.append(name)
                ignored.append(IgnoredEntry(name, "not a notebook", pid))

        submissions: dict[str, ImportedSubmission] = {}
        roster_status: dict[str, tuple[str, str]] = {}  # pid -> (status, source entry)
        submitted_dir.mkdir(parents=True, exist_ok=True)
        for pid in sorted(participants, key=lambda p: (len(p), p)):
            p = participants[pid]
            sid = student_id_for(pid)
            chosen, why = _choose(p, notebook_name)
            if chosen is None:
                kind = "no_notebook" if not p.notebooks else "ambiguous"
                entries = sorted(c.entry for c in p.notebooks.values()) or sorted(p.others)
                problems.append(ImportProblem(kind, why, entries, pid, p.full_name))
                roster_status[pid] = (kind, "")
                continue
            try:
                data = zf.read(chosen.info)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                problems.append(ImportProblem("read_error", f"cannot read the entry: {exc}", [chosen.entry], pid, p.full_name))
                roster_status[pid] = ("read_error", "")
                continue
            dest_dir = submitted_dir / sid / assignment
            dest = dest_dir / notebook_name
            if not _inside(dest, submitted_dir):  # cannot happen with the checks above; belt and braces
                raise RuntimeError(f"refusing to write outside {submitted_dir}: {dest}")
            ts = _timestamp(chosen.info, timezone)
            changed = _write_if_changed(dest, data)
            changed = _write_if_changed(dest_dir / "timestamp.txt", ts.encode("ascii")) or changed
            renamed = chosen.relpath != notebook_name
            submissions[sid] = ImportedSubmission(
                student_id=sid, participant_id=pid, full_name=p.full_name, source_entry=chosen.entry,
                original_name=chosen.relpath, dest_path=dest, timestamp=ts, layout=chosen.layout,
                renamed=renamed, changed=changed,
            )
            roster_status[pid] = ("renamed" if renamed else "imported", chosen.entry)

    roster = read_roster(submitted_dir)
    for pid, (status, entry) in roster_status.items():
        sid = student_id_for(pid)
        roster[sid] = RosterEntry(sid, pid, participants[pid].full_name, entry, status)
    roster_path = _write_roster(submitted_dir, roster)

    if not layouts:
        layout = "empty"
    elif len(layouts) == 1:
        layout = layouts.pop()
    else:
        layout = "mixed"
    return MoodleImport(
        zip_path=zip_path, submitted_dir=submitted_dir, assignment=assignment, notebook_name=notebook_name,
        layout=layout, submissions=submissions, problems=problems, ignored=ignored, roster_path=roster_path,
        participants={pid: p.full_name for pid, p in participants.items()},
    )


# --------------------------------------------------------------------------------------------------
# grading worksheet


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


@dataclass
class _Field:
    start: int  # byte span of the raw field, quotes included
    end: int
    quoted: bool
    raw_value: bytes  # unquoted content


@dataclass
class _Record:
    number: int  # 1-based record number (header = 1)
    fields: list[_Field]


def _parse_csv(data: bytes, start: int, delim: int) -> list[_Record]:
    """RFC 4180 parser over bytes that keeps each field's byte span (CSV syntax is ASCII, so this is
    safe for UTF-8 and single-byte encodings). Lenient like Excel: a quote inside an unquoted field is
    data, text after a closing quote is kept."""
    QUOTE, CR, LF = 0x22, 0x0D, 0x0A
    records: list[_Record] = []
    i, n = start, len(data)
    while i < n:
        fields: list[_Field] = []
        while True:
            fstart = i
            if i < n and data[i] == QUOTE:
                i += 1
                buf = bytearray()
                while True:
                    if i >= n:
                        raise ValueError(f"unterminated quoted field starting at byte {fstart}")
                    c = data[i]
                    if c == QUOTE:
                        if i + 1 < n and data[i + 1] == QUOTE:
                            buf.append(QUOTE)
                            i += 2
                            continue
                        i += 1
                        break
                    buf.append(c)
                    i += 1
                while i < n and data[i] not in (delim, CR, LF):
                    buf.append(data[i])
                    i += 1
                fields.append(_Field(fstart, i, True, bytes(buf)))
            else:
                while i < n and data[i] not in (delim, CR, LF):
                    i += 1
                fields.append(_Field(fstart, i, False, data[fstart:i]))
            if i < n and data[i] == delim:
                i += 1
                continue
            break
        if i < n and data[i] == CR:
            i += 1
        if i < n and data[i] == LF:
            i += 1
        records.append(_Record(len(records) + 1, fields))
    return records


def _sniff_delimiter(data: bytes, start: int) -> int:
    """Delimiter of the header line: the most frequent of , ; TAB outside quotes (default ,)."""
    counts = {ord(","): 0, ord(";"): 0, ord("\t"): 0}
    in_quotes = False
    for c in data[start:]:
        if c == 0x22:
            in_quotes = not in_quotes
        elif not in_quotes and c in (0x0A, 0x0D):
            break
        elif not in_quotes and c in counts:
            counts[c] += 1
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else ord(",")


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

    def summary(self) -> str:
        lines = [f"Moodle worksheet {self.out_path.name}: {len(self.updated)} row(s) updated."]
        if self.scale != 1:
            lines.append(f"  grades /20 rescaled by {self.scale} to the worksheet's maximum grade")
        if self.feedback_column is None:
            lines.append("  no feedback comments column: comments not written")
        if self.comment_only:
            lines.append(f"  comment only (no grade): {', '.join(self.comment_only)}")
        if self.locked:
            lines.append("  grade cannot be changed in Moodle (left untouched): "
                         + ", ".join(f"{p} {n}" for p, n in self.locked))
        if self.ungraded:
            lines.append("  worksheet rows without a result: " + ", ".join(f"{p} {n}" for p, n in self.ungraded))
        if self.missing_rows:
            lines.append("  results without a worksheet row: " + ", ".join(self.missing_rows))
        for number, reason in self.skipped:
            lines.append(f"  record {number} skipped: {reason}")
        return "\n".join(lines)


def _encode_field(value: str, encoding: str, delim: str, force_quotes: bool) -> bytes:
    needs = force_quotes or any(c in value for c in (delim, '"', "\r", "\n")) or value != value.strip()
    text = '"' + value.replace('"', '""') + '"' if needs else value
    return text.encode(encoding, errors="xmlcharrefreplace" if encoding != "utf-8" else "strict")


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
    that one a spreadsheet would run as a formula gets a leading ``'`` (:mod:`tpkit.grading.csvsafe`).
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
    delim_byte = _sniff_delimiter(data, start)
    delim = chr(delim_byte)
    records = _parse_csv(data, start, delim_byte)

    def text(f: _Field) -> str:
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
        wanted[_normalize_pid(key).lstrip("0") or "0"] = value

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
        m = re.search(r"(\d+)\s*$", text(r.fields[i_id]))
        if not m:
            report.skipped.append((r.number, f"no participant id in {text(r.fields[i_id])!r}"))
            continue
        pid = m.group(1).lstrip("0") or "0"
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
            splices.append((f.start, f.end, _encode_field(gtext, encoding, delim, f.quoted)))
        if comment is not None and i_fb is not None:
            f = r.fields[i_fb]  # text: never a formula (the grade above is a number we format)
            splices.append((f.start, f.end, _encode_field(escape_cell(comment), encoding, delim, f.quoted)))
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
    import html

    return "<br>".join(html.escape(line, quote=False) for line in text.splitlines()) if text else ""


def zip_participants(zip_path: PathLike) -> set[str]:
    """Student ids (``p<participant id>``) named by a Moodle submissions zip, read without extracting
    anything (to check ``--students`` before the import writes). Raises ``zipfile.BadZipFile``."""
    out = set()
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            for part in re.split(r"[/\\]", _decode_entry_name(info)):
                m = _SUBMISSION_RE.match(part)
                if m:
                    out.add(student_id_for(m.group("pid").lstrip("0") or "0"))
                    break
    return out


def check_worksheet(worksheet: PathLike) -> None:
    """Raise ValueError unless ``worksheet`` reads as a Moodle grading worksheet (identifier and grade
    columns); the trial fill is written to a temporary folder, nothing next to the worksheet."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="tpkit-worksheet-") as tmp:
        fill_worksheet(worksheet, {}, Path(tmp) / "check.csv")


def submission_prefix(full_name: str, participant_id: str) -> str:
    """``<Full name>_<participant id>_assignsubmission_file_``: the folder names of Moodle's "download
    all submissions", which its "upload multiple feedback files in a zip" reads back (it matches the
    participant id; "_" in names become spaces, as Moodle does)."""
    return f"{' '.join(full_name.replace('_', ' ').split()) or 'Participant'}_{participant_id}_assignsubmission_file_"


def write_feedback_zip(out_path: PathLike, files: Mapping[str, tuple[str, PathLike]]) -> int:
    """Zip of feedback files for Moodle's "Upload multiple feedback files in a zip": ``files`` maps a
    participant id to (full name, file); each file goes in ``<prefix>/<file name>``
    (:func:`submission_prefix`). Written to a temporary name, then moved. Returns the number of files."""
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for pid, (full_name, path) in sorted(files.items()):
            zf.write(path, f"{submission_prefix(full_name, pid)}/{Path(path).name}")
    os.replace(tmp, out_path)
    return len(files)
