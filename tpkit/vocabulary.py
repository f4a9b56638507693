"""The notebooks' vocabulary, written once: nbgrader's cell metadata (grade id, answer cell) and the
markers of its solution and hidden-test regions. Every module that reads a notebook (release, pre-check,
trusted executor, imposed values, submissions, catalogue) goes through these functions.

Markers are recognised as nbgrader recognises them: a line that holds ``BEGIN SOLUTION`` (or
``END SOLUTION``, ``BEGIN HIDDEN TESTS``, ``END HIDDEN TESTS``), whatever comment precedes it."""
from __future__ import annotations

from typing import Optional

BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
#: every marker: none may reach the student release
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)


def nbgrader_metadata(cell) -> dict:
    """The cell's nbgrader metadata; {} when absent or not a mapping (a student's notebook may hold
    any JSON there)."""
    md = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    md = md.get("nbgrader") if isinstance(md, dict) else None
    return md if isinstance(md, dict) else {}


def grade_id(cell) -> Optional[str]:
    return nbgrader_metadata(cell).get("grade_id")


def is_answer(cell) -> bool:
    """An answer cell (nbgrader's ``solution``): code or written answer."""
    return bool(nbgrader_metadata(cell).get("solution"))


def _split(source: str, begin: str, end: str) -> tuple[list, list]:
    outside, inside, within = [], [], False
    for line in source.split("\n"):
        if begin in line:
            within = True
        elif end in line:
            within = False
        else:
            (inside if within else outside).append(line)
    return outside, inside


def split_hidden(source: str) -> tuple[list, list]:
    """(lines shown to students, lines of the hidden-test regions), markers dropped."""
    return _split(source, BEGIN_HIDDEN, END_HIDDEN)


def split_solution(source: str) -> tuple[list, list]:
    """(lines given to students, lines of the solution regions), markers dropped."""
    return _split(source, BEGIN_SOLUTION, END_SOLUTION)


def strip_solution_markers(source: str) -> str:
    """The solution as a student would write it: the cell without its solution markers."""
    return "\n".join(line for line in source.split("\n") if BEGIN_SOLUTION not in line and END_SOLUTION not in line)


def hidden_marker(line: str) -> Optional[str]:
    """"begin" or "end" for a hidden-test marker line, else None."""
    return "begin" if BEGIN_HIDDEN in line else "end" if END_HIDDEN in line else None
