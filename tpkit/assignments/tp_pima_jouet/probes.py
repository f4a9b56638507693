"""Values tp_pima_jouet's hidden checks compare with a threshold, measured right after each test
cell ran (flakiness audit, `python -m tpkit.catalogue --flakiness --assignment tp_pima_jouet`).

The interface of every assignment's probes: `PROBES` ({grade id: fn(namespace) -> {measure: value}}),
`limits()` and `margin()`, from its thresholds.LIMITS. A probe only reads the namespace (no random draw,
no change).
"""
from __future__ import annotations

import numpy as np
import torch

from tpkit.assignments.tp_pima_jouet import reference as R
from tpkit.assignments.tp_pima_jouet import thresholds as T
from tpkit.checks.reference import rate


# Accuracies on the hidden evaluation sets (data/hidden/), as the checks measure them.
def _pima_hidden(ns):
    got = ns["Xt"].detach().double().numpy()
    D = R.data()["pima"]
    ddof = next((k for k in (0, 1) if np.allclose(got, R.standardise(D["x"], D["xt"], k)[1])), 0)
    return R.pima_hidden(ddof)


def _pima_linear(ns):
    Xh, yh = _pima_hidden(ns)
    return {"pima_lin_test_acc": rate(ns["pred"](Xh, ns["W"], ns["B"]), yh),
            "pima_lin_shipped_acc": rate(ns["pred"](ns["Xt"], ns["W"], ns["B"]), ns["yt"])}


def _pima_mlp(ns):
    Xh, yh = _pima_hidden(ns)
    return {"pima_mlp_test_acc": rate(ns["mlp"](Xh), yh), "pima_mb_test_acc": rate(ns["mlp_mb"](Xh), yh),
            "pima_mlp_shipped_acc": rate(ns["mlp"](ns["Xt"]), ns["yt"]),
            "pima_mb_shipped_acc": rate(ns["mlp_mb"](ns["Xt"]), ns["yt"])}


def _toy_mlp(ns):
    xh, yh = R.hidden_data()["toy"]
    return {"toy_mlp_test_acc": rate(ns["mlp_j"](torch.tensor(xh)), yh)}


PROBES = {"j2_pima_lineaire": _pima_linear, "j3_pima": _pima_mlp, "j4_jouet": _toy_mlp}

# Every measure the probes above return; thresholds and directions live once, in thresholds.LIMITS.
MEASURES = ("pima_lin_test_acc", "pima_mlp_test_acc", "pima_mb_test_acc", "pima_lin_shipped_acc",
            "pima_mlp_shipped_acc", "pima_mb_shipped_acc", "toy_mlp_test_acc")


def limits() -> dict:
    """measure -> (threshold, 'min' | 'max' | 'range'), from thresholds.LIMITS."""
    return {m: (T.LIMITS[m].value, T.LIMITS[m].kind) for m in MEASURES}


def margin(measure: str, value: float) -> float:
    """How far a measured value is from failing its threshold (negative: the check fails)."""
    return T.LIMITS[measure].margin(value)
