"""One log file per student and run: ``exports/logs/<student>.log`` (nbgrader's messages for that
submission; the terminal shows one line per submission). Messages quote the student's outputs, file
names and errors: every log line is written inert (:class:`InertFormatter`), and so are the kit's
warnings on the terminal (:func:`terminal_log`)."""
from __future__ import annotations

import contextlib
import logging
import sys

from tpkit.grading.inert import inert
from tpkit.grading.options import Options


class InertFormatter(logging.Formatter):
    """A formatter whose lines reach a person inert (:func:`tpkit.grading.inert.inert`; newlines and
    tabs kept: a traceback spans lines; its colour codes dropped)."""

    def format(self, record: logging.LogRecord) -> str:
        return inert(super().format(record), keep="\n\t", drop_colours=True)


class _Stderr(logging.StreamHandler):
    """sys.stderr as it is when a message is written (like Python's last-resort handler)."""

    def __init__(self, level=logging.NOTSET):
        logging.Handler.__init__(self, level)

    @property
    def stream(self):
        return sys.stderr


def terminal_log() -> None:
    """The kit's warnings (logger ``tpkit``) on stderr, inert (instead of Python's last-resort handler,
    which writes a message as it is). Idempotent."""
    logger = logging.getLogger("tpkit")
    if not any(isinstance(h.formatter, InertFormatter) for h in logger.handlers):
        handler = _Stderr(logging.WARNING)
        handler.setFormatter(InertFormatter("%(message)s"))
        logger.addHandler(handler)


def _close(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def student_log(options: Options, name: str):
    """A logger writing ``exports/logs/<name>.log`` (replaced), closed on exit."""
    logger = logging.getLogger(f"tpkit.grading.student.{name}")
    _close(logger)
    logdir = options.exports / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logdir / f"{name}.log", mode="w", encoding="utf-8")
    handler.setFormatter(InertFormatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger
    finally:
        _close(logger)
