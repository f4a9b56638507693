"""Moodle's "Download all submissions" zip laid out as nbgrader expects it:
``submitted/<student id>/<assignment>/<notebook>`` plus ``timestamp.txt``, and the roster
(``submitted/moodle_roster.csv``, :mod:`.ids`). Independent from nbgrader's own apps.
"""
from __future__ import annotations

import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional

from tpkit.grading.lms.moodle.ids import (PathLike, RosterEntry, canonical_pid, read_roster, student_id_for,
                                          write_if_changed, write_roster)

# "<Full name>_<participant id>_assignsubmission_<plugin>_<rest>". Moodle replaces "_" by " " in the
# full name, so the first "_<digits>_assignsubmission_" is the separator. With blind marking the
# name part is "Participant".
_SUBMISSION_RE = re.compile(
    r"^(?P<name>.*?)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[A-Za-z0-9]+)_(?P<rest>.*)$", re.S
)
_UTF8_FLAG = 0x800
_IGNORED_DIRS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}


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

    def remarks(self) -> dict:
        """{student id: [French remark]} for the graded notebooks handed in under another name."""
        return {s.student_id: [f"notebook rendu sous le nom « {s.original_name} » (corrigé quand même)"]
                for s in self.renamed}

    def failures(self) -> dict:
        """{student id: French reason} for the participants with nothing to grade (graded as failed)."""
        return {p.student_id: PROBLEM_FR[p.kind] + _files(p) for p in self.problems
                if p.participant_id and p.kind in PROBLEM_FR}

    def notes(self) -> list:
        """What the teacher reads about the import (French lines for the terminal)."""
        lines = [f"import Moodle ({self.layout}) : {len(self.submissions)} notebook(s) importé(s) "
                 f"pour {len(self.participants)} participant(s)"]
        for s in self.renamed:
            lines.append(f"  {s.student_id} ({s.full_name}) : notebook rendu sous le nom "
                         f"« {s.original_name} », importé sous le nom attendu")
        for s in self.submissions.values():  # files beside the notebook: not graded, said (not dropped silently)
            others = [e.entry.rsplit("/", 1)[-1] for e in self.ignored
                      if e.participant_id == s.participant_id and e.reason == "not a notebook"]
            if others:
                lines.append(f"  {s.student_id} ({s.full_name}) : fichier(s) non importé(s) (pas un notebook) : "
                             + ", ".join(sorted(others)))
        for p in self.problems:
            if p.participant_id and p.kind in PROBLEM_FR:
                lines.append(f"  {p.student_id} ({p.full_name}) : {PROBLEM_FR[p.kind]}{_files(p)}")
            else:  # nothing to attribute to a student
                lines.append(f"  entrée non attribuée ({p.kind}) : {'; '.join(p.entries)} — {p.reason}")
        return lines


#: A participant's problem, as the teacher and the student read it (the CSV status, the feedback page).
PROBLEM_FR = {
    "no_notebook": "aucun notebook dans le rendu Moodle",
    "ambiguous": "plusieurs notebooks rendus sur Moodle, aucun ne porte le nom attendu",
    "read_error": "fichier illisible dans le zip Moodle",
}


def _files(p: ImportProblem) -> str:
    return f" ({', '.join(e.rsplit('/', 1)[-1] for e in p.entries)})" if p.entries else ""


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
            pid = canonical_pid(m.group("pid"))
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
            changed = write_if_changed(dest, data)
            changed = write_if_changed(dest_dir / "timestamp.txt", ts.encode("ascii")) or changed
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
    roster_path = write_roster(submitted_dir, roster)

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


def zip_participants(zip_path: PathLike) -> set[str]:
    """Student ids (``p<participant id>``) named by a Moodle submissions zip, read without extracting
    anything (to check ``--students`` before the import writes). Raises ``zipfile.BadZipFile``."""
    out = set()
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            for part in re.split(r"[/\\]", _decode_entry_name(info)):
                m = _SUBMISSION_RE.match(part)
                if m:
                    out.add(student_id_for(canonical_pid(m.group("pid"))))
                    break
    return out
