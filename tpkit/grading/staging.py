"""The file level of the pre-check, and the staging folder nbgrader grades instead of ``submitted/``
(which is never modified).

* which notebook to grade (:func:`locate`): invalid JSON or not a notebook -> *failed*; notebook missing
  -> the only other notebook handed in is graded (renamed), several -> the one holding this
  assignment's cells, else *failed*;
* what else of the folder is staged (:func:`dropped_entries`). Submissions are hostile code, so staging
  copies the graded notebook (read without following a symbolic link, at most
  :data:`tpkit.grading.submission_files.MAX_NOTEBOOK_BYTES`) and ``timestamp.txt``, nothing else: no link
  is ever followed, and no ``.py`` file, package, other notebook or folder reaches the folder the kernel
  runs in (the data files come from ``source/``: nbgrader copies them over the submission). Every entry
  left out is named in a finding (kind ``dropped``), except checkpoints/caches and copies of the
  assignment's own data files.

:func:`stage` runs both, with the cell-level checks and repairs of :mod:`tpkit.grading.precheck` in
between. Apart from those because this is about files and folders (reading hostile input:
:mod:`tpkit.grading.submission_files`), that about cells, which plain nbgrader uses too.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import nbformat

from tpkit.grading.expected import Expected
from tpkit.grading.precheck import MAX_LISTED, Finding, cap_cells, repair_cells
from tpkit.grading.submission_files import (MAX_SCANNED, is_link, is_regular_file, notebook_candidates,
                                            printable, read_bytes_nofollow, read_notebook, scan)
from tpkit.vocabulary import grade_id

#: Files of the submission folder staged with the notebook (nbgrader reads the submission time there),
#: and their largest size.
KEPT_FILES = ("timestamp.txt",)
MAX_KEPT_FILE_BYTES = 4096
LINKED_FOLDER = "dossier de rendu remplacé par un lien symbolique (non suivi)"


@dataclass
class Precheck:
    """Outcome of the pre-check of one student's submission."""

    student: str
    staged: Optional[Path] = None  # staged notebook, None when the submission cannot be graded
    failure: Optional[str] = None  # French reason when it cannot be graded
    findings: list = field(default_factory=list)

    @property
    def messages(self) -> list:
        return [f.message for f in self.findings]


def _has_our_cells(nb, expected: Expected) -> bool:
    return any(grade_id(c) in expected.cells for c in nb.cells)


def locate(folder: Path, expected: Expected) -> tuple:
    """(path of the notebook to grade or None, findings, failure reason or None)."""
    target = folder / expected.filename
    if is_link(folder) or is_link(folder.parent):
        return None, [], LINKED_FOLDER
    if is_regular_file(target):
        return target, [], None
    if not folder.is_dir():
        return None, [], "aucun rendu"
    candidates = notebook_candidates(folder)
    if not candidates:
        files = sorted(printable(p.name) + (" (lien symbolique, non suivi)" if is_link(p) else "")
                       for p in folder.iterdir() if p.name != "timestamp.txt")
        received = f" (fichiers reçus : {', '.join(files[:MAX_LISTED])}{'…' if len(files) > MAX_LISTED else ''})" \
            if files else ""
        return None, [], f"aucun notebook {expected.filename}{received}"
    if len(candidates) == 1:
        path = candidates[0]
        rel = printable(path.relative_to(folder).as_posix())
        return path, [Finding("renamed", f"notebook rendu sous le nom « {rel} » (corrigé quand même)")], None
    # several: keep those that are this assignment's notebook
    names = ", ".join(printable(p.relative_to(folder).as_posix()) for p in candidates[:MAX_LISTED])
    if len(candidates) > MAX_LISTED:
        return None, [], (f"{len(candidates)} notebooks rendus ({names}…) et aucun ne s'appelle "
                          f"{expected.filename}")
    ours = []
    for path in candidates:
        nb, _ = read_notebook(path)
        if nb is not None and _has_our_cells(nb, expected):
            ours.append(path)
    if len(ours) == 1:
        rel = printable(ours[0].relative_to(folder).as_posix())
        return ours[0], [Finding("renamed", f"notebook rendu sous le nom « {rel} » parmi {names} "
                                            "(corrigé quand même)")], None
    return None, [], f"plusieurs notebooks rendus ({names}) et aucun ne s'appelle {expected.filename}"


def dropped_entries(folder: Path, graded: Path, data_files=()) -> tuple:
    """(entries of ``folder`` staged with the notebook, French descriptions of those left out).

    Staged: ``timestamp.txt`` when it is a small regular file. Left out silently: folders themselves
    (their files are listed), checkpoint/cache folders, regular files named like a data file of the
    assignment (``data_files``: relative paths; nbgrader replaces them by the ``source/`` ones).
    Everything else is left out and listed: links (with their target, never followed), special
    files, ``.py`` files, packages, other notebooks and folders, data the assignment does not have."""
    entries, complete = scan(folder)
    kept, dropped = [], []
    for e in entries:
        if e.kind == "dir" or (e.kind == "file" and folder / e.rel == graded):
            continue
        if e.kind == "file" and e.rel in KEPT_FILES and e.size <= MAX_KEPT_FILE_BYTES:
            kept.append(e)
        elif not (e.kind == "file" and e.rel in data_files):
            dropped.append(e.describe())
    if not complete:
        dropped.append(f"… (plus de {MAX_SCANNED} entrées)")
    return kept, dropped


def dropped_message(dropped: list) -> str:
    shown = ", ".join(dropped[:MAX_LISTED])
    more = f" et {len(dropped) - MAX_LISTED} autre(s)" if len(dropped) > MAX_LISTED else ""
    return f"fichiers ignorés (non corrigés) : {shown}{more}"


def stage(student: str, folder: Path, staging_folder: Path, expected: Expected, data_files=()) -> Precheck:
    """Pre-check ``folder`` (``submitted/<student>/<assignment>``) and write what nbgrader must grade
    into ``staging_folder``: the (repaired) notebook under its expected name and ``timestamp.txt``,
    nothing else (see :func:`dropped_entries`; ``data_files``: the assignment's data files, relative
    to its ``source/`` folder). No link of the submission is followed."""
    result = Precheck(student)
    path, findings, failure = locate(folder, expected)
    result.findings.extend(findings)
    if path is None:
        result.failure = failure
        return result
    nb, failure = read_notebook(path)
    if nb is None:
        result.failure = failure
        return result
    if not _has_our_cells(nb, expected):
        result.failure = (f"{printable(path.name)} ne contient aucune cellule de ce TP "
                          "(mauvais fichier, ou cellules recréées à la main ?)")
        return result
    kept, dropped = dropped_entries(folder, path, frozenset(data_files))
    if dropped:
        result.findings.append(Finding("dropped", dropped_message(dropped)))
    result.findings.extend(repair_cells(nb, expected))
    result.findings.extend(cap_cells(nb, expected))
    if staging_folder.exists():
        shutil.rmtree(staging_folder)
    staging_folder.mkdir(parents=True)
    for e in kept:
        try:
            data = read_bytes_nofollow(folder / e.rel, MAX_KEPT_FILE_BYTES)
        except OSError:
            continue  # replaced or removed meanwhile: nbgrader does without it
        if len(data) <= MAX_KEPT_FILE_BYTES:
            (staging_folder / e.rel).write_bytes(data)
    result.staged = staging_folder / expected.filename
    nbformat.write(nb, str(result.staged))
    return result
