"""A worker's result file: one JSON document, size-capped, that the coordinator checks field by field
before anything of it reaches the gradebook; and the French reasons of a worker that left none.

Apart from the worker (:mod:`tpkit.grading.worker`, which writes the file) because this is the
coordinator's side, and a cluster's (:mod:`tpkit.grading.cluster`, :mod:`tpkit.grading.remote`): what
crosses from a process that handled untrusted content into the one that writes the gradebook.
"""
from __future__ import annotations

import json
import math
import signal
from datetime import datetime
from pathlib import Path
from typing import Optional

from tpkit.grading.expected import Expected
from tpkit.grading.options import Options
from tpkit.grading.results import FAILED, Status

#: Largest result file a worker may return (bytes); a bigger one fails the submission.
MAX_RESULT_BYTES = 1024 * 1024
RESULT_NAME = "result.json"


class ResultError(Exception):
    """A worker's result that cannot be accepted (French message)."""


def death_reason(exitcode: Optional[int], options: Options) -> str:
    """Why a worker ended without a result, in French."""
    if exitcode is not None and exitcode < 0:
        sig = -exitcode
        if sig == signal.SIGXCPU:
            return f"temps de calcul du correcteur dépassé ({options.settings.worker_cpu_limit} s de CPU pour ce rendu)"
        return f"processus de correction mort (signal {sig})"
    return f"processus de correction mort (code {exitcode})"


def wall_reason(options: Options) -> str:
    return f"correction interrompue : délai de {options.settings.worker_wall()} s dépassé pour ce rendu"


def _number(value, low: float, high: float, what: str, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ResultError(f"{what} invalide")
    return float(value)


def _text(value, limit: int, what: str, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ResultError(f"{what} invalide")
    return value


def read_result(path: Path, student: str, expected: Expected) -> dict:
    """The worker's result file, size-capped, parsed as JSON and checked field by field against what
    the submission can hold (its cells, their points); :class:`ResultError` otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RESULT_BYTES + 1)
    except OSError:
        raise ResultError("pas de résultat") from None
    if len(data) > MAX_RESULT_BYTES:
        raise ResultError(f"résultat trop gros (plus de {MAX_RESULT_BYTES // 1024} ko)")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ResultError("résultat illisible (JSON invalide)") from None
    if not isinstance(raw, dict) or raw.get("version") != 1 or raw.get("student") != student:
        raise ResultError("résultat d'un autre format ou d'un autre rendu")
    try:
        status = Status(raw.get("status"))
    except ValueError:
        raise ResultError("statut invalide") from None
    reasons = raw.get("reasons")
    if not isinstance(reasons, list) or len(reasons) > 500:
        raise ResultError("raisons invalides")
    out = {"status": status, "reasons": [_text(r, 5000, "raison") for r in reasons],
           "kernel_start": _text(raw.get("kernel_start"), 1000, "démarrage du noyau", allow_none=True),
           "seconds": _number(raw.get("seconds", 0), 0, 1e7, "durée"),
           "cpu_seconds": _number(raw.get("cpu_seconds", 0), 0, 1e7, "temps de calcul"),
           "kernels_cpu_seconds": _number(raw.get("kernels_cpu_seconds", 0), 0, 1e8, "temps de calcul")}
    if status == FAILED:
        if not out["reasons"]:
            raise ResultError("échec sans raison")
        return out
    book = raw.get("gradebook")
    if not isinstance(book, dict):
        raise ResultError("notes absentes")
    grades, comments = book.get("grades"), book.get("comments")
    if not isinstance(grades, dict) or not isinstance(comments, dict):
        raise ResultError("notes invalides")
    checked = {}
    for name, entry in grades.items():
        cell = expected.cells.get(name)
        if cell is None or cell.points is None or not isinstance(entry, dict) \
                or not isinstance(entry.get("needs_manual_grade"), bool):
            raise ResultError(f"note de la cellule « {str(name)[:40]} » invalide")
        checked[name] = {"auto_score": _number(entry.get("auto_score"), 0, cell.points + 1e-9,
                                               f"note de {name}", allow_none=True),
                         "needs_manual_grade": entry["needs_manual_grade"]}
    for name, comment in comments.items():
        if name not in expected.cells:
            raise ResultError(f"commentaire de la cellule « {str(name)[:40]} » invalide")
        _text(comment, 10000, f"commentaire de {name}", allow_none=True)
    timestamp = _text(book.get("timestamp"), 64, "date de rendu", allow_none=True)
    if timestamp is not None:
        try:
            timestamp = datetime.fromisoformat(timestamp)
        except ValueError:
            raise ResultError("date de rendu invalide") from None
    outputs = raw.get("outputs")
    if not isinstance(outputs, dict) or not all(isinstance(outputs.get(k), bool) for k in ("autograded", "feedback")):
        raise ResultError("sorties invalides")
    out.update(gradebook={"grades": checked, "comments": dict(comments), "timestamp": timestamp,
                          "late_penalty": _number(book.get("late_penalty"), 0, expected.max_score + 1e-9,
                                                  "pénalité de retard", allow_none=True)},
               outputs=dict(outputs))
    return out
