"""Grade a set of submissions: a worker process per submission, one coordinator.

Coordinator and workers
-----------------------
Each submission is graded by a worker *process* of its own (:mod:`tpkit.grading.worker`: pre-check,
kernel, trusted checks, scores, feedback page), started from a fork server in milliseconds and boxed
by a wall-clock, a CPU-time and a memory limit (:mod:`tpkit.grading.options`). ``workers`` submissions
are graded at once. This process, the coordinator, parses nothing a student wrote: it schedules the
workers in an order that keeps the cores busy (:mod:`tpkit.grading.queue_order`), relays their kernel
fork requests to the run's one zygote (:mod:`tpkit.grading.forkrelay`: a worker's own sandboxes only),
reads each result as size-capped, validated JSON (:mod:`tpkit.grading.worker_result`), and is the only
writer of the gradebook and of the course's ``autograded/``, ``feedback/`` (:mod:`tpkit.grading.writeback`)
and exports. A worker that raises, overruns a limit or
dies costs its own submission (« failed: <raison> »); the run goes on.

The run writes nothing until it knows its kernels can start: when the first kernels of the run (those
of the first ``min(3, N)`` submissions that reached kernel start) all stopped at start-up for the same
reason, a setting or the machine is at fault, not the students: the run stops with that reason
(:class:`GradingError`, exit 2), no grade written, the previous exports left where they were. The
previous exports are set aside (:func:`~tpkit.grading.export.set_aside_previous_exports`) only when
the first grade is written. A file lock (``exports/.grading.lock``) keeps a second grading run of the
course out.
"""
from __future__ import annotations

import collections
import contextlib
import os
import resource
import shutil
import signal
import tempfile
import threading
import time
from multiprocessing.connection import wait as wait_for
from pathlib import Path
from typing import Callable, Optional

from nbgrader.api import MissingEntry
from nbgrader.coursedir import CourseDirectory

from tpkit.grading import (bookcopy, cgroups, compat, forkrelay, forkserver, incremental, isolation, kernels, proctools,
                           quota, runlock, worker, worker_result)
from tpkit.grading.export import set_aside_previous_exports
from tpkit.grading.feedback import write_failure_feedback
from tpkit.grading.gradebook import GRADEBOOK_LOCK, load_expected, name_student, read_scores, reset_scores, shared_engine
from tpkit.grading.options import Options, course_config, course_id, load_config, step_folder
from tpkit.grading.queue_order import queue_order
from tpkit.grading.results import FAILED, REPORT_NAME, RunReport, StudentResult, latest_report, merge_reports
from tpkit.grading.writeback import apply_grades, copy_outputs, remove_outputs

#: The run stops when its first kernels all die at start-up for one reason: this many at most.
FIRST_KERNELS = 3


class GradingError(Exception):
    """The grading run itself cannot proceed (not a problem of one submission)."""


class Interrupted(Exception):
    """Ctrl-C (SIGINT) stopped the run: the submissions graded so far are written (gradebook, feedback,
    ``grading_report.json`` with their statuses and remarks); ``report.left`` lists the others."""

    def __init__(self, report):
        super().__init__("interrompu")
        self.report = report


@contextlib.contextmanager
def _sigint_sets(flag: threading.Event):
    """While grading, Ctrl-C sets ``flag`` (the scheduler stops between two results) instead of raising
    KeyboardInterrupt in the middle of a gradebook write. Outside the main thread: unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: flag.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def run_lock(options: Options):
    """One grading or export run at a time on a course (:mod:`tpkit.grading.runlock`)."""
    try:
        with runlock.course_lock(options.course_exports):
            yield
    except runlock.RunInProgress as exc:
        raise GradingError(str(exc)) from None


class _Running:
    """A worker at work: its process, the coordinator's end of its pipe, its job, when it started."""

    def __init__(self, proc, conn, job: worker.Job, relay: threading.Thread):
        self.proc, self.conn, self.job, self.relay = proc, conn, job, relay
        self.t0 = time.monotonic()


class RunStopped(GradingError):
    """The first kernels all died at start-up for one reason (see the module docstring)."""


class Grader:
    """One grading run over a list of students (see the module docstring)."""

    #: the workers run on this machine (their kernels come from this process's zygote); False: elsewhere
    #: (:class:`tpkit.grading.cluster.DaskGrader` overrides :meth:`_schedule`)
    local_kernels = True

    def __init__(self, options: Options, progress: Optional[Callable[[int, int, StudentResult], None]] = None):
        self.options = options
        self.progress = progress
        self._print_lock = threading.Lock()
        self.interrupted = threading.Event()

    def run(self, students: list, preset_failures: Optional[dict] = None,
            preset_remarks: Optional[dict] = None) -> RunReport:
        """Grade ``students``; ``preset_failures`` {student: reason} have nothing to grade (reported
        as failed), ``preset_remarks`` {student: [remarks]} are added to the pre-check's findings."""
        options = self.options
        try:
            compat.check_versions()  # the patches of nbgrader's internals hold for its pinned version only
        except compat.IncompatibleVersions as exc:
            raise GradingError(str(exc)) from None
        preset_failures = dict(preset_failures or {})
        self.preset_remarks = dict(preset_remarks or {})
        if options.settings.sandbox and students and self.local_kernels:  # (a cluster's machines check their own)
            from tpkit.grading import sandbox, sandbox_oneoff
            try:
                sandbox_oneoff.check_available()  # before anything is written
            except sandbox.SandboxUnavailable as exc:
                raise GradingError(str(exc)) from None
        with run_lock(options), tempfile.TemporaryDirectory(prefix="tpkit-staging-") as staging:
            options.exports.mkdir(parents=True, exist_ok=True)
            # nbgrader's converters chdir to the course root themselves (process-wide)
            with contextlib.chdir(options.root), shared_engine():
                return self._run(sorted(set(students) | set(preset_failures)), preset_failures, Path(staging))

    def _run(self, students: list, preset_failures: dict, staging: Path) -> RunReport:
        options = self.options
        if self.local_kernels and any(s not in preset_failures for s in students):
            forkserver.boot()  # its imports and pre-warm overlap what follows
        t0 = time.monotonic()
        cfg = load_config(options)
        cd = CourseDirectory(config=cfg)
        release_nb = Path(cd.format_path(cd.release_directory, ".", options.assignment)) / f"{options.notebook}.ipynb"
        try:
            with GRADEBOOK_LOCK:
                expected = load_expected(cd.db_url, course_id(cfg), options.assignment, options.notebook,
                                         release_nb)
        except MissingEntry:
            raise GradingError(f"le devoir {options.assignment} n'est pas dans le gradebook : "
                               "générez d'abord la version étudiante (make release)")
        self._previous = latest_report(options.exports)  # the class before this run (set aside below)
        if self._previous is not None and self._previous.assignment != options.assignment:
            self._previous = None
        code_hash = incremental.grading_hash(options)
        from tpkit.grading.lms import full_names
        self._names = full_names(options.root / "submitted")  # an LMS's roster: names for the formgrader
        report = RunReport(options.assignment, expected.graded_ids,
                           {g: expected.cells[g].points for g in expected.graded_ids},
                           expected.max_score, {}, workers=options.settings.workers, sandbox=options.settings.sandbox,
                           isolation=isolation.isolation_notice(options.settings.sandbox))
        self._total = len(students)
        self._done = 0
        self._cfg, self._expected, self._report = cfg, expected, report
        self._written = False
        source = options.root / "source" / options.assignment
        data_files = frozenset(p.relative_to(source).as_posix() for p in source.rglob("*")
                               if p.is_file() and p.suffix != ".ipynb") if source.is_dir() else frozenset()
        # the workers' private copies are made from this one (sqlite or server: workers never write the course's)
        shared_copy = bookcopy.run_copy(cd.db_url, staging / "gradebook.db")
        kernel_root = staging / "noyaux"
        kernel_root.mkdir()
        settings = kernels.settings_for(options, tmp_root=str(kernel_root))
        queued = [s for s in students if s not in preset_failures]
        if queued and self.local_kernels:  # the zygote imports while the first workers pre-check their notebooks
            kernels.prestart(settings)
        course = course_config(options)  # the course's own folders
        jobs = collections.deque()
        self._hashes, self._imports = {}, {}
        for k, student in enumerate(queued):
            private = staging / f"w{k}"
            private.mkdir(mode=0o700)
            submitted = step_folder(course, options, "submitted", student)
            self._hashes[student] = (incremental.submission_hash(submitted), code_hash)
            self._imports[student] = self._import_remarks(student)
            previous = step_folder(course, options, "autograded", student) / f"{options.notebook}.ipynb"
            jobs.append(worker.Job(student, options, private, submitted,
                                   shared_copy, expected, data_files, settings,
                                   remarks=list(self._imports[student]),
                                   fault=worker.faults_for(student),
                                   previous_autograded=previous if previous.is_file() else None))
        jobs = collections.deque(queue_order(list(jobs), options.notebook))  # long and short ones in turns
        # nothing is written before the first kernels are known to start (see the module docstring)
        self._held = [(s, {"status": FAILED, "reasons": [r]}) for s, r in preset_failures.items()]
        self._starts: list = []
        self._decided = False
        self._first = min(FIRST_KERNELS, len(queued))
        self._worker_cpu, self._kernel_cpu = 0.0, 0.0
        try:
            with _sigint_sets(self.interrupted):
                self._schedule(jobs, settings)
        finally:
            shutil.rmtree(kernel_root, ignore_errors=True)
        self._decide(final=True)
        report.seconds = round(time.monotonic() - t0, 2)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # the coordinator, the fork server (its imports) and the workers: what grading cost besides kernels
        report.own_cpu_seconds = round(usage.ru_utime + usage.ru_stime + forkserver.cpu_seconds()
                                       + self._worker_cpu, 2)
        report.kernels_cpu_seconds = round(self._kernel_cpu, 2)
        report.results = dict(sorted(report.results.items()))
        report.graded_now = list(report.results)
        report.left = sorted(s for s in students if s not in report.results)
        if self.interrupted.is_set() and not report.results:  # nothing graded: the exports stay as they were
            raise Interrupted(report)
        report = self._save_report()
        if self.interrupted.is_set():
            raise Interrupted(report)
        return report

    def _import_remarks(self, student: str) -> list:
        """The LMS import's remarks of ``student``: this run's import's, else the last import's (a regrade
        without the zip keeps « notebook rendu sous le nom … »: still true of the file handed in)."""
        if student in self.preset_remarks:
            return list(self.preset_remarks[student])
        before = self._previous.results.get(student) if self._previous is not None else None
        return list(before.import_remarks) if before is not None else []

    def _save_report(self) -> RunReport:
        """The class's report as it stands (the previous one, this run's results over it), written after
        every result: a run stopped by Ctrl-C or killed keeps what it graded."""
        self._set_aside()
        run = self._report
        merged = RunReport(**{**run.__dict__, "results": dict(run.results)})
        merged = merge_reports(self._previous, merged)
        tmp = self.options.exports / (REPORT_NAME + ".tmp")
        tmp.write_text(merged.to_json(), encoding="utf-8")
        os.replace(tmp, self.options.exports / REPORT_NAME)
        return merged

    # -------------------------------------------------------------- scheduling

    def _schedule(self, jobs: collections.deque, settings) -> None:
        options = self.options
        ctx = forkserver.context() if jobs else None
        running: dict = {}
        try:
            while (jobs or running) and not self.interrupted.is_set():
                self._start_workers(ctx, jobs, running, settings)
                ready = set(wait_for([r.proc.sentinel for r in running.values()], timeout=0.5))
                if self.interrupted.is_set():  # a result that came with Ctrl-C may hold its interruption
                    break
                now = time.monotonic()
                ended = False
                for student, r in list(running.items()):
                    if r.proc.sentinel in ready:
                        self._finish(r, None)
                    elif now - r.t0 > options.settings.worker_wall():
                        self._finish(r, worker_result.wall_reason(options))
                    else:
                        continue
                    del running[student]
                    ended = True
                if ended:
                    if self._decided and not self.interrupted.is_set():  # the next workers start (their
                        # kernels boot) while the finished ones' results are written
                        self._start_workers(ctx, jobs, running, settings)
                    self._decide(final=not jobs and not running)
        finally:
            for r in running.values():  # stopped: no worker outlives the run
                self._stop(r)

    def _start_workers(self, ctx, jobs: collections.deque, running: dict, settings) -> None:
        while jobs and len(running) < self.options.settings.workers:
            job = jobs.popleft()
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=worker.main, args=(job, theirs), name=f"tpkit-worker-{job.student}",
                               daemon=True)
            proc.start()
            theirs.close()
            relay = threading.Thread(target=forkrelay.serve_forks, args=(mine, proc.pid, settings),
                                     name="tpkit-fork-relay", daemon=True)
            relay.start()
            running[job.student] = _Running(proc, mine, job, relay)

    def _stop(self, r: _Running, kill: bool = True) -> None:
        if kill and r.proc.is_alive():  # the worker and everything it started (its kernel's sandbox)
            proctools.kill_tree(r.proc.pid)
        r.proc.join()
        r.conn.close()
        r.relay.join(5)
        groups = cgroups.backend() if kill else None
        if groups is not None:  # a killed worker's kernel groups (named after it: gone with it)
            groups.sweep()
        if kill:  # and its kernels' capped folders (tmpfs named after it): a run stopped by Ctrl-C or a
            quota.sweep()  # wall limit would otherwise leave them mounted, busy, in the staging folder

    def _finish(self, r: _Running, killed: Optional[str]) -> None:
        """A worker ended (or overran: ``killed`` says why): read its result, hold or apply it."""
        self._stop(r, kill=killed is not None)
        self._accept(r.job, round(time.monotonic() - r.t0, 2), r.proc.exitcode, killed)

    def _accept(self, job: worker.Job, seconds: float, exitcode: Optional[int], killed: Optional[str]) -> None:
        """Read the result a worker left in its private folder (``exitcode``: how the worker ended;
        ``killed``: why it was stopped) and hold it until :meth:`_decide` applies it."""
        options, student = self.options, job.student
        if killed is not None:
            result = {"status": FAILED, "reasons": [killed]}
        else:
            try:
                result = worker_result.read_result(job.private / worker_result.RESULT_NAME, student, self._expected)
            except worker_result.ResultError as exc:
                if exitcode != 0 and not (job.private / worker_result.RESULT_NAME).exists():
                    reason = worker_result.death_reason(exitcode, options)
                else:
                    reason = f"résultat du correcteur refusé : {exc}"
                result = {"status": FAILED, "reasons": [reason]}
        self._worker_cpu += result.get("cpu_seconds", 0.0)
        self._kernel_cpu += result.get("kernels_cpu_seconds", 0.0)
        result["seconds"] = seconds
        result["private"] = job.private
        if result.get("kernel_start") is not None:
            self._starts.append(result["kernel_start"])
        self._held.append((student, result))

    def _decide(self, final: bool) -> None:
        """Apply the held results once the first kernels are known to start; stop the run when they
        all died at start-up for one reason."""
        if not self._decided:
            first = self._starts[:self._first]
            if len(first) < self._first and not final:
                return
            if first and all(f != "ok" for f in first) and len(set(first)) == 1:
                count = ("le premier noyau s'est arrêté" if len(first) == 1
                         else f"les {len(first)} premiers noyaux se sont arrêtés")
                raise RunStopped(f"correction arrêtée : {count} au démarrage ({first[0]}) ; aucune note "
                                 "écrite, exports précédents conservés : vérifiez les réglages "
                                 "(--memory-limit, --time-limit, bac à sable)")
            self._decided = True
        held, self._held = self._held, []
        for student, result in held:
            self._apply(student, result)

    # -------------------------------------------------------------- writing (this process only)

    def _set_aside(self) -> None:
        if not self._written:
            self._written = True
            set_aside_previous_exports(self.options.exports)  # current ones are written at the end only

    def _apply(self, student: str, data: dict) -> None:
        """Write one submission's result: gradebook, autograded/ and feedback/ folders, progress line."""
        options, expected, cfg = self.options, self._expected, self._cfg
        self._set_aside()
        if data["status"] == FAILED:
            result = self._failed(cfg, student, data["reasons"][0], expected)
            result.reasons = list(data["reasons"])
        else:
            apply_grades(cfg, options, student, data["gradebook"])
            copy_outputs(cfg, options, student, data["private"])
            result = StudentResult(student, data["status"], list(data["reasons"]), max_score=expected.max_score)
            read_scores(cfg, result, expected)
        result.seconds = data.get("seconds", 0.0)
        if self._names.get(student):
            name_student(cfg, student, self._names[student])
        if student in self._hashes:
            result.submission_hash, result.grading_hash = self._hashes[student]
            result.import_remarks = list(self._imports.get(student, []))
        self._report.results[student] = result
        self._save_report()
        self._report_progress(result)

    def _report_progress(self, result: StudentResult) -> None:
        with self._print_lock:
            self._done += 1
            if self.progress:
                self.progress(self._done, self._total, result)

    def _failed(self, cfg, student, reason, expected) -> StudentResult:
        remove_outputs(cfg, self.options, student)
        reset_scores(self.options, cfg, student)
        if self.options.feedback:
            write_failure_feedback(self.options, student, reason, cfg)
        return StudentResult(student, FAILED, [reason], max_score=expected.max_score)


def grade(students: list, options: Options, progress=None,
          preset_failures: Optional[dict] = None, preset_remarks: Optional[dict] = None) -> RunReport:
    """Grade ``submitted/<student>/<assignment>/`` for each student; see :class:`Grader`."""
    return Grader(options, progress).run(students, preset_failures, preset_remarks)
