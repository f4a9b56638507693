"""What makes a grading run incremental and resumable, and what the course remembers between runs.

* **Fingerprints.** A submission's grade depends on its submitted files and on the grading code: the
  kit's checks, assignment packages, witness and grading modules, the course's ``nbgrader_config.py``, secret, source
  assignment (hidden tests, data) and release notebook, the hidden evaluation data. Each result of the
  class report (``grading_report.json``) keeps both hashes (:func:`submission_hash`,
  :func:`grading_hash`); a run skips the students whose two hashes are unchanged and whose grade is
  still in the gradebook (:func:`unchanged`), unless ``--force``. The run's limits (time, memory) are
  not part of it: after changing one, ``--force`` regrades (a class graded with a limit for one student
  and without for the others is not regraded by the next plain run). An interrupted run has saved the report
  after every graded submission, so the next run resumes where it stopped.
* **State** (``etat.json`` in the assignment's exports folder, never set aside): where the LMS
  worksheet came from, so that ``--export-only`` refreshes it without being told again.

Hashing reads bytes only: nothing a student wrote is parsed here.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Optional

from tpkit import paths
from tpkit.grading.options import Options

STATE_NAME = "etat.json"
#: Files larger than this are fingerprinted by size and modification time (a dropped dataset).
_HASH_BYTES = 64 * 1024 * 1024
#: Modules of the kit that only write exports or talk to people: changing them regrades nothing.
_EXPORT_SIDE = {"export.py", "classreport.py", "similarity.py", "report.py", "__main__.py", "runlock.py",
                "csvsafe.py", "accessibility.py", "incremental.py", "inert.py", "logs.py", "options.py"}


def _update_with_file(h, path: Path) -> None:
    try:
        st = path.lstat()
    except OSError:
        h.update(b"<absent>")
        return
    if path.is_symlink():
        h.update(b"<link>" + os.readlink(path).encode("utf-8", "surrogateescape"))
    elif st.st_size > _HASH_BYTES:
        h.update(f"<large {st.st_size} {st.st_mtime_ns}>".encode())
    else:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)


def _update_with_tree(h, folder: Path, skip=lambda p: False) -> None:
    if not folder.is_dir() or folder.is_symlink():
        h.update(f"<no {folder.name}>".encode())
        return
    for dirpath, dirnames, filenames in os.walk(folder):  # never follows links
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if skip(p) or name.endswith((".pyc", ".lock")):
                continue
            h.update(b"\0" + p.relative_to(folder).as_posix().encode("utf-8", "surrogateescape") + b"\0")
            _update_with_file(h, p)
        for d in dirnames:  # a linked folder is named, not entered
            if (Path(dirpath) / d).is_symlink():
                h.update(b"<linked dir>" + d.encode("utf-8", "surrogateescape"))


def submission_hash(folder: Path) -> str:
    """Hash of a student's submitted folder (every file's name and bytes; a link by its target)."""
    h = hashlib.sha256(b"submission-v1")
    _update_with_tree(h, Path(folder))
    return h.hexdigest()


#: the kit's packages whose code decides a grade: the checks, each assignment's package (its checks,
#: reference, thresholds, re-runs), the witness
KIT_PARTS = ("checks", "assignments", "witness")


def grading_hash(options: Options) -> str:
    """Hash of what decides a grade besides the submission (see the module docstring)."""
    h = hashlib.sha256(b"grading-v1")
    kit = Path(__file__).resolve().parents[1]
    for part in KIT_PARTS:
        _update_with_tree(h, kit / part)
    grading = kit / "grading"
    _update_with_tree(h, grading, skip=lambda p: p.name in _EXPORT_SIDE or "lms" in p.relative_to(grading).parts)
    for module in ("execution.py", "labels.py", "datasets.py", "paths.py"):
        _update_with_file(h, kit / module)
    _update_with_tree(h, paths.DATA / "hidden")
    root = options.root
    for name in ("nbgrader_config.py", ".grading_secret"):
        h.update(name.encode())
        _update_with_file(h, root / name)
    _update_with_tree(h, root / "source" / options.assignment)
    _update_with_file(h, root / "release" / options.assignment / f"{options.notebook}.ipynb")
    return h.hexdigest()


def unchanged(options: Options, students: list, report, code: str, submitted) -> list:
    """Students of ``students`` whose last grade in ``report`` (a RunReport or None) was given to the
    same submission by the same grading code (``code``), and is still in the course (gradebook entry,
    autograded notebook unless it failed). ``submitted(student)`` is the student's submitted folder."""
    from tpkit.grading.gradebook import graded_students
    from tpkit.grading.options import course_config, step_folder
    from tpkit.grading.results import FAILED
    if report is None or report.assignment != options.assignment:
        return []
    in_gradebook = graded_students(options.root, options.assignment)
    cfg = course_config(options)
    out = []
    for student in students:
        r = report.results.get(student)
        if r is None or not r.submission_hash or r.grading_hash != code or student not in in_gradebook:
            continue
        if r.status != FAILED and not (step_folder(cfg, options, "autograded", student)
                                       / f"{options.notebook}.ipynb").is_file():
            continue
        if submission_hash(submitted(student)) == r.submission_hash:
            out.append(student)
    return out


# ---------------------------------------------------------------- the course's state

def state_path(options: Options) -> Path:
    return options.exports / STATE_NAME


def read_state(options: Options) -> dict:
    try:
        data = json.loads(state_path(options).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_state(options: Options, state: dict) -> None:
    path = state_path(options)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def remember_worksheet(options: Options, lms: str, worksheet: Path) -> None:
    """The LMS worksheet a run filled: ``--export-only`` refreshes it from the same file."""
    state = read_state(options)
    state["worksheet"] = {"lms": lms, "path": str(Path(worksheet).resolve())}
    write_state(options, state)


def remembered_worksheet(options: Options) -> Optional[tuple]:
    """(lms, path) of the worksheet last filled for this assignment, None when none was."""
    entry = read_state(options).get("worksheet")
    if isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("lms"), str):
        return entry["lms"], Path(entry["path"])
    return None
