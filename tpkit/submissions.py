"""Build student-like submissions from the instructor notebook.

A *perfect* submission is the student release in which every answer cell holds the
instructor's solution (markers removed) while test cells keep their released (visible) form:
exactly what a flawless student hands in. Example submissions and the mistake catalogue are
written as named changes to it, so they stay in sync with the source notebook.
"""
from __future__ import annotations

import copy
from typing import Mapping, Sequence

import nbformat

from tpkit import paths, vocabulary


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def _given(path, what: str):
    if path is None:
        raise TypeError(f"name the assignment or its {what} notebook")
    return path


def blank_submission(release_nb=None, assignment: str | None = None) -> nbformat.NotebookNode:
    """The release of `assignment` (or the release notebook `release_nb`) as a student receives it."""
    if assignment:
        release_nb = paths.release_notebook(assignment)
    return read(_given(release_nb, "release"))


def solution_submission(source_nb=None, release_nb=None, assignment: str | None = None) -> nbformat.NotebookNode:
    """The release of `assignment` (or the pair of notebooks given) with the instructor's answers."""
    if assignment:
        source_nb, release_nb = paths.source_notebook(assignment), paths.release_notebook(assignment)
    source_nb, release_nb = _given(source_nb, "source"), _given(release_nb, "release")
    from tpkit import rubrics
    source = {vocabulary.grade_id(c): c for c in read(source_nb).cells if vocabulary.is_answer(c)}
    nb = read(release_nb)
    for cell in nb.cells:
        if vocabulary.is_answer(cell):
            answer = source[vocabulary.grade_id(cell)].source
            # a written answer as a student writes it: the model answer, without the grader's rubric
            cell.source = rubrics.split(answer)[0] if cell.cell_type == "markdown" \
                else vocabulary.strip_solution_markers(answer)
    return nb


def apply_changes(nb, changes: Mapping[str, Sequence[tuple[str, str]]]) -> nbformat.NotebookNode:
    """Return a copy of `nb` where, in the cell with each grade id, each `old` text
    (which must occur exactly once) is replaced by `new`."""
    nb = copy.deepcopy(nb)
    cells = {vocabulary.grade_id(c): c for c in nb.cells if vocabulary.grade_id(c)}
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


def _cell_index(nb, gid: str) -> int:
    for i, cell in enumerate(nb.cells):
        if vocabulary.grade_id(cell) == gid:
            return i
    raise KeyError(f"no cell with grade id {gid!r}")


def replace_sources(nb, sources: Mapping[str, str]) -> nbformat.NotebookNode:
    """A copy of `nb` where the cell with each grade id holds the given source."""
    nb = copy.deepcopy(nb)
    for gid, source in sources.items():
        nb.cells[_cell_index(nb, gid)].source = source
    return nb


def move_cells(nb, grade_ids: Sequence[str], after: str) -> nbformat.NotebookNode:
    """A copy of `nb` where the cells with `grade_ids` (in that order) are moved right after
    the cell with grade id `after` (a student re-ordering answer and test cells)."""
    nb = copy.deepcopy(nb)
    moved = [nb.cells[_cell_index(nb, gid)] for gid in grade_ids]
    nb.cells = [c for c in nb.cells if vocabulary.grade_id(c) not in set(grade_ids)]
    at = _cell_index(nb, after) + 1
    nb.cells[at:at] = moved
    return nb


def insert_code_cells(nb, after: str | None, sources: Sequence[str]) -> nbformat.NotebookNode:
    """A copy of `nb` with new (ungraded) code cells inserted after the cell with grade id
    `after` (at the end when `after` is None): a student's extra cells."""
    nb = copy.deepcopy(nb)
    new = [nbformat.v4.new_code_cell(s) for s in sources]
    at = len(nb.cells) if after is None else _cell_index(nb, after) + 1
    nb.cells[at:at] = new
    return nb
