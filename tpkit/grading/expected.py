"""What a submission must contain (:class:`Expected`): the graded cells of an assignment with their roles,
points and the text the release shows, read from the gradebook (:func:`tpkit.grading.gradebook.load_expected`)
or from the notebooks (:func:`expected_from_notebooks`). The pre-check repairs submissions against it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader import utils

from tpkit.vocabulary import grade_id, split_hidden

NBGRADER_FLAGS = ("grade", "solution", "locked", "task")


@dataclass
class ExpectedCell:
    grade_id: str
    cell_type: str
    grade: bool = False
    solution: bool = False
    locked: bool = False
    task: bool = False
    points: Optional[float] = None
    release_source: Optional[str] = None
    release_cell: Optional[NotebookNode] = None

    @property
    def role(self) -> str:
        return role_of_flags(self.grade, self.solution, self.locked, self.task)


@dataclass
class Expected:
    """What a submission must contain, from the gradebook and the release notebook."""

    assignment: str
    notebook: str  # notebook name without .ipynb
    cells: dict  # grade_id -> ExpectedCell
    order: list  # grade ids in release order
    max_score: float

    @property
    def graded_ids(self) -> list:
        """Grade ids that carry points (tests, manually graded answers, tasks), in notebook order."""
        return [g for g in self.order if self.cells[g].grade or self.cells[g].task]

    @property
    def filename(self) -> str:
        return self.notebook + ".ipynb"


def role_of_flags(grade, solution, locked, task) -> str:
    if task:
        return "task"
    if grade and solution:
        return "manual"
    if grade:
        return "test"
    if solution:
        return "answer"
    if locked:
        return "readonly"
    return "none"


def role_of(cell) -> str:
    """The role of a cell whose nbgrader metadata is a dict (or absent), by nbgrader's own predicates."""
    return role_of_flags(*(bool(f(cell)) for f in (utils.is_grade, utils.is_solution, utils.is_locked,
                                                   utils.is_task)))


def visible_source(source: str) -> str:
    """The source without its hidden-test region (what the release shows)."""
    return "\n".join(split_hidden(source)[0])


def same_text(a: str, b: str) -> bool:
    norm = lambda s: "\n".join(line.rstrip() for line in s.strip().split("\n"))  # noqa: E731
    return norm(a) == norm(b)


def expected_from_notebooks(source_notebook: Path, release_notebook: Path, assignment: str) -> Expected:
    """The same as :func:`tpkit.grading.gradebook.load_expected`, read from the instructor notebook instead of the gradebook
    (the gradebook's cells are what ``generate_assignment`` saved from it)."""
    source = nbformat.read(str(source_notebook), as_version=4)
    release = nbformat.read(str(release_notebook), as_version=4)
    released = {grade_id(c): c for c in release.cells if grade_id(c)}
    cells, order = {}, []
    for cell in source.cells:
        gid = grade_id(cell)
        if gid is None:
            continue
        md = cell.metadata.nbgrader
        flags = {k: bool(md.get(k)) for k in NBGRADER_FLAGS}
        if flags["grade"] or flags["solution"]:
            flags["locked"] = flags["locked"] and not flags["solution"]
        points = float(md["points"]) if (flags["grade"] or flags["task"]) else None
        rc = released.get(gid)
        cells[gid] = ExpectedCell(gid, cell.cell_type, points=points,
                                  release_source=rc.source if rc is not None else None,
                                  release_cell=rc, **flags)
        order.append(gid)
    max_score = sum(c.points or 0 for c in cells.values())
    return Expected(assignment, Path(source_notebook).stem, cells, order, max_score)
