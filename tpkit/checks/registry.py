"""The registry of the hidden checks: question id -> check, question id -> repair (every assignment)."""
from __future__ import annotations

CHECKS: dict = {}
REPAIRS: dict = {}


def check(qid):
    """Register the decorated function as the check of question ``qid``."""
    def register(fn):
        CHECKS[qid] = fn
        return fn
    return register


def repair(qid):
    """Register the decorated function as the repair of question ``qid`` (run when its check fails)."""
    def register(fn):
        REPAIRS[qid] = fn
        return fn
    return register
