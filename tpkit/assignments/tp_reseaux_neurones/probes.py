"""Values the hidden checks compare with a threshold, measured right after each test cell ran.

Used by the flakiness audit (`python -m tpkit.catalogue --flakiness`): the fork executor calls
`PROBES[grade_id](namespace)` after that test cell. Each probe recomputes what the check measures,
with the same reference functions, so the audit can report how close the reference solution comes
to every threshold. Probes only read the namespace (no random draw, no change).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from tpkit.assignments.tp_reseaux_neurones import reference as ref
from tpkit.assignments.tp_reseaux_neurones import thresholds as T

LOG3 = math.log(3)


def _rises(losses, tol=1e-12):
    return sum(b > a + tol for a, b in zip(losses, losses[1:]))


# Accuracies on the hidden evaluation set, as the checks measure them (data/hidden/digitz.npz).
def _linear_test_acc(W, B):
    with torch.no_grad():
        return ref.accuracy(ref.pred(ref.hidden_tensor(), W.detach().double(), B.detach().double()),
                            ref.hidden()["yh"])


def _model_test_acc(fn):
    with torch.no_grad():
        return ref.accuracy(fn(ref.hidden_tensor()).double(), ref.hidden()["yh"])


def _q2_W(ns):
    W = ns["W"].detach().double()
    loss0 = float(ref.cout(ref.tensors()["Y"], ref.pred(ref.tensors()["X"], W, torch.zeros(1, ref.P,
                                                                                         dtype=torch.float64))))
    return {"W_std": float(W.std()), "W_abs_mean": abs(float(W.mean())),
            "W_init_loss_gap": abs(loss0 - LOG3)}


def _q2_gradient(ns):
    R = ref.tensors()
    W, B = ns["W"], ns["B"]
    with torch.no_grad():
        Rr = ref.pred(R["X"], W.detach(), B.detach()) - R["Y"]
        gW, gB = R["X"].T @ Rr / Rr.shape[0], Rr.mean(0, keepdim=True)
    rel = lambda a, b: float(((a - b).abs() / torch.clamp(a.abs() + b.abs(), min=1e-8)).max())  # noqa: E731
    return {"grad_rel_error": max(rel(W.grad.double(), gW), rel(B.grad.double().reshape(gB.shape), gB))}


def _consistency(losses, final):
    """As the checks measure it: |final cost on the training data - last reported cost| in units of
    (last step + 1 % of the last cost)."""
    return abs(final - losses[-1]) / (abs(losses[-2] - losses[-1]) + 0.01 * abs(losses[-1]))


def _train_cost(fn):
    R = ref.tensors()
    with torch.no_grad():
        return float(ref.cout(R["Y"], fn(R["X"]).double()))


def _descent(prefix, losses, W, B):
    final = _train_cost(lambda x: ref.pred(x, W.detach().double(), B.detach().double()))
    return {f"{prefix}_init_loss_gap": abs(losses[0] - LOG3), f"{prefix}_rises": _rises(losses),
            f"{prefix}_final_loss": losses[-1], f"{prefix}_test_acc": _linear_test_acc(W, B),
            f"{prefix}_consistency": _consistency(losses, final)}


def _q3_descente(ns):
    return _descent("gd", [float(v) for v in ns["lst_loss"]], ns["W"], ns["B"])


def _q3_sgd(ns):
    return _descent("sgd", [float(v) for v in ns["lst_loss_sgd"]], ns["W"], ns["B"])


def _q4_mlp_manuel(ns):
    W1, B1, W2, B2 = (ns[k].detach().double() for k in ("W1", "B1", "W2", "B2"))
    losses = [float(v) for v in ns["lst_loss2"]]
    fn = lambda x: ref.pred2(x, W1, B1, W2, B2)  # noqa: E731
    return {"mlp_manual_test_acc": _model_test_acc(fn), "mlp_manual_loss_drop": losses[0] - losses[-1],
            "mlp_manual_W1_std": float(W1.std()), "mlp_manual_consistency": _consistency(losses, _train_cost(fn))}


def _q4_mlp_apprentissage(ns):
    losses = [float(v) for v in ns["lst_loss_mlp"]]
    return {"mlp_test_acc": _model_test_acc(ns["mlp"]), "mlp_loss_drop": losses[0] - losses[-1],
            "mlp_consistency": _consistency(losses, _train_cost(ns["mlp"]))}


def _q5_minibatch(ns):
    losses = [float(v) for v in ns["lst_loss_mb"]]
    k = max(1, len(losses) // 10)
    return {"mb_rise_share": sum(b > a for a, b in zip(losses, losses[1:])) / (len(losses) - 1),
            "mb_loss_drop": float(np.mean(losses[:k]) - np.mean(losses[-k:])),
            "mb_test_acc": _model_test_acc(ns["mlp_mb"])}


PROBES = {"q2_W": _q2_W, "q2_gradient": _q2_gradient, "q3_descente": _q3_descente, "q3_sgd": _q3_sgd,
          "q4_mlp_manuel": _q4_mlp_manuel, "q4_mlp_apprentissage": _q4_mlp_apprentissage,
          "q5_minibatch": _q5_minibatch}


# Every measure the probes above return; their thresholds, directions and calibrations live once,
# in tpkit.checks.thresholds.LIMITS (shared with the checks and tpkit.assignments.tp_reseaux_neurones.calibration).
MEASURES = ("W_std", "W_abs_mean", "W_init_loss_gap", "grad_rel_error",
            "gd_init_loss_gap", "gd_rises", "gd_final_loss", "gd_test_acc", "gd_consistency",
            "sgd_init_loss_gap", "sgd_rises", "sgd_final_loss", "sgd_test_acc", "sgd_consistency",
            "mlp_manual_test_acc", "mlp_manual_loss_drop", "mlp_manual_W1_std", "mlp_manual_consistency",
            "mlp_test_acc", "mlp_loss_drop", "mlp_consistency",
            "mb_rise_share", "mb_loss_drop", "mb_test_acc")


def limits() -> dict:
    """measure -> (threshold, 'min' | 'max' | 'range'), from thresholds.LIMITS."""
    return {m: (T.LIMITS[m].value, T.LIMITS[m].kind) for m in MEASURES}


def margin(measure: str, value: float) -> float:
    """How far a measured value is from failing its threshold (negative: the check fails)."""
    return T.LIMITS[measure].margin(value)
