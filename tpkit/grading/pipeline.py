"""Grade a set of submissions: pre-check -> autograde in parallel -> feedback -> results.

Parallelism and gradebook safety
--------------------------------
``workers`` threads of this process each take the next submission from a shared queue and run
nbgrader's own ``Autograde`` converter on it (:class:`~tpkit.grading.converters.ParallelAutograde`),
then ``GenerateFeedback`` (:class:`~tpkit.grading.converters.FrenchFeedback`). The student's code runs
in a kernel *process* of its own, so the threads only orchestrate. Each thread starts the kernel of
its next submission while the current one executes (:class:`~tpkit.grading.kernels.KernelSupply`).

There is one gradebook (``gradebook.db``, sqlite) and one writer at a time: every nbgrader step that
touches it runs under :data:`~tpkit.grading.gradebook.GRADEBOOK_LOCK` (a few milliseconds per
step, never held while a notebook executes), and a file lock (``exports/.grading.lock``) keeps a second
grading run of the same course out. Nothing is copied or merged afterwards.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import resource
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Optional

import nbformat
from nbgrader.api import MissingEntry
from nbgrader.coursedir import CourseDirectory

from tpkit.grading import cgroups, kernels, precheck, runlock, traces
from tpkit.grading.converters import FrenchFeedback, ParallelAutograde, thread_safe_nbgrader
from tpkit.grading.export import set_aside_previous_exports
from tpkit.grading.feedback import write_failure_feedback
from tpkit.grading.findings import execution_findings
from tpkit.grading.gradebook import GRADEBOOK_LOCK, load_expected, read_scores, reset_scores, shared_engine
from tpkit.grading.logs import student_log
from tpkit.grading.options import Options, course_config, course_id, coursedir, load_config, step_folder
from tpkit.grading.results import (FAILED, FLAGGED, OK, PARTIAL, REPORT_NAME, RunReport, StudentResult,
                                   latest_report, merge_reports)


class GradingError(Exception):
    """The grading run itself cannot proceed (not a problem of one submission)."""


@contextlib.contextmanager
def run_lock(options: Options):
    """One grading or export run at a time on a course (:mod:`tpkit.grading.runlock`)."""
    try:
        with runlock.course_lock(options.course_exports):
            yield
    except runlock.RunInProgress as exc:
        raise GradingError(str(exc)) from None


def _remove_outputs(cfg, options: Options, student: str) -> None:
    for step in ("autograded", "feedback"):
        folder = step_folder(cfg, options, step, student)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


def _notebook_size(pre: precheck.Precheck) -> int:
    try:
        return pre.staged.stat().st_size
    except (AttributeError, OSError):
        return 0


def _interleaved(items: list) -> list:
    """Largest, smallest, 2nd largest, 2nd smallest... of a list sorted largest first."""
    out, lo, hi = [], 0, len(items) - 1
    while lo <= hi:
        out.append(items[lo])
        if lo != hi:
            out.append(items[hi])
        lo, hi = lo + 1, hi - 1
    return out


class Grader:
    """One grading run over a list of students (see the module docstring)."""

    def __init__(self, options: Options, progress: Optional[Callable[[int, int, StudentResult], None]] = None):
        self.options = options
        self.progress = progress
        self._print_lock = threading.Lock()

    def run(self, students: list, preset_failures: Optional[dict] = None,
            preset_remarks: Optional[dict] = None) -> RunReport:
        """Grade ``students``; ``preset_failures`` {student: reason} have nothing to grade (reported
        as failed), ``preset_remarks`` {student: [remarks]} are added to the pre-check's findings."""
        options = self.options
        preset_failures = dict(preset_failures or {})
        self.preset_remarks = dict(preset_remarks or {})
        if options.sandbox and students:
            from tpkit.grading import sandbox
            try:
                sandbox.check_available()  # before anything is written
            except sandbox.SandboxUnavailable as exc:
                raise GradingError(str(exc)) from None
        with run_lock(options), tempfile.TemporaryDirectory(prefix="tpkit-staging-") as staging:
            options.exports.mkdir(parents=True, exist_ok=True)
            set_aside_previous_exports(options.exports)  # current ones are written at the end only
            # nbgrader's converters chdir to the course root themselves (process-wide)
            with contextlib.chdir(options.root), shared_engine():
                return self._run(sorted(set(students) | set(preset_failures)), preset_failures, Path(staging))

    def _run(self, students: list, preset_failures: dict, staging: Path) -> RunReport:
        options = self.options
        t0 = time.monotonic()
        cfg = load_config(options, staging)
        cd = CourseDirectory(config=cfg)
        release_nb = Path(cd.format_path(cd.release_directory, ".", options.assignment)) / f"{options.notebook}.ipynb"
        try:
            with GRADEBOOK_LOCK:
                expected = load_expected(cd.db_url, course_id(cfg), options.assignment, options.notebook,
                                         release_nb)
        except MissingEntry:
            raise GradingError(f"le devoir {options.assignment} n'est pas dans le gradebook : "
                               "générez d'abord la version étudiante (make release)")
        report = RunReport(options.assignment, expected.graded_ids,
                           {g: expected.cells[g].points for g in expected.graded_ids},
                           expected.max_score, {}, workers=options.workers, sandbox=options.sandbox,
                           isolation=cgroups.isolation_notice(options.sandbox))
        self._total = len(students)
        self._done = 0
        source = options.root / "source" / options.assignment
        data_files = frozenset(p.relative_to(source).as_posix() for p in source.rglob("*")
                               if p.is_file() and p.suffix != ".ipynb") if source.is_dir() else frozenset()

        settings = kernels.settings_for(options)
        if set(students) - set(preset_failures):  # the zygote imports while the submissions are pre-checked
            kernels.prestart(settings)
        kernel_cpu0 = kernels.KERNEL_CPU.seconds
        queue = collections.deque()
        course = course_config(options)  # the course's own folders (cfg's submitted/ is the staging copy)
        for student in students:
            if student in preset_failures:
                result = self._failed(cfg, student, preset_failures[student], expected)
            else:
                pre = precheck.stage(student, step_folder(course, options, "submitted", student),
                                     staging / student / options.assignment, expected, data_files)
                pre.findings[:0] = [precheck.Finding("collect", m) for m in self.preset_remarks.get(student, [])]
                if pre.failure:
                    result = self._failed(cfg, student, pre.failure, expected, pre.messages)
                else:
                    queue.append((student, pre))
                    continue
            report.results[student] = result
            self._report_progress(result)

        # long and short notebooks in turns (a notebook's size grows with what its student wrote and ran):
        # a long one keeps a core busy in its kernel while short ones, mostly the grading process's own
        # work (one core at most: the GIL), keep the other; sorted longest first, a run ended on a string
        # of short notebooks with a core idle. The last ones are middle-sized: no long tail either
        queue = collections.deque(_interleaved(sorted(queue, key=lambda item: -_notebook_size(item[1]))))
        qlock = threading.Lock()

        def worker():
            supply = kernels.KernelSupply(settings, more_work=lambda: len(queue) > 0)
            kernels.set_current_supply(supply)
            try:
                while True:
                    with qlock:
                        if not queue:
                            return
                        student, pre = queue.popleft()
                    try:
                        result = self._grade_one(cfg, student, pre, expected)
                    except Exception as exc:  # a bug of ours must not lose the other students
                        logging.getLogger("tpkit.grading").exception("grading %s", student)
                        result = StudentResult(student, FAILED, [f"erreur interne de correction : {exc}"],
                                               max_score=expected.max_score)
                    with qlock:
                        report.results[student] = result
                    self._report_progress(result)
            finally:
                supply.close()
                kernels.set_current_supply(None)

        threads = [threading.Thread(target=worker, name=f"tpkit-grader-{k}", daemon=True)
                   for k in range(min(options.workers, len(queue)))]
        with warnings.catch_warnings(), thread_safe_nbgrader():
            warnings.simplefilter("ignore")  # sqlalchemy/nbformat noise; per-student logs keep details
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        report.seconds = round(time.monotonic() - t0, 2)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        report.own_cpu_seconds = round(usage.ru_utime + usage.ru_stime, 2)
        report.kernels_cpu_seconds = round(kernels.KERNEL_CPU.seconds - kernel_cpu0, 2)
        report.results = dict(sorted(report.results.items()))
        report.graded_now = list(report.results)
        report = merge_reports(latest_report(options.exports), report)  # the class, not this run alone
        (options.exports / REPORT_NAME).write_text(report.to_json(), encoding="utf-8")
        return report

    def _report_progress(self, result: StudentResult) -> None:
        with self._print_lock:
            self._done += 1
            if self.progress:
                self.progress(self._done, self._total, result)

    def _failed(self, cfg, student, reason, expected, remarks=()) -> StudentResult:
        _remove_outputs(cfg, self.options, student)
        reset_scores(self.options, cfg, student)
        if self.options.feedback:
            write_failure_feedback(self.options, student, reason, cfg)
        return StudentResult(student, FAILED, [reason], max_score=expected.max_score)

    def _grade_one(self, cfg, student: str, pre: precheck.Precheck, expected) -> StudentResult:
        options = self.options
        t0 = time.monotonic()
        result = StudentResult(student, max_score=expected.max_score)
        try:
            with student_log(options, student) as logger:
                return self._autograde(cfg, student, pre, expected, result, logger)
        finally:
            result.seconds = round(time.monotonic() - t0, 2)

    def _autograde(self, cfg, student, pre, expected, result, logger) -> StudentResult:
        options = self.options
        for m in pre.messages:
            logger.warning("pre-check: %s", m)
        converter = ParallelAutograde(coursedir=coursedir(cfg, options, student), config=cfg, log=logger)
        converter.force = True
        try:
            converter.start()
        except Exception as exc:
            logger.error("autograde failed: %r", exc)
        graded = step_folder(cfg, options, "autograded", student) / f"{options.notebook}.ipynb"
        if not graded.is_file():
            return self._failed(cfg, student, "erreur pendant la correction automatique (détails : "
                                f"{(options.exports / 'logs' / student).relative_to(options.root)}.log)", expected, pre.messages)
        graded_nb = nbformat.read(str(graded), as_version=4)
        remarks = pre.messages + execution_findings(graded_nb, options.memory_mb)
        # files dropped at staging (links, code, packages) are attempts too
        dropped = [f.message for f in pre.findings if f.kind == "dropped"]
        remarks = [m for m in remarks if m not in dropped]
        alerts = dropped + traces.flags(graded_nb)
        read_scores(cfg, result, expected)
        if alerts:
            result.status, result.reasons = FLAGGED, alerts + remarks
        elif remarks:
            result.status, result.reasons = PARTIAL, remarks
        if options.feedback:
            feedback = FrenchFeedback(coursedir=coursedir(cfg, options, student), config=cfg, log=logger)
            feedback.force = True
            feedback.tpkit_resources = {"student": student, "remarks": remarks}
            try:
                feedback.start()
            except Exception as exc:
                logger.error("feedback failed: %r", exc)
                result.status = PARTIAL if result.status == OK else result.status
                result.reasons.append("retour HTML non généré (voir le journal)")
        return result


def grade(students: list, options: Optional[Options] = None, progress=None,
          preset_failures: Optional[dict] = None, preset_remarks: Optional[dict] = None) -> RunReport:
    """Grade ``submitted/<student>/<assignment>/`` for each student; see :class:`Grader`."""
    return Grader(options or Options(), progress).run(students, preset_failures, preset_remarks)
