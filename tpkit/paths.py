"""Where things live in the course directory (one place, so nothing hard-codes paths).

An assignment is named by its folder ``source/<assignment>/`` holding ``<assignment>.ipynb``; which
assignments the course has, and in which order, is :mod:`tpkit.assignments`' registry. Every function
here takes the assignment: library code has no default one.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def assignments(root: Path = ROOT) -> tuple:
    """Every assignment of the course, in course order (:func:`tpkit.assignments.names`)."""
    from tpkit import assignments as registry
    return registry.names(root)


def notebook_name(assignment: str) -> str:
    return f"{assignment}.ipynb"


def source_dir(assignment: str) -> Path:
    return ROOT / "source" / assignment


def release_dir(assignment: str) -> Path:
    return ROOT / "release" / assignment


def source_notebook(assignment: str) -> Path:
    return source_dir(assignment) / notebook_name(assignment)


def release_notebook(assignment: str) -> Path:
    return release_dir(assignment) / notebook_name(assignment)
