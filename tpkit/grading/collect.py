"""Where the submissions to grade come from.

* ``submitted/<student>/<assignment>/`` as nbgrader lays them out (``nbgrader collect``, a copy by
  hand, a previous import);
* the example submissions shipped with the kit, ``examples/submissions/<student>/<assignment>/``,
  copied into ``submitted/`` first;
* an LMS's submissions zip (Moodle's "download all submissions"), imported into ``submitted/`` by
  the LMS's ``import_zip`` (:data:`tpkit.grading.lms.LMS`; Moodle's student id: ``p<participant id>``).
  A participant of the zip whose submission holds no gradable notebook is still a student of the run:
  graded as *failed* with the reason, never left out.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tpkit.grading.lms import LMS
from tpkit.grading.staging import LINKED_FOLDER

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "submissions"


@dataclass
class Collection:
    students: list
    failures: dict = field(default_factory=dict)  # student -> French reason (nothing to grade)
    remarks: dict = field(default_factory=dict)  # student -> [French remarks] (graded, but flagged)
    notes: list = field(default_factory=list)  # French lines for the terminal


def from_submitted(root: Path, assignment: str) -> Collection:
    """Students of ``submitted/``. A student folder (or its assignment folder) that is a symbolic link
    is not followed: that student is *failed* with the reason (:data:`LINKED_FOLDER`)."""
    base = Path(root) / "submitted"
    col = Collection([])
    if not base.is_dir():
        return col
    for p in sorted(base.iterdir()):
        if not (p / assignment).is_dir():
            continue
        if p.is_symlink() or (p / assignment).is_symlink():
            col.failures[p.name] = LINKED_FOLDER
        else:
            col.students.append(p.name)
    return col


def from_examples(root: Path, assignment: str, examples: Path = EXAMPLES) -> Collection:
    """Copy the bundled examples into ``submitted/`` (replacing those students' folders)."""
    students = []
    for src in sorted(p for p in Path(examples).iterdir() if (p / assignment).is_dir()):
        dest = Path(root) / "submitted" / src.name / assignment
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src / assignment, dest)
        students.append(src.name)
    return Collection(students, notes=[f"{len(students)} exemples copiés de {Path(examples).name}/ "
                                       "dans submitted/"])


def from_lms_zip(root: Path, assignment: str, zip_path: Path, lms: str) -> Collection:
    """The submissions zip of the LMS ``lms`` (a key of :data:`tpkit.grading.lms.LMS`) imported into
    ``submitted/``."""
    imp = LMS[lms].import_zip(zip_path, Path(root) / "submitted", assignment, f"{assignment}.ipynb")
    # every imported student's remarks, none included: this import's word replaces the last one's
    # (a student graded again later without the zip keeps them: tpkit.grading.pipeline)
    remarks = {s: [] for s in imp.student_ids}
    remarks.update(imp.remarks())
    return Collection(imp.student_ids, failures=imp.failures(), remarks=remarks, notes=imp.notes())
