"""Parts of the grading run checked without grading (tpkit.grading.pipeline, converters)."""
import copy

import jsonschema
import nbformat
import pytest

from tpkit import paths
from tpkit.grading import converters, pipeline


def test_queue_alternates_long_and_short_notebooks():
    """Long notebooks keep the kernels busy while short ones keep the grading process busy: taken in
    turns, the two kinds overlap (largest first alone left a run ending on many short notebooks that
    wait for the grading process with a core idle)."""
    assert pipeline._interleaved([9, 8, 7, 3, 2, 1]) == [9, 1, 8, 2, 7, 3]
    assert pipeline._interleaved([5, 4, 3]) == [5, 3, 4]
    assert pipeline._interleaved([1]) == [1] and pipeline._interleaved([]) == []


def test_cell_metadata_validation_gives_jsonschema_s_verdict():
    """nbgrader's metadata validation, schema compiled once: the same errors as jsonschema.validate."""
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError
    nb = nbformat.read(str(paths.SOURCE_NOTEBOOK), as_version=4)
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


def test_highlighting_is_memoized_across_execution_timestamps():
    """The same code in two pages is highlighted once, whatever the cells' execution timestamps."""
    highlight = converters.MemoHighlight2HTML(pygments_lexer="ipython3")
    converters._highlighted.cache_clear()
    first = highlight("x = 1", metadata={"execution": {"iopub.execute_input": "2026-11-30T08:00:00"}})
    second = highlight("x = 1", metadata={"execution": {"iopub.execute_input": "2026-11-30T09:00:00"}})
    assert first == second and converters._highlighted.cache_info().hits == 1
    magic = highlight("x = 1", metadata={"magics_language": "bash"})
    assert converters._highlighted.cache_info().misses == 2 and magic
