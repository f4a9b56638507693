"""Build student-like submissions from the instructor notebook.

A *perfect* submission is the student release in which every answer cell holds the
instructor's solution (markers removed) while test cells keep their released (visible) form:
exactly what a flawless student hands in. Example submissions and the mistake catalogue are
written as named changes to it, so they stay in sync with the source notebook.
"""
from __future__ import annotations

import copy
import re
from typing import Mapping, Sequence

import nbformat

from tpkit import paths

_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_answer(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def strip_markers(source: str) -> str:
    """The solution as a student would write it: the source cell without solution markers."""
    return "\n".join(line for line in source.split("\n") if not _MARKER.match(line))


def blank_submission(release_nb=paths.RELEASE_NOTEBOOK) -> nbformat.NotebookNode:
    return read(release_nb)


def solution_submission(source_nb=paths.SOURCE_NOTEBOOK,
                        release_nb=paths.RELEASE_NOTEBOOK) -> nbformat.NotebookNode:
    source = {grade_id(c): c for c in read(source_nb).cells if is_answer(c)}
    nb = read(release_nb)
    for cell in nb.cells:
        if is_answer(cell):
            cell.source = strip_markers(source[grade_id(cell)].source)
    return nb


def apply_changes(nb, changes: Mapping[str, Sequence[tuple[str, str]]]) -> nbformat.NotebookNode:
    """Return a copy of `nb` where, in the cell with each grade id, each `old` text
    (which must occur exactly once) is replaced by `new`."""
    nb = copy.deepcopy(nb)
    cells = {grade_id(c): c for c in nb.cells if grade_id(c)}
    for gid, edits in changes.items():
        if gid not in cells:
            raise KeyError(f"no cell with grade id {gid!r}")
        cell = cells[gid]
        for old, new in edits:
            count = cell.source.count(old)
            if count != 1:
                raise ValueError(f"{gid}: {old!r} occurs {count} times (expected once)")
            cell.source = cell.source.replace(old, new)
    return nb
