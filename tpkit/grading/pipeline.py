"""Grade a set of submissions: pre-check -> autograde in parallel -> feedback -> results.

Parallelism and gradebook safety
--------------------------------
``workers`` threads of this process each take the next submission from a shared queue and run
nbgrader's own ``Autograde`` converter on it (:class:`~tpkit.grading.converters.ParallelAutograde`),
then ``GenerateFeedback`` (:class:`~tpkit.grading.converters.FrenchFeedback`). The student's code runs
in a kernel *process* of its own, so the threads only orchestrate. Each thread starts the kernel of
its next submission while the current one executes (:class:`~tpkit.grading.kernels.KernelSupply`).

There is one gradebook (``gradebook.db``, sqlite) and one writer at a time: every nbgrader step that
touches it runs under :data:`~tpkit.grading.preprocessors.GRADEBOOK_LOCK` (a few milliseconds per
step, never held while a notebook executes), and a file lock (``exports/.grading.lock``) keeps a second
grading run of the same course out. Nothing is copied or merged afterwards.
"""
from __future__ import annotations

import collections
import contextlib
import html
import json
import logging
import os
import resource
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from tpkit import paths
from tpkit.grading import kernels, precheck, runlock, traces, trusted
from tpkit.grading.converters import FrenchFeedback, ParallelAutograde, thread_safe_nbgrader
from tpkit.grading.preprocessors import CELL_TIMEOUT, GRADEBOOK_LOCK, NOT_EXECUTED

# ok: graded; partial: graded with remarks (repairs, timeouts); flagged: graded, and the notebook tried
# something against the grader or the system (tpkit.grading.traces); failed: could not be graded.
OK, PARTIAL, FLAGGED, FAILED = "ok", "partial", "flagged", "failed"


class GradingError(Exception):
    """The grading run itself cannot proceed (not a problem of one submission)."""


@dataclass
class Options:
    root: Path = paths.ROOT
    assignment: str = paths.ASSIGNMENT
    workers: int = 0  # 0: one per core
    cell_timeout: Optional[int] = None  # None: Execute.timeout from nbgrader_config.py
    time_limit: int = 300  # seconds for a whole notebook
    memory_mb: int = 4096  # per kernel
    feedback: bool = True
    preload: tuple = kernels.DEFAULT_PRELOAD
    sandbox: bool = True  # False: kernels run unsandboxed (`--sans-bac-a-sable`), said in the summary

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        if not self.workers:
            self.workers = os.cpu_count() or 1

    @property
    def notebook(self) -> str:
        return self.assignment  # one notebook per assignment, named like it (nbgrader convention here)

    @property
    def exports(self) -> Path:
        return self.root / "exports"


@dataclass
class StudentResult:
    student: str
    status: str = OK
    reasons: list = field(default_factory=list)  # French
    scores: dict = field(default_factory=dict)  # grade id -> points, None = awaiting manual grading
    score: Optional[float] = None  # total points (None: not graded)
    max_score: float = 0.0
    seconds: float = 0.0

    @property
    def status_text(self) -> str:
        if self.status == OK:
            return OK
        return f"{self.status}: " + "; ".join(self.reasons)

    @property
    def grade20(self) -> Optional[float]:
        if self.score is None or not self.max_score:
            return None
        return round(self.score * 20.0 / self.max_score, 2)

    @property
    def manual_pending(self) -> list:
        return [g for g, v in self.scores.items() if v is None]


@dataclass
class RunReport:
    assignment: str
    columns: list  # graded ids, notebook order
    points: dict  # graded id -> max points
    max_score: float
    results: dict  # student -> StudentResult
    workers: int = 1
    seconds: float = 0.0
    own_cpu_seconds: float = 0.0  # CPU time of the grading process itself (kernels excluded)
    sandbox: bool = True  # False: graded with --sans-bac-a-sable (said in the summary)
    graded_now: list = field(default_factory=list)  # students graded by this run (results: the class)

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunReport":
        data = json.loads(text)
        data["results"] = {k: StudentResult(**v) for k, v in data["results"].items()}
        return cls(**data)


REPORT_NAME = "grading_report.json"
#: The exports a run writes (in ``exports/``), and where a new run first moves those of the previous one.
EXPORT_NAMES = ("grades.csv", "moodle_worksheet.csv", REPORT_NAME, "rapport_classe.html", "retours_moodle.zip")
PREVIOUS_EXPORTS = "precedent"
PREVIOUS_README = """Exports de la correction précédente ({when}).

Une nouvelle correction a commencé le {now} : elle les a déplacés ici avant de corriger. Si exports/
ne contient pas de grades.csv, cette correction ne s'est pas terminée (interrompue, plantée) : les
fichiers de ce dossier ne sont PAS à jour. `python -m tpkit.grading --export-only` réécrit les exports
depuis le gradebook (avec les statuts du dernier rapport trouvé).
"""


def set_aside_previous_exports(exports: Path) -> list:
    """Move the previous run's exports (:data:`EXPORT_NAMES`) into ``exports/precedent/`` with a French
    README, so that a run that dies leaves no stale file passed off as current. Nothing to move: the
    folder is left as it is (it keeps the last complete exports). Returns the names moved."""
    present = [n for n in EXPORT_NAMES if (exports / n).is_file()]
    if not present:
        return []
    previous = exports / PREVIOUS_EXPORTS
    previous.mkdir(parents=True, exist_ok=True)
    for name in EXPORT_NAMES + ("LISEZMOI.txt",):
        if (previous / name).is_file():
            (previous / name).unlink()
    stamp = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))  # noqa: E731
    when = max((exports / n).stat().st_mtime for n in present)
    for name in present:
        os.replace(exports / name, previous / name)
    (previous / "LISEZMOI.txt").write_text(PREVIOUS_README.format(when=stamp(when), now=stamp(time.time())),
                                           encoding="utf-8")
    return present


def find_report(exports: Path) -> tuple:
    """(path of the latest grading report, True when it is the previous run's) for ``--export-only``:
    ``exports/grading_report.json``, else the one a later run set aside in ``exports/precedent/``."""
    current = exports / REPORT_NAME
    if current.is_file():
        return current, False
    previous = exports / PREVIOUS_EXPORTS / REPORT_NAME
    if previous.is_file():
        return previous, True
    return current, False  # FileNotFoundError for the caller


def latest_report(exports: Path) -> Optional[RunReport]:
    """The class's grading report (see :func:`find_report`), None when there is none or it is unreadable."""
    path, _ = find_report(exports)
    try:
        return RunReport.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def merge_reports(previous: Optional[RunReport], run: RunReport) -> RunReport:
    """The class after this run: the previous report's students, those of this run replaced (grading
    a subset keeps the others' statuses and times). The run's own figures (seconds, workers) stay."""
    if previous is not None and previous.assignment == run.assignment:
        merged = dict(previous.results)
        merged.update(run.results)
        run.results = dict(sorted(merged.items()))
    return run


@contextlib.contextmanager
def run_lock(options: Options):
    """One grading or export run at a time on a course (:mod:`tpkit.grading.runlock`)."""
    try:
        with runlock.course_lock(options.exports):
            yield
    except runlock.RunInProgress as exc:
        raise GradingError(str(exc)) from None


def load_config(options: Options, staging: Optional[Path] = None) -> Config:
    """The course's nbgrader_config.py, plus this run's settings."""
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(options.root)).load_config()
    cfg.CourseDirectory.root = str(options.root)
    if staging is not None:
        cfg.CourseDirectory.submitted_directory = str(staging)
    if options.cell_timeout:
        cfg.Execute.timeout = int(options.cell_timeout)
    cfg.LimitedExecute.time_limit = int(options.time_limit)
    cfg.LimitedExecute.memory_limit = int(options.memory_mb)
    cfg.LimitedExecute.threads = max(1, (os.cpu_count() or 1) // max(1, options.workers))
    cfg.LimitedExecute.preload = list(options.preload)
    cfg.LimitedExecute.sandbox = bool(options.sandbox)
    cfg.LimitedExecute.trusted_checks = True
    cfg.LimitedExecute.salt = trusted.course_salt(options.root)
    return cfg


def _coursedir(cfg: Config, options: Options, student: str) -> CourseDirectory:
    cd = CourseDirectory(config=cfg)
    cd.assignment_id = options.assignment
    cd.student_id = student
    return cd


def _student_logger(options: Options, student: str) -> logging.Logger:
    logger = logging.getLogger(f"tpkit.grading.student.{student}")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logdir = options.exports / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logdir / f"{student}.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _close_logger(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def execution_findings(nb, memory_mb: int = 0) -> list:
    """French remarks about how the notebook ran: cells stopped by the per-cell timeout or by the
    memory limit, cells never run because the kernel stopped."""
    out, stopped = [], None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        name = precheck.grade_id(cell) or f"n°{index + 1}"
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
                    str(o.get("evalue", "")).replace("cellule non exécutée : ", "")
    if stopped:
        out.append(stopped)
    return out


def open_gradebook(cfg: Config) -> Gradebook:
    """The course's gradebook (nbgrader's Gradebook API)."""
    course_id = cfg.CourseDirectory.get("course_id", "default_course") or "default_course"
    return Gradebook(CourseDirectory(config=cfg).db_url, course_id)


def submission_scores(gb: Gradebook, assignment: str, student: str, columns: list) -> tuple:
    """({graded id: points or None when awaiting manual grading}, total after late penalty, maximum)."""
    sub = gb.find_submission(assignment, student)
    scores = {}
    for snb in sub.notebooks:
        for grade in snb.grades:
            pending = grade.manual_score is None and grade.auto_score is None
            scores[grade.cell.name] = None if pending else float(grade.score)
    total = float(sub.score) - float(sub.late_submission_penalty or 0.0)
    return {c: scores[c] for c in columns if c in scores}, round(total, 4), float(sub.max_score)


def read_scores(cfg: Config, result: StudentResult, expected: precheck.Expected) -> None:
    with GRADEBOOK_LOCK, open_gradebook(cfg) as gb:
        result.scores, result.score, result.max_score = submission_scores(
            gb, expected.assignment, result.student, expected.graded_ids)


def reset_scores(options: Options, cfg: Config, student: str) -> None:
    """A submission that cannot be graded: its automatic scores are cleared (not left from an earlier
    run, not a silent 0) and it is marked for manual grading; manual scores are kept."""
    with GRADEBOOK_LOCK, open_gradebook(cfg) as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(options.assignment, student)
        for nb in sub.notebooks:
            for grade in nb.grades:
                grade.auto_score = None
                grade.needs_manual_grade = True
        gb.db.commit()


FAILURE_PAGE = """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>{notebook}</title></head>
<body style="font-family: sans-serif; max-width: 50em; margin: 2em auto">
<h2>{notebook} — rendu non corrigé automatiquement</h2>
<p>Votre rendu n'a pas pu être corrigé automatiquement :</p>
<p><b>{reason}</b></p>
<p>Il sera examiné par l'enseignant. Vérifiez que vous avez rendu le notebook <code>{filename}</code>
enregistré depuis Jupyter (Fichier &gt; Enregistrer), sans le renommer.</p>
</body></html>
"""


def write_failure_feedback(options: Options, student: str, reason: str) -> Path:
    folder = options.root / "feedback" / student / options.assignment
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    out = folder / f"{options.notebook}.html"
    out.write_text(FAILURE_PAGE.format(notebook=html.escape(options.notebook), reason=html.escape(reason),
                                       filename=html.escape(options.notebook + ".ipynb")), encoding="utf-8")
    return out


def _remove_outputs(options: Options, student: str) -> None:
    for step in ("autograded", "feedback"):
        folder = options.root / step / student / options.assignment
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


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
        with run_lock(options):
            staging = Path(tempfile.mkdtemp(prefix="tpkit-staging-"))
            cwd = os.getcwd()
            try:
                set_aside_previous_exports(options.exports)  # current ones are written at the end only
                os.chdir(options.root)  # nbgrader's converters chdir there themselves (process-wide)
                return self._run(sorted(set(students) | set(preset_failures)), preset_failures, staging)
            finally:
                os.chdir(cwd)
                shutil.rmtree(staging, ignore_errors=True)

    def _run(self, students: list, preset_failures: dict, staging: Path) -> RunReport:
        options = self.options
        t0 = time.monotonic()
        cfg = load_config(options, staging)
        course_id = cfg.CourseDirectory.get("course_id", "default_course") or "default_course"
        release_nb = options.root / "release" / options.assignment / f"{options.notebook}.ipynb"
        try:
            with GRADEBOOK_LOCK:
                expected = precheck.load_expected(CourseDirectory(config=cfg).db_url, course_id,
                                                  options.assignment, options.notebook, release_nb)
        except MissingEntry:
            raise GradingError(f"le devoir {options.assignment} n'est pas dans le gradebook : "
                               "générez d'abord la version étudiante (make release)")
        report = RunReport(options.assignment, expected.graded_ids,
                           {g: expected.cells[g].points for g in expected.graded_ids},
                           expected.max_score, {}, workers=options.workers, sandbox=options.sandbox)
        self._total = len(students)
        self._done = 0
        source = options.root / "source" / options.assignment
        data_files = frozenset(p.relative_to(source).as_posix() for p in source.rglob("*")
                               if p.is_file() and p.suffix != ".ipynb") if source.is_dir() else frozenset()

        queue = collections.deque()
        for student in students:
            if student in preset_failures:
                result = self._failed(cfg, student, preset_failures[student], expected)
            else:
                pre = precheck.stage(student, options.root / "submitted" / student / options.assignment,
                                     staging / student / options.assignment, expected, data_files)
                pre.findings[:0] = [precheck.Finding("collect", m) for m in self.preset_remarks.get(student, [])]
                if pre.failure:
                    result = self._failed(cfg, student, pre.failure, expected, pre.messages)
                else:
                    queue.append((student, pre))
                    continue
            report.results[student] = result
            self._report_progress(result)

        qlock = threading.Lock()
        settings = kernels.KernelSettings(preload=tuple(options.preload),
                                          threads=cfg.LimitedExecute.threads, memory_mb=options.memory_mb,
                                          sandbox=options.sandbox, time_limit=options.time_limit)
        errors = []

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
                        errors.append((student, exc))
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
        _remove_outputs(self.options, student)
        reset_scores(self.options, cfg, student)
        if self.options.feedback:
            write_failure_feedback(self.options, student, reason)
        return StudentResult(student, FAILED, [reason], max_score=expected.max_score)

    def _grade_one(self, cfg, student: str, pre: precheck.Precheck, expected) -> StudentResult:
        options = self.options
        t0 = time.monotonic()
        result = StudentResult(student, max_score=expected.max_score)
        logger = _student_logger(options, student)
        try:
            for m in pre.messages:
                logger.warning("pre-check: %s", m)
            converter = ParallelAutograde(coursedir=_coursedir(cfg, options, student), config=cfg, log=logger)
            converter.force = True
            try:
                converter.start()
            except Exception as exc:
                logger.error("autograde failed: %r", exc)
            graded = options.root / "autograded" / student / options.assignment / f"{options.notebook}.ipynb"
            if not graded.is_file():
                return self._failed(cfg, student, "erreur pendant la correction automatique (détails : "
                                    f"exports/logs/{student}.log)", expected, pre.messages)
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
                feedback = FrenchFeedback(coursedir=_coursedir(cfg, options, student), config=cfg, log=logger)
                feedback.force = True
                feedback.tpkit_resources = {"student": student, "remarks": remarks}
                try:
                    feedback.start()
                except Exception as exc:
                    logger.error("feedback failed: %r", exc)
                    result.status = PARTIAL if result.status == OK else result.status
                    result.reasons.append("retour HTML non généré (voir le journal)")
            return result
        finally:
            result.seconds = round(time.monotonic() - t0, 2)
            _close_logger(logger)


def grade(students: list, options: Optional[Options] = None, progress=None,
          preset_failures: Optional[dict] = None, preset_remarks: Optional[dict] = None) -> RunReport:
    """Grade ``submitted/<student>/<assignment>/`` for each student; see :class:`Grader`."""
    return Grader(options or Options(), progress).run(students, preset_failures, preset_remarks)
