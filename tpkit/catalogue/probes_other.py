"""Values the hidden checks of the other assignments compare with a threshold, measured right after
each test cell ran (flakiness audit, `python -m tpkit.catalogue --flakiness --assignment X`).

Same interface as `tpkit.catalogue.probes` (the main TP's): `PROBES` ({grade id: fn(namespace) ->
{measure: value}}), `limits()` and `margin()`; the thresholds are the checks' own constants. A probe
only reads the namespace (no random draw, no change). What a check measures on inputs it draws itself,
in the student's kernel (the bonus's experiments), is not probed: the audit's grades cover it, its
spread is in the calibration (docs/thresholds.md).
"""
from __future__ import annotations

import numpy as np
import torch

from tpkit.checks import curieux_ref as C
from tpkit.checks import pima_jouet as J
from tpkit.checks import reference as ref


def _rate(output, labels) -> float:
    with torch.no_grad():
        return float(np.mean(np.argmax(output.detach().double().numpy(), axis=1) == np.asarray(labels)))


# Accuracies on the hidden evaluation sets (data/hidden/), as the checks measure them.
def _pima_hidden(ns):
    got = ns["Xt"].detach().double().numpy()
    D = J.data()["pima"]
    ddof = next((k for k in (0, 1) if np.allclose(got, J.standardise(D["x"], D["xt"], k)[1])), 0)
    return J.pima_hidden(ddof)


def _pima_linear(ns):
    Xh, yh = _pima_hidden(ns)
    return {"pima_lin_test_acc": _rate(ns["pred"](Xh, ns["W"], ns["B"]), yh),
            "pima_lin_shipped_acc": _rate(ns["pred"](ns["Xt"], ns["W"], ns["B"]), ns["yt"])}


def _pima_mlp(ns):
    Xh, yh = _pima_hidden(ns)
    return {"pima_mlp_test_acc": _rate(ns["mlp"](Xh), yh), "pima_mb_test_acc": _rate(ns["mlp_mb"](Xh), yh),
            "pima_mlp_shipped_acc": _rate(ns["mlp"](ns["Xt"]), ns["yt"]),
            "pima_mb_shipped_acc": _rate(ns["mlp_mb"](ns["Xt"]), ns["yt"])}


def _toy_mlp(ns):
    xh, yh = J.hidden_data()["toy"]
    return {"toy_mlp_test_acc": _rate(ns["mlp_j"](torch.tensor(xh)), yh)}


def _cnn(ns):
    return {"cnn_test_acc": _rate(ns["cnn"](ref.hidden_tensor().reshape(-1, 1, 28, 28)), ref.hidden()["yh"])}


# assignment -> ({grade id: probe}, {measure: (threshold, 'min' | 'max')})
PROBES_OF = {
    "tp_pima_jouet": ({"j2_pima_lineaire": _pima_linear, "j3_pima": _pima_mlp, "j4_jouet": _toy_mlp},
                      {"pima_lin_test_acc": (J.PIMA_HIDDEN_ACC_MIN, "min"),
                       "pima_mlp_test_acc": (J.PIMA_HIDDEN_ACC_MIN, "min"),
                       "pima_mb_test_acc": (J.PIMA_HIDDEN_ACC_MIN, "min"),
                       "pima_lin_shipped_acc": (J.PIMA_LIN_TEST_ACC_MIN, "min"),
                       "pima_mlp_shipped_acc": (J.PIMA_MLP_TEST_ACC_MIN, "min"),
                       "pima_mb_shipped_acc": (J.PIMA_MB_TEST_ACC_MIN, "min"),
                       "toy_mlp_test_acc": (J.TOY_MLP_TEST_ACC_MIN, "min")}),
    "tp_soyez_curieux": ({"q6_cnn_apprentissage": _cnn}, {"cnn_test_acc": (C.CNN_TEST_ACC_MIN, "min")}),
}
# What the fork executor calls: every assignment's probes (grade ids differ between assignments).
PROBES = {gid: fn for probes, _ in PROBES_OF.values() for gid, fn in probes.items()}


def limits(assignment: str) -> dict:
    return dict(PROBES_OF[assignment][1])


def margin(assignment: str, measure: str, value: float) -> float:
    limit, kind = PROBES_OF[assignment][1][measure]
    return value - limit if kind == "min" else limit - value
