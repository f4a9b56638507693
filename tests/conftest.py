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
