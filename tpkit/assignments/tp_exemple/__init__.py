"""The worked example assignment `tp_exemple` (docs/authoring.md): a softmax, a cost on a batch, a few
steps of gradient descent on toy data generated in the notebook, and one written answer.

Its source notebook is not in the course's source/ (the class's release must not change):
docs/exemple/source/tp_exemple/tp_exemple.ipynb. The test suite builds a temporary course from it,
releases it and grades it (tests/test_exemple.py)."""
