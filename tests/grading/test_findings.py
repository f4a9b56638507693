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
