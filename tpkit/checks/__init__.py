"""Hidden checks of the TP, called from the notebook's hidden test cells at grading time:

    from tpkit.checks import verifier
    verifier("q2_pred", globals())

`verifier` runs the question's check; on failure it repairs the notebook's variables (see
`questions`) and raises AssertionError with the French diagnostic, which nbgrader records.
"""
from __future__ import annotations

from tpkit.checks import figures
from tpkit.checks.questions import CHECKS, REPAIRS
from tpkit.checks.tools import CheckFailed, quiet

__all__ = ["verifier", "CHECKS"]


def verifier(qid: str, ns: dict) -> None:
    figures.install()
    message = None
    try:
        with quiet():
            CHECKS[qid](ns)
    except CheckFailed as exc:
        message = str(exc)
    except Exception as exc:  # an object of the student's broke the check itself
        message = f"vérification impossible : {type(exc).__name__}: {exc}"
    if message is None:
        return
    if qid in REPAIRS:
        try:
            with quiet():
                REPAIRS[qid](ns)
        except Exception:
            pass  # a repair is best effort; the failure below is what counts
    raise AssertionError(message) from None
