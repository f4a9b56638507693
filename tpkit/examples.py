"""Example submissions shipped with the kit: ``python -m tpkit.examples`` (re)writes
``examples/submissions/<student>/<assignment>/<assignment>.ipynb`` from the source and the release, so
that ``python -m tpkit.grading --examples`` shows every kind of outcome out of the box. A test checks
that the files are in sync with the notebook.

Each example is a named change to the perfect submission (``tpkit.submissions``); the repaired ones
start from the partly done notebook, which runs fast (the test suite grades them all):

=================== ========================================================== =====================
student             what it is                                                  expected outcome
=================== ========================================================== =====================
reference           the instructor's solution in the release                    17.5/20 auto, ok
vierge              the blank release                                           0, ok
partiel             sections 1 and 2 done, the rest untouched                   partial credit, ok
erreurs_typiques    softmax over dim=0, cost without its minus sign, SGD        points lost on those
                    without zero_grad()                                         questions, ok
boucle_infinie      ``while True: pass`` in one answer                          that question lost,
                                                                                partial (timeout)
json_invalide       the file cut in the middle (truncated upload)               failed
cellule_dupliquee   "partiel" + an answer cell copy-pasted (grade id twice)     as partiel, partial
test_supprime       "partiel" + a test cell deleted                             restored, as partiel,
                                                                                partial
notebook_renomme    "partiel" handed in as ``TP_Dupont.ipynb``                  as partiel, partial
=================== ========================================================== =====================

The other assignments (``tp_pima_jouet``, ``tp_soyez_curieux``) have three examples each, in the same
student folders (``examples/submissions/<student>/<assignment>/``): ``reference`` (every autograded
point), ``vierge`` (0) and ``erreurs_typiques``, three mistakes of the assignment's catalogue
(:data:`TYPICAL`) made together: each costs its own question only.
``python -m tpkit.grading --examples --assignment X`` grades them.
"""
from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path

import nbformat

from tpkit import paths
from tpkit.submissions import apply_changes, blank_submission, solution_submission
from tpkit.vocabulary import grade_id

EXAMPLES_DIR = paths.ROOT / "examples" / "submissions"

#: grade ids of the answer cells completed in the "partiel" example
PARTIAL_SECTIONS = ("r1_", "r2_", "m2_")

MISTAKES = {
    "r2_pred": [("dim=1", "dim=0")],  # softmax over the wrong axis
    "r2_cout": [("return -th.mean(", "return th.mean(")],  # cost without its minus sign
    "r3_sgd": [("\n    optimiseur.zero_grad()", "")],  # gradients never zeroed
}
INFINITE_LOOP = {"r3_precision": [("taux_app = ", "while True:\n    pass\ntaux_app = ")]}
DUPLICATED = "r2_pred"
DELETED = "q2_cout"
RENAMED = "TP_Dupont.ipynb"


def _partial(reference, blank):
    nb = copy.deepcopy(blank)
    done = {grade_id(c): c for c in reference.cells}
    for k, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if gid and gid.startswith(PARTIAL_SECTIONS) and cell.metadata.nbgrader.get("solution"):
            nb.cells[k] = copy.deepcopy(done[gid])
    return nb


def _duplicated(reference, gid):
    nb = copy.deepcopy(reference)
    k = next(i for i, c in enumerate(nb.cells) if grade_id(c) == gid)
    twin = copy.deepcopy(nb.cells[k])
    if "id" in twin:
        twin["id"] = f"{twin['id']}-copie"  # Jupyter gives a pasted cell a new id
    nb.cells.insert(k + 1, twin)
    return nb


def _deleted(reference, gid):
    nb = copy.deepcopy(reference)
    nb.cells = [c for c in nb.cells if grade_id(c) != gid]
    return nb


#: The typical mistakes of the other assignments' examples: entries of their catalogues (one question each).
TYPICAL = {
    "tp_pima_jouet": ("standardisation_test_propres_stats", "pred_softmax_axe0", "sgd_sans_zero_grad"),
    "tp_soyez_curieux": ("entrainer_sans_zero_grad", "activations_argument_oublie", "cnn_sans_pooling"),
}


def _text(nb) -> bytes:
    return nbformat.writes(nb).encode("utf-8") + b"\n"


def _build_other(assignment: str) -> dict:
    from tpkit.catalogue import runner
    reference = solution_submission(assignment=assignment)
    entries = {e.name: e for e in runner.entries(assignment)}
    mistaken = reference
    for name in TYPICAL[assignment]:
        mistaken = entries[name].notebook(mistaken)
    name = paths.notebook_name(assignment)
    return {"reference": (name, _text(reference)),
            "vierge": (name, _text(blank_submission(assignment=assignment))),
            "erreurs_typiques": (name, _text(mistaken))}


def build(source_nb=paths.SOURCE_NOTEBOOK, release_nb=paths.RELEASE_NOTEBOOK, assignment: str = paths.ASSIGNMENT) -> dict:
    """{student: (file name, bytes)} for every example of `assignment` (the main one: from `source_nb`
    and `release_nb`, which a benchmark's course may give)."""
    if assignment != paths.ASSIGNMENT:
        return _build_other(assignment)
    reference = solution_submission(source_nb, release_nb)
    blank = blank_submission(release_nb)
    ref_bytes = _text(reference)
    partial = _partial(reference, blank)
    return {
        "reference": (paths.NOTEBOOK, ref_bytes),
        "vierge": (paths.NOTEBOOK, _text(blank)),
        "partiel": (paths.NOTEBOOK, _text(partial)),
        "erreurs_typiques": (paths.NOTEBOOK, _text(apply_changes(reference, MISTAKES))),
        "boucle_infinie": (paths.NOTEBOOK, _text(apply_changes(reference, INFINITE_LOOP))),
        "json_invalide": (paths.NOTEBOOK, ref_bytes[: len(ref_bytes) // 2]),
        "cellule_dupliquee": (paths.NOTEBOOK, _text(_duplicated(partial, DUPLICATED))),
        "test_supprime": (paths.NOTEBOOK, _text(_deleted(partial, DELETED))),
        "notebook_renomme": (RENAMED, _text(partial)),
    }


def assignments() -> tuple:
    """The assignments that have examples: the main one and those of :data:`TYPICAL`."""
    return (paths.ASSIGNMENT, *TYPICAL)


def write(out_dir: Path = EXAMPLES_DIR) -> list:
    """Rewrite every assignment's examples (a student folder holds one folder per assignment)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    written = []
    for assignment in assignments():
        for student, (name, data) in build(assignment=assignment).items():
            folder = out_dir / student / assignment
            folder.mkdir(parents=True)
            (folder / name).write_bytes(data)
            written.append(folder / name)
    return written


if __name__ == "__main__":
    for path in write():
        print(path.relative_to(paths.ROOT))
    sys.exit(0)
