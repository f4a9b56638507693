"""nbgrader preprocessors of the grading workflow (one class, one job, configured like nbgrader's own).

Autograde side
  :class:`LimitedExecute`  nbgrader's ``Execute`` with a warm kernel, a whole-notebook time limit and a
                           memory limit; when the kernel dies or is killed, the cells it did not run are
                           marked as failed (nbgrader alone would record no grade at all).
  ``Serialized*``          nbgrader's gradebook preprocessors behind one process-wide lock, so that
                           grading threads never write the sqlite gradebook at the same time.

Feedback side
  :class:`GetGradesFr`       ``GetGrades`` that also says which answers still await manual grading.
  :class:`StudentSafeOutputs` test cells show the failure *message* only: no traceback (whose lines
                           would quote hidden tests and kit files), no hidden line, no kit path.
"""
from __future__ import annotations

import re
import threading
from typing import Optional

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import (AssignLatePenalties, ClearHiddenTests, Execute, GetGrades,
                                    NbGraderPreprocessor, OverwriteCells, SaveAutoGrades)
from jupyter_core.utils import ensure_async
from traitlets import Integer, List, Unicode, default

from tpkit.grading import kernels
from tpkit.grading.precheck import split_hidden

#: One lock for every gradebook access of this process (sqlite allows one writer at a time, and two
#: connections that both upgrade a read to a write get "database is locked" instead of waiting).
GRADEBOOK_LOCK = threading.RLock()

#: ename of the error output written into a cell that never ran because the kernel stopped.
NOT_EXECUTED = "ExecutionInterrompue"
#: ename nbgrader's Execute writes into a cell interrupted by the per-cell timeout.
CELL_TIMEOUT = "CellTimeoutError"


def kernel_stop_reason(reason: Optional[str], time_limit: int, memory_mb: int) -> str:
    """French explanation of why the kernel stopped ('time', 'memory', None = died by itself)."""
    if reason == "time":
        return f"limite de temps du notebook ({time_limit} s) dépassée : l'exécution a été arrêtée"
    if reason == "memory":
        return f"limite de mémoire ({memory_mb} Mo) dépassée : l'exécution a été arrêtée"
    return "le noyau Python s'est arrêté brutalement (plantage, os._exit(), mémoire ?)"


class LimitedExecute(Execute):
    """nbgrader's ``Execute`` with a warm kernel from the grading thread's :class:`KernelSupply`
    (or a fresh one started here), a whole-notebook time limit and a memory limit.

    If the kernel dies or a limit kills it, execution stops there, every code cell that did not
    complete gets an error output (``ename`` :data:`NOT_EXECUTED`, French reason) so that its test
    scores 0 instead of the full marks nbgrader gives an output-less test cell, and the grades of the
    cells that did run are kept."""

    time_limit = Integer(300, help="Seconds for the whole notebook (0: no limit).").tag(config=True)
    memory_limit = Integer(4096, help="Memory limit of the kernel in MB (0: no limit).").tag(config=True)
    threads = Integer(1, help="torch/BLAS threads of the kernel.").tag(config=True)
    preload = List(Unicode(), list(kernels.DEFAULT_PRELOAD),
                   help="Modules imported before the notebook runs (not bound in its namespace).").tag(config=True)

    @default("shutdown_kernel")
    def _shutdown_default(self):
        return "immediate"

    @default("error_on_timeout")
    def _error_on_timeout_default(self):
        message = f"délai de {self.timeout} s dépassé pour cette cellule (boucle infinie ?)"
        return {"ename": CELL_TIMEOUT, "evalue": message, "traceback": [f"{CELL_TIMEOUT}: {message}"]}

    def kernel_settings(self) -> kernels.KernelSettings:
        return kernels.KernelSettings(preload=tuple(self.preload), threads=self.threads,
                                      memory_mb=self.memory_limit)

    def preprocess(self, nb: NotebookNode, resources=None, km=None):
        supply = kernels.current_supply()
        if km is None:
            km = supply.take() if supply is not None else kernels.start_kernel(self.kernel_settings())
        path = (resources or {}).get("metadata", {}).get("path") or None
        self._completed = set()
        self._running = None

        async def enter_directory(**kwargs):
            # the kernel was started in advance, in a neutral folder
            if path:
                msg_id = self.kc.execute(f"__import__('os').chdir({str(path)!r})", silent=True,
                                         store_history=False, allow_stdin=False)
                await ensure_async(self.async_wait_for_reply(msg_id))

        self.on_notebook_start = enter_directory
        # RLIMIT_DATA (in the kernel) stops allocations first; resident memory adds shared libraries
        watch_mb = self.memory_limit + 1024 if self.memory_limit else 0
        watchdog = kernels.Watchdog(kernels.kernel_pid(km), self.time_limit, watch_mb)
        try:
            with watchdog:
                nb, resources = super().preprocess(nb, resources, km=km)
        except CellTimeoutError:
            # the per-cell timeout interrupted the kernel, which did not stop (SIGINT ignored or
            # blocked in C code): nbgrader would fail the whole submission; stop here instead
            reason = (f"la cellule ne s'est pas arrêtée à l'interruption après {self.timeout} s : "
                      "l'exécution a été arrêtée")
            self.log.warning("kernel unresponsive: %s", reason)
            self._mark_not_executed(nb, reason)
        except (DeadKernelError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and "kernel" not in str(exc).lower():
                raise
            reason = kernel_stop_reason(watchdog.reason, self.time_limit, self.memory_limit)
            self.log.warning("kernel stopped: %s", reason)
            self._mark_not_executed(nb, reason)
        finally:
            kc = getattr(self, "kc", None)
            if kc is not None:
                try:
                    kc.stop_channels()
                except Exception:
                    pass
                self.kc = None
            kernels.discard_kernel(km)
            self.km = None
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        self._running = index
        cell, resources = super().preprocess_cell(cell, resources, index)
        self._completed.add(index)
        return cell, resources

    def _mark_not_executed(self, nb: NotebookNode, reason: str) -> None:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or index in self._completed:
                continue
            if index != self._running:
                cell.outputs = []
            message = f"cellule non exécutée : {reason}"
            cell.outputs.append(NotebookNode(output_type="error", ename=NOT_EXECUTED, evalue=message,
                                             traceback=[f"{NOT_EXECUTED}: {message}"]))


class _Serialized:
    """Mixin: run the preprocessor while holding :data:`GRADEBOOK_LOCK`."""

    def preprocess(self, nb, resources):
        with GRADEBOOK_LOCK:
            return super().preprocess(nb, resources)


class SerializedOverwriteCells(_Serialized, OverwriteCells):
    pass


class SerializedSaveAutoGrades(_Serialized, SaveAutoGrades):
    pass


class SerializedAssignLatePenalties(_Serialized, AssignLatePenalties):
    pass


class GetGradesFr(_Serialized, GetGrades):
    """``GetGrades`` + ``needs_manual_grade`` in each graded cell's metadata (for the feedback), and
    nbgrader's automatic comment in French."""

    def _get_comment(self, cell, resources):
        super()._get_comment(cell, resources)
        if cell.metadata.nbgrader.get("comment") == "No response.":
            cell.metadata.nbgrader["comment"] = "Pas de réponse."

    def _get_score(self, cell, resources):
        super()._get_score(cell, resources)
        grade = self.gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"], self.notebook_id,
                                          self.assignment_id, self.student_id)
        cell.metadata.nbgrader["needs_manual_grade"] = bool(grade.needs_manual_grade)


_KIT_PATH = re.compile(r"tpkit|site-packages|File \"|^\s*Traceback", re.I)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failure_message(output: NotebookNode) -> str:
    """What a student sees of a failed test: the exception's message (French from the checks); the
    exception's name only when it tells something (not for assertion/check failures)."""
    ename = _ANSI.sub("", str(output.get("ename", "")))
    evalue = _ANSI.sub("", str(output.get("evalue", ""))).strip()
    if ename in ("AssertionError", "CheckFailed", NOT_EXECUTED, CELL_TIMEOUT):
        return evalue or "le test a échoué."
    return f"{ename} : {evalue}" if evalue else ename


class StudentSafeOutputs(NbGraderPreprocessor):
    """Feedback: make test cells safe to show.

    In a grade cell that is not an answer (a test cell): an error output keeps only the failure
    message (no traceback: it would print hidden lines and kit paths); stream lines that mention the kit
    or repeat a hidden line are dropped. In every other code cell, traceback lines mentioning the kit
    are dropped. Run it *before* ``ClearHiddenTests`` (it reads the hidden region to know its lines)."""

    label = Unicode("Échec du test").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        is_test = utils.is_grade(cell) and not utils.is_solution(cell)
        hidden = {line.strip() for line in split_hidden(cell.source)[1] if line.strip()} if is_test else set()
        outputs = []
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                if is_test:
                    out.traceback = [f"\x1b[0;31m{self.label}\x1b[0m : {failure_message(out)}"]
                else:
                    out.traceback = [line for line in out.traceback if "tpkit" not in _ANSI.sub("", line)]
            elif out.output_type == "stream" and is_test:
                kept = [line for line in out.text.split("\n")
                        if not _KIT_PATH.search(line) and line.strip() not in hidden]
                if not any(line.strip() for line in kept):
                    continue
                out.text = "\n".join(kept)
            outputs.append(out)
        cell.outputs = outputs
        return cell, resources


__all__ = ["GRADEBOOK_LOCK", "NOT_EXECUTED", "CELL_TIMEOUT", "LimitedExecute", "SerializedOverwriteCells",
           "SerializedSaveAutoGrades", "SerializedAssignLatePenalties", "GetGradesFr",
           "StudentSafeOutputs", "ClearHiddenTests", "failure_message", "kernel_stop_reason"]
