"""Parts of the grading run checked without grading (nbgrader's metadata validation, the shared
gradebook engine)."""
import copy

import jsonschema
import nbformat
import pytest

from tpkit import paths

MAIN = "tp_reseaux_neurones"  # the course's main assignment


def test_cell_metadata_validation_gives_jsonschema_s_verdict():
    """nbgrader's metadata validation, schema compiled once: the same errors as jsonschema.validate."""
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError
    nb = nbformat.read(str(paths.source_notebook(MAIN)), as_version=4)
    MetadataValidator().validate_nb(nb)  # valid: no error
    schema = MetadataValidator().schema
    for bad in ({"points": "abc"}, {"grade": 3}, {"grade_id": None}):
        cell = copy.deepcopy(next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")))
        cell.metadata.nbgrader.update(bad)
        with pytest.raises(jsonschema.ValidationError) as expected:
            jsonschema.validate(dict(cell.metadata.nbgrader), schema)
        with pytest.raises(ValidationError) as ours:
            MetadataValidator().validate_cell(cell)
        assert str(ours.value) == str(expected.value)


def test_gradebook_engine_is_shared_during_a_run_only(tmp_path, monkeypatch):
    """Inside shared_engine() (a grading run), every opening of the gradebook, nbgrader's included,
    reuses one engine (it used to be created and the tables checked ~11 times per submission); what
    is written is nbgrader's; outside, each opening has its own engine, closed with it."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import saveautogrades
    from tpkit import release
    from tpkit.grading import gradebook
    monkeypatch.setenv("PATH", release.nbgrader_env()["PATH"])  # a new gradebook runs alembic
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with gradebook.shared_engine():
        assert saveautogrades.Gradebook is gradebook.RunGradebook
        with saveautogrades.Gradebook(url, "cours") as a:
            a.add_student("s1")
        with gradebook.RunGradebook(url, "cours") as b:
            assert b.engine is a.engine and [s.id for s in b.students] == ["s1"]
    assert saveautogrades.Gradebook is Gradebook and gradebook.RunGradebook.engines is None
    with gradebook.RunGradebook(url, "cours") as c, gradebook.RunGradebook(url, "cours") as d:
        assert c.engine is not d.engine and c.engine is not a.engine
    with Gradebook(url, "cours") as plain:  # nbgrader reads what was written through the shared engine
        assert [s.id for s in plain.students] == ["s1"]
