"""What the worked example's checks compare with a threshold, measured right after a test cell ran
(the flakiness audit's probes): `PROBES` ({grade id: fn(namespace) -> {measure: value}}), `limits()`
and `margin()`, read from `thresholds.LIMITS`. A probe only reads the namespace: its hidden set is a
fixed draw, not the course secret's."""
from __future__ import annotations

import math

import torch

from tpkit.assignments.tp_exemple import reference as ref
from tpkit.assignments.tp_exemple import thresholds as T
from tpkit.checks.common import Draw


def _descent(ns) -> dict:
    W, B = (ns[k].detach().to(torch.float64) for k in ("W", "B"))
    D = ref.notebook_data()
    with torch.no_grad():
        final = float(ref.cost(D["Y"], ref.softmax(D["X"] @ W + B)))
    losses = ns["lst_loss"]
    return {"init_loss_gap": abs(losses[0] - math.log(ref.P)), "final_vs_last_loss": final - losses[-1],
            "hidden_acc": ref.accuracy(W, B, *ref.hidden_set(Draw(0)))}


PROBES = {"e2_descente": _descent}
MEASURES = ("init_loss_gap", "final_vs_last_loss", "hidden_acc")


def limits() -> dict:
    """measure -> (threshold, 'min' | 'max' | 'range'), from thresholds.LIMITS."""
    return {m: (T.LIMITS[m].value, T.LIMITS[m].kind) for m in MEASURES}


def margin(measure: str, value: float) -> float:
    """How far a measured value is from failing its threshold (negative: the check fails)."""
    return T.LIMITS[measure].margin(value)
