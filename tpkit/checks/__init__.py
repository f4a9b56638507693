"""Hidden checks of the TP: one check code, two transports.

Authoring stays nbgrader's: a hidden test cell reads

    from tpkit.checks import verifier
    verifier("q2_pred", globals())

* **Trusted mode** (``python -m tpkit.grading``): the grading executor recognises that line and does
  not send it to the kernel; it runs :func:`run_check` in the grading process, questioning the sandboxed
  kernel through the witness protocol (:mod:`tpkit.witness`).
* **Untrusted mode** (plain ``nbgrader autograde`` / ``validate``): the line runs in the kernel;
  :func:`verifier` runs the same :func:`run_check` over an in-process transport. The student's code
  shares that process and could tamper with it: use it for validation, not for grades.

On failure the question's repair puts reference values in the notebook (see the ``checks`` package of each
assignment, :mod:`tpkit.assignments`).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Callable, Optional

from tpkit import assignments
from tpkit.checks import registry
from tpkit.checks.tools import CheckFailed, quiet
from tpkit.witness import LocalTransport, Witness, WitnessError
from tpkit.witness import agent

__all__ = ["verifier", "run_check", "CHECKS"]



def load() -> None:
    """Register every assignment's checks and repairs (importing its ``checks`` package does), in course
    order. On first use, not when this package is imported: an assignment's modules import the shared
    ones here (``tpkit.checks.tools``...), which must not import them back half-built."""
    for assignment in assignments.registry():
        assignment.module("checks")


def __getattr__(name):
    if name in ("CHECKS", "REPAIRS"):  # the registry's tables, every assignment's checks loaded
        load()
        return getattr(registry, name)
    raise AttributeError(name)


def run_check(qid: str, witness: Witness,
              repair_failed: Optional[Callable[[str, str], None]] = None) -> Optional[str]:
    """Run question `qid`'s check; None when it passes, else the French diagnostic (the repair has
    then been applied; if it raised, ``repair_failed(qid, exception name)`` is told)."""
    message = judge(qid, witness)
    if message is not None:
        failure = repair(qid, witness)
        if failure is not None and repair_failed is not None:
            repair_failed(qid, failure)
    return message


def judge(qid: str, witness: Witness) -> Optional[str]:
    """Question `qid`'s verdict alone: None when its check passes, else the French diagnostic."""
    message = None
    load()
    try:
        witness.reset()
        registry.CHECKS[qid](witness)
    except CheckFailed as exc:
        message = str(exc)
    except WitnessError as exc:
        message = f"le notebook n'a pas pu répondre à la vérification : {exc}"
    except Exception as exc:  # an answer of the student's broke the check itself
        message = f"vérification impossible : {type(exc).__name__}: {exc}"
    return message


def repair(qid: str, witness: Witness) -> Optional[str]:
    """Question `qid`'s repair (best effort: the check's failure is what counts); the name of the
    exception when it raised, which is logged: the questions that build on `qid` may then lose points
    that are not theirs, and the grading reports it (:func:`tpkit.grading.findings.execution_findings`)."""
    load()
    if qid not in registry.REPAIRS:
        return None
    try:
        registry.REPAIRS[qid](witness)
    except Exception as exc:
        logging.getLogger("tpkit.checks").warning("repair of %s failed: %s", qid, type(exc).__name__)
        return type(exc).__name__
    return None


#: The course secret of the untrusted mode, as a decimal integer (the catalogue's audit runs the
#: in-kernel checks under several secrets); unset: 0, fixed inputs. Trusted grading never uses it:
#: its secret travels in the executor's configuration, never into a kernel's environment.
SECRET_VARIABLE = "TPKIT_CHECK_SECRET"


#: The catalogue's audit (`tpkit.catalogue.flakiness`): comma-separated secrets under each of which
#: every check judges the notebook where it stands (see `verifier`).
AUDIT_VARIABLE = "TPKIT_CHECK_AUDIT_SECRETS"
AUDIT_MARK = "tpkit-verdicts-par-secret "


def untrusted_secret() -> int:
    value = os.environ.get(SECRET_VARIABLE, "").strip()
    return int(value) if value.isdigit() else 0


def audit_secrets() -> list:
    return [int(v) for v in os.environ.get(AUDIT_VARIABLE, "").split(",") if v.strip().isdigit()]


def verifier(qid: str, ns: dict) -> None:
    """In-kernel (untrusted) entry point: raise AssertionError with the diagnostic on failure.

    Under the audit's secrets (`AUDIT_VARIABLE`), the check judges the notebook once per secret and
    displays the verdicts (a line starting with `AUDIT_MARK`, JSON {secret: message or null}); it fails,
    and repairs, when one of them fails. The catalogue's entries are then graded under ten secrets in
    one execution of their cells: the state a check sees differs from a run under one secret only after
    a check whose verdict depended on the secret, which the audit reports anyway."""
    agent.install_figure_hook()
    audit = audit_secrets()
    with quiet():
        if not audit:
            message = run_check(qid, Witness(LocalTransport(ns), salt=untrusted_secret()))
        else:
            verdicts = {str(s): judge(qid, Witness(LocalTransport(ns), salt=s)) for s in audit}
            message = next((m for m in verdicts.values() if m is not None), None)
            if message is not None:
                repair(qid, Witness(LocalTransport(ns)))
    if audit:
        from IPython.display import display
        display({"text/plain": AUDIT_MARK + json.dumps({"qid": qid, "verdicts": verdicts})}, raw=True)
    if message is not None:
        raise AssertionError(message) from None
