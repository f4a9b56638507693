"""One log file per student and run: ``exports/logs/<student>.log`` (nbgrader's messages for that
submission; the terminal shows one line per submission)."""
from __future__ import annotations

import contextlib
import logging

from tpkit.grading.options import Options


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
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger
    finally:
        _close(logger)
