"""What the feedback page says about each question (the page's content; template feedback_fr).

Questions are named as in the notebook (:mod:`tpkit.labels`: "Q2.3 pred"), read from the source
notebook, never from the student's copy (a student can edit its Markdown). Each failed question gets one
"what to do" line chosen from the kind of failure.
"""
from __future__ import annotations

from tpkit import labels
from tpkit.grading.preprocessors import CELL_TIMEOUT, NOT_EXECUTED


def question_label(grade_id: str) -> str:
    """"Q2.3 pred" for a grade id; an answer cell (r2_pred) is named after its test cell (q2_pred);
    the id itself when the source notebook does not know it."""
    try:
        found = labels.question_labels()
    except OSError:
        return grade_id
    if grade_id not in found and grade_id[:1] == "r" and "q" + grade_id[1:] in found:
        return found["q" + grade_id[1:]].short
    return found[grade_id].short if grade_id in found else grade_id


def failure(cell) -> dict | None:
    """{"message", "todo"} for a failed test cell (None when it passed or has no error output)."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not errors:
        return None
    ename, evalue = str(errors[0].get("ename", "")), str(errors[0].get("evalue", "")).strip()
    message = evalue if ename in ("AssertionError", "CheckFailed", NOT_EXECUTED, CELL_TIMEOUT) else \
        (f"{ename} : {evalue}" if evalue else ename)
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
