"""A small class graded once per test session by the real command, read by two tests that grade the
same kind of input (each used to grade its own class):

- test_inert.py: the blank release handed in under a hostile folder name (a clipboard escape, a
  right-to-left override, mathtext and HTML): the id reaches nobody live;
- test_checksums.py: that blank release (pristine) logs no checksum warning; a release whose test
  cell was edited ("modifie") keeps its warning and its remark.

2 workers, cell timeout 10 s (the blank release's cells take ~2 s)."""
import subprocess
import sys
from pathlib import Path

import nbformat
from conftest import generated_course, once

from tpkit import release

MAIN = "tp_reseaux_neurones"  # the course's main assignment

A = MAIN
BLANK = "eve\x1b]52;c;aGk=\x07\u202e$\\boom$<b>x"  # the blank release, under a hostile folder name
EDITED = "modifie"
EDITED_CELL = "q3_descente"


def edit(nb, grade_id: str = EDITED_CELL):
    """The release with the visible text of test cell `grade_id` changed (what a student may do)."""
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source += "\nprint('modifié')"
    return nb


def _compute(session_dir: Path) -> dict:
    root = generated_course(session_dir, session_dir / "petite_classe")
    release_nb = root / "release" / A / f"{A}.ipynb"
    for student in (BLANK, EDITED):
        (root / "submitted" / student / A).mkdir(parents=True)
    edited = edit(nbformat.read(str(release_nb), as_version=4))
    nbformat.write(edited, str(root / "submitted" / EDITED / A / f"{A}.ipynb"))
    (root / "submitted" / BLANK / A / f"{A}.ipynb").write_bytes(release_nb.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "tpkit.grading", "--root", str(root), "--submitted",
                           "--workers", "2", "--cell-timeout", "10"], cwd=root, env=release.nbgrader_env(),
                          capture_output=True, text=True, timeout=600)
    return dict(root=str(root), returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)


def graded(session_dir: Path) -> dict:
    """The run (computed by the first xdist worker that asks), its root as a Path."""
    run = once(session_dir, "small_class", lambda: _compute(session_dir))
    run["root"] = Path(run["root"])
    return run
