"""Rubrics of the written answers (issue #26, item 4), read from the source notebook.

**Where a rubric lives.** In the model answer itself: the instructor's Markdown answer cell (nbgrader
solution + grade) ends with a block ::

    **Barème** (0.5 pt, points partiels par critère)
    - 0.25 pt : what earns these points
    - 0.25 pt : ...

The model answer and its rubric are one cell of ``source/``: nbgrader replaces the whole cell by the
stub in ``release/`` (students see neither before grading) and the criteria add up to the cell's points
(``tests/test_rubrics.py``).

**Who sees what.**
- The grader, in the formgrader: :class:`GraderRubrics`, a preprocessor of the formgrader's HTML
  exporter (``HTMLExporter.preprocessors`` in nbgrader_config.py), shows under each student's answer the
  model answer and the criteria. It acts only on a formgrader page (its resources name a submission and
  no feedback), and the feedback exporter drops it (:class:`tpkit.grading.feedback_exporter.FeedbackExporter`).
- The student, in the feedback page: the criteria and their points only (filter :func:`criteria` of
  ``templates/feedback_fr``), never the model answer: feedback can reach a student before a late
  classmate hands in, the criteria say what was expected without giving the paragraph to copy.
"""
from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass

import nbformat
from nbconvert.preprocessors import Preprocessor

from tpkit import paths
from tpkit.vocabulary import grade_id

HEADING = "**Barème**"
_CRITERION = re.compile(r"^- (\d+(?:\.\d+)?) pt : (.+)$")
_REF_TAG = re.compile(r"<!-- /?ref(?::\w+)? -->")


@dataclass(frozen=True)
class Rubric:
    grade_id: str
    points: float
    answer: str                              # the model answer, Markdown (generated numbers included)
    criteria: tuple[tuple[float, str], ...]  # (points, what earns them)


def split(source: str) -> tuple[str, tuple[tuple[float, str], ...]]:
    """(model answer, criteria) of a model-answer cell; no criteria when it has no rubric block."""
    if HEADING not in source:
        return source.strip(), ()
    answer, block = source.split(HEADING, 1)
    criteria = tuple((float(m.group(1)), m.group(2).strip())
                     for m in map(_CRITERION.match, block.splitlines()) if m)
    return _REF_TAG.sub("", answer).strip(), criteria


def rubrics_of(nb) -> dict[str, Rubric]:
    """grade id -> rubric for every written answer (Markdown solution and grade cell) of a notebook."""
    out = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("solution") and meta.get("grade"):
            answer, criteria = split(cell.source)
            out[meta["grade_id"]] = Rubric(meta["grade_id"], float(meta.get("points") or 0), answer, criteria)
    return out


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int) -> dict[str, Rubric]:
    return rubrics_of(nbformat.read(path, as_version=4))


def rubrics(assignment: str | None) -> dict[str, Rubric]:
    """The rubrics of an assignment's source notebook (none when it cannot be read, or no assignment
    is named)."""
    if not assignment:
        return {}
    path = paths.source_notebook(assignment)
    try:
        return _cached(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError):
        return {}


def criteria(grade_id: str, assignment: str | None) -> list:
    """[(points, text)] of a written answer's rubric, for the feedback page (no model answer)."""
    found = rubrics(assignment).get(grade_id)
    return list(found.criteria) if found else []


def grader_cell(rubric: Rubric, label: str) -> nbformat.NotebookNode:
    """The Markdown the formgrader shows under a student's answer."""
    lines = [f"> **Barème pour le correcteur — {label}** (sur {rubric.points:g} pt, points partiels par critère)",
             ">", "> *Réponse modèle* : " + " ".join(rubric.answer.split()), ">", "> *Critères* :"]
    lines += [f"> - {points:g} pt : {text}" for points, text in rubric.criteria]
    return nbformat.v4.new_markdown_cell("\n".join(lines))


class GraderRubrics(Preprocessor):
    """Formgrader only: the model answer and the criteria under each written answer (see module doc)."""

    def preprocess(self, nb, resources):
        if "submission_id" not in resources or "nbgrader" in resources:  # not a formgrader page
            return nb, resources
        from tpkit import labels
        assignment = resources.get("assignment_id")
        found = rubrics(assignment)
        if not found:
            return nb, resources
        names = labels.question_labels(paths.source_notebook(assignment))
        nb = copy.deepcopy(nb)
        cells = []
        for cell in nb.cells:
            cells.append(cell)
            gid = grade_id(cell)
            if cell.cell_type == "markdown" and gid in found:
                cells.append(grader_cell(found[gid], names[gid].short if gid in names else gid))
        nb.cells = cells
        return nb, resources
