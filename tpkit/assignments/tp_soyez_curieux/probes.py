"""Values tp_soyez_curieux's hidden checks compare with a threshold, measured right after each test
cell ran (flakiness audit, `python -m tpkit.catalogue --flakiness --assignment tp_soyez_curieux`).

The interface of every assignment's probes: `PROBES` ({grade id: fn(namespace) -> {measure: value}}),
`limits()` and `margin()`, from its thresholds.LIMITS. A probe only reads the namespace (no random draw,
no change). What a check measures on inputs it draws itself, in the student's
kernel (the experiments), is not probed: the audit's grades cover it, its spread is in the
calibration (docs/thresholds.md).
"""
from __future__ import annotations

from tpkit.assignments.tp_soyez_curieux import thresholds as T
from tpkit.checks import reference as ref
from tpkit.checks.reference import rate


# Accuracy on the hidden evaluation set (data/hidden/digitz.npz), as the check measures it.
def _cnn(ns):
    return {"cnn_test_acc": rate(ns["cnn"](ref.hidden_tensor().reshape(-1, 1, 28, 28)), ref.hidden()["yh"])}


PROBES = {"q6_cnn_apprentissage": _cnn}

# Every measure the probes above return; thresholds and directions live once, in thresholds.LIMITS.
MEASURES = ("cnn_test_acc",)


def limits() -> dict:
    """measure -> (threshold, 'min' | 'max' | 'range'), from thresholds.LIMITS."""
    return {m: (T.LIMITS[m].value, T.LIMITS[m].kind) for m in MEASURES}


def margin(measure: str, value: float) -> float:
    """How far a measured value is from failing its threshold (negative: the check fails)."""
    return T.LIMITS[measure].margin(value)
