"""Where things live in the course directory (one place, so nothing hard-codes paths).

An assignment is named by its folder ``source/<assignment>/`` holding ``<assignment>.ipynb``; which
assignments the course has, and in which order, is :mod:`tpkit.assignments`' registry. Every function
here takes the assignment: library code has no default one.

The course is this kit's folder unless a command was given another one (``--root``, :func:`course`):
then the assignment's notebooks are that course's (the worked example's ``docs/exemple/``, a temporary
course of the tests, another term's course folder).
"""
import contextlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"

#: The course folder of a command given --root, for this process and the processes it starts.
ROOT_VARIABLE = "TPKIT_COURSE_ROOT"


def course_root() -> Path:
    """The course being worked on: the one a command set (:func:`course`), else this kit's folder."""
    return Path(os.environ.get(ROOT_VARIABLE) or ROOT)


@contextlib.contextmanager
def course(root: Path):
    """`root` as the course of this process and of the processes it starts, for the time of a
    command given --root: the question labels, rubrics and statement that the feedback, the exports and
    the catalogue read come from its notebooks (restored after: a test may run several commands in one
    process)."""
    previous = os.environ.get(ROOT_VARIABLE)
    os.environ[ROOT_VARIABLE] = str(Path(root).resolve())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ROOT_VARIABLE, None)
        else:
            os.environ[ROOT_VARIABLE] = previous


def notebook_name(assignment: str) -> str:
    return f"{assignment}.ipynb"


def source_dir(assignment: str) -> Path:
    return course_root() / "source" / assignment


def release_dir(assignment: str) -> Path:
    return course_root() / "release" / assignment


def source_notebook(assignment: str) -> Path:
    return source_dir(assignment) / notebook_name(assignment)


def release_notebook(assignment: str) -> Path:
    return release_dir(assignment) / notebook_name(assignment)
