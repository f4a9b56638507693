"""The worked example of docs/authoring.md, `tp_exemple` (its course folder: docs/exemple/): its notebook
follows the kit's conventions, its generated parts are in sync, it stays out of the course's own
source/, and a temporary course built from it is released by `python -m tpkit.release --root` and
graded by `python -m tpkit.grading --root` (reference: every autograded point; blank: zero; two
catalogue mistakes: each loses its own question only, with its French message; a valid variant: every
point)."""
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from conftest import TEST_SECRET, once
from tpkit import assignments, labels, paths, release, rubrics, selfcheck, submissions
from tpkit.assignments.tp_exemple import mistakes, variants
from tpkit.checks import CHECKS
from tpkit.grading.trusted import validate_hidden_tests

A = "tp_exemple"
COURSE = paths.ROOT / "docs" / "exemple"            # the example's course folder
SOURCE_NB = COURSE / "source" / A / f"{A}.ipynb"
RELEASE_DIR = COURSE / "release" / A
#: what the grading test hands in besides the reference and the blank release: two mistakes and a
#: variant; every entry of the catalogue under TPKIT_CATALOGUE=full (`make test-full`)
_FULL = os.environ.get("TPKIT_CATALOGUE") == "full"
GRADED_MISTAKES = [m.name for m in mistakes.MISTAKES] if _FULL else ["softmax_colonnes", "descente_gradients_accumules"]
GRADED_VARIANTS = [v.name for v in variants.VARIANTS] if _FULL else ["descente_optim_sgd"]
GRADED_ENTRIES = GRADED_MISTAKES + GRADED_VARIANTS


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _graded(nb, cell_type="code"):
    return {_meta(c)["grade_id"]: c for c in nb.cells if c.cell_type == cell_type and _meta(c).get("grade")
            and not (cell_type == "markdown" and not _meta(c).get("solution"))}


# ------------------------------------------------------------------ no execution
def test_the_example_is_not_an_assignment_of_the_course():
    assert A not in assignments.names()
    assert not (paths.ROOT / "source" / A).exists() and not (paths.ROOT / "release" / A).exists()
    assert assignments.names(COURSE) == (A,)


def test_notebook_conventions():
    nb = submissions.read(SOURCE_NB)
    tests = _graded(nb)
    validate_hidden_tests([c.source for c in tests.values()])
    found = labels.question_labels(SOURCE_NB)
    assert set(tests) == {"e1_softmax", "e1_cout", "e2_descente"}
    for gid, cell in tests.items():
        hidden, visible = cell.source.split("### END HIDDEN TESTS")
        assert f'verifier("{gid}", globals())' in hidden, gid
        assert f'with _verification("{found[gid].short}"):' in visible and "assert" in visible, gid
        assert gid in CHECKS, f"{gid}: no registered check"
        assert found[gid].number.startswith("Q"), f"{gid}: no **Qx.y** marker above it"
    deps = assignments.get(A).prerequisites
    assert set(deps) <= set(tests) and all(set(d) <= set(tests) for d in deps.values())
    written = rubrics.rubrics_of(nb)
    assert set(written) == {"m2_confiance"}
    for rubric in written.values():
        assert rubric.criteria and sum(p for p, _ in rubric.criteria) == rubric.points


def test_selfcheck_parts_are_in_sync():
    """The setup cell's end and the self-check table are what `python -m tpkit.selfcheck --root
    docs/exemple` writes."""
    nb = submissions.read(SOURCE_NB)
    setup = selfcheck.setup_cell(nb).source
    assert setup.endswith(selfcheck.setup_source(nb))
    table = next(c for c in nb.cells if c.get("id") == selfcheck.CODE_ID)
    assert table.source == selfcheck.code_source(nb)


def test_catalogue_entries_apply_and_cover_every_question():
    nb = submissions.read(SOURCE_NB)
    qids = set(_graded(nb))
    wrong, right = assignments.get(A).module("mistakes").MISTAKES, assignments.get(A).module("variants").VARIANTS
    assert len(wrong) >= 2 and len(right) >= 1
    assert {m.own for m in wrong} == qids
    perfect = nb
    for entry in wrong + right:
        assert set(entry.loses) <= qids, entry.name
        changed = entry.notebook(perfect)  # each old text occurs exactly once, or this raises
        assert [c.source for c in changed.cells] != [c.source for c in perfect.cells], entry.name


def test_catalogue_report_is_the_whole_catalogue_and_proves_it_right():
    """docs/exemple/catalogue.md, written by `python -m tpkit.catalogue --root docs/exemple --assignment
    tp_exemple --doc docs/exemple/catalogue.md`: every entry, every mistake caught in its own question
    only, every variant at full marks (rerun that command after changing the catalogue or the checks)."""
    text = (paths.ROOT / assignments.get(A).catalogue_doc).read_text(encoding="utf-8")
    for entry in mistakes.MISTAKES + variants.VARIANTS:
        assert f"| `{entry.name}` |" in text, f"{entry.name}: not in the report, rerun the command"
    n, v = len(mistakes.MISTAKES), len(variants.VARIANTS)
    for figure in (f"| {n + v} entries × 3 questions |", f"| {n}/{n} = 100.0% |", f"| {v}/{v} = 100.0% |",
                   f"| 0/{n} = 0.0% |", "**Problems:** none"):
        assert figure in text, figure


def test_thresholds_have_direction_and_calibration():
    from tpkit.assignments.tp_exemple import thresholds
    for name, limit in thresholds.LIMITS.items():
        assert limit.kind in ("min", "max", "range") and limit.calibration, name


# ------------------------------------------------------------------ release and grading
def build_course(dest: Path) -> Path:
    """A course folder at `dest` holding the example: the kit's nbgrader_config.py with the example as
    its only assignment, and the source notebook."""
    dest.mkdir(parents=True)
    config = (paths.ROOT / "nbgrader_config.py").read_text(encoding="utf-8")
    (dest / "nbgrader_config.py").write_text(
        config + f"\n# a course of the worked example only\nc.CourseDirectory.db_assignments = [dict(name={A!r})]\n",
        encoding="utf-8")
    shutil.copytree(SOURCE_NB.parent, dest / "source" / A)
    return dest


def _release_and_grade(course: Path) -> dict:
    from tpkit.grading.secret import pin_secret
    env = release.nbgrader_env()

    def command(*args):
        proc = subprocess.run([sys.executable, "-m", *args], cwd=course, env=env, capture_output=True,
                              text=True, timeout=300)
        return {"rc": proc.returncode, "log": proc.stdout[-3000:] + proc.stderr[-3000:]}

    out = {"release": command("tpkit.release", "--root", str(course), "--assignment", A)}
    released = course / "release" / A / f"{A}.ipynb"
    if out["release"]["rc"] != 0:
        return out
    out["released_text"] = released.read_text(encoding="utf-8")
    names = sorted(p.name for p in released.parent.iterdir())
    out["release_in_sync"] = names == sorted(p.name for p in RELEASE_DIR.iterdir()) and \
        filecmp.cmpfiles(released.parent, RELEASE_DIR, names, shallow=False)[0] == names
    pin_secret(course, TEST_SECRET)
    perfect = submissions.solution_submission(SOURCE_NB, released)
    entries = {e.name: e for e in mistakes.MISTAKES + variants.VARIANTS}
    handed_in = {"reference": perfect, "vierge": submissions.read(released),
                 **{name: entries[name].notebook(perfect) for name in GRADED_ENTRIES}}
    for student, nb in handed_in.items():
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True)
        submissions.nbformat.write(nb, str(folder / f"{A}.ipynb"))
    out["grading"] = command("tpkit.grading", "--root", str(course), "--assignment", A, "--workers", "2")
    out["scores"] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "rn_pytorch") as gb:
        for student in handed_in:
            sub = gb.find_submission_notebook(A, A, student)
            out["scores"][student] = {g.cell.name: [g.auto_score, g.max_score] for g in sub.grades
                                      if not g.needs_manual_grade}
    out["feedback"] = {s: (course / "feedback" / s / A / f"{A}.html").read_text(encoding="utf-8")
                       for s in handed_in}
    graded_nb = submissions.read(course / "autograded" / "reference" / A / f"{A}.ipynb")
    run = next(c for c in graded_nb.cells if _meta(c).get("grade_id") == "r2_descente")
    out["reference_printed"] = "".join(o.get("text", "") for o in run.outputs if o.get("output_type") == "stream")
    return out


@pytest.fixture
def graded(session_dir):
    return once(session_dir, "exemple_grading",
                lambda: _release_and_grade(build_course(Path(session_dir) / "course-exemple")))


AUTOGRADED = {"e1_softmax": 1.0, "e1_cout": 1.0, "e2_descente": 2.0}


@pytest.mark.slow
def test_release_command_releases_the_example(graded):
    assert graded["release"]["rc"] == 0, graded["release"]["log"]
    text = graded["released_text"]
    for marker in release.LEAK_MARKERS + ("verifier(", "scores XW + B infinis", "**Barème** (1 pt"):
        assert marker not in text, marker


@pytest.mark.slow
def test_release_is_in_sync(graded):
    """`python -m tpkit.release --root docs/exemple` would write exactly the committed
    docs/exemple/release/ (the temporary course's release is the same command's)."""
    assert graded["release"]["rc"] == 0, graded["release"]["log"]
    assert graded["release_in_sync"], "run `python -m tpkit.release --root docs/exemple`"


@pytest.mark.slow
def test_model_answer_quotes_the_reference_run(graded):
    """The numbers the model answer quotes (filled by `python -m tpkit.modelanswers --root docs/exemple`)
    are those the graded reference submission printed."""
    printed = re.search(r"coût : [\d.]+ -> ([\d.]+) ; taux de bonne reconnaissance en test : ([\d.]+)",
                        graded["reference_printed"])
    assert printed, graded["reference_printed"]
    answer = rubrics.rubrics_of(submissions.read(SOURCE_NB))["m2_confiance"]
    quoted = dict(re.findall(r"<!-- ref:(\w+) -->(.*?)<!-- /ref -->",
                             next(c.source for c in submissions.read(SOURCE_NB).cells
                                  if _meta(c).get("grade_id") == "m2_confiance")))
    assert quoted == {"cout_final": printed.group(1), "taux_test": printed.group(2)}, \
        f"run `python -m tpkit.modelanswers --root docs/exemple`: {answer.answer}"


@pytest.mark.slow
def test_grading_gives_the_reference_every_point_and_the_blank_zero(graded):
    assert graded["grading"]["rc"] == 0, graded["grading"]["log"]
    scores = graded["scores"]
    assert {q: s for q, (s, _) in scores["reference"].items()} == AUTOGRADED, json.dumps(scores)
    assert {q: m for q, (_, m) in scores["vierge"].items() if q in AUTOGRADED} == AUTOGRADED
    assert all(s == 0 for s, _ in scores["vierge"].values()), json.dumps(scores)


@pytest.mark.slow
def test_feedback_names_questions_and_shows_the_rubric_of_this_course(graded):
    """The feedback reads the labels and the rubric from the course graded (--root), not from the kit's
    own source/: questions named « Q1.1 softmax », the written answer's criteria shown, never its model
    answer (the blank submission's page: the student wrote nothing)."""
    page = graded["feedback"]["vierge"].replace("&#39;", "'")
    found = labels.question_labels(SOURCE_NB)
    assert all(found[q].short in page for q in AUTOGRADED), [found[q].short for q in AUTOGRADED]
    rubric = rubrics.rubrics_of(submissions.read(SOURCE_NB))["m2_confiance"]
    assert all(text[:60] in page for _, text in rubric.criteria)
    assert "−log 0.6" not in page and "scores XW + B infinis" not in page


@pytest.mark.slow
@pytest.mark.parametrize("name", GRADED_VARIANTS)
def test_grading_gives_a_valid_variant_every_point(graded, name):
    assert graded["grading"]["rc"] == 0, graded["grading"]["log"]
    assert {q: s for q, (s, _) in graded["scores"][name].items()} == AUTOGRADED, json.dumps(graded["scores"][name])


@pytest.mark.slow
@pytest.mark.parametrize("name", GRADED_MISTAKES)
def test_grading_catches_a_catalogue_mistake_in_its_own_question_only(graded, name):
    entry = next(m for m in mistakes.MISTAKES if m.name == name)
    assert graded["grading"]["rc"] == 0, graded["grading"]["log"]
    got = {q: s for q, (s, _) in graded["scores"][name].items()}
    assert got == {**AUTOGRADED, entry.own: 0.0}, json.dumps(got)
    page = graded["feedback"][name].replace("&#39;", "'")
    assert entry.message in page, f"{entry.message!r} not in the feedback of {name}"
    assert labels.question_labels(SOURCE_NB)[entry.own].short in page  # named as the notebook names it
