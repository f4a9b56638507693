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

An assignment's package says which examples it has (:mod:`tpkit.assignments`): the nine above when it
declares their edits (``example_edits``: the grade ids each one changes), else three, in the same student
folders (``examples/submissions/<student>/<assignment>/``): ``reference`` (every autograded point),
``vierge`` (0) and ``erreurs_typiques``, the catalogue mistakes it names (``typical``) made together:
each costs its own question only. ``python -m tpkit.grading --examples --assignment X`` grades them.
"""
from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path

import nbformat

from tpkit import assignments, paths
from tpkit.submissions import apply_changes, blank_submission, solution_submission
from tpkit.vocabulary import grade_id

EXAMPLES_DIR = paths.ROOT / "examples" / "submissions"

RENAMED = "TP_Dupont.ipynb"


def _partial(reference, blank, sections):
    nb = copy.deepcopy(blank)
    done = {grade_id(c): c for c in reference.cells}
    for k, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if gid and gid.startswith(tuple(sections)) and cell.metadata.nbgrader.get("solution"):
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


def _text(nb) -> bytes:
    return nbformat.writes(nb).encode("utf-8") + b"\n"


def _build_three(assignment: str) -> dict:
    from tpkit.catalogue import runner
    reference = solution_submission(assignment=assignment)
    entries = {e.name: e for e in runner.entries(assignment)}
    mistaken = reference
    for name in assignments.get(assignment).typical:
        mistaken = entries[name].notebook(mistaken)
    name = paths.notebook_name(assignment)
    return {"reference": (name, _text(reference)),
            "vierge": (name, _text(blank_submission(assignment=assignment))),
            "erreurs_typiques": (name, _text(mistaken))}


def build(assignment: str, source_nb=None, release_nb=None) -> dict:
    """{student: (file name, bytes)} for every example of `assignment` (from its source and release, or
    from `source_nb` and `release_nb`, which a benchmark's course may give)."""
    edits = assignments.get(assignment).example_edits
    if not edits:
        return _build_three(assignment)
    name = paths.notebook_name(assignment)
    source_nb = source_nb or paths.source_notebook(assignment)
    release_nb = release_nb or paths.release_notebook(assignment)
    reference = solution_submission(source_nb, release_nb)
    blank = blank_submission(release_nb)
    ref_bytes = _text(reference)
    partial = _partial(reference, blank, edits["partial_sections"])
    return {
        "reference": (name, ref_bytes),
        "vierge": (name, _text(blank)),
        "partiel": (name, _text(partial)),
        "erreurs_typiques": (name, _text(apply_changes(reference, edits["mistakes"]))),
        "boucle_infinie": (name, _text(apply_changes(reference, edits["infinite_loop"]))),
        "json_invalide": (name, ref_bytes[: len(ref_bytes) // 2]),
        "cellule_dupliquee": (name, _text(_duplicated(partial, edits["duplicated"]))),
        "test_supprime": (name, _text(_deleted(partial, edits["deleted"]))),
        "notebook_renomme": (RENAMED, _text(partial)),
    }


def assignments_with_examples() -> tuple:
    """The assignments that have examples: every registered one of the course."""
    return assignments.names()


def write(out_dir: Path = EXAMPLES_DIR) -> list:
    """Rewrite every assignment's examples (a student folder holds one folder per assignment)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    written = []
    for assignment in assignments_with_examples():
        for student, (name, data) in build(assignment).items():
            folder = out_dir / student / assignment
            folder.mkdir(parents=True)
            (folder / name).write_bytes(data)
            written.append(folder / name)
    return written


if __name__ == "__main__":
    for path in write():
        print(path.relative_to(paths.ROOT))
    sys.exit(0)
