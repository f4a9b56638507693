"""Thresholds of tp_pima_jouet's hidden checks: each one lives here once, with its direction and what
calibrated it (`python -m tpkit.assignments.tp_pima_jouet.calibration`, docs/thresholds-pima-jouet.md).

Each sits below the worst of 30 seeds with margin, and Pima's well above the majority-class baseline
(0.672 on the test set). Pima's hidden rows (data/hidden/pima.npz: the 100 records MASS left out for
missing values) are harder and few: 0.67 (linear, every seed), 0.65-0.73 (MLP, 100 seeds), 0.66-0.75
(minibatch, 40 seeds), against 0.62 for always answering "no". Their threshold stops a model that only
knows the shipped rows (it can do no better than "no" elsewhere); the shipped-test thresholds stay,
for their resolution (332 rows), so both must hold.
"""
from __future__ import annotations

from tpkit.checks.thresholds import Limit

_CALIBRATION = "python -m tpkit.assignments.tp_pima_jouet.calibration"
_HIDDEN = Limit(0.63, "min", _CALIBRATION)

LIMITS = {
    # Initialisation W = 0.01 * randn(d, p), as the main TP asks: the same bounds as its own
    "W_std": Limit((0.005, 0.02), "range", "std of 0.01·randn: 0.0097-0.0103 (main TP's calibration)"),
    "W_abs_mean": Limit(0.003, "max", "|mean| of 0.01·randn < 0.001 (main TP's calibration)"),
    "init_loss_gap": Limit(0.1, "max", "|initial loss - log p| ≤ 0.072 over 20000 seeds (main TP's)"),
    # accuracies on the hidden rows (both these and the shipped-test ones decide)
    "pima_lin_test_acc": _HIDDEN, "pima_mlp_test_acc": _HIDDEN, "pima_mb_test_acc": _HIDDEN,
    # on the shipped test set
    "pima_lin_shipped_acc": Limit(0.76, "min", _CALIBRATION),  # 0.801 for every seed (step = 1, niter = 200)
    "pima_mlp_shipped_acc": Limit(0.74, "min", _CALIBRATION),  # 0.780-0.807 (nb_hidden = 20, step = 0.1)
    "pima_mb_shipped_acc": Limit(0.72, "min", _CALIBRATION),   # 0.756-0.804 (mb = 20, step = 0.05, 1000 it.)
    "toy_mlp_test_acc": Limit(0.90, "min", _CALIBRATION),      # 0.980-0.993 (2 -> 100 -> 3, step = 1, 500 it.)
}

# Names the checks use (read from the table above, never repeated).
W_STD_MIN, W_STD_MAX = LIMITS["W_std"].value
W_MEAN_MAX = LIMITS["W_abs_mean"].value
INIT_LOSS_TOL = LIMITS["init_loss_gap"].value
PIMA_HIDDEN_ACC_MIN = LIMITS["pima_lin_test_acc"].value
PIMA_LIN_TEST_ACC_MIN = LIMITS["pima_lin_shipped_acc"].value
PIMA_MLP_TEST_ACC_MIN = LIMITS["pima_mlp_shipped_acc"].value
PIMA_MB_TEST_ACC_MIN = LIMITS["pima_mb_shipped_acc"].value
TOY_MLP_TEST_ACC_MIN = LIMITS["toy_mlp_test_acc"].value
