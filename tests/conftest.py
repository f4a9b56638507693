"""Shared fixtures. Expensive runs (executed notebooks, graded classes) are computed once per test
session by whichever xdist worker asks first and read back by the others (`once`)."""
import os
import shutil
from pathlib import Path

# Kernels and test workers run side by side on two cores: one torch thread each.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402

from tpkit import execution, paths, submissions  # noqa: E402


def _executed(session_dir, name, make):
    """An executed notebook computed once per test session, shared by the xdist workers."""
    import nbformat
    text = once(session_dir, name, lambda: nbformat.writes(execution.run(make())))
    return nbformat.reads(text, as_version=4)


@pytest.fixture(scope="session")
def graded_solution(session_dir):
    """The perfect submission, executed with the hidden tests restored (what autograde runs)."""
    return _executed(session_dir, "graded_solution",
                     lambda: execution.with_hidden_tests(submissions.solution_submission()))


@pytest.fixture(scope="session")
def graded_blank(session_dir):
    """The blank release, executed with the hidden tests restored."""
    return _executed(session_dir, "graded_blank",
                     lambda: execution.with_hidden_tests(submissions.blank_submission()))


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory, worker_id):
    """A folder shared by the xdist workers of this test session (for runs computed once)."""
    base = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # the workers' base temps share a parent, unique to this session
        base = base.parent / f"shared-{os.environ.get('PYTEST_XDIST_TESTRUNUID', 'x')}"
    base.mkdir(parents=True, exist_ok=True)
    return base


def once(folder, name: str, compute):
    """compute() -> JSON-able value, run by the first xdist worker that asks, read back by the others
    (pytest 9.2 + xdist 3.8 ignore xdist_group: a session fixture would run on every worker)."""
    import json

    import filelock
    path = folder / f"{name}.json"
    with filelock.FileLock(str(path) + ".lock"):
        if not path.exists():
            path.write_text(json.dumps(compute(), ensure_ascii=False), encoding="utf-8")
        return json.loads(path.read_text(encoding="utf-8"))


def generated(session_dir, assignment: str = paths.ASSIGNMENT) -> Path:
    """A fresh course (nbgrader_config.py, source/, and what `release.generate` writes: release/ and
    gradebook.db with the hidden tests), generated once per assignment and test session (`nbgrader
    generate_assignment` costs ~7 s of CPU). Read it, never write to it: see `generated_course`."""
    from tpkit import release

    def compute():
        root = session_dir / f"generated-{assignment}"
        root.mkdir()
        shutil.copy(paths.ROOT / "nbgrader_config.py", root)
        shutil.copytree(paths.source_dir(assignment), root / "source" / assignment)
        release.generate(root=root, assignment=assignment)
        return str(root)
    return Path(once(session_dir, f"generated_{assignment}", compute))


def generated_course(session_dir, dest: Path, assignment: str = paths.ASSIGNMENT) -> Path:
    """A copy of the generated course at `dest`, for a test to grade in."""
    shutil.copytree(generated(session_dir, assignment), dest)
    return Path(dest)
