"""One submission, one box: the worker process that grades one submission.

Everything the grading run does with one submission's untrusted content runs here, in a process of
its own: reading and staging its notebook (:func:`tpkit.grading.staging.stage`), supervising its
kernel, running its trusted checks and decoding its answers (:class:`~tpkit.grading.converters.
ParallelAutograde`), reading its scores and rendering its feedback page
(:class:`~tpkit.grading.converters.FrenchFeedback`). The coordinator (:mod:`tpkit.grading.pipeline`)
only schedules workers, reads what they return *as data* and writes the gradebook and the exports.

Why this shape
--------------
* **A process per submission, started by a fork server.** A deeply nested notebook (RecursionError),
  a quadratic Markdown cell or a decoding bomb costs that process only. Workers come from
  multiprocessing's ``forkserver`` with the grading modules (nbgrader, nbconvert, torch, the kit)
  preloaded and its caches filled once (:mod:`tpkit.grading.forkserver`): a worker starts already imported, in a fork
  (start to exit of an empty worker: median 0.37 s measured at load average 17 on 2 shared cores, where
  importing those modules costs ~3 s of CPU), and nothing it does (module state, caches, memory)
  reaches the next one. Measured on the 9 examples: the same grades and pages, the kernels' CPU
  unchanged (53.8 s before, 55.4 s after), workers ~1.3 s of CPU per submission.
* **Limits on the worker itself** (:mod:`tpkit.grading.options`): ``RLIMIT_DATA`` (an allocation past
  it raises MemoryError: « mémoire du correcteur dépassée »), ``RLIMIT_CPU`` (SIGXCPU), and a wall
  clock enforced by the coordinator, which kills the worker and everything it started.
* **A private gradebook and private output folders.** nbgrader's ``Autograde`` and ``GenerateFeedback``
  run unchanged, but on a copy of ``gradebook.db`` (copied once per run by the coordinator, then once
  per worker: 0.4 MB, about a millisecond; a PostgreSQL gradebook is copied into a sqlite file once
  per run: :mod:`tpkit.grading.bookcopy`, so no worker ever writes a server gradebook) and with ``autograded/`` and ``feedback/`` in the worker's
  private folder (inside the run's 0700 staging folder). The copy holds the submission's manual scores
  too, so the feedback page shows the numbers the gradebook will hold. The worker returns the
  submission's automatic scores, comments, ``needs_manual_grade`` flags, timestamp and late penalty;
  the coordinator, the gradebook's single writer, applies them with nbgrader's Gradebook API (manual
  scores untouched) and moves the two folders into the course. A worker can thus only ever change its
  own submission's grade, and only through values the coordinator checks
  (:func:`tpkit.grading.worker_result.read_result`).
* **Results as data.** The worker writes one JSON file (:data:`tpkit.grading.worker_result.MAX_RESULT_BYTES`
  at most), which the coordinator checks field by field (:mod:`tpkit.grading.worker_result`); it never
  unpickles anything a worker produced.
* **One zygote for the run.** Warm kernels are forked by the coordinator's zygote
  (:mod:`tpkit.grading.zygote`, about 3 s of CPU to start, so never one per worker). A worker asks for
  a fork through its pipe to the coordinator, which forwards it only into that worker's own sandboxes
  (:mod:`tpkit.grading.forkrelay`).
* **Hand grades kept.** A cell the instructor graded stays graded while what was graded is unchanged
  (:mod:`tpkit.grading.manual_grades`).

Test-only fault injection: ``TPKIT_TEST_WORKER_FAULTS="student:fault,..."`` in the coordinator's
environment (``*`` for every student) makes the worker of that submission raise (``raise``), sleep past
its wall limit (``sleep``), spin past its CPU limit (``cpu``), allocate past its memory limit
(``memory``), kill itself (``signal``), return a malformed (``garbage``) or oversized (``huge``) result,
or start kernels that die at start-up (``kernel``). Read by the coordinator and handed to the worker
with its job; used by tests/grading/test_worker.py only.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import resource
import shutil
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

sys.modules.setdefault("rfc3987_syntax", None)  # as the grading command does (1.3 s of CPU at import)

from tpkit.grading import kernels, precheck, staging  # noqa: E402
from tpkit.grading.expected import Expected  # noqa: E402
from tpkit.grading.forkrelay import relay_forker  # noqa: E402
from tpkit.grading.manual_grades import graded_by_hand, keep_manual_grades  # noqa: E402
from tpkit.grading.options import Options  # noqa: E402
from tpkit.grading.results import FAILED, FLAGGED, OK, PARTIAL  # noqa: E402
from tpkit.grading.worker_result import MAX_RESULT_BYTES, RESULT_NAME  # noqa: E402

FAULTS_VARIABLE = "TPKIT_TEST_WORKER_FAULTS"

_PR_SET_PDEATHSIG = 1


@dataclass
class Job:
    """What a worker is given (pickled by the coordinator to the worker: trusted to untrusted only)."""

    student: str
    options: Options
    private: Path  # the worker's own folder (0700 staging of the run)
    submitted: Path  # the course's submitted/<student>/<assignment>/ (read, never written)
    gradebook: Optional[Path]  # the run's sqlite copy of the gradebook (copied again here), even of a server's
    expected: Expected
    data_files: frozenset
    settings: kernels.KernelSettings
    remarks: list = field(default_factory=list)
    fault: str = ""
    #: the course's autograded notebook of the last grade (what the formgrader showed), None when absent:
    #: a written answer graded by hand stays graded when its text is the same
    #: (:func:`tpkit.grading.manual_grades.keep_manual_grades`)
    previous_autograded: Optional[Path] = None


def faults_for(student: str, text: Optional[str] = None) -> str:
    """The test-only fault of ``student`` in :data:`FAULTS_VARIABLE` ('' when none)."""
    text = os.environ.get(FAULTS_VARIABLE, "") if text is None else text
    for item in text.split(","):
        who, _, fault = item.strip().partition(":")
        if fault and who in (student, "*"):
            return fault
    return ""


def _limit_self(options: Options) -> None:
    """Soft limits only: the kernels this worker launches set their own (the sandbox's launcher, or
    the kernel's start-up line when unsandboxed)."""
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the fork server (and the run)
    for which, value in ((resource.RLIMIT_DATA, options.settings.worker_memory_limit * 1024 * 1024),
                         (resource.RLIMIT_CPU, options.settings.worker_cpu_limit)):
        if value > 0:
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, hard))


def main(job: Job, conn) -> None:
    """The worker process: grade ``job``, write its result file, exit."""
    t0 = time.monotonic()
    # Ctrl-C reaches the whole terminal's process group: the coordinator stops the run and kills this
    # worker itself (a KeyboardInterrupt here would print a traceback, or pass a half result as a grade)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_self(job.options)
    warnings.simplefilter("ignore")  # sqlalchemy/nbformat noise; the student's log keeps nbgrader's messages
    out = {"student": job.student, "status": FAILED, "reasons": [], "kernel_start": None}
    try:
        _inject(job, "start")
        if os.environ.get("TPKIT_PROFILE"):  # developers: a CPU profile of each worker, into that folder
            import cProfile
            prof = cProfile.Profile(time.process_time)
            out.update(prof.runcall(grade, job, conn))
            prof.dump_stats(os.path.join(os.environ["TPKIT_PROFILE"], job.student + ".prof"))
        else:
            out.update(grade(job, conn))
    except MemoryError:
        out = {"student": job.student, "status": FAILED, "kernel_start": None,
               "reasons": [memory_reason(job.options)]}
    except RecursionError:
        out["status"], out["reasons"] = FAILED, ["notebook illisible : structure imbriquée trop profondément"]
    except Exception as exc:
        logging.getLogger("tpkit.grading").exception("grading %s", job.student)
        out["status"], out["reasons"] = FAILED, [f"erreur interne de correction : {type(exc).__name__} : "
                                                 f"{str(exc)[:300]}"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.update(version=1, seconds=round(time.monotonic() - t0, 2),
               cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2),
               kernels_cpu_seconds=round(kernels.KERNEL_CPU.seconds, 2))
    text = json.dumps(out, ensure_ascii=False)
    if job.fault == "garbage":
        text = "{ceci n'est pas du JSON"
    elif job.fault == "huge":
        text = json.dumps({**out, "reasons": ["x" * MAX_RESULT_BYTES]})
    tmp = job.private / (RESULT_NAME + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, job.private / RESULT_NAME)


def memory_reason(options: Options) -> str:
    return f"mémoire du correcteur dépassée (limite de {options.settings.worker_memory_limit} Mo pour ce rendu)"


def _inject(job: Job, where: str) -> None:
    """Test-only faults (see the module docstring)."""
    fault = job.fault
    if fault == "sleep" and where == "kernel":  # killed on its wall limit with its kernel's tmpfs mounted
        time.sleep(10 ** 6)
    if where != "start" or not fault:
        return
    if fault == "raise":
        raise RuntimeError("panne simulée du correcteur")
    if fault == "cpu":
        while True:
            pass
    if fault == "memory":
        hog = bytearray((job.options.settings.worker_memory_limit + 256) * 1024 * 1024)
        del hog
    if fault == "signal":
        os.kill(os.getpid(), signal.SIGKILL)


class _MemoryErrorSeen(logging.Handler):
    """nbgrader catches a converter's exceptions and logs them: this says whether one was MemoryError."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen = False

    def emit(self, record):
        if "MemoryError" in record.getMessage() or (
                record.exc_info and isinstance(record.exc_info[1], MemoryError)):
            self.seen = True


def grade(job: Job, conn) -> dict:
    """Pre-check, autograde and feedback of one submission in the worker's private folders."""
    from tpkit.grading.gradebook import shared_engine
    from tpkit.grading.logs import student_log
    options, student, expected = job.options, job.student, job.expected
    settings = job.settings
    forker = relay_forker(conn) if settings.sandbox and settings.warm and conn is not None else None
    if job.fault == "kernel" and forker is not None:  # test-only: every kernel exits at start-up
        real = forker

        def forker(request):
            request = dict(request, args=list(request["args"]) + ["--IPKernelApp.exec_lines=import os; os._exit(3)"])
            return real(request)
    supply = kernels.KernelSupply(settings, forker=forker)
    try:
        supply.prefetch()  # the kernel boots while the notebook is pre-checked
        _inject(job, "kernel")
        pre = staging.stage(student, job.submitted, job.private / "submitted" / student / options.assignment,
                             expected, job.data_files)
        pre.findings[:0] = [precheck.Finding("collect", m) for m in job.remarks]
        if pre.failure:
            return {"status": FAILED, "reasons": [pre.failure]}
        if job.gradebook is not None:
            shutil.copyfile(job.gradebook, job.private / "gradebook.db")
        cfg = private_config(options, job.private, private_db=job.gradebook is not None)
        with contextlib.chdir(options.root), shared_engine(), student_log(options, student) as logger:
            return _autograde(cfg, job, pre, supply, logger)
    finally:
        supply.close()


def private_config(options: Options, private: Path, private_db: bool = True):
    """The run's configuration with the gradebook, submitted/, autograded/ and feedback/ of the worker's
    private folder."""
    from tpkit.grading.options import load_config
    cfg = load_config(options, private / "submitted")
    if private_db:
        cfg.CourseDirectory.db_url = f"sqlite:///{private / 'gradebook.db'}"
    cfg.CourseDirectory.autograded_directory = str(private / "autograded")
    cfg.CourseDirectory.feedback_directory = str(private / "feedback")
    return cfg


def _autograde(cfg, job: Job, pre, supply, logger) -> dict:
    import nbformat

    from tpkit.grading import traces
    from tpkit.grading.converters import FrenchFeedback, ParallelAutograde
    from tpkit.grading.findings import execution_findings
    from tpkit.grading.options import coursedir
    options, student, expected = job.options, job.student, job.expected
    for m in pre.messages:
        logger.warning("pre-check: %s", m)
    memory = _MemoryErrorSeen()
    logger.addHandler(memory)
    converter = ParallelAutograde(coursedir=coursedir(cfg, options, student), config=cfg, log=logger)
    converter.kernel_supply = supply
    converter.force = True
    by_hand = graded_by_hand(cfg, options, student)
    try:
        converter.start()
    except Exception as exc:
        logger.error("autograde failed: %r", exc)
    if memory.seen:
        raise MemoryError
    cd = coursedir(cfg, options, student)
    graded = Path(cd.format_path(cd.autograded_directory, student, options.assignment)) / f"{options.notebook}.ipynb"
    if not graded.is_file():
        log = (options.exports / "logs" / student).relative_to(options.root)
        return {"status": FAILED, "reasons": [f"erreur pendant la correction automatique (détails : {log}.log)"]}
    graded_nb = nbformat.read(str(graded), as_version=4)
    kernel_start = graded_nb.metadata.get("tpkit", {}).get("kernel_start_failure") or "ok"
    remarks = pre.messages + execution_findings(graded_nb, options.settings.memory_limit)
    remarks += keep_manual_grades(cfg, options, student, expected, by_hand, graded_nb, job.previous_autograded)
    # files dropped at staging (links, code, packages) are attempts too
    dropped = [f.message for f in pre.findings if f.kind == "dropped"]
    remarks = [m for m in remarks if m not in dropped]
    alerts = dropped + traces.flags(graded_nb)
    status, reasons = OK, []
    if alerts:
        status, reasons = FLAGGED, alerts + remarks
    elif remarks:
        status, reasons = PARTIAL, remarks
    book = gradebook_entries(cfg, options, student)
    scores, score, max_score = _scores(cfg, options, student, expected)
    feedback = False
    if options.feedback:
        fb = FrenchFeedback(coursedir=coursedir(cfg, options, student), config=cfg, log=logger)
        fb.force = True
        fb.tpkit_resources = {"student": student, "remarks": remarks}
        try:
            fb.start()
            feedback = True
        except Exception as exc:
            logger.error("feedback failed: %r", exc)
            status = PARTIAL if status == OK else status
            reasons.append("retour HTML non généré (voir le journal)")
        if memory.seen:
            raise MemoryError
    return {"status": status, "reasons": reasons, "kernel_start": kernel_start, "gradebook": book,
            "scores": scores, "score": score, "max_score": max_score,
            "outputs": {"autograded": True, "feedback": feedback}}


def _scores(cfg, options, student, expected) -> tuple:
    from tpkit.grading.gradebook import open_gradebook, submission_scores
    with open_gradebook(cfg) as gb:
        return submission_scores(gb, options.assignment, student, expected.graded_ids)


def gradebook_entries(cfg, options: Options, student: str) -> dict:
    """What nbgrader's Autograde wrote for this submission in the private gradebook."""
    from tpkit.grading.gradebook import open_gradebook
    with open_gradebook(cfg) as gb:
        sub = gb.find_submission(options.assignment, student)
        snb = gb.find_submission_notebook(options.notebook, options.assignment, student)
        return {"timestamp": sub.timestamp.isoformat() if sub.timestamp else None,
                "late_penalty": snb.late_submission_penalty,
                "grades": {g.cell.name: {"auto_score": g.auto_score, "needs_manual_grade": bool(g.needs_manual_grade)}
                           for g in snb.grades},
                "comments": {c.cell.name: c.auto_comment for c in snb.comments}}
