"""What the grading command prints: a line per graded submission, then a summary table (French, for
the teaching team). Every line goes through :func:`say`: ids, names and reasons come from the
students' files, and reach the terminal inert (:mod:`tpkit.grading.inert`)."""
from __future__ import annotations

import sys
import threading
import time
from typing import Optional, TextIO

from tpkit.grading.export import fmt
from tpkit.grading.inert import inert
from tpkit.grading.results import FAILED, OK, RunReport, StudentResult


def say(line: str = "", out: Optional[TextIO] = None, flush: bool = False) -> None:
    """Print one line to the terminal (``out``, default: sys.stdout at call time), student text inert."""
    print(inert(line), file=out or sys.stdout, flush=flush)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def clock(seconds: float) -> str:
    """``1:05`` (minutes:seconds), ``1:02:05`` past an hour."""
    seconds = int(round(max(0.0, seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """``[ 3/40] student      17.5/20  ok  (6.1 s)  écoulé 0:42, reste ~4:10``, one line per submission
    as it completes (time left: the mean time per completed submission so far, times those left).
    With :meth:`start`, a line every ``heartbeat`` seconds while none completes (a long notebook)."""

    def __init__(self, out: Optional[TextIO] = None, names: Optional[dict] = None, total: int = 0,
                 heartbeat: float = 30.0):
        self.out = out  # None: sys.stdout read at call time (it may have been replaced since import)
        self.names = names or {}
        self.total = total
        self.done = 0
        self.heartbeat = heartbeat
        self.t0 = time.monotonic()
        self._last = self.t0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def _print(self, line: str) -> None:
        say(line, self.out, flush=True)
        self._last = time.monotonic()

    def timing(self) -> str:
        elapsed = time.monotonic() - self.t0
        text = f"écoulé {clock(elapsed)}"
        if self.done and self.total > self.done:
            text += f", reste ~{clock(elapsed / self.done * (self.total - self.done))}"
        return text

    def __call__(self, done: int, total: int, r: StudentResult) -> None:
        with self._lock:
            self.done, self.total = done, total
            width = len(str(total))
            grade = f"{fmt(r.grade20):>5}/20" if r.grade20 is not None else "    -   "
            status = r.status if r.status == OK else f"{r.status}: {_shorten(inert('; '.join(r.reasons)), 70)}"
            took = f"  ({r.seconds:.1f} s)" if r.seconds else ""
            self._print(f"[{done:>{width}}/{total}] {inert(r.student):<20} {grade}  {status}{took}  {self.timing()}")

    def _beat(self) -> None:
        while not self._stop.wait(min(5.0, self.heartbeat)):
            with self._lock:
                if time.monotonic() - self._last >= self.heartbeat and self.done < self.total:
                    self._print(f"  … correction en cours : {self.done}/{self.total} terminé(s), {self.timing()}")

    def start(self) -> "Progress":
        self.t0 = self._last = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name="tpkit-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def summary(report: RunReport, names: Optional[dict] = None, out: Optional[TextIO] = None,
            exports: tuple = ()) -> None:
    out = out or sys.stdout
    names = names or {}
    results = list(report.results.values())
    say("", out)
    if getattr(report, "export_only", False):  # no grading: no duration of its own
        say(f"Résultats — {report.assignment} : {len(results)} rendu(s) (exports réécrits depuis le gradebook, "
            "rien recorrigé)", out)
    elif getattr(report, "skipped", None):
        say(f"Résultats — {report.assignment} : {len(results)} rendu(s) dont {len(report.graded_now)} corrigé(s) "
            f"maintenant, {len(report.skipped)} inchangé(s) gardé(s)"
            + (f", {report.seconds:.0f} s, {report.workers} worker(s)" if report.graded_now else ""), out)
    else:
        say(f"Résultats — {report.assignment} : {len(results)} rendu(s), {report.seconds:.0f} s, "
            f"{report.workers} worker(s)", out)
    has_names = any(r.student in names for r in results)
    head = f"  {'étudiant':<20} " + (f"{'nom':<28} " if has_names else "") + f"{'note /20':>8}  statut"
    say(head, out)
    say("  " + "-" * (len(head) - 2), out)
    for r in results:
        grade = fmt(r.grade20) if r.grade20 is not None else "-"
        name = f"{_shorten(inert(names.get(r.student, '')), 28):<28} " if has_names else ""
        say(f"  {inert(r.student):<20} {name}{grade:>8}  {r.status}", out)
    if not getattr(report, "sandbox", True):
        say("", out)
        say("ATTENTION : correction SANS bac à sable (--sans-bac-a-sable) : le code des étudiants a pu lire "
            "et modifier les fichiers du cours (gradebook, exports, autres rendus).", out)
    if report.isolation:
        say("", out)
        say(report.isolation, out)
    problems = [r for r in results if r.status != OK]
    if problems:
        say("", out)
        say(f"Problèmes ({len(problems)}) :", out)
        for r in problems:
            say(f"  {inert(r.student):<20} {r.status_text}", out)
    pending = sorted({c for r in results if r.status != FAILED for c in r.manual_pending},
                     key=report.columns.index)
    if pending:
        pts = sum(report.points.get(c, 0) for c in pending)
        say("", out)
        from tpkit.grading.feedback import question_label
        questions = ", ".join(question_label(c, report.assignment) for c in pending)
        say(f"À corriger à la main : {questions} ({fmt(pts)} pt par rendu) — formgrader de "
            "nbgrader, puis : python -m tpkit.grading --export-only", out)
    if exports:
        say("", out)
        for line in exports:
            say(line, out)
