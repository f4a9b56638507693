"""Rubrics of the written answers (issue #26, item 4): one graded answer per written question of the
statement, a rubric (criteria, points, partial credit) in each model answer, shown to the grader in the
formgrader (model answer and criteria) and to the student in the feedback (criteria only), never in the
release; every number a model answer quotes is the kit's reference run's (`python -m tpkit.modelanswers`)."""
import copy
import re

import pytest
from conftest import once

from tpkit import labels, modelanswers, paths, rubrics, submissions, vocabulary

MAIN = "tp_reseaux_neurones"  # the course's main assignment

ASSIGNMENTS = ["tp_reseaux_neurones", "tp_pima_jouet", "tp_soyez_curieux"]
#: the main statement's written questions (tests/test_notebook.py QUESTION_MAP), one graded answer each
MAIN_WRITTEN = {"Q2.4": "m2_approximation", "Q3.3": "m3_convergence", "Q3.4": "m3_experiences",
                "Q3.7": "m3_quadratique", "Q4.5": "m4_neurones", "Q5.3": "m5_tendance",
                "Q5.5": "m5_performance", "Q5.6": "m5_vitesse"}
#: a decimal or a percentage typed in a model answer (a measured number must come from the reference run)
_TYPED_NUMBER = re.compile(r"\d+[.,]\d+|\d+ ?%")


def _written(assignment):
    nb = submissions.read(paths.source_notebook(assignment))
    return nb, rubrics.rubrics_of(nb), labels.labels_of(nb)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_written_answer_has_a_rubric_with_partial_credit(assignment):
    _, found, names = _written(assignment)
    assert found
    for gid, r in found.items():
        assert len(r.criteria) >= 2, (gid, "a rubric gives partial credit: two criteria at least")
        assert abs(sum(p for p, _ in r.criteria) - r.points) < 1e-9, (gid, r.criteria, r.points)
        assert r.answer and all(p > 0 and len(t) > 30 for p, t in r.criteria), gid
        # one question per graded answer: « Q5.3, Q5.5 et Q5.6 » sharing one grade is what this prevents
        assert re.fullmatch(r"Q\d+\.\d+", names[gid].number), (gid, names[gid].number)


def test_main_assignment_grades_each_written_question_of_the_statement_once_and_totals_20():
    nb, found, names = _written("tp_reseaux_neurones")
    assert {names[g].number: g for g in found} == MAIN_WRITTEN
    graded = [c.metadata.nbgrader for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert sum(g["points"] for g in graded) == 20
    assert sum(r.points for r in found.values()) == 2.5


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_model_answers_type_no_measured_number(assignment):
    """A decimal or a percentage in a model answer or its criteria is a tagged reference-run number, or a
    value the student's notebook states (an imposed value such as 0.01, a reference rate such as 0.672)."""
    nb, _, _ = _written(assignment)
    stated = set(_TYPED_NUMBER.findall("\n".join(c.source for c in submissions.read(paths.release_notebook(assignment)).cells)))
    names = {k.name for k in modelanswers.numbers(assignment)}
    for cell in modelanswers.model_answer_cells(nb):
        untagged = modelanswers.TAG.sub("", cell.source)
        untagged = re.sub(r"(?m)^- \d+(?:\.\d+)? pt : |\*\*Barème\*\* \([\d.]+ pt", "", untagged)
        typed = set(_TYPED_NUMBER.findall(untagged)) - stated
        assert not typed, (vocabulary.grade_id(cell), typed)
        assert {m.group(1) for m in modelanswers.TAG.finditer(cell.source)} <= names, vocabulary.grade_id(cell)


def test_filling_replaces_tagged_numbers_and_refuses_unknown_names():
    text = "vaut <!-- ref:taux_test -->0.9<!-- /ref --> en test"
    assert modelanswers.filled(text, {"taux_test": "0.9689"}) == "vaut <!-- ref:taux_test -->0.9689<!-- /ref --> en test"
    with pytest.raises(KeyError):
        modelanswers.filled(text, {})
    assert modelanswers.Number("x", "c", fmt="%").text(0.97556) == "97.6 %"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_shows_neither_rubric_nor_model_answer(assignment):
    release = "\n".join(c.source for c in submissions.read(paths.release_notebook(assignment)).cells)
    assert rubrics.HEADING not in release and "<!-- ref:" not in release
    for r in rubrics.rubrics(assignment).values():
        assert r.answer.splitlines()[0] not in release
        assert not [t for _, t in r.criteria if t in release]


def _answered(assignment):
    """The release with every written answer filled by a student, graded: what the formgrader and the
    feedback render."""
    nb = copy.deepcopy(submissions.read(paths.release_notebook(assignment)))
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["score"], meta["needs_manual_grade"] = (None, True) if cell.cell_type == "markdown" else (meta["points"], False)
        if cell.cell_type == "markdown" and meta.get("solution"):
            cell.source = f"Réponse de l'étudiant·e à {meta['grade_id']}."
    return nb


@pytest.mark.parametrize("assignment", ["tp_reseaux_neurones", "tp_soyez_curieux"])
def test_formgrader_shows_the_model_answer_and_criteria_under_each_written_answer(assignment, tmp_path):
    """The formgrader's own exporter, configured as FormgradeExtension configures it from
    nbgrader_config.py, with the resources its submission page passes."""
    import contextlib
    import shutil

    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader.formgrader import FormgradeExtension
    shutil.copy(paths.ROOT / "nbgrader_config.py", tmp_path)
    with contextlib.chdir(tmp_path):
        app = FormgradeExtension()
        app.initialize([], root=str(tmp_path))
    exporter = HTMLExporter(config=app.config)
    resources = {"assignment_id": assignment, "notebook_id": assignment, "submission_id": "s1",
                 "index": 0, "total": 1, "base_url": "", "student": "e1", "last_name": None, "first_name": None,
                 "notebook_path": "x.ipynb"}
    page, _ = exporter.from_notebook_node(_answered(assignment), resources=resources)
    text = _plain(page)
    gids = list(rubrics.rubrics(assignment))
    for k, gid in enumerate(gids):  # between this answer and the next one: its model answer and criteria
        start = text.index(f"Réponse de l'étudiant·e à {gid}.")
        end = text.index(f"Réponse de l'étudiant·e à {gids[k + 1]}.") if k + 1 < len(gids) else len(text)
        part, r = text[start:end], rubrics.rubrics(assignment)[gid]
        assert "Barème pour le correcteur" in part and _plain(r.answer)[:80] in part, gid
        assert all(_plain(criterion) in part for _, criterion in r.criteria), gid


def _plain(markup: str) -> str:
    """Text as read on the page: tags and Markdown marks removed, entities decoded, spaces collapsed."""
    import html
    return " ".join(html.unescape(re.sub(r"<[^>]+>|[`*]", "", markup)).split())


@pytest.mark.parametrize("assignment", ["tp_reseaux_neurones", "tp_pima_jouet"])
def test_feedback_shows_the_criteria_but_never_the_model_answer(assignment, tmp_path):
    """Every feedback entry (the kit's run, nbgrader generate_feedback, the formgrader's button) uses
    FeedbackExporter with the course's configuration, which names the formgrader's preprocessor."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    from tpkit.grading.converters import FrenchFeedback
    from tpkit.grading.feedback_exporter import FeedbackExporter
    config = FrenchFeedback(coursedir=CourseDirectory(root=str(tmp_path))).config
    config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(paths.ROOT)).load_config())
    assert config.HTMLExporter.preprocessors == ["tpkit.rubrics.GraderRubrics"]
    for extra in ({}, {"submission_id": "s1"}):  # the formgrader's Generate Feedback passes nbgrader's resources
        resources = {"nbgrader": {"notebook": assignment, "assignment": assignment,
                                  "score": 10, "max_score": 20, "late_penalty": 0}, **extra}
        page, _ = FeedbackExporter(config=config).from_notebook_node(_answered(assignment), resources=resources)
        text = _plain(page)
        assert "Barème pour le correcteur" not in text
        for gid, r in rubrics.rubrics(assignment).items():
            assert _plain(r.answer)[:80] not in text, gid
            for points, criterion in r.criteria:
                assert _plain(f"{points:g} pt : {criterion}") in text, (gid, criterion)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_model_answer_numbers_are_the_reference_runs(session_dir, assignment):
    """The numbers of the model answers are those of the reference run, run again now
    (out of sync: `python -m tpkit.modelanswers`)."""
    numbers = once(session_dir, f"reference_numbers_{assignment}", lambda: modelanswers.run_reference(assignment))
    nb = submissions.read(paths.source_notebook(assignment))
    assert not modelanswers.out_of_sync(nb, numbers), "run `python -m tpkit.modelanswers`, then `python -m tpkit.release`"
    quoted = {m.group(1) for c in modelanswers.model_answer_cells(nb) for m in modelanswers.TAG.finditer(c.source)}
    assert quoted, assignment
