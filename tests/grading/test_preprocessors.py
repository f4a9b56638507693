"""The kit's nbgrader preprocessors (tpkit.grading.preprocessors): student-safe test outputs, output byte
caps and where they are wired."""
import base64
import copy
import json

import nbformat
from nbformat.notebooknode import from_dict
from nbformat.v4 import new_code_cell, new_notebook, new_output
from nbgrader import utils as nbgrader_utils
from nbgrader.coursedir import CourseDirectory

from tpkit.grading.converters import FrenchFeedback, ParallelAutograde
from tpkit.grading.options import Options, load_config
from tpkit.grading.preprocessors import LimitedExecute, LimitOutputBytes, StudentSafeOutputs

MAIN = "tp_reseaux_neurones"  # the course's main assignment


def _test_cell(outputs, source='### BEGIN HIDDEN TESTS\nfrom tpkit.checks import verifier\n'
                               'verifier("q2_pred", globals())\n### END HIDDEN TESTS\nassert True'):
    return from_dict({"cell_type": "code", "execution_count": 1, "id": "x", "source": source,
                      "metadata": {"nbgrader": {"grade": True, "solution": False, "locked": True,
                                                "grade_id": "q2_pred", "points": 1.5, "schema_version": 3}},
                      "outputs": outputs})


def test_student_safe_outputs_keep_the_message_only():
    tb = ["\x1b[0;31mAssertionError\x1b[0m Traceback (most recent call last)",
          'Cell In[12], line 3\n----> 3 verifier("q2_pred", globals())',
          'File /work/main/tpkit/checks/__init__.py:35, in verifier(qid, ns)',
          "\x1b[0;31mAssertionError\x1b[0m: softmax sur le mauvais axe"]
    cell = _test_cell([
        {"output_type": "stream", "name": "stdout", "text": 'verifier("q2_pred", globals())\nrésultat 3\n'},
        {"output_type": "stream", "name": "stderr", "text": "/work/main/tpkit/checks/tools.py:3: Warning\n"},
        {"output_type": "error", "ename": "AssertionError", "evalue": "softmax sur le mauvais axe",
         "traceback": tb}])
    nb = from_dict({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    nb, _ = StudentSafeOutputs().preprocess(nb, {})
    shown = json.dumps(nb.cells[0].outputs, ensure_ascii=False)
    assert "softmax sur le mauvais axe" in shown and "résultat 3" in shown
    assert "verifier" not in shown and "tpkit" not in shown and "Traceback" not in shown


MB = 1024 * 1024


def _huge_notebook():
    png = base64.b64encode(b"\x89PNG" + b"\0" * (MB // 2)).decode()  # 0.7 MB: under the per-output cap
    test_cell = new_code_cell("verifier('q1', globals())", outputs=[
        new_output("stream", name="stdout", text="x" * (64 * MB)),  # 300 prints of 1 MB, coalesced
        new_output("stream", name="stderr", text="w" * (3 * MB)),
        new_output("error", ename="AssertionError", evalue="é" * (2 * MB), traceback=["t" * MB] * 3),
    ])
    test_cell.metadata.nbgrader = {"grade": True, "solution": False, "locked": True, "points": 1,
                                   "grade_id": "q1_test", "schema_version": 3}
    images = new_code_cell("for i in range(30): display(img)", outputs=[
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}) for _ in range(30)])
    small = new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text="1\n")])
    later = new_code_cell("0.5", outputs=[
        new_output("stream", name="stdout", text="y" * 10_000),
        new_output("stream", name="stderr", text="attention"),
        new_output("stream", name="stdout", text="z" * 10_000),
        new_output("execute_result", data={"text/plain": "0.5"}, execution_count=4),
    ])
    return new_notebook(cells=[small, test_cell, images, later])


def test_huge_outputs_are_capped_and_grading_is_unchanged():
    nb = _huge_notebook()
    before = [nbgrader_utils.determine_grade(c) for c in nb.cells if c.metadata.get("nbgrader")]
    cap = LimitOutputBytes()
    assert (cap.max_output_bytes, cap.max_notebook_bytes) == (1 * MB, 8 * MB)
    nb, _ = cap.preprocess(nb, {})
    size = len(nbformat.writes(nb).encode())
    assert size < cap.max_notebook_bytes + 2 * MB, size
    small, test_cell, images, later = nb.cells
    assert small.outputs[0].text == "1\n"
    stdout, stderr, error = test_cell.outputs
    assert stdout.text.endswith("\n[sortie tronquée : 64 Mo]\n") and len(stdout.text) < MB + 100
    assert stderr.name == "stderr" and "[sortie tronquée : 3 Mo]" in stderr.text
    assert error.output_type == "error" and error.ename == "AssertionError"
    assert error.traceback[-1] == "[sortie tronquée : 7 Mo]"
    # the budget is spent part way through the images: the first ones kept, then one as a note, the rest
    # summed up in a last note
    assert 3 <= sum("image/png" in o.get("data", {}) for o in images.outputs) <= 8
    assert images.outputs[-1].text.startswith("[sortie tronquée : ") and "sortie(s) de plus" in \
        images.outputs[-1].text
    kinds = [(o.output_type, o.get("name")) for o in later.outputs]
    assert ("stream", "stderr") in kinds and ("execute_result", None) in kinds
    assert [nbgrader_utils.determine_grade(c) for c in nb.cells if c.metadata.get("nbgrader")] == before
    nbformat.validate(nb)
    for cell in nb.cells:
        for out in cell.outputs:
            assert cap.nbytes(out) <= cap.max_output_bytes
    # the feedback caps the autograded notebook again: nothing changes, the first notes stay
    again, _ = LimitOutputBytes().preprocess(copy.deepcopy(nb), {})
    assert again == nb


def test_output_cap_is_wired_after_execution_and_in_the_feedback(tmp_path):
    cfg = load_config(Options(assignment=MAIN))
    autograde = ParallelAutograde(coursedir=CourseDirectory(config=cfg), config=cfg)
    steps = autograde.autograde_preprocessors
    assert steps.index(LimitOutputBytes) == steps.index(LimitedExecute) + 1
    feedback = FrenchFeedback(coursedir=CourseDirectory(config=cfg), config=cfg)
    assert LimitOutputBytes in feedback.preprocessors


def test_long_markdown_outputs_are_shown_as_text():
    """A text/markdown output of 108 kB of `\\begin{x}` (the Markdown renderer is quadratic on it) loses
    its Markdown form, after execution and in the feedback; a short one keeps it."""
    from tpkit.grading.precheck import MAX_MARKDOWN_CHARS
    bomb = "\\begin{x}" * 12_000
    cell = new_code_cell("display(Markdown(...))", outputs=[
        new_output("display_data", data={"text/markdown": bomb, "text/plain": "<IPython.core.display.Markdown>"}),
        new_output("display_data", data={"text/markdown": bomb}),
        new_output("display_data", data={"text/markdown": "**court**", "text/plain": "court"})])
    nb, _ = LimitOutputBytes().preprocess(new_notebook(cells=[cell]), {})
    first, second, short = nb.cells[0].outputs
    assert set(first.data) == {"text/plain"} and first.data["text/plain"] == "<IPython.core.display.Markdown>"
    assert set(second.data) == {"text/plain"} and second.data["text/plain"] == bomb
    assert len(bomb) > MAX_MARKDOWN_CHARS
    assert short.data["text/markdown"] == "**court**"
    nbformat.validate(nb)


def test_plain_nbgrader_autograde_is_refused_with_the_command_to_run(monkeypatch):
    """The formgrader's Autograde button and `nbgrader autograde` would run the checks in the student's
    kernel: the course's configuration gives them an exporter that refuses as the converter starts,
    naming the kit's command; the kit's own grading keeps nbgrader's exporter."""
    import pytest
    from nbconvert.exporters import NotebookExporter
    from nbgrader.converters.base import NbGraderException

    from tpkit.grading.converters import UNTRUSTED_VARIABLE, TrustedGradingOnly
    monkeypatch.delenv(UNTRUSTED_VARIABLE, raising=False)
    with pytest.raises(NbGraderException) as refused:
        TrustedGradingOnly()
    assert "python -m tpkit.grading" in str(refused.value) and "bac à sable" in str(refused.value)
    monkeypatch.setenv(UNTRUSTED_VARIABLE, "1")  # the benchmark's baseline, on purpose
    TrustedGradingOnly()
    cfg = load_config(Options(assignment=MAIN))
    assert cfg.Autograde.exporter_class == "tpkit.grading.converters.TrustedGradingOnly"
    kit = ParallelAutograde(coursedir=CourseDirectory(config=cfg), config=cfg)
    assert kit.exporter_class is NotebookExporter
