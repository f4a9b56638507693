"""Assignment 2, `tp_pima_jouet` (Pima and the 2-D toy data): its notebook follows the kit's
conventions, its release is in sync and leaks nothing, its data are the canonical files, its checks
are registered, its catalogue proves the autograder right, and the real grading command gives its
solution full marks and its blank release 0."""
import filecmp
import json
import subprocess
import sys

import pytest
from nbgrader.api import Gradebook

from conftest import generated, generated_course, once
from tpkit import assignments, labels, paths, release, submissions
from tpkit.catalogue import runner, sampling
from tpkit.checks import CHECKS
from tpkit.grading.trusted import validate_hidden_tests

MAIN = "tp_reseaux_neurones"  # the course's main assignment

A = "tp_pima_jouet"
SOURCE_NB = paths.source_notebook(A)
RELEASE_NB = paths.release_notebook(A)


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _test_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and _meta(c).get("grade")]


# ------------------------------------------------------------------ notebook and release (no execution)
def test_assignment_is_known_to_the_kit():
    assert A in assignments.names() and assignments.names()[0] == MAIN
    assert A in {a.name for a in assignments.registry()}


def test_data_copies_are_the_canonical_files():
    for name in ("pima.npz", "toy2d.npz"):
        assert (paths.source_dir(A) / name).read_bytes() == (paths.DATA / name).read_bytes(), \
            f"source/{A}/{name} differs from data/{name}: run `make data`"


def test_notebook_conventions():
    nb = submissions.read(SOURCE_NB)
    tests = _test_cells(nb)
    validate_hidden_tests([c.source for c in tests])
    found = labels.question_labels(SOURCE_NB)
    for cell in tests:
        gid = _meta(cell)["grade_id"]
        hidden = cell.source.split("### END HIDDEN TESTS")[0]
        assert f'verifier("{gid}", globals())' in hidden, gid
        visible = cell.source.split("### END HIDDEN TESTS")[1]
        assert "assert" in visible, f"{gid}: no visible check"
        assert gid in CHECKS, f"{gid}: no registered check"
        assert found[gid].number.startswith("Q"), f"{gid}: no **Qx.y** marker above it"
    points = sum(float(_meta(c).get("points", 0)) for c in nb.cells if _meta(c).get("grade"))
    assert points == 20
    assert "th.set_num_threads(1)" in nb.cells[1].source


def _solution_lines(source: str) -> list:
    lines, inside = [], False
    for line in source.split("\n"):
        if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            inside = "BEGIN" in line
        elif inside and len(line.strip()) > 25:
            lines.append(line.strip())
    return lines


def test_release_leaks_nothing():
    text = RELEASE_NB.read_text(encoding="utf-8")
    for marker in release.LEAK_MARKERS + ("verifier(",):
        assert marker not in text, marker
    released = "\n".join(c.source for c in submissions.read(RELEASE_NB).cells if c.cell_type == "code")
    for cell in submissions.read(SOURCE_NB).cells:
        for line in _solution_lines(cell.source):
            assert line not in released, line


def test_catalogue_entries_apply_and_cover_every_question():
    mistakes = [e for e in runner.entries(A) if e.kind == "mistake"]
    variants = [e for e in runner.entries(A) if e.kind == "variant"]
    assert len(mistakes) >= 15 and len(variants) >= 5
    qids = {_meta(c)["grade_id"] for c in _test_cells(submissions.read(SOURCE_NB))}
    assert {m.own for m in mistakes} == qids
    perfect = submissions.solution_submission(assignment=A)
    base = runner.base_notebook(A, perfect)
    for e in runner.entries(A):
        assert set(e.loses) <= qids, e.name
        nb = runner.build(e, A, perfect)
        assert [c.source for c in nb.cells] != [c.source for c in base.cells], f"{e.name} changes nothing"


@pytest.mark.slow
def test_release_is_in_sync(session_dir):
    """`make release` would write exactly the committed release/tp_pima_jouet/ (the session's
    generated course, which the grading test below grades a copy of)."""
    fresh = generated(session_dir, A) / "release" / A
    names = sorted(p.name for p in fresh.iterdir())
    assert names == sorted(p.name for p in paths.release_dir(A).iterdir())
    match, mismatch, errors = filecmp.cmpfiles(fresh, paths.release_dir(A), names, shallow=False)
    assert not mismatch and not errors, f"run `make release`: {mismatch} {errors}"


# ------------------------------------------------------------------ grading
def test_exports_and_question_names_are_per_assignment():
    """This assignment's exports go to exports/tp_pima_jouet/ (the main one's stay in exports/); its
    feedback pages and Moodle comments name its questions from its own notebook."""
    from tpkit.grading import feedback
    from tpkit.grading.export import question_names
    from tpkit.grading.options import Options
    assert Options(assignment=A).exports == paths.ROOT / "exports" / A
    assert Options(assignment=MAIN).exports == Options(assignment=A).course_exports == paths.ROOT / "exports"
    found = labels.question_labels(SOURCE_NB)
    assert feedback.question_label("j1_standardisation", A) == found["j1_standardisation"].short
    assert feedback.question_label("j1_standardisation", MAIN) == "j1_standardisation"  # unknown to the main TP
    assert question_names(["j2_pred"], SOURCE_NB) == {"j2_pred": found["j2_pred"].short}


@pytest.mark.slow
def test_catalogue_proves_the_autograder_right():
    """The mistakes each cost their own question only, with their French message; the valid variants
    get full marks (forked executor, hidden checks in the kernel as in untrusted mode). The suite's
    sample (tpkit.catalogue.sampling: every question's first mistake, ...); TPKIT_CATALOGUE=full or
    `make catalogue` for all 38 + 10."""
    report = runner.run(sampling.for_suite(runner.entries(A)), assignment=A, workers=2)
    summary = runner.matrix_text(report) + "\n\n" + runner.summary_text(report)
    assert not report.problems(), "\n".join(report.problems()) + "\n\n" + summary
    f = report.figures()
    assert (f["sensitivity"], f["specificity"], f["blast_radius"]) == (1.0, 1.0, 0.0), summary


def _grade_examples_then_moodle(session_dir):
    """Run 1: `python -m tpkit.grading --examples --assignment tp_pima_jouet` (reference, blank, typical
    mistakes; trusted checks, sandboxed kernels). Run 2: the typical mistakes handed in again through a
    Moodle zip and worksheet (one participant). Scores from the gradebook, exports as written."""
    import csv
    import io
    import zipfile
    from pathlib import Path

    from tpkit import examples
    from tpkit.grading.lms.moodle import fixtures
    course = generated_course(session_dir, Path(session_dir) / "course-pima-jouet", A)

    def grading(*args):
        return subprocess.run([sys.executable, "-m", "tpkit.grading", "--root", str(course), "--assignment", A,
                               "--workers", "2", *args], cwd=course, env=release.nbgrader_env(),
                              capture_output=True, text=True, timeout=600)

    def scores(student):
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "rn_pytorch") as gb:
            sub = gb.find_submission_notebook(A, A, student)
            return {g.cell.name: [g.auto_score, g.max_score] for g in sub.grades if not g.needs_manual_grade}

    exports = course / "exports" / A
    proc = grading("--examples", "--no-feedback")
    out = {"rc": proc.returncode, "log": proc.stdout[-3000:] + proc.stderr[-3000:],
           "scores": {s: scores(s) for s in examples.build(assignment=A)},
           "main_exports_written": (course / "exports" / "grades.csv").exists()}
    mistaken = examples.build(assignment=A)["erreurs_typiques"][1]
    zip_path = fixtures.write_moodle_zip(course.parent / "travaux.zip",
                                         {"Élodie Lefèvre": (1234567, {"TP pima (1).ipynb": mistaken})})
    sheet = fixtures.write_worksheet(course.parent / "feuille.csv", {"Élodie Lefèvre": 1234567}, language="fr",
                                     delimiter=";")
    proc = grading("--moodle-zip", str(zip_path), "--moodle-worksheet", str(sheet), "--provisional")
    out.update(moodle_rc=proc.returncode, moodle_log=proc.stdout[-3000:] + proc.stderr[-3000:],
               moodle_scores=scores("p1234567"))
    table = list(csv.reader(io.StringIO((exports / "moodle_worksheet.csv").read_text(encoding="utf-8-sig")),
                            delimiter=";"))
    out["worksheet"] = dict(zip(table[0], table[1]))
    out["grades"] = {r["student_id"]: r for r in csv.DictReader(io.StringIO((exports / "grades.csv").read_text()))}
    with zipfile.ZipFile(exports / "retours_moodle.zip") as zf:
        out["feedback_zip"] = {n: zf.read(n).decode("utf-8") for n in zf.namelist()}
    return out


@pytest.fixture
def graded(session_dir):
    return once(session_dir, "pima_jouet_grading", lambda: _grade_examples_then_moodle(session_dir))


@pytest.mark.slow
def test_grading_command_gives_the_solution_full_marks(graded):
    assert graded["rc"] == 0, graded["log"]
    scores = graded["scores"]["reference"]  # written answers wait for manual grading
    assert len(scores) == 16 and sum(m for _, m in scores.values()) == 19, json.dumps(scores)
    assert all(s == m for s, m in scores.values()), json.dumps(scores)


@pytest.mark.slow
def test_grading_command_gives_the_blank_release_zero(graded):
    assert graded["rc"] == 0, graded["log"]
    scores = graded["scores"]["vierge"]
    autograded = {_meta(c)["grade_id"] for c in _test_cells(submissions.read(SOURCE_NB))}
    assert autograded <= set(scores) and all(s == 0 for s, _ in scores.values()), json.dumps(scores)


@pytest.mark.slow
def test_typical_mistakes_example_loses_their_own_questions_only(graded):
    own = {e.name: e.own for e in runner.entries(A)}
    lost = {q for q, (s, m) in graded["scores"]["erreurs_typiques"].items() if s < m}
    assert lost == {own[name] for name in assignments.get(A).typical}, json.dumps(graded["scores"]["erreurs_typiques"])


@pytest.mark.slow
def test_moodle_round_trip(graded):
    """The Moodle zip is imported (renamed notebook), graded as the same notebook was by --examples, the
    worksheet filled with the provisional grade and the questions to revisit named as in this notebook,
    the feedback zip laid out for Moodle; the exports live in exports/tp_pima_jouet/, the class kept."""
    assert graded["moodle_rc"] == 0, graded["moodle_log"]
    assert graded["moodle_scores"] == graded["scores"]["erreurs_typiques"]
    assert not graded["main_exports_written"]
    assert {"reference", "vierge", "erreurs_typiques", "p1234567"} <= set(graded["grades"])
    total = graded["grades"]["p1234567"]["total_20"]
    assert total == graded["grades"]["erreurs_typiques"]["total_20"] and float(total) < 19
    row = graded["worksheet"]
    assert row["Note"] == f"{float(total):.2f}".replace(".", ",")
    comment = row["Feedback par commentaires"]
    assert f"Note provisoire : {total}/20" in comment
    found = labels.question_labels(SOURCE_NB)
    own = {e.name: e.own for e in runner.entries(A)}
    assert all(found[own[name]].short in comment for name in assignments.get(A).typical), comment
    [(name, page)] = graded["feedback_zip"].items()
    assert name == f"Élodie Lefèvre_1234567_assignsubmission_file_/{A}.html"
    assert f"Vérification — {found['j1_standardisation'].short}" in page and "verifier(" not in page


# ------------------------------------------------------------------ flakiness (sample; full audit in docs)
@pytest.mark.slow
def test_reference_gets_full_marks_under_other_seeds_and_two_threads():
    """3 seeds with one torch thread, 1 with two (the full audit, 20 + 8 seeds, is in
    docs/thresholds-pima-jouet.md); every accuracy threshold keeps a positive margin."""
    from tpkit.catalogue import flakiness
    audit = flakiness.audit(range(3), range(1), assignment=A)
    report = flakiness.report_text(audit)
    assert len(audit.runs) == 4 and not audit.flaky(), report
    assert not audit.missing_measures(), report
    margins = audit.lowest_margins()
    assert set(margins) == set(flakiness.target(A).limits()), report
    assert all(m > 0 for m, *_ in margins.values()), report
