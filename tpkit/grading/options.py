"""The settings of a grading run: one definition of each, with its default, and how each maps to
nbgrader's traitlets configuration (:func:`load_config`).

The command line (``__main__``), :class:`Options`, the executor's traits
(:class:`~tpkit.grading.preprocessors.LimitedExecute`), :class:`~tpkit.grading.kernels.KernelSettings`
and the sandbox's :class:`~tpkit.grading.sandbox.Limits` all read their defaults here. Light to import (no nbgrader): the command parses its arguments first.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tpkit import assignments, paths

#: Seconds for a whole notebook (the sandbox's CPU-time limit is derived from it).
TIME_LIMIT_S = 300
#: Memory of each kernel, MB (RLIMIT_DATA inside the kernel, and the sandbox's address-space limit).
MEMORY_MB = 4096
#: RLIMIT_DATA of the grading run's coordinator, MB (kernels and workers excluded: processes of their own).
GRADER_MEMORY_MB = 8192
#: Floors of the settings above, below which every kernel of a class fails (each checked before anything
#: runs, by the grading command: a typo must not zero a class). Measured on 2 busy cores, sandboxed warm
#: kernels (forked from the zygote: RLIMIT_DATA counts the imports they inherit): each TP's setup cell plus
#: a torch product and a figure fails at 420 MB (torch's allocator) and runs at 430 MB (cold kernels: 400);
#: the reference solution of the course's first assignment runs whole at 500 MB. The floor leaves a student's less
#: frugal code twice that (docs/threat-model.md).
MIN_MEMORY_MB = 1024
#: The setup cell takes 1 s in a warm kernel, 8-11 s in a cold one counting the kernel's start-up (2 busy
#: cores). (The reference notebooks' slowest cell takes about 2 s, nbgrader_config.py; the whole reference
#: solution 40-56 s: TIME_LIMIT_S leaves room for it, a lower --time-limit cuts notebooks, on purpose.)
MIN_CELL_TIMEOUT_S = 5
MIN_TIME_LIMIT_S = 20
#: The grading process imports nbgrader, nbconvert, torch and matplotlib: 315 MB of RLIMIT_DATA (VmData).
MIN_GRADER_MEMORY_MB = 1024
#: Ceilings (a limit in bytes past 2**63 overflows every rlimit: each kernel would fail to start).
MAX_MEMORY_MB = 1 << 20
MAX_SECONDS = 7 * 24 * 3600
#: Each submission is graded by a worker process of its own (:mod:`tpkit.grading.worker`: pre-check,
#: kernel supervision, trusted checks, feedback page), boxed by three limits; past one, that submission
#: alone fails, with the reason in French:
#: - RLIMIT_DATA of a worker, MB (its share of the imported modules included: about 600 MB);
WORKER_MEMORY_MB = 4096
#: - RLIMIT_CPU of a worker, seconds of its own CPU (its kernel's excluded: the reference notebook costs
#:   a worker about 2 s, checks and feedback included);
WORKER_CPU_S = 120
#: - wall clock: the notebook's time limit plus this margin (kernel start, checks after the last cell,
#:   feedback), after which the coordinator kills the worker and everything it started.
WORKER_WALL_MARGIN_S = 120
#: Modules imported by the kernel before the notebook runs (those whose import is slow).
PRELOAD = ("numpy", "torch", "matplotlib.pyplot")


@dataclass
class Options:
    root: Path = paths.ROOT
    assignment: str = field(default_factory=assignments.default)  # the command line's default: the course's first
    workers: int = 0  # 0: one per core
    cell_timeout: Optional[int] = None  # None: Execute.timeout from nbgrader_config.py
    time_limit: int = TIME_LIMIT_S
    memory_mb: int = MEMORY_MB
    feedback: bool = True
    preload: tuple = PRELOAD
    sandbox: bool = True  # False: kernels run unsandboxed (`--sans-bac-a-sable`), said in the summary
    worker_memory_mb: int = WORKER_MEMORY_MB
    worker_cpu_s: int = WORKER_CPU_S
    worker_wall_s: Optional[int] = None  # None: time_limit + WORKER_WALL_MARGIN_S

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        if not self.workers:
            self.workers = os.cpu_count() or 1

    @property
    def worker_wall(self) -> int:
        """Seconds a submission's worker may run (see :data:`WORKER_WALL_MARGIN_S`)."""
        return int(self.worker_wall_s or (self.time_limit + WORKER_WALL_MARGIN_S))

    @property
    def notebook(self) -> str:
        return self.assignment  # one notebook per assignment, named like it (nbgrader convention here)

    @property
    def exports(self) -> Path:
        """This assignment's exports (grades, worksheet, report, class report, logs)."""
        return exports_dir(self.root, self.assignment)

    @property
    def course_exports(self) -> Path:
        """The course's exports folder: the run lock and the internal error log, for every assignment."""
        return self.root / "exports"


def exports_dir(root: Path, assignment: str) -> Path:
    """The assignment's own exports folder (:func:`tpkit.assignments.exports_dir`): grading an
    assignment never overwrites another's grades, report or class report."""
    return assignments.exports_dir(root, assignment)


def course_config(options: Options):
    """The course's nbgrader_config.py (a traitlets ``Config``), rooted at the course folder."""
    from traitlets.config.loader import PyFileConfigLoader
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(options.root)).load_config()
    cfg.CourseDirectory.root = str(options.root)
    return cfg


def server_db_url(root: Path) -> Optional[str]:
    """The course's ``c.CourseDirectory.db_url`` when it names a server database (PostgreSQL), else None
    (sqlite, the default ``gradebook.db``, or a configuration that cannot be read)."""
    try:
        cfg = course_config(Options(root=root, workers=1))
        url = str(cfg.CourseDirectory.db_url) if "db_url" in cfg.CourseDirectory else ""
    except Exception:
        return None
    return url if url and not url.startswith("sqlite:") else None


def dask_target(options: Options, scheduler: Optional[str] = None) -> tuple:
    """(target, course folder on the workers) of a run on a Dask cluster (:mod:`tpkit.grading.cluster`):
    ``scheduler`` (the command line's ``--dask-scheduler``), else the course's ``c.TpkitDask.scheduler``
    or ``c.TpkitDask.cluster``; target None: the workers run on this machine."""
    cfg = course_config(options).get("TpkitDask", {})
    target = scheduler or cfg.get("scheduler") or cfg.get("cluster") or None
    return target, str(cfg.get("course_root") or options.root)


def kernel_threads(options: Options) -> int:
    """torch/BLAS threads of each kernel: the cores shared by the workers."""
    return max(1, (os.cpu_count() or 1) // max(1, options.workers))


def load_config(options: Options, staging: Optional[Path] = None):
    """The course's nbgrader_config.py, plus this run's settings (a traitlets ``Config``)."""
    from tpkit.grading.secret import course_salt
    cfg = course_config(options)
    if staging is not None:
        cfg.CourseDirectory.submitted_directory = str(staging)
    if options.cell_timeout:
        cfg.Execute.timeout = int(options.cell_timeout)
    cfg.LimitedExecute.time_limit = int(options.time_limit)
    cfg.LimitedExecute.memory_limit = int(options.memory_mb)
    cfg.LimitedExecute.threads = kernel_threads(options)
    cfg.LimitedExecute.preload = list(options.preload)
    cfg.LimitedExecute.sandbox = bool(options.sandbox)
    cfg.LimitedExecute.trusted_checks = True
    cfg.LimitedExecute.salt = course_salt(options.root)
    # nbconvert validates the whole notebook after each of the ~6 preprocessors of a step; once at the end
    # gives the same verdict on what is written (0.1 s of CPU per submission less)
    cfg.Exporter.optimistic_validation = True
    return cfg


def course_id(cfg) -> str:
    return cfg.CourseDirectory.get("course_id", "default_course") or "default_course"


def coursedir(cfg, options: Options, student: Optional[str] = None):
    """nbgrader's ``CourseDirectory`` of this run (``format_path`` gives every submitted/autograded/
    feedback path), set on one assignment and, when given, one student."""
    from nbgrader.coursedir import CourseDirectory
    cd = CourseDirectory(config=cfg)
    cd.assignment_id = options.assignment
    if student is not None:
        cd.student_id = student
    return cd


def step_folder(cfg, options: Options, step: str, student: str) -> Path:
    """``<step>/<student>/<assignment>`` of the course (step: submitted, autograded, feedback), as
    nbgrader lays it out (``CourseDirectory.format_path``); ``cfg`` None: the course's configuration."""
    cd = coursedir(cfg if cfg is not None else course_config(options), options, student)
    return Path(cd.format_path(getattr(cd, f"{step}_directory"), student, options.assignment))
