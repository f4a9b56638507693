"""The students' feedback pages: what the French page says about each question (filters of the
template ``templates/feedback_fr``), the page of a submission that could not be graded (template
``templates/echec_fr``). The pages written again from the gradebook (``--export-only``) are nbgrader's
converter's work: :func:`tpkit.grading.converters.regenerate_feedback`.

Questions are named as in the notebook (:mod:`tpkit.labels`: "Q2.3 pred"), read from the source
notebook, never from the student's copy (a student can edit its Markdown). For the same reason a
Markdown cell shows as the statement only when it is the statement's word for word
(:func:`from_statement`); any other is framed as the student's. Each failed question gets one
"what to do" line chosen from the kind of failure.
"""
from __future__ import annotations

import functools
import html
import shutil
from pathlib import Path

import jinja2

from tpkit import labels, paths
from tpkit.grading.findings import CELL_TIMEOUT, MESSAGE_ONLY, NOT_EXECUTED
from tpkit.grading.inert import inert
from tpkit.grading.options import Options, load_config, step_folder

TEMPLATES = Path(__file__).resolve().parent / "templates"


def question_label(grade_id: str, assignment: str | None) -> str:
    """"Q2.3 pred" for a grade id of `assignment`; an answer cell (r2_pred) is named after its test cell
    (q2_pred), one without a test after the question above it ("Q2.1 lignes"); the id itself when the
    source notebook does not know it (or no assignment is named)."""
    if not assignment:
        return grade_id
    try:
        notebook = paths.source_notebook(assignment)
        found = labels.question_labels(notebook)
    except OSError:
        return grade_id
    if grade_id not in found and grade_id[:1] == "r" and "q" + grade_id[1:] in found:
        return found["q" + grade_id[1:]].short
    if grade_id in found:
        return found[grade_id].short
    try:  # an answer without a test of its own: the question above it
        other = labels.cell_labels(notebook).get(grade_id)
    except (OSError, ValueError):
        other = None
    return other.short if other is not None and other.number else grade_id


@functools.lru_cache(maxsize=8)
def _statement_texts(path: str, mtime_ns: int) -> frozenset:
    import nbformat
    from nbgrader import utils
    nb = nbformat.read(path, as_version=4)
    return frozenset(c.source for c in nb.cells if c.cell_type == "markdown" and not utils.is_solution(c))


def from_statement(cell, assignment: str | None) -> bool:
    """True when a Markdown cell is one of the statement's (source notebook of `assignment`) word for
    word, answers excepted; False otherwise, or when the statement is unknown (no assignment named)."""
    if not assignment:
        return False
    path = paths.source_notebook(assignment)
    try:
        texts = _statement_texts(str(path), path.stat().st_mtime_ns)
    except Exception:  # no such notebook (another course), unreadable: everything is the student's
        return False
    return cell.get("cell_type") == "markdown" and cell.get("source") in texts


def failure(cell) -> dict | None:
    """{"message", "todo"} for a failed test cell (None when it passed or has no error output)."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not errors:
        return None
    ename, evalue = str(errors[0].get("ename", "")), str(errors[0].get("evalue", "")).strip()
    message = evalue if ename in MESSAGE_ONLY else (f"{ename} : {evalue}" if evalue else ename)
    return {"message": message or "le test a échoué.", "todo": todo(ename, evalue)}


def todo(ename: str, evalue: str) -> str:
    if ename in ("AssertionError", "CheckFailed"):
        return ("corrigez votre réponse à cette question en suivant le message, puis Kernel → Restart & Run "
                "All : sa cellule de vérification doit passer sans erreur.")
    if ename == "NotImplementedError":
        return ("la cellule n'est pas complétée : remplacez la ligne raise NotImplementedError(...) par "
                "votre code.")
    if ename == "NameError":
        return ("une variable ou une fonction n'existe pas à ce stade : complétez la cellule de la question "
                "(ou une cellule précédente), puis exécutez le notebook dans l'ordre (Restart & Run All).")
    if ename in (CELL_TIMEOUT, NOT_EXECUTED):
        return ("votre notebook a été arrêté (trop long ou bloqué) : vérifiez vos boucles et le nombre "
                "d'itérations, puis relancez-le en entier pour mesurer son temps.")
    return (f"votre code lève une erreur {ename} : lisez le message, corrigez la cellule de la question "
            "puis relancez tout le notebook (Restart & Run All).")


_PAGES = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True,
                            autoescape=False)
_PAGES.filters["esc"] = html.escape  # explicit: the page escapes every value itself
_PAGES.filters["inert"] = inert


def write_failure_feedback(options: Options, student: str, reason: str, cfg=None) -> Path:
    """The page of a submission that could not be graded (the reason, what to check)."""
    out = step_folder(cfg or load_config(options), options, "feedback", student) / f"{options.notebook}.html"
    if out.parent.exists():
        shutil.rmtree(out.parent)
    out.parent.mkdir(parents=True)
    page = _PAGES.get_template("echec_fr/index.html.j2").render(
        notebook=options.notebook, reason=reason, filename=options.notebook + ".ipynb")
    out.write_text(page, encoding="utf-8")
    return out
