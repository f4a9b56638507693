"""The grading executor: :class:`LimitedExecute`, nbgrader's ``Execute`` with a warm kernel from the
kernel supply it is given, the run's time and memory limits (those of the supply's kernel settings) and
the trusted checks; when the kernel dies or is killed, the cells it did not run are marked as failed
(nbgrader alone would record no grade at all)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Any, Bool, Integer, default

from tpkit.checks import run_check
from tpkit.grading import kernels, trusted
from tpkit.grading.findings import kernel_stop_reason, not_executed_output, timeout_output
from tpkit.grading.watchdog import Watchdog
from tpkit.vocabulary import grade_id
from tpkit.witness import Witness


class LimitedExecute(Execute):
    """nbgrader's ``Execute`` with a warm kernel from the :class:`~tpkit.grading.kernels.KernelSupply` it
    is given (``supply``, set by :class:`~tpkit.grading.converters.ParallelAutograde`), a whole-notebook
    time limit and a memory limit: those of the supply's settings (one derivation of the run's settings,
    :func:`tpkit.grading.kernels.settings_for`). Without a supply (plain ``nbgrader autograde``), one for
    this notebook from the course's ``c.TpkitGrading`` settings.

    If the kernel dies or a limit kills it, execution stops there, every code cell that did not
    complete gets an error output (``ename`` :data:`NOT_EXECUTED`, French reason naming the limit that
    acted) so that its test scores 0 instead of the full marks nbgrader gives an output-less test cell,
    and the grades of the cells that did run are kept. A kernel that stops before its first cell is
    recorded in the notebook's ``metadata.tpkit.kernel_start_failure`` (the run stops when its first
    kernels all do)."""

    supply = Any(None, allow_none=True, help="Where kernels come from, and their settings (a KernelSupply).")
    trusted_checks = Bool(True, help="Run the hidden `verifier` lines in the grading process, the kernel "
                          "answering through the witness protocol (False: in the kernel).").tag(config=True)
    salt = Integer(0, help="Secret that seeds the inputs the trusted checks draw (0: fixed inputs).").tag(config=True)

    @default("shutdown_kernel")
    def _shutdown_default(self):
        return "immediate"

    @default("error_on_timeout")
    def _error_on_timeout_default(self):
        return timeout_output(self.timeout)

    def _supply(self) -> tuple:
        """(the supply, whether it is this notebook's own: closed at its end)."""
        if self.supply is not None:
            return self.supply, False
        from tpkit.grading.config import TpkitGrading
        return kernels.KernelSupply(kernels.settings_for(TpkitGrading(config=self.config))), True

    def preprocess(self, nb: NotebookNode, resources=None, km=None):
        supply, own_supply = self._supply()
        settings = supply.settings
        kernel = supply.take()
        km = kernel.km
        self.kernel = kernel
        path = (resources or {}).get("metadata", {}).get("path") or None
        if path:
            _copy_files(path, kernel)
        self._completed = set()
        self._running = None
        self._repairs_failed = []  # [question, exception name] of the repairs that raised
        start_failure = None

        async def enter_directory(**kwargs):
            # the kernel works in its own scratch copy of the submission's files, never in autograded/
            msg_id = self.kc.execute(f"__import__('os').chdir({kernel.workdir!r})", silent=True,
                                     store_history=False, allow_stdin=False)
            await ensure_async(self.async_wait_for_reply(msg_id))

        self.on_notebook_start = enter_directory
        # RLIMIT_DATA (in the kernel) and the cgroup stop allocations first; resident memory is a backstop
        watchdog = Watchdog.for_kernel(kernel, settings.time_limit, settings.resident_mb, settings.threads)
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
            reason = kernel_stop_reason(watchdog.stop_reason(), settings.time_limit, settings.memory_mb,
                                        settings.resident_mb)
            self.log.warning("kernel stopped: %s", reason)
            if self._running is None:  # before any cell: the kernel did not start
                start_failure = reason
            self._mark_not_executed(nb, reason)
        finally:
            stray = kernels.stray_processes(kernel)
            # what the sandbox saw (read by tpkit.grading.traces); anything the student put there is replaced
            nb.metadata["tpkit"] = {"sandbox": [f"{stray} processus laissé(s) en arrière-plan par le notebook "
                                                "(tués à la fin)"] if stray else []}
            if start_failure:
                nb.metadata["tpkit"]["kernel_start_failure"] = start_failure
            if self._repairs_failed:
                nb.metadata["tpkit"]["repairs_failed"] = self._repairs_failed
            kc = getattr(self, "kc", None)
            if kc is not None:
                try:
                    kc.stop_channels()
                except Exception:
                    pass
                self.kc = None
            kernels.discard_kernel(kernel)
            if own_supply:
                supply.close()
            self.km = None
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        self._running = index
        # only test cells (restored from the gradebook): hidden markers typed into an answer cell must not
        # run a check, whose repair would hand the student the reference code
        is_test = cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)
        segments = trusted.plan(cell.source) if self.trusted_checks and is_test else None
        if segments is None:
            cell, resources = super().preprocess_cell(cell, resources, index)
        else:
            self._run_segments(cell, resources, index, segments)
        self._completed.add(index)
        return cell, resources

    def _run_segments(self, cell, resources, index, segments) -> None:
        """A test cell in trusted mode: hidden checks here, visible lines in the kernel, in order, until
        the first failure. Only the kernel's streams and errors are kept (an execute_result would claim
        partial credit); the verdict of a check is an error output the kernel cannot remove."""
        outputs, count = [], None
        for kind, payload in segments:
            if kind == "kernel":
                part = NotebookNode(cell_type="code", source=payload, metadata=cell.metadata,
                                    outputs=[], execution_count=None)
                super().preprocess_cell(part, resources, index)
                self.nb.cells[index] = cell  # nbclient put `part` in the notebook: the cell stays whole
                outputs += [o for o in part.outputs if o.output_type in ("stream", "error", "display_data")]
                count = part.get("execution_count") or count
                if any(o.output_type == "error" for o in part.outputs):
                    break
            else:
                transport = trusted.KernelTransport(self.kernel.exchange, _ExecutorLink(self), self.kernel.uid)
                try:
                    message = run_check(payload, Witness(transport, salt=self.salt, cells=self._answer_cells()),
                                        repair_failed=lambda qid, etype: self._repairs_failed.append([qid, etype]))
                finally:
                    transport.close()
                if message is not None:
                    outputs.append(NotebookNode(output_type="error", ename="AssertionError", evalue=message,
                                                traceback=[f"AssertionError: {message}"]))
                    break
        cell.outputs = outputs
        cell.execution_count = count

    def _answer_cells(self) -> dict:
        """Grade id -> source of the notebook's answer cells, as submitted (the last copy of a duplicated
        one, as graded): the training checks re-run them from a state of their choosing."""
        return {cell.metadata.nbgrader["grade_id"]: cell.source for cell in self.nb.cells
                if cell.cell_type == "code" and utils.is_solution(cell)
                and grade_id(cell)}

    def _mark_not_executed(self, nb: NotebookNode, reason: str) -> None:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or index in self._completed:
                continue
            if index != self._running:
                cell.outputs = []
            cell.outputs.append(not_executed_output(reason))


class _ExecutorLink:
    """The executor's kernel as :class:`trusted.KernelLink`: nbclient's client, timeout and checks."""

    def __init__(self, executor: LimitedExecute):
        self.executor = executor
        self.timeout = executor._get_timeout(None)

    def start(self, code: str) -> str:
        return self.executor.kc.execute(code, silent=True, store_history=False, allow_stdin=False,
                                        stop_on_error=False)

    def finish(self, msg_id: str):
        return run_sync(self.executor.async_wait_for_reply)(msg_id)

    def check_alive(self) -> None:
        run_sync(self.executor._async_check_alive)()

    def interrupt(self) -> None:
        self.executor.log.error("Timeout waiting for a check's answer (%ss): interrupting the kernel", self.timeout)
        run_sync(self._interrupt)()

    async def _interrupt(self) -> None:
        await ensure_async(self.executor.km.interrupt_kernel())


def _copy_files(folder, kernel) -> None:
    """The submission's files (data files restored from source/) into the kernel's scratch folder:
    regular files only, never through a link, notebooks left out."""
    for entry in Path(folder).iterdir():
        if entry.is_symlink() or not entry.is_file() or entry.suffix == ".ipynb":
            continue
        target = kernel.scratch / entry.name
        shutil.copyfile(entry, target, follow_symlinks=False)
        if kernel.uid is not None:
            os.chown(target, kernel.uid, kernel.uid)
