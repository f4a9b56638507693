"""Grading workflow, the parts that need no kernel: pre-check repairs, student-safe feedback outputs,
French remarks, exports, example submissions in sync. (End-to-end runs: test_grading.py.)"""
import copy
import json

import nbformat
import pytest
from nbformat.notebooknode import from_dict

from tpkit import examples, paths
from tpkit.grading import kernels, precheck
from tpkit.grading.export import fmt
from tpkit.grading.findings import (CELL_TIMEOUT, NOT_EXECUTED, execution_findings, failure_message,
                                    kernel_stop_reason)
from tpkit.grading.lms.moodle.exports import moodle_comment
from tpkit.grading.preprocessors import StudentSafeOutputs
from tpkit.grading.results import FAILED, OK, PARTIAL, StudentResult
from tpkit.submissions import blank_submission, grade_id, solution_submission


@pytest.fixture(scope="module")
def expected():
    return precheck.expected_from_notebooks(paths.SOURCE_NOTEBOOK, paths.RELEASE_NOTEBOOK, paths.ASSIGNMENT)


@pytest.fixture(scope="module")
def reference():
    return solution_submission()


def _ids(nb):
    return [grade_id(c) for c in nb.cells if grade_id(c)]


def _cell(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


def test_expected_matches_the_notebook(expected):
    assert expected.max_score == 20
    assert len(expected.graded_ids) >= 15
    assert expected.graded_ids[0].startswith("q1_")


def test_clean_submissions_have_no_findings(expected, reference):
    assert precheck.repair_cells(copy.deepcopy(reference), expected) == []
    assert precheck.repair_cells(blank_submission(), expected) == []


def test_duplicated_answer_last_copy_graded(expected, reference):
    nb = copy.deepcopy(reference)
    k = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "r2_pred")
    first = copy.deepcopy(nb.cells[k])
    first.source = "def pred(X, W, B):\n    return None  # brouillon"
    nb.cells.insert(k, first)
    findings = precheck.repair_cells(nb, expected)
    assert [f.kind for f in findings] == ["duplicated"]
    assert "r2_pred" in findings[0].message and "dernière" in findings[0].message
    assert _ids(nb).count("r2_pred") == 1
    assert "nbgrader" not in nb.cells[k].metadata  # the draft became an ordinary cell, still executed
    assert "return th.softmax" in _cell(nb, "r2_pred").source
    assert len({c.get("id") for c in nb.cells}) == len(nb.cells)


def test_relabelled_test_cell_gets_its_id_back(expected, reference):
    nb = copy.deepcopy(reference)
    _cell(nb, "q2_cout").metadata.nbgrader["grade_id"] = "mon_test"
    findings = precheck.repair_cells(nb, expected)
    assert [f.kind for f in findings] == ["relabelled"]
    assert _ids(nb) == _ids(reference)


def test_unknown_graded_cell_becomes_ordinary(expected, reference):
    nb = copy.deepcopy(reference)
    extra = copy.deepcopy(_cell(nb, "r1_dimensions"))
    extra.metadata.nbgrader["grade_id"] = "inconnue"
    nb.cells.append(extra)
    findings = precheck.repair_cells(nb, expected)
    assert [f.kind for f in findings] == ["unknown_cell"]
    assert "nbgrader" not in nb.cells[-1].metadata


def test_changed_metadata_is_restored(expected, reference):
    nb = copy.deepcopy(reference)
    md = _cell(nb, "q2_pred").metadata.nbgrader
    md["grade"], md["points"] = False, 10
    _cell(nb, "m2_approximation").metadata.nbgrader["points"] = 5
    findings = precheck.repair_cells(nb, expected)
    assert {f.grade_id for f in findings} == {"q2_pred", "m2_approximation"}
    assert all(f.kind == "metadata" for f in findings)
    assert md["grade"] is True and md["points"] == 1.5
    assert _cell(nb, "m2_approximation").metadata.nbgrader["points"] == 0.5


def test_deleted_cells(expected, reference):
    nb = copy.deepcopy(reference)
    nb.cells = [c for c in nb.cells if grade_id(c) not in ("q2_cout", "r2_cout", "m3_convergence")]
    findings = precheck.repair_cells(nb, expected)
    kinds = {f.grade_id: f.message for f in findings}
    assert set(kinds) == {"q2_cout", "r2_cout", "m3_convergence"}
    assert "rétablie" in kinds["q2_cout"] and "rétablie" not in kinds["r2_cout"]
    ids = _ids(nb)
    # re-inserted at their place: after the preceding cell that is still there
    assert ids.index("q2_cout") == ids.index("r2_lignes") + 2  # r2_lignes, m2_approximation, q2_cout
    assert ids.index("m3_convergence") == ids.index("q3_courbe") + 1


def test_edited_test_cell_is_reported(expected, reference):
    nb = copy.deepcopy(reference)
    _cell(nb, "q1_onehot").source = "print('tout va bien')"
    findings = precheck.repair_cells(nb, expected)
    assert [f.kind for f in findings] == ["edited"]
    assert "q1_onehot" in findings[0].message


def test_read_notebook_reasons(tmp_path, reference):
    text = nbformat.writes(reference)
    cases = {"tronque.ipynb": text[: len(text) // 2], "vide.ipynb": "", "autre.ipynb": json.dumps({"a": 1}),
             "ok.ipynb": text}
    for name, content in cases.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    assert "JSON invalide" in precheck.read_notebook(tmp_path / "tronque.ipynb")[1]
    assert "vide" in precheck.read_notebook(tmp_path / "vide.ipynb")[1]
    assert "pas un notebook" in precheck.read_notebook(tmp_path / "autre.ipynb")[1]
    assert precheck.read_notebook(tmp_path / "ok.ipynb")[1] is None


def test_locate_renamed_or_ambiguous(tmp_path, expected, reference):
    text = nbformat.writes(reference)
    one = tmp_path / "one"
    (one / "sous-dossier").mkdir(parents=True)
    (one / "sous-dossier" / "TP Dupont.ipynb").write_text(text)
    path, findings, failure = precheck.locate(one, expected)
    assert path.name == "TP Dupont.ipynb" and failure is None and findings[0].kind == "renamed"
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.ipynb").write_text(text)
    (two / "brouillon.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    path, findings, failure = precheck.locate(two, expected)
    assert path.name == "a.ipynb"
    (two / "b.ipynb").write_text(text)
    path, findings, failure = precheck.locate(two, expected)
    assert path is None and "plusieurs notebooks" in failure
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "rapport.pdf").write_bytes(b"%PDF")
    assert "rapport.pdf" in precheck.locate(empty, expected)[2]


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


def test_failure_messages_are_french():
    assert failure_message({"ename": "AssertionError", "evalue": "le coût est faux"}) == "le coût est faux"
    assert failure_message({"ename": "AssertionError", "evalue": ""}) == "le test a échoué."
    assert failure_message({"ename": "NameError", "evalue": "name 'x' is not defined"}).startswith("NameError")
    assert "300 s" in kernel_stop_reason("time", 300, 4096)
    assert "4096 Mo" in kernel_stop_reason("memory", 300, 4096)


def test_execution_findings():
    def code(gid, outputs):
        return {"cell_type": "code", "execution_count": 1, "source": "", "outputs": outputs,
                "metadata": {"nbgrader": {"grade_id": gid, "solution": True, "grade": False, "locked": False}}}
    err = lambda ename, evalue: {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": []}  # noqa
    nb = from_dict({"cells": [code("r1", [err(CELL_TIMEOUT, "délai de 60 s dépassé")]),
                              code("r2", [err("RuntimeError", "DefaultCPUAllocator: can't allocate memory")]),
                              code("r3", [err(NOT_EXECUTED, "cellule non exécutée : le noyau s'est arrêté")]),
                              code("r4", [err(NOT_EXECUTED, "cellule non exécutée : le noyau s'est arrêté")])],
                    "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    found = execution_findings(nb, 2048)
    assert len(found) == 3
    assert "r1" in found[0] and "2048 Mo" in found[1] and found[2].startswith("exécution arrêtée à la cellule r3")


def test_status_text_and_moodle_comment():
    points = {"q1": 1.0, "q2": 2.0, "m1": 1.0}
    r = StudentResult("p1", PARTIAL, ["cellule q1 interrompue"], {"q1": 0.0, "q2": 2.0, "m1": None}, 2.0, 4.0)
    assert r.status_text == "partial: cellule q1 interrompue"
    assert r.grade20 == 10.0 and r.manual_pending == ["m1"]
    comment = moodle_comment(r, points)  # written answers pending: no final grade yet, said so
    assert "10/20" in comment and "q1" in comment and "en attente" in comment and "provisoire" not in comment
    comment = moodle_comment(r, points, provisional=True)
    assert "Note provisoire : 10/20" in comment
    done = StudentResult("p4", OK, [], {"q1": 0.0, "q2": 2.0, "m1": 1.0}, 3.0, 4.0)
    assert moodle_comment(done, points, names={"q1": "Q1.1 chargement"}).startswith("Note : 15/20.")
    assert "Q1.1 chargement" in moodle_comment(done, points, names={"q1": "Q1.1 chargement"})
    failed = StudentResult("p2", FAILED, ["fichier illisible"])
    assert failed.grade20 is None and "non corrigé" in moodle_comment(failed, points)
    assert StudentResult("p3", OK).status_text == "ok"
    assert fmt(17.5) == "17.5" and fmt(20.0) == "20" and fmt(None) == "" and fmt(2 / 3) == "0.67"


def test_kernel_startup_line_binds_nothing(tmp_path):
    """The start-up line loads the witness agent from the exchange folder as `_tpkit_agent` and leaves
    nothing in the student's namespace."""
    import sys
    from tpkit.grading import trusted
    trusted.install_agent(tmp_path)
    line = kernels.KernelSettings(preload=("math",), memory_mb=0).startup_line(str(tmp_path))
    ns = {}
    try:
        exec(line, ns)
        assert set(ns) <= {"__builtins__"}
        assert hasattr(sys.modules["_tpkit_agent"], "serve")
    finally:
        sys.modules.pop("_tpkit_agent", None)


def test_example_submissions_in_sync():
    """`python -m tpkit.examples` writes exactly what is in examples/submissions/ (every assignment's)."""
    built = {a: examples.build(assignment=a) for a in examples.assignments()}
    assert set(examples.assignments()) == set(paths.assignments())
    on_disk = {p.relative_to(examples.EXAMPLES_DIR).as_posix()
               for p in examples.EXAMPLES_DIR.rglob("*") if p.is_file()}
    wanted = {f"{s}/{a}/{name}" for a in built for s, (name, _) in built[a].items()}
    assert on_disk == wanted, "run: python -m tpkit.examples"
    for a in built:
        for student, (name, data) in built[a].items():
            assert (examples.EXAMPLES_DIR / student / a / name).read_bytes() == data, \
                f"{student}/{a} is out of date: run python -m tpkit.examples"


def test_no_user_namespaces_stops_with_a_french_message(tmp_path, monkeypatch, capsys):
    """Where the host forbids user namespaces: one French line saying how to allow them or how to grade
    unsandboxed on purpose, exit status 2, nothing written."""
    from tpkit.grading import __main__ as cli, sandbox

    def refuse():
        raise sandbox.SandboxUnavailable("Bac à sable indisponible : les espaces de noms utilisateur sont "
                                         "interdits (sysctl kernel.unprivileged_userns_clone=1), ou "
                                         "--sans-bac-a-sable")
    monkeypatch.setattr(sandbox, "check_available", refuse)
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")  # a course (arguments are checked first)
    (tmp_path / "release" / paths.ASSIGNMENT).mkdir(parents=True)
    assert cli.main(["--root", str(tmp_path), "--examples"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("erreur : Bac à sable indisponible") and "--sans-bac-a-sable" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nbgrader_config.py", "release"]
