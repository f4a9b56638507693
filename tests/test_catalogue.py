"""The autograder proved right (issue #5): a catalogue of realistic mistakes, each of which must cost
points on its own question with a French diagnostic and nowhere else without a written reason, and of
valid variants, each of which must get full marks.

The suite grades a fixed sample of the entries (every question's first mistake, the solution as
released, one mistake in 40 and one variant in 8: `tpkit.catalogue.sampling`), plus the five
entries of the fidelity test; `make catalogue` or `TPKIT_CATALOGUE=full make test` grade them all.
They are graded once per session by the catalogue runner, whose own processes use the cores (one
run rather than one per entry, shared through `conftest.once`: pytest 9.2 + xdist 3.8 ignore
xdist_group, so a session fixture would be computed again on the other worker). Its executor
(forked processes sharing the reference's prefix) is checked against the real grading command on
those five entries, read from the same run.
"""
import dataclasses
import json
import os
import subprocess
import sys

import nbformat
import pytest
from nbgrader.api import Gradebook

from conftest import generated_course, once
from tpkit import execution, paths, release, submissions, vocabulary
from tpkit.catalogue import forkrun, runner, sampling
from tpkit.assignments.tp_reseaux_neurones.mistakes import MISTAKES
from tpkit.assignments.tp_reseaux_neurones.variants import VARIANTS

MAIN = "tp_reseaux_neurones"  # the course's main assignment

A = MAIN
WORKERS = os.cpu_count() or 2
BLAST_RADIUS_MAX = 0.05


def autograded_ids() -> list:
    return [vocabulary.grade_id(c) for c in submissions.read(paths.source_notebook(MAIN)).cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]


# ------------------------------------------------------------------ the catalogue itself (no execution)
def test_catalogue_size_and_coverage():
    assert len(MISTAKES) >= 40 and len(VARIANTS) >= 15
    qids = autograded_ids()
    entries = runner.entries(MAIN)  # names are unique
    for e in entries:
        assert e.description and e.kind in ("mistake", "variant"), e.name
        assert set(e.loses) <= set(qids) and set(e.also_loses) <= set(qids), e.name
        if e.kind == "mistake":
            assert e.loses and e.message, e.name
            assert all(reason.strip() for reason in e.also_loses.values()), e.name
        else:
            assert not e.loses and not e.also_loses, e.name
    # every autograded question is the own question of at least one mistake
    assert {m.own for m in MISTAKES} == set(qids)


def test_every_entry_applies_to_the_current_notebook():
    """Each change must find its text exactly once: a catalogue gone stale fails here, cheaply."""
    perfect = submissions.solution_submission(assignment=MAIN)
    base = runner.base_notebook(MAIN, perfect)
    for e in runner.entries(MAIN):
        nb = runner.build(e, MAIN, perfect)
        assert [c.source for c in nb.cells] != [c.source for c in base.cells] or e.keep_experiments, \
            f"{e.name} changes nothing"


# ------------------------------------------------------------------ grading every entry
# Entries also handed to the real grading command (test_grading_command_gives_the_same_scores_...):
# three mistakes (sections 2, 4, 5) and two variants, one of them with extra code cells.
FIDELITY = ["softmax_mauvais_axe", "mlp_manuel_nb_hidden_change", "minibatch_tire_une_fois",
            "onehot_torch_one_hot", "cellules_supplementaires"]


def graded_sample(session_dir) -> runner.Report:
    """The suite's sample and the FIDELITY entries, graded once per test session by the catalogue
    runner (forked executor, `WORKERS` processes); read back as a Report, executed notebooks included."""
    def compute():
        report = runner.run(sampling.for_suite(runner.entries(MAIN), also=FIDELITY), workers=WORKERS, assignment=MAIN)
        return {"wall_seconds": report.wall_seconds, "questions": report.questions,
                "outcomes": [{"entry": o.entry.name, "status": o.status, "seconds": o.seconds,
                              "shared_cells": o.shared_cells, "nb": o.nb,
                              "results": {q: dataclasses.asdict(r) for q, r in o.results.items()}}
                             for o in report.outcomes]}
    data = once(session_dir, "catalogue_sample", compute)
    by_name = {e.name: e for e in runner.entries(MAIN)}
    outcomes = [runner.Outcome(by_name[o["entry"]], {q: execution.Result(**r) for q, r in o["results"].items()},
                               o["status"], o["seconds"], o["shared_cells"], nbformat.from_dict(o["nb"]))
                for o in data["outcomes"]]
    return runner.Report(outcomes, data["wall_seconds"], data["questions"])


CATALOGUE_TEST = "tests/test_catalogue.py::test_catalogue_proves_the_autograder_right"


@pytest.mark.slow
def test_catalogue_proves_the_autograder_right(session_dir):
    """Every mistake loses points on its own question, with its French message, and nowhere else
    (unless a written reason says why); every variant gets full marks. One test for the whole run:
    the catalogue (or its sample) is graded once, on whichever worker asks first (its own
    processes use the cores); the failure message lists every problem and the matrix."""
    selected = sampling.for_suite(runner.entries(MAIN), also=FIDELITY)
    report = graded_sample(session_dir)
    summary = runner.matrix_text(report) + "\n\n" + runner.summary_text(report)
    print("\n" + summary)
    problems = report.problems()
    assert not problems, "\n".join(problems) + "\n\n" + summary
    f = report.figures()
    assert f["sensitivity"] == 1.0 and f["specificity"] == 1.0, summary
    assert f["blast_radius"] <= BLAST_RADIUS_MAX, summary
    assert f["extra_losses_with_reason"] == f["extra_losses"], summary
    assert [o.entry.name for o in report.outcomes] == [e.name for e in selected]
    assert len(report.questions) == len(autograded_ids())
    # the sample still makes every autograded question catch a mistake of its own
    assert {o.entry.own for o in report.outcomes if o.entry.kind == "mistake"} == set(autograded_ids())


def test_the_suite_sample_covers_every_question_and_is_stable(monkeypatch):
    """The sample: every question's first mistake, the released solution, a stable hash-picked
    fraction of the rest (appending an entry does not change which others are picked); the whole
    catalogue on demand."""
    entries = runner.entries(MAIN)
    monkeypatch.delenv("TPKIT_CATALOGUE", raising=False)
    chosen = sampling.for_suite(entries)
    names = [e.name for e in chosen]
    assert {e.own for e in chosen if e.kind == "mistake"} == set(autograded_ids())
    assert "solution_complete" in names and sum(e.kind == "variant" for e in chosen) >= 5
    assert 0.1 * len(entries) < len(chosen) < 0.4 * len(entries)
    assert names == [e.name for e in sampling.sample(entries)]  # the same every run
    extra = [dataclasses.replace(entries[0], name=f"nouvelle_erreur_{i}") for i in range(100)]
    grown = [e.name for e in sampling.sample(entries + extra)]
    assert grown[:len(names)] == names and len(grown) > len(names)  # some of the 100 picked, others kept
    # a test's own entries join the sample, in catalogue order; an unknown name is refused
    with_fidelity = sampling.for_suite(entries, also=FIDELITY)
    assert {e.name for e in with_fidelity} == set(names) | set(FIDELITY)
    assert with_fidelity == [e for e in entries if e in with_fidelity]
    with pytest.raises(ValueError):
        sampling.for_suite(entries, also=["pas_une_entree"])
    monkeypatch.setenv("TPKIT_CATALOGUE", "full")
    assert sampling.for_suite(entries) == entries == sampling.for_suite(entries, also=FIDELITY)


# ------------------------------------------------------------------ fidelity of the executor
def _cell(source, gid=None, points=None):
    cell = nbformat.v4.new_code_cell(source)
    if gid:
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": gid,
                                     "points": points, "schema_version": 3}
    return cell


def test_forkrun_scores_like_a_kernel_and_isolates_jobs():
    """Small synthetic notebooks: a test cell loses its points on an error or on stderr (also
    written by C code to file descriptor 2), nbgrader's rule; a warning printed once per process
    shows in every job; a job that kills its process or loops forever is reported, the others are
    not affected."""
    def nb(*cells):
        return nbformat.v4.new_notebook(cells=list(cells))
    once = "import warnings\nwarnings.warn('une fois par processus', UserWarning)"
    jobs = {
        "ok": nb(_cell("x = 1"), _cell("assert x == 1", "t", 1)),
        "error": nb(_cell("x = 2"), _cell("assert x == 1, 'faux'", "t", 1)),
        "stderr": nb(_cell("import sys"), _cell("sys.stderr.write('attention')", "t", 1)),
        "fd2": nb(_cell("import os"), _cell("os.write(2, b'niveau C')", "t", 1)),
        "warn_a": nb(_cell("pass"), _cell(once, "t", 1)),
        "warn_b": nb(_cell("pass"), _cell(once, "t", 1)),
        "dies": nb(_cell("import os"), _cell("os._exit(3)", "t", 1)),
        "loops": nb(_cell("pass"), _cell("while True:\n    pass", "t", 1)),
    }
    done = forkrun.execute_many(jobs, base=nb(_cell("x = 1")), workers=2, timeout=5,
                                assignment_dir=paths.source_dir(MAIN))
    points = {k: execution.results(x.nb)["t"].points for k, x in done.items() if x.status == "ok"}
    assert points == {"ok": 1, "error": 0, "stderr": 0, "fd2": 0, "warn_a": 0, "warn_b": 0}
    assert "faux" in execution.results(done["error"].nb)["t"].message
    assert done["dies"].status.startswith("crashed") and done["loops"].status == "timeout"
    assert done["ok"].shared_cells == 1 and done["error"].shared_cells == 0


def _stdout(nb) -> dict:
    return {i: "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream" and o.name == "stdout")
            for i, c in enumerate(nb.cells) if c.cell_type == "code"}


@pytest.mark.slow
def test_grading_command_gives_the_same_scores_messages_and_numbers(tmp_path, session_dir, request):
    """End to end: a few entries graded by the catalogue runner (forked processes; read from the
    sample's run, which grades them too, or graded alone when this session does not run the
    catalogue test) and handed in as student notebooks to `python -m tpkit.grading` (nbgrader
    autograde in fresh kernels, hidden tests restored from the gradebook) get the same points per
    test cell, the same French messages and print the same numbers (losses, accuracies)."""
    by_name = {e.name: e for e in runner.entries(MAIN)}
    course = generated_course(session_dir, tmp_path / "course")
    perfect = submissions.solution_submission(assignment=MAIN)
    for name in FIDELITY:
        e = by_name[name]
        nb = e.notebook(perfect)
        if not e.keep_experiments:
            nb = runner.empty_experiments(nb, MAIN)
        folder = course / "submitted" / name / A
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / f"{A}.ipynb"))
    proc = subprocess.run([sys.executable, "-m", "tpkit.grading", "--root", str(course), "--submitted",
                           "--workers", str(WORKERS), "--no-feedback"],
                          cwd=course, env=release.nbgrader_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    if CATALOGUE_TEST in {item.nodeid for item in request.session.items}:
        fast = {o.entry.name: o for o in graded_sample(session_dir).outcomes}
    else:
        fast = {o.entry.name: o for o in runner.run([by_name[n] for n in FIDELITY], workers=WORKERS, assignment=MAIN).outcomes}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "rn_pytorch") as gb:
        for name in FIDELITY:
            sub = gb.find_submission_notebook(A, A, name)
            graded = {g.cell.name: g.auto_score for g in sub.grades if not g.needs_manual_grade}
            points = {q: r.points for q, r in fast[name].results.items()}
            assert graded == points, (name, graded, points)
            autograded = submissions.read(course / "autograded" / name / A / f"{A}.ipynb")
            messages = {q: r.message for q, r in execution.results(autograded).items()}
            assert messages == {q: r.message for q, r in fast[name].results.items()}, name
            assert _stdout(autograded) == _stdout(fast[name].nb), name
    json.loads((course / "exports" / "grading_report.json").read_text(encoding="utf-8"))
