"""Where things live in the course directory (one place, so nothing hard-codes paths)."""
import contextlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "tp_reseaux_neurones"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
DATA = ROOT / "data"
SOURCE = ROOT / "source" / ASSIGNMENT
RELEASE = ROOT / "release" / ASSIGNMENT
SOURCE_NOTEBOOK = SOURCE / NOTEBOOK
RELEASE_NOTEBOOK = RELEASE / NOTEBOOK


# Other assignments of the course: one folder per assignment under source/, holding one notebook
# named like it (the main assignment above stays the default everywhere).
def assignments(root: Path = ROOT) -> tuple:
    """Every assignment of the course (the main one first, when the course has it): the folders of
    source/ holding a notebook named like them."""
    found = sorted(p.name for p in (Path(root) / "source").iterdir()
                   if p.is_dir() and (p / f"{p.name}.ipynb").is_file())
    return tuple(sorted(found, key=lambda name: name != ASSIGNMENT))


def notebook_name(assignment: str = ASSIGNMENT) -> str:
    return f"{assignment}.ipynb"


#: The course a command works on when it is not this kit's folder: the grading and release commands set
#: it from their --root, so that the question labels, rubrics and statement read by the feedback and
#: the exports are that course's (a temporary course built from docs/exemple/, another term's course).
ROOT_VARIABLE = "TPKIT_COURSE_ROOT"


def course_root() -> Path:
    """The course being worked on: $TPKIT_COURSE_ROOT when a command set it, else this kit's folder."""
    return Path(os.environ.get(ROOT_VARIABLE) or ROOT)


@contextlib.contextmanager
def course(root: Path):
    """`root` as the course of this process and of the processes it starts, for the time of a
    command given --root (restored after: a test may run several commands in one process)."""
    previous = os.environ.get(ROOT_VARIABLE)
    os.environ[ROOT_VARIABLE] = str(Path(root).resolve())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ROOT_VARIABLE, None)
        else:
            os.environ[ROOT_VARIABLE] = previous


def source_dir(assignment: str = ASSIGNMENT) -> Path:
    return course_root() / "source" / assignment


def release_dir(assignment: str = ASSIGNMENT) -> Path:
    return course_root() / "release" / assignment


def source_notebook(assignment: str = ASSIGNMENT) -> Path:
    return source_dir(assignment) / notebook_name(assignment)


def release_notebook(assignment: str = ASSIGNMENT) -> Path:
    return release_dir(assignment) / notebook_name(assignment)
