"""Both ends of the protocol by which an execution that stopped is told to the grading.

Writer side (:class:`~tpkit.grading.executor.LimitedExecute`): a cell interrupted by the per-cell
timeout gets the error output :func:`timeout_output` (``ename`` :data:`CELL_TIMEOUT`), and when the
kernel stops (time or memory limit, crash) every code cell that did not complete gets
:func:`not_executed_output` (``ename`` :data:`NOT_EXECUTED`, French reason from
:func:`kernel_stop_reason`), so that its test scores 0.

Reader side: :func:`execution_findings` turns those outputs (and memory errors) into the French
remarks of the run's status; :func:`failure_message` is what a student sees of a failed test.
"""
from __future__ import annotations

import re
from typing import Optional

from nbformat.notebooknode import NotebookNode

#: ename of the error output written into a cell that never ran because the kernel stopped.
NOT_EXECUTED = "ExecutionInterrompue"
#: ename nbgrader's Execute writes into a cell interrupted by the per-cell timeout.
CELL_TIMEOUT = "CellTimeoutError"
_NOT_EXECUTED_PREFIX = "cellule non exécutée : "
#: Exceptions whose message is the whole diagnostic (their name tells a student nothing).
MESSAGE_ONLY = ("AssertionError", "CheckFailed", NOT_EXECUTED, CELL_TIMEOUT)


def timeout_output(timeout: int) -> dict:
    """The error output of a cell stopped by the per-cell timeout (``Execute.error_on_timeout``)."""
    message = f"délai de {timeout} s dépassé pour cette cellule (boucle infinie ?)"
    return {"ename": CELL_TIMEOUT, "evalue": message, "traceback": [f"{CELL_TIMEOUT}: {message}"]}


def kernel_stop_reason(reason: Optional[str], time_limit: int, memory_mb: int, resident_mb: int = 0) -> str:
    """French explanation of why the kernel stopped ('time', 'memory': its cgroup's limit, 'resident': the
    watchdog's resident-memory backstop at ``resident_mb``, 'cpu', None = died by itself), naming the
    limit that acted."""
    if reason == "time":
        return f"limite de temps du notebook ({time_limit} s) dépassée : l'exécution a été arrêtée"
    if reason == "memory":
        return f"limite de mémoire ({memory_mb} Mo) dépassée : l'exécution a été arrêtée"
    if reason == "resident":
        return (f"mémoire résidente du noyau au-delà de {resident_mb} Mo (limite de mémoire de {memory_mb} Mo, "
                "plus les bibliothèques chargées) : l'exécution a été arrêtée")
    if reason == "cpu":
        from tpkit.grading.watchdog import CPU_HOG_WINDOW_S
        return (f"part du processeur dépassée pendant plus de {CPU_HOG_WINDOW_S:g} s (processus "
                "lancés en arrière-plan ?) : l'exécution a été arrêtée")
    return "le noyau Python s'est arrêté brutalement (plantage, os._exit(), mémoire ?)"


def not_executed_output(reason: str) -> NotebookNode:
    """The error output of a cell that never ran because the kernel stopped."""
    message = _NOT_EXECUTED_PREFIX + reason
    return NotebookNode(output_type="error", ename=NOT_EXECUTED, evalue=message,
                        traceback=[f"{NOT_EXECUTED}: {message}"])


def execution_findings(nb, memory_mb: int = 0) -> list:
    """French remarks about how the notebook ran: cells stopped by the per-cell timeout or by the
    memory limit, cells never run because the kernel stopped, repairs that failed (written by the
    grader into the notebook's ``tpkit`` metadata, which it rewrites whole: never the student's)."""
    from tpkit.vocabulary import grade_id
    out, stopped = [], None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        name = grade_id(cell) or f"n°{index + 1}"
        for o in cell.get("outputs", []):
            if o.get("output_type") != "error":
                continue
            if o.get("ename") == CELL_TIMEOUT:
                out.append(f"cellule {name} interrompue : {o.get('evalue')}")
            elif str(o.get("ename", "")).endswith("MemoryError") or any(
                    words in str(o.get("evalue", "")) for words in ("can't allocate memory", "Unable to allocate")):
                limit = f" (limite de {memory_mb} Mo)" if memory_mb else ""
                out.append(f"mémoire insuffisante dans la cellule {name}{limit}")
            elif o.get("ename") == NOT_EXECUTED and stopped is None:
                stopped = f"exécution arrêtée à la cellule {name} : " + \
                    str(o.get("evalue", "")).replace(_NOT_EXECUTED_PREFIX, "")
    if stopped:
        out.append(stopped)
    for qid, etype in (nb.metadata.get("tpkit", {}).get("repairs_failed") or [])[:20]:
        out.append(f"après l'échec de {qid}, les valeurs de référence n'ont pas pu être remises dans le "
                   f"notebook ({etype}) : les questions suivantes qui s'en servent ont pu perdre des points "
                   "à tort (à revoir à la main)")
    return out


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failure_message(output) -> str:
    """What a student sees of a failed test: the exception's message (French from the checks); the
    exception's name only when it tells something (not for assertion/check failures)."""
    ename = _ANSI.sub("", str(output.get("ename", "")))
    evalue = _ANSI.sub("", str(output.get("evalue", ""))).strip()
    if ename in MESSAGE_ONLY:
        return evalue or "le test a échoué."
    return f"{ename} : {evalue}" if evalue else ename
