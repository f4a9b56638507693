"""Shared fixtures. Expensive runs (executed notebooks, graded classes) are computed once per test
session by whichever xdist worker asks first and read back by the others (`once`); `PLAN` decides
which worker runs what, and in which order, so that a worker seldom waits for the other's run."""
import os
import shutil
from pathlib import Path

# Kernels and test workers run side by side on two cores: one torch thread each.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402

from tpkit import execution, paths, submissions  # noqa: E402

MAIN = "tp_reseaux_neurones"  # the course's main assignment


def _executed(session_dir, name, make):
    """An executed notebook computed once per test session, shared by the xdist workers."""
    import nbformat
    text = once(session_dir, name, lambda: nbformat.writes(execution.run(make(), assignment=MAIN)))
    return nbformat.reads(text, as_version=4)


@pytest.fixture(scope="session")
def graded_solution(session_dir):
    """The perfect submission, executed with the hidden tests restored (what autograde runs)."""
    return _executed(session_dir, "graded_solution",
                     lambda: execution.with_hidden_tests(submissions.solution_submission(assignment=MAIN), assignment=MAIN))


@pytest.fixture(scope="session")
def graded_blank(session_dir):
    """The blank release, executed with the hidden tests restored."""
    return _executed(session_dir, "graded_blank",
                     lambda: execution.with_hidden_tests(submissions.blank_submission(assignment=MAIN), assignment=MAIN))


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


#: The course secret of every test course (`generated`): a test run grades on the same check inputs
#: as the last one. 256 bits, as `trusted.course_salt` draws them.
TEST_SECRET = int("9f1c2a7e5b3d4f608e7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f61", 16)


def generated(session_dir, assignment: str = MAIN) -> Path:
    """A fresh course (nbgrader_config.py, source/, and what `release.generate` writes: release/ and
    gradebook.db with the hidden tests; its secret pinned to `TEST_SECRET`), generated once per
    assignment and test session (`nbgrader generate_assignment` costs ~7 s of CPU). Read it, never
    write to it: see `generated_course`."""
    from tpkit import release
    from tpkit.grading import trusted

    def compute():
        root = session_dir / f"generated-{assignment}"
        root.mkdir()
        shutil.copy(paths.ROOT / "nbgrader_config.py", root)
        shutil.copytree(paths.source_dir(assignment), root / "source" / assignment)
        release.generate(root=root, assignment=assignment)
        trusted.pin_secret(root, TEST_SECRET)
        return str(root)
    return Path(once(session_dir, f"generated_{assignment}", compute))


def generated_course(session_dir, dest: Path, assignment: str = MAIN) -> Path:
    """A copy of the generated course at `dest`, for a test to grade in."""
    shutil.copytree(generated(session_dir, assignment), dest)
    return Path(dest)


# ------------------------------------------------------------------ which worker runs what
# pytest 9.2 + xdist 3.8 ignore the xdist_group marks (the group suffix xdist writes to
# `item._nodeid` is no longer read), and the scheduler only sees node ids. So the units of work are
# listed here, by node id (a file, or a test and its parametrizations): each unit goes whole to one
# worker, which computes its shared runs (`once`) and then runs their readers, with no waiting on
# the other worker. Units go out in this order, as workers ask for work; the tests not listed (each
# its own unit: the fast tier and short slow tests) follow in collection order and fill the end.
# With two workers: the catalogue sample (its runner's processes use the cores) runs beside the
# grading pipeline (which waits on kernels and time limits), each about 3 minutes.
PLAN = [
    ("catalogue", ["tests/test_catalogue.py::test_catalogue_proves_the_autograder_right"]),
    ("pipeline", ["tests/grading/test_pipeline.py",  # one course graded in 4 runs, then its readers
                  "tests/grading/test_classreport.py::test_class_report_in_chromium",
                  "tests/grading/test_formgrader.py::test_formgrader_generate_feedback_button_writes_the_french_pages",
                  "tests/grading/test_formgrader.py::test_nbgrader_generate_feedback_command_writes_the_french_pages"]),
    # queued behind the catalogue on its worker: reads the sample's run once it is there
    ("fidelity", ["tests/test_catalogue.py::test_grading_command_gives_the_same_scores_messages_and_numbers"]),
    # a Dask cluster and a PostgreSQL gradebook, compared with the pipeline's first run (done by then)
    ("cluster", ["tests/grading/test_cluster.py"]),
    # the second longest test (~2 min idle: JupyterLab, Chromium, four small grading runs): not left to
    # the end, where it would run alone on one worker
    ("formgrader_roundtrip", ["tests/grading/test_formgrader_roundtrip.py"]),
    # then, longest first, runs that keep both cores busy (the runner's forked processes) alternate
    # with grading runs that often wait (kernels starting, time limits), whichever worker takes them
    ("curieux_catalogue", ["tests/test_curieux.py::test_catalogue_sensitivity_specificity_blast_radius"]),
    # two runs shared by both files (tests/grading/attack_class.py): the honest student alone, the class
    ("attacks", ["tests/grading/test_attacks.py", "tests/grading/test_attacks_box.py"]),
    # a class run that mostly waits (its sleeping worker's 60 s wall limit) beside CPU-bound units
    ("worker_faults", ["tests/grading/test_worker.py::test_a_broken_worker_costs_its_own_submission_only"]),
    ("flakiness", ["tests/test_flakiness.py::test_reference_gets_full_marks_under_every_seed_and_thread_count"]),
    ("pima_grading", ["tests/test_pima_jouet.py::test_release_is_in_sync",
                      "tests/test_pima_jouet.py::test_grading_command_gives_the_solution_full_marks",
                      "tests/test_pima_jouet.py::test_grading_command_gives_the_blank_release_zero",
                      "tests/test_pima_jouet.py::test_typical_mistakes_example_loses_their_own_questions_only",
                      "tests/test_pima_jouet.py::test_moodle_round_trip"]),
    ("pima_catalogue", ["tests/test_pima_jouet.py::test_catalogue_proves_the_autograder_right"]),
    ("curieux_grading", ["tests/test_curieux.py::test_grading_command_grades_the_examples"]),
    ("curieux_flakiness", ["tests/test_curieux.py::test_reference_gets_full_marks_under_other_seeds_and_two_threads"]),
    ("pregrade", ["tests/test_release_pregrade.py::test_checks_follow_the_source_and_release_names_a_broken_question"]),
    ("secrets", ["tests/test_flakiness.py::test_entries_are_judged_alike_under_other_course_secrets"]),
    ("student_lab", ["tests/test_student_jupyterlab.py"]),  # JupyterLab and Chromium: not left for the end
    ("pima_flakiness", ["tests/test_pima_jouet.py::test_reference_gets_full_marks_under_other_seeds_and_two_threads"]),
    ("validate", ["tests/test_notebook.py::test_nbgrader_validate_passes_on_source"]),
    ("solution", ["tests/test_notebook.py::test_solution_grades_to_full_marks",
                  "tests/test_notebook.py::test_solution_runs_without_any_error_or_warning_on_stderr"]),
    ("forkrun", ["tests/test_catalogue.py::test_forkrun_scores_like_a_kernel_and_isolates_jobs"]),
    # one small class, read by both (tests/grading/small_class.py)
    ("small_class", ["tests/grading/test_checksums.py::"
                     "test_grading_command_logs_no_checksum_warning_for_a_pristine_submission",
                     "tests/grading/test_inert.py::test_a_hostile_folder_name_reaches_nobody_live"]),
    ("validate_invert", ["tests/test_notebook.py::test_nbgrader_validate_invert_passes_on_release"]),
    ("blank", ["tests/test_notebook.py::test_blank_release_runs_to_the_end_and_scores_zero"]),
    # three notebooks run as a student does (Run All), one of them read by two tests: one worker, so that
    # neither waits on the other's run
    ("run_all", ["tests/test_run_all.py::test_run_all_with_a_mistake_reaches_the_table_which_flags_that_question",
                 "tests/test_run_all.py::test_softmax_on_the_wrong_axis_blames_pred_not_the_correct_cost"]),
]


def _place(nodeid: str):
    """(unit rank, rank in the unit) of a test in PLAN, or None."""
    for rank, (_, prefixes) in enumerate(PLAN):
        for k, prefix in enumerate(prefixes):
            if nodeid == prefix or nodeid.startswith((prefix + "::", prefix + "[")):
                return rank, k
    return None


def pytest_collection_modifyitems(config, items):
    """PLAN's units first, in its order; then the other tests in collection order (every worker
    sorts the same way, as xdist requires)."""
    def key(pair):
        index, item = pair
        return _place(item.nodeid) or (len(PLAN), 0)
    items[:] = [item for _, item in sorted(enumerate(items), key=lambda pair: (key(pair), pair[0]))]


@pytest.hookimpl(optionalhook=True)  # xdist's hook (absent with -p no:xdist)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadgroup (pytest.ini): xdist's scope scheduler with PLAN's units as scopes."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class PlanScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            place = _place(nodeid)
            return PLAN[place[0]][0] if place else nodeid
    return PlanScheduling(config, log)
