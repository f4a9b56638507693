"""The exporter of every feedback page (tpkit.grading.feedback_exporter): whoever asks for a page and
whatever the configuration says, the French template, no hidden test, no model answer."""
from nbformat.v4 import new_code_cell, new_notebook
from traitlets.config import Config

from tpkit import rubrics
from tpkit.grading import feedback_exporter
from tpkit.grading.preprocessors import LimitOutputBytes, StudentSafeOutputs
from tpkit.vocabulary import BEGIN_HIDDEN, END_HIDDEN

HIDDEN = f"### {BEGIN_HIDDEN}\nverifier('q1', globals())  # SECRET-CHECK\n### {END_HIDDEN}\nassert True"


def _test_cell():
    cell = new_code_cell(HIDDEN)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "q1", "points": 1.0, "solution": False,
                                 "locked": True, "schema_version": 3, "score": 1.0}
    return cell


def test_a_configuration_without_the_safety_gets_it_back_and_the_french_template(tmp_path):
    """The formgrader's configuration asks for nbgrader's own template and names no preprocessor: the
    page is the French one, and the hidden test is not in it."""
    from nbgrader.coursedir import CourseDirectory

    from tpkit.grading.converters import FrenchFeedback
    config = Config()
    config.merge(FrenchFeedback(coursedir=CourseDirectory(root=str(tmp_path))).config)  # the course's
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.preprocessors = [rubrics.GraderRubrics]
    exporter = feedback_exporter.FeedbackExporter(config=config)
    assert exporter.template_name == "feedback_fr"
    assert rubrics.GraderRubrics not in exporter.config.HTMLExporter.preprocessors
    nb = new_notebook(cells=[_test_cell()], metadata={"language_info": {"name": "python"}})
    resources = {"nbgrader": {"notebook": "tp", "score": 1, "max_score": 1, "late_penalty": 0}}
    page, _ = exporter.from_notebook_node(nb, resources=resources)
    assert '<html lang="fr">' in page and "Vérification" in page
    assert "SECRET-CHECK" not in page and "verifier(" not in page
    assert not any(isinstance(pp, (StudentSafeOutputs, LimitOutputBytes)) for pp in exporter._preprocessors)


def test_the_feedback_preprocessors_keep_the_safety():
    assert set(feedback_exporter._REQUIRED_SAFETY) <= set(feedback_exporter.FEEDBACK_PREPROCESSORS)
