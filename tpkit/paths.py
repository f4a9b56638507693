"""Where things live in the course directory (one place, so nothing hard-codes paths)."""
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


def source_dir(assignment: str = ASSIGNMENT) -> Path:
    return ROOT / "source" / assignment


def release_dir(assignment: str = ASSIGNMENT) -> Path:
    return ROOT / "release" / assignment


def source_notebook(assignment: str = ASSIGNMENT) -> Path:
    return source_dir(assignment) / notebook_name(assignment)


def release_notebook(assignment: str = ASSIGNMENT) -> Path:
    return release_dir(assignment) / notebook_name(assignment)
