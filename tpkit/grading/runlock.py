"""One grading or export run at a time on a course: ``exports/.grading.lock``. A module of its own,
light to import, so that the grading command refuses a second run at once (before importing nbgrader
and torch)."""
from __future__ import annotations

import contextlib
from pathlib import Path

import filelock

LOCK_NAME = ".grading.lock"
_HELD: dict = {}  # lock path -> depth: the command holds it around grading *and* exports


class RunInProgress(Exception):
    """Another process holds the course's lock."""


@contextlib.contextmanager
def course_lock(exports: Path):
    """Hold ``exports/.grading.lock`` (created with its folder); reentrant within this process (the
    grading command takes it, then the grader asks for it again). :class:`RunInProgress` (French)
    when another process holds it."""
    path = str(Path(exports) / LOCK_NAME)
    if _HELD.get(path):
        _HELD[path] += 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    Path(exports).mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise RunInProgress(f"une autre correction est en cours sur ce cours ({path}) : attendez qu'elle se "
                            "termine, puis relancez") from None
    _HELD[path] = 1
    try:
        yield
    finally:
        _HELD.pop(path, None)
        lock.release()
