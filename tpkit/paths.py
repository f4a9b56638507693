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
