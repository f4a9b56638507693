"""A grading run: its course, its assignment, whether it writes feedback, and its settings
(:class:`~tpkit.grading.config.TpkitGrading`, each setting defined there once); how they map to
nbgrader's traitlets configuration (:func:`load_config`) and to the course's folders.

Light to import (no nbgrader): the command parses its arguments first.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tpkit import assignments, paths
from tpkit.grading.config import TpkitGrading, course_config as _read_config


@dataclass(init=False)
class Options:
    """``Options(root, assignment, feedback, settings, **changes)``: ``settings`` (a copy is kept) with
    ``changes`` (names of :class:`TpkitGrading`'s settings, ``workers=1``...); ``workers`` 0 becomes
    the number of cores."""

    root: Path
    assignment: str
    feedback: bool
    settings: TpkitGrading

    def __init__(self, root=paths.ROOT, assignment: Optional[str] = None, feedback: bool = True,
                 settings: Optional[TpkitGrading] = None, **changes):
        import os
        self.root = Path(root).resolve()
        if not assignment:  # library code has no default assignment: the command lines choose theirs
            raise TypeError("Options: name the assignment (assignment=...)")
        self.assignment = assignment
        self.feedback = feedback
        self.settings = (settings or TpkitGrading()).copy(**changes)
        if not self.settings.workers:
            self.settings.workers = os.cpu_count() or 1

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
    return _read_config(options.root)


def server_db_url(root: Path) -> Optional[str]:
    """The course's ``c.CourseDirectory.db_url`` when it names a server database (PostgreSQL), else None
    (sqlite, the default ``gradebook.db``, or a configuration that cannot be read)."""
    try:
        cfg = _read_config(Path(root).resolve())
        url = str(cfg.CourseDirectory.db_url) if "db_url" in cfg.CourseDirectory else ""
    except Exception:
        return None
    return url if url and not url.startswith("sqlite:") else None


def load_config(options: Options, staging: Optional[Path] = None):
    """The course's nbgrader_config.py, plus what nbgrader's own classes need of this run (a traitlets
    ``Config``); the executor gets the rest with its kernel supply (:mod:`tpkit.grading.kernels`)."""
    from tpkit.grading.secret import course_salt
    cfg = course_config(options)
    if staging is not None:
        cfg.CourseDirectory.submitted_directory = str(staging)
    if options.settings.cell_timeout:
        cfg.Execute.timeout = int(options.settings.cell_timeout)
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
