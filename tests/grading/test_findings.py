"""Both ends of the timeout / kernel-stop protocol (tpkit.grading.findings): French messages and the remarks
read back from a graded notebook."""
from nbformat.notebooknode import from_dict

from tpkit.grading.findings import CELL_TIMEOUT, NOT_EXECUTED, execution_findings, failure_message, kernel_stop_reason


def test_failure_messages_are_french():
    assert failure_message({"ename": "AssertionError", "evalue": "le coût est faux"}) == "le coût est faux"
    assert failure_message({"ename": "AssertionError", "evalue": ""}) == "le test a échoué."
    assert failure_message({"ename": "NameError", "evalue": "name 'x' is not defined"}).startswith("NameError")
    assert "300 s" in kernel_stop_reason("time", 300, 4096)
    assert "4096 Mo" in kernel_stop_reason("memory", 300, 4096)
    # the watchdog's backstop acts at its own threshold: the message names it, and the memory limit
    resident = kernel_stop_reason("resident", 300, 4096, 5120)
    assert "mémoire résidente" in resident and "5120 Mo" in resident and "4096 Mo" in resident


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


def test_a_repair_that_raises_is_logged_and_reported(monkeypatch, caplog):
    # a failed check's repair puts reference values in the notebook for the next questions; when it raises,
    # those questions may lose points that are not theirs: the run's status says so (issue 24)
    from tpkit import checks
    from tpkit.checks.tools import fail

    def check(_w):
        fail("faux")

    def repair(_w):
        raise RuntimeError("boom")
    monkeypatch.setitem(checks.CHECKS, "q_test", check)
    monkeypatch.setitem(checks.REPAIRS, "q_test", repair)
    told = []
    witness = type("W", (), {"reset": lambda self: None})()
    assert checks.run_check("q_test", witness, repair_failed=lambda q, e: told.append((q, e))) == "faux"
    assert told == [("q_test", "RuntimeError")]
    assert "repair of q_test failed: RuntimeError" in caplog.text
    monkeypatch.setitem(checks.REPAIRS, "q_test", lambda _w: None)
    told.clear()
    assert checks.run_check("q_test", witness, repair_failed=lambda q, e: told.append((q, e))) == "faux"
    assert told == []
    nb = from_dict({"cells": [], "metadata": {"tpkit": {"repairs_failed": [["q_test", "RuntimeError"]]}},
                    "nbformat": 4, "nbformat_minor": 5})
    (remark,) = execution_findings(nb)
    assert "q_test" in remark and "RuntimeError" in remark and "à revoir à la main" in remark
