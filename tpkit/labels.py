"""How a graded cell is named for people: "Q2.3 pred", read from the source notebook itself.

The number is the bold question marker (``**Q2.3**``, ``**Q3.1 et Q3.2**``) of the nearest markdown
cell above the graded cell (for a written answer, the question it answers); the title is the grade
id without its section prefix (``q2_pred`` -> ``pred``). Feedback, reports and the student's
self-check all name questions through this module, so renumbering the notebook renames them everywhere.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


_MARKER = re.compile(r"\*{1,2}(Q\d+\.\d+[^*]*?)\*{1,2}")


@dataclass(frozen=True)
class QuestionLabel:
    grade_id: str
    number: str      # "Q2.3", "Q3.1 et Q3.2"; "" when the notebook names no question above the cell
    title: str       # "pred"
    points: float
    order: int       # position in the notebook, for sorting

    @property
    def short(self) -> str:
        return f"{self.number} {self.title}".strip()


def _title(grade_id: str) -> str:
    return re.sub(r"^[a-z]\d+_", "", grade_id)


def labels_of(notebook: dict) -> dict[str, QuestionLabel]:
    """grade_id -> label for every graded cell of a notebook (dict as read from JSON or nbformat)."""
    labels: dict[str, QuestionLabel] = {}
    number = ""
    for cell in notebook["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        meta = cell.get("metadata", {}).get("nbgrader", {})
        graded = meta.get("grade") and meta.get("grade_id")
        if cell["cell_type"] == "markdown" and not graded:
            found = _MARKER.search(source)
            if found:
                number = " ".join(found.group(1).split()).rstrip(" :.")
            continue
        if graded:
            gid = meta["grade_id"]
            labels[gid] = QuestionLabel(gid, number, _title(gid), float(meta.get("points") or 0),
                                        len(labels))
    return labels


@lru_cache(maxsize=8)
def _cached(path: str, mtime: float) -> dict[str, QuestionLabel]:
    return labels_of(json.loads(Path(path).read_text(encoding="utf-8")))


def cell_labels_of(notebook: dict) -> dict[str, QuestionLabel]:
    """Like :func:`labels_of`, for every cell with a grade id, graded or not (an answer cell without a
    test of its own, ``r2_lignes``, is named after the question above it: "Q2.1 lignes")."""
    labels: dict[str, QuestionLabel] = {}
    number = ""
    for cell in notebook["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if cell["cell_type"] == "markdown" and not meta.get("grade"):
            found = _MARKER.search(source)
            if found:
                number = " ".join(found.group(1).split()).rstrip(" :.")
        if gid and not (cell["cell_type"] == "markdown" and not meta.get("grade") and not meta.get("solution")):
            labels[gid] = QuestionLabel(gid, number, _title(gid), float(meta.get("points") or 0), len(labels))
    return labels


@lru_cache(maxsize=8)
def _cached_cells(path: str, mtime: float) -> dict[str, QuestionLabel]:
    return cell_labels_of(json.loads(Path(path).read_text(encoding="utf-8")))


def cell_labels(notebook_path: Path | str) -> dict[str, QuestionLabel]:
    path = Path(notebook_path)
    return _cached_cells(str(path), path.stat().st_mtime)


def question_labels(notebook_path: Path | str) -> dict[str, QuestionLabel]:
    path = Path(notebook_path)
    return _cached(str(path), path.stat().st_mtime)


def label(grade_id: str, notebook_path: Path | str) -> str:
    """'Q2.3 pred' for a grade id; the id itself when the notebook does not know it."""
    found = question_labels(notebook_path).get(grade_id)
    return found.short if found else grade_id
