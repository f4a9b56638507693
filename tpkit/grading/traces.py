"""Traces of an attempt on the grader, found in a graded notebook (French, for the status column).

Nothing here changes a score: the sandbox and the trusted checks already make every attempt useless.
The flags tell the teaching team that a submission *tried* — code aimed at the grader's internals or
the system, an action the sandbox blocked, processes left behind — so that a trick spreading through a
class is seen the day it appears. Honest TP code never matches (checked on the catalogue's variants and
the bundled examples).
"""
from __future__ import annotations

import re

from nbgrader import utils

from tpkit.vocabulary import grade_id
from tpkit.witness import REFUSED

#: Code aimed at the grader or the system (in the student's own cells).
SUSPICIOUS_CODE = (
    (re.compile(r"\btpkit\b|_tpkit_agent|\bnbgrader\b|gradebook"), "le correcteur (tpkit, nbgrader, gradebook)"),
    (re.compile(r"sys\.modules|run_cell|get_ipython\(\)\.(?!run_line_magic)"), "l'interpréteur du correcteur"),
    (re.compile(r"os\.kill|getppid|killpg|setsid|os\.fork|subprocess|os\.system|Popen"), "des processus"),
    (re.compile(r"/proc/|/dev/shm|MAP_SHARED|\bmmap\b|connection_file|kernel-.*\.json"), "le système"),
    (re.compile(r"\bsocket\b|urllib|requests\.|http\.client"), "le réseau"),
    (re.compile(r"\.\./|[\"']/(?!home/etudiant)\w|os\.symlink|os\.chmod"), "des fichiers hors du TP"),
)

#: Errors that the sandbox, or the checks' isolation, caused.
BLOCKED_OUTPUT = re.compile(
    r"Read-only file system|Permission denied|Operation not permitted|Network is unreachable|"
    r"Connection refused|No module named '?tpkit|Resource temporarily unavailable|Cannot allocate memory|"
    r"File too large|Too many open files|BlockingIOError")


#: A witness answer over the decoding budget (tpkit.witness.budget): only code that replaced the grader's
#: agent in the kernel sends one.
REFUSED_ANSWER = re.compile(re.escape(REFUSED))


def _code_lines(cell):
    return [line for line in cell.source.split("\n") if line.strip() and not line.strip().startswith("#")]


def flags(nb) -> list:
    """French flags for a graded notebook: code in the student's cells (every code cell that is not a
    test cell), outputs of every cell, what the sandbox reported."""
    found_code, blocked, refused = {}, [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        is_test = bool(utils.is_grade(cell)) and not utils.is_solution(cell)
        if not is_test:
            for line in _code_lines(cell):
                for pattern, target in SUSPICIOUS_CODE:
                    if pattern.search(line) and target not in found_code:
                        found_code[target] = line.strip()[:60]
        for out in cell.get("outputs", []):
            text = " ".join(str(out.get(k, "")) for k in ("ename", "evalue", "text"))
            where = f"cellule {grade_id(cell) or f'n°{index + 1}'}"
            m = BLOCKED_OUTPUT.search(text)
            if m and len(blocked) < 3:
                blocked.append(f"{m.group(0)} ({where})")
            if REFUSED_ANSWER.search(text) and len(refused) < 3 and where not in refused:
                refused.append(where)
    out = []
    if found_code:
        out.append("code qui vise " + " ; ".join(f"{t} : « {line} »" for t, line in found_code.items()))
    if blocked:
        out.append("action bloquée par le bac à sable : " + ", ".join(blocked))
    if refused:
        out.append("réponse au correcteur hors budget de décodage, refusée : " + ", ".join(refused))
    for remark in nb.metadata.get("tpkit", {}).get("sandbox", []):
        out.append(str(remark))
    return out
