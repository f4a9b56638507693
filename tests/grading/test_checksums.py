"""nbgrader's "Attribute 'checksum' for cell … has changed!" on pristine submissions (issue 25).

``generate_assignment`` stores each test cell's source with its hidden tests, and that source's checksum,
in the gradebook; the release cell has the hidden region removed. nbgrader's ``OverwriteCells`` then
found every test cell with hidden tests "changed" in every submission, the blank release included (one
warning per cell in the student's log). The kit's ``HiddenTestsOverwriteCells`` restores the hidden tests
of a cell whose text is the release's without a warning; an edited test cell is still reported and
restored.
"""
import logging
from pathlib import Path

import nbformat
import pytest
import small_class
from conftest import generated_course
from small_class import edit
from nbgrader.api import Gradebook
from nbgrader.preprocessors import OverwriteCells
from traitlets.config.loader import PyFileConfigLoader

from tpkit.grading.preprocessors import HiddenTestsOverwriteCells

MAIN = "tp_reseaux_neurones"  # the course's main assignment

A = MAIN
EDITED = small_class.EDITED_CELL
WARNING = "Attribute 'checksum' for cell"

pytestmark = pytest.mark.slow  # a generated course (nbgrader generate_assignment)


def blank_release(root: Path):
    return nbformat.read(str(root / "release" / A / f"{A}.ipynb"), as_version=4)


def gradebook_sources(root: Path) -> dict:
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "rn_pytorch") as gb:
        return {c.name: c.source for c in gb.find_notebook(A, A).source_cells}


def overwrite(cls, root: Path, nb, caplog) -> list:
    """Run the sanitize step `cls` on `nb` against the course's gradebook: the checksum warnings."""
    pp = cls(config=PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config())
    pp.log = logging.getLogger("test_checksums")
    resources = {"nbgrader": {"notebook": A, "assignment": A, "db_url": f"sqlite:///{root / 'gradebook.db'}"}}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="test_checksums"):
        pp.preprocess(nb, resources)
    return [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]


def test_pristine_test_cells_get_their_hidden_tests_back_without_a_checksum_warning(session_dir, tmp_path,
                                                                                     caplog):
    root = generated_course(session_dir, tmp_path / "course")
    full = gradebook_sources(root)
    hidden = {k for k, v in full.items() if "BEGIN HIDDEN TESTS" in v}
    assert len(hidden) >= 5, hidden
    # the cause: nbgrader's own OverwriteCells calls every test cell with hidden tests changed
    stock = overwrite(OverwriteCells, root, blank_release(root), caplog)
    assert sorted(m.split("cell ")[1].split(" ")[0] for m in stock) == sorted(hidden)

    nb = blank_release(root)
    assert overwrite(HiddenTestsOverwriteCells, root, nb, caplog) == []
    restored = {c.metadata.nbgrader["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata}
    assert all(restored[k] == full[k] for k in hidden)  # what the checks run

    # an edited test cell is still reported and restored, hidden tests included
    nb = edit(blank_release(root), EDITED)
    warnings = overwrite(HiddenTestsOverwriteCells, root, nb, caplog)
    assert len(warnings) == 1 and f"cell {EDITED} has changed" in warnings[0], warnings
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == EDITED)
    assert cell.source == full[EDITED] and "modifié" not in cell.source


def test_grading_command_logs_no_checksum_warning_for_a_pristine_submission(session_dir):
    """`python -m tpkit.grading`: the blank release's log has no checksum warning; a submission whose
    test cell was edited keeps its warning and its remark, and its hidden tests still run. (The class is
    shared with test_inert.py, which hands the blank release in under a hostile folder name:
    tests/grading/small_class.py.)"""
    run = small_class.graded(session_dir)
    root = run["root"]
    assert run["returncode"] == 0, run["stdout"] + run["stderr"]
    logs = root / "exports" / "logs"
    blank = [p for p in logs.glob("*.log") if p.name != "modifie.log"]  # (its name is the student's, escaped)
    assert len(blank) == 1 and WARNING not in blank[0].read_text(encoding="utf-8")
    edited = [line for line in (logs / "modifie.log").read_text(encoding="utf-8").splitlines()
              if WARNING in line]
    assert len(edited) == 1 and f"cell {EDITED} has changed" in edited[0], edited
    csv_text = (root / "exports" / "grades.csv").read_text(encoding="utf-8")
    row = next(line for line in csv_text.splitlines() if line.startswith("modifie,"))
    assert f"cellule de test {EDITED} modifiée : version d'origine rétablie" in row, row
    # the restored cell is the gradebook's, hidden tests included, in what was executed
    graded = nbformat.read(str(root / "autograded" / "modifie" / A / f"{A}.ipynb"), as_version=4)
    cell = next(c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == EDITED)
    assert cell.source == gradebook_sources(root)[EDITED]
