"""The small Moodle class that the lms/moodle tests download, import and grade (accented and
apostrophed names, three participants), written once for the three test modules."""
from tpkit.grading.lms.moodle import import_moodle_zip
from tpkit.grading.lms.moodle.fixtures import minimal_notebook

MAIN = "tp_reseaux_neurones"  # the course's main assignment

ASSIGNMENT = MAIN
NB = f"{ASSIGNMENT}.ipynb"
NB_A = minimal_notebook("a = 1")
NB_B = minimal_notebook("b = 2")
CLASS = {
    "Élodie Lefèvre": (1234567, NB_A),
    "Jean-Noël D'Arcy": (1234568, NB_B),
    "Zoë van der Berg": (1234569, minimal_notebook("z = 'ë'")),
}


def import_zip(zip_path, tmp_path, **kw):
    """The zip imported into ``tmp_path/submitted`` for the main assignment."""
    return import_moodle_zip(zip_path, tmp_path / "submitted", ASSIGNMENT, NB, **kw)
