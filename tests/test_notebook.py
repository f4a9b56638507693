"""The TP notebook (issue #3): the instructor's notebook grades to full marks on itself, the blank
release to zero, the release is generated from the source and leaks nothing."""
import filecmp
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from tpkit import execution, paths
from tpkit.release import nbgrader_env
from tpkit.submissions import grade_id, read

AUTOGRADED_POINTS = 17.5


def _graded_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def test_points_and_grade_ids():
    nb = read(paths.SOURCE_NOTEBOOK)
    ids = [grade_id(c) for c in nb.cells if grade_id(c)]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)
    graded = _graded_cells(nb)
    assert all(c.metadata.nbgrader["points"] > 0 for c in graded)
    total = sum(c.metadata.nbgrader["points"] for c in graded)
    auto = sum(c.metadata.nbgrader["points"] for c in graded if not c.metadata.nbgrader.get("solution"))
    manual = [c for c in graded if c.metadata.nbgrader.get("solution")]
    assert total == 20
    assert auto == AUTOGRADED_POINTS >= 15
    assert all(c.cell_type == "markdown" for c in manual)
    # every autograded test cell has visible checks and calls the hidden checks
    for c in graded:
        if c.cell_type == "code":
            visible = c.source.split("### END HIDDEN TESTS")[-1]
            assert "assert" in visible, grade_id(c)
            assert f'verifier("{grade_id(c)}", globals())' in c.source


def _solution_lines(nb):
    """Lines inside solution regions and whole manual answers, minus lines that the source
    also shows outside solutions (instructions quoting code)."""
    inside, outside = set(), set()
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            outside.update(l.strip() for l in c.source.splitlines())
            continue
        if c.cell_type == "markdown":
            inside.update(l.strip() for l in c.source.splitlines())
            continue
        region = False
        for line in c.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                region = True
            elif "### END SOLUTION" in line:
                region = False
            elif region:
                inside.add(line.strip())
            else:
                outside.add(line.strip())
    shown = "\n".join(outside)
    return {l for l in inside - outside if len(l) >= 8 and l not in shown}


def test_release_leaks_no_solution_and_no_hidden_test():
    source = read(paths.SOURCE_NOTEBOOK)
    release_text = "\n".join(c.source for c in read(paths.RELEASE_NOTEBOOK).cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "tpkit", "verifier("):
        assert marker not in release_text
    leaked = [l for l in _solution_lines(source) if l in release_text]
    assert not leaked, leaked
    raw = paths.RELEASE_NOTEBOOK.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in raw and "HIDDEN" not in raw


def test_release_keeps_the_statement_skeleton():
    text = "\n".join(c.source for c in read(paths.RELEASE_NOTEBOOK).cells)
    for skeleton in ("def pred(X, W, B):", "def cout(Y, Yhat):", "def pred2(X, W1, B1, W2, B2):",
                     "class MLP(th.nn.Module):", "super(MLP, self).__init__()",
                     "def forward(self, x):", "for i in range(niter):", "for i in range(niter_mb):",
                     "step = 1", "niter = 200", "lst_loss = []", "nb_hidden = 100", "mb = 20",
                     "# VOTRE CODE ICI\nraise NotImplementedError()", "VOTRE RÉPONSE ICI"):
        assert skeleton in text, skeleton


@pytest.mark.slow
def test_committed_release_is_what_nbgrader_generates(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(paths.ROOT / "nbgrader_config.py", course)
    shutil.copytree(paths.SOURCE, course / "source" / paths.ASSIGNMENT)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", paths.ASSIGNMENT,
                           "--force"], cwd=course, env=nbgrader_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    fresh = course / "release" / paths.ASSIGNMENT
    names = sorted(p.name for p in fresh.iterdir())
    assert names == sorted(p.name for p in paths.RELEASE.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(fresh, paths.RELEASE, names, shallow=False)
    assert not mismatch and not errors, f"release out of date, run `make release`: {mismatch}"


@pytest.mark.slow
@pytest.mark.xdist_group("solution")
def test_solution_grades_to_full_marks(graded_solution):
    results = execution.results(graded_solution)
    failed = {g: r.message for g, r in results.items() if r.points < r.max_points}
    assert not failed
    assert sum(r.points for r in results.values()) == AUTOGRADED_POINTS


@pytest.mark.slow
@pytest.mark.xdist_group("solution")
def test_solution_runs_without_any_error_or_warning_on_stderr(graded_solution):
    for cell in graded_solution.cells:
        if cell.cell_type == "code":
            bad = [o for o in cell.outputs if o.output_type == "error"
                   or (o.output_type == "stream" and o.name == "stderr")]
            assert not bad, (grade_id(cell), bad)


@pytest.mark.slow
@pytest.mark.xdist_group("blank")
def test_blank_release_runs_to_the_end_and_scores_zero(graded_blank):
    code = [c for c in graded_blank.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every cell of the blank release must run"
    results = execution.results(graded_blank)
    assert len(results) == len([c for c in _graded_cells(graded_blank) if c.cell_type == "code"])
    scored = {g: r.points for g, r in results.items() if r.points}
    assert not scored
    # failures are reported in French, not as raw Python errors from the checks
    hidden = [r.message for r in results.values() if r.message.startswith("AssertionError")]
    assert len(hidden) >= len(results) - 2


def _validate(path, *flags):
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path), *flags],
                          cwd=path.parent, env=execution.kernel_env(), capture_output=True, text=True)
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_nbgrader_validate_passes_on_source():
    out = _validate(paths.SOURCE_NOTEBOOK)
    assert "Success! Your notebook passes all the tests." in out, out[-3000:]


@pytest.mark.slow
def test_nbgrader_validate_invert_passes_on_release():
    out = _validate(paths.RELEASE_NOTEBOOK, "--invert")
    assert "Success! The notebook does not pass any tests." in out, out[-3000:]
