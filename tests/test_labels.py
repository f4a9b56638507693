"""Questions are named for people from the source notebook's own question markers."""
from tpkit import labels, paths, submissions, vocabulary

MAIN = "tp_reseaux_neurones"  # the course's main assignment


def test_every_graded_cell_has_a_question_number():
    found = labels.question_labels(paths.source_notebook(MAIN))
    graded = [vocabulary.grade_id(c) for c in submissions.read(paths.source_notebook(MAIN)).cells
              if c.metadata.get("nbgrader", {}).get("grade")]
    assert list(found) == graded
    assert all(lab.number.startswith("Q") for lab in found.values())
    assert labels.label("q2_pred", paths.source_notebook(MAIN)) == "Q2.3 pred"
    assert labels.label("inconnu", paths.source_notebook(MAIN)) == "inconnu"


def test_marker_of_the_nearest_question_above():
    nb = {"cells": [
        {"cell_type": "markdown", "source": "**Q1.1** Chargez", "metadata": {}},
        {"cell_type": "code", "source": "x = 1", "metadata": {}},
        {"cell_type": "markdown", "source": "**Q1.2 et Q1.3** Puis", "metadata": {}},
        {"cell_type": "code", "source": "", "metadata": {"nbgrader": {"grade": True, "grade_id": "q1_x",
                                                                      "points": 2}}},
    ]}
    (lab,) = labels.labels_of(nb).values()
    assert (lab.number, lab.title, lab.points, lab.short) == ("Q1.2 et Q1.3", "x", 2.0, "Q1.2 et Q1.3 x")
