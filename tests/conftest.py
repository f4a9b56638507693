"""Shared fixtures. Notebooks are executed once per test session (per xdist worker) and the
tests that read an execution share its xdist group, so they run on the worker that holds it."""
import os

# Kernels and test workers run side by side on two cores: one torch thread each.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402

from tpkit import execution, submissions  # noqa: E402


@pytest.fixture(scope="session")
def graded_solution():
    """The perfect submission, executed with the hidden tests restored (what autograde runs)."""
    return execution.run(execution.with_hidden_tests(submissions.solution_submission()))


@pytest.fixture(scope="session")
def graded_blank():
    """The blank release, executed with the hidden tests restored."""
    return execution.run(execution.with_hidden_tests(submissions.blank_submission()))


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
