"""Execute a notebook in a fresh kernel and read its per-question results the way nbgrader
scores them (a test cell earns its points unless it shows an error or writes to stderr).

Used by the test suite and the mistake catalogue, which need many executions and no
gradebook. The hidden checks run here in the kernel (the untrusted mode of `tpkit.checks`); the class
grading command itself goes through nbgrader, with the checks in the grading process and the kernel
sandboxed (`tpkit.grading.trusted`, `tpkit.grading.sandbox`).
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbclient
from nbclient.exceptions import CellExecutionError
import nbformat
from nbgrader import utils

from tpkit import paths
from tpkit.environment import kernel_variables
from tpkit.submissions import read
from tpkit.vocabulary import grade_id


def kernel_env(threads: int = 1) -> dict:
    """Environment of a kernel that runs a notebook here: this process's, plus the variables of every
    grading kernel (:func:`tpkit.environment.kernel_variables`)."""
    return dict(os.environ, **kernel_variables(threads))


def with_hidden_tests(nb, source_nb=None, assignment: str | None = None) -> nbformat.NotebookNode:
    """Restore the instructor's test cells (with their hidden part), as nbgrader autograde does, from
    `assignment`'s source notebook (or `source_nb`)."""
    if assignment:
        source_nb = paths.source_notebook(assignment)
    if source_nb is None:
        raise TypeError("name the assignment or its source notebook")
    tests = {grade_id(c): c for c in read(source_nb).cells
             if c.get("metadata", {}).get("nbgrader", {}).get("grade")
             and c.cell_type == "code"}
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if gid in tests:
            restored = copy.deepcopy(tests[gid])
            restored.outputs, restored.execution_count = [], None
            nb.cells[i] = restored
    return nb


#: Where the kernels started here write their own log (ipykernel's start-up warnings, e.g. "Kernel is
#: running over TCP without encryption": the kernel is local and short-lived): not the terminal.
KERNEL_LOG = "noyaux.log"


def kernel_log():
    """The kernels' log file, opened for appending: exports/logs/ of the kit, else the temporary folder."""
    for folder in (paths.ROOT / "exports" / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return open(folder / KERNEL_LOG, "ab")
        except OSError:
            continue
    return open(os.devnull, "wb")


def run(nb, timeout: int = 120, threads: int = 1, assignment_dir: Path | None = None,
        assignment: str | None = None) -> nbformat.NotebookNode:
    """Execute a copy of `nb` in a temporary copy of the assignment folder (for its data files):
    `assignment`'s source folder, or `assignment_dir`."""
    if assignment:
        assignment_dir = paths.source_dir(assignment)
    if assignment_dir is None:
        raise TypeError("name the assignment or its folder")
    nb = copy.deepcopy(nb)
    with tempfile.TemporaryDirectory(prefix="tp-run-") as tmp:
        for f in assignment_dir.iterdir():
            if f.is_file() and f.suffix != ".ipynb":
                shutil.copy(f, tmp)
        client = nbclient.NotebookClient(nb, timeout=timeout, allow_errors=True,
                                         kernel_name="python3",
                                         resources={"metadata": {"path": tmp}})
        with kernel_log() as log:
            client.execute(env=kernel_env(threads), stderr=log)
    return nb


def run_as_student(nb, timeout: int = 120, *, assignment: str, stop_on_error: bool = True):
    """Execute a copy of `nb` as JupyterLab's « Redémarrer le noyau et exécuter toutes les cellules »
    does in a student's kernel: no ``NBGRADER_EXECUTION`` (the visible checks show their messages
    instead of raising, :mod:`tpkit.selfcheck`), and the run stops at the first cell that raises
    (`stop_on_error=False`: every cell runs, as when the student runs them one by one).
    Returns (executed notebook, index of the first cell that raised or None)."""
    assignment_dir = paths.source_dir(assignment)
    nb = copy.deepcopy(nb)
    env = kernel_env()
    env.pop("NBGRADER_EXECUTION", None)
    with tempfile.TemporaryDirectory(prefix="tp-student-") as tmp:
        for f in assignment_dir.iterdir():
            if f.is_file() and f.suffix != ".ipynb":
                shutil.copy(f, tmp)
        client = nbclient.NotebookClient(nb, timeout=timeout, allow_errors=not stop_on_error,
                                         kernel_name="python3", resources={"metadata": {"path": tmp}})
        try:
            with kernel_log() as log:
                client.execute(env=env, stderr=log)
        except CellExecutionError:
            pass
    stopped = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                    and any(o.output_type == "error" for o in c.get("outputs", []))), None)
    return nb, stopped


@dataclass
class Result:
    grade_id: str
    points: float
    max_points: float
    message: str          # the error shown by a failing test cell ('' when it passed)


def results(nb) -> dict[str, Result]:
    """Per-test-cell results of an executed notebook (autograded cells only)."""
    out = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or not utils.is_grade(cell):
            continue
        meta = cell.metadata.nbgrader
        message = ""
        for o in cell.get("outputs", []):
            if o.output_type == "error":
                message = f"{o.ename}: {o.evalue}"
            elif o.output_type == "stream" and o.name == "stderr" and not message:
                message = "stderr: " + o.text.strip()[:300]
        pts = float(meta.get("points", 0))
        # test cells are scored by nbgrader's own rule (an error or stderr output: 0)
        score = pts if utils.is_solution(cell) and not message else utils.determine_grade(cell)[0]
        out[meta["grade_id"]] = Result(meta["grade_id"], 0.0 if message else float(score), pts, message)
    return out
