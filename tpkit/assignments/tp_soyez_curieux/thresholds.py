"""Thresholds of tp_soyez_curieux's hidden checks: each one lives here once, with its direction and what
calibrated it (`python -m tpkit.assignments.tp_soyez_curieux.calibration`, figures in docs/thresholds.md,
section "Bonus: tp_soyez_curieux"; measured over 30 seeds with 1 torch thread).
"""
from __future__ import annotations

from tpkit.checks.thresholds import Limit

_CALIBRATION = "python -m tpkit.assignments.tp_soyez_curieux.calibration"

# Best train loss of the networks an experiment returns after 15 full-batch iterations (step 0.5):
# 2 layers with nb_hidden 8-16 and 25-40 (q6_neurones) 0.101-0.147, 1 and 2 layers (q6_couches)
# 0.099-0.104; untrained about 1.1. One network alone may stay stuck (nb_hidden = 12: up to 0.79 over
# 40 seeds; 5: 1.106), hence the best of the networks.
_TRAIN_LOSS = Limit(0.8, "max", "best of an experiment's networks: 0.099-0.147 over 30 seeds")
# Share of the steps that raise the loss: entrainer with mb = 4 on 40 examples 0.385-0.564;
# experience_minibatch with mb = 5, 30 iterations 0.241-0.552 (a batch drawn once, or mb ignored, is
# caught: catalogue entries entrainer_minibatch_fixe, minibatch_mb_oublie).
_RISES = Limit(0.15, "min", "entrainer mb = 4: 0.385-0.564; experience_minibatch mb = 5: 0.241-0.552")
# CNN (conv 8@5x5, max-pool 2, linear; step 0.2, 100 iterations, mb = 50): test accuracy 0.944-0.987
# (another 30-seed run: 0.958-0.982); untrained about 0.33. The notebook's recipe alone, seeded right
# before CNN() as its cell is, over 100 seeds: 0.927-0.984 (seed 10: 0.927, then 0.944), median 0.976.
# 0.90, the value the notebook states (its visible check): nothing hidden is stricter than the statement.
# The check measures it on the hidden evaluation set (data/hidden/digitz.npz): 0.953-0.975 over 30 seeds.
_CNN = Limit(0.90, "min", "hidden set: 0.953-0.975 over 30 seeds (the notebook's stated 0.90)")

#: Accuracy of the re-run's CNN on the 1,500 hidden images, classes renamed (reexec.SUBSET = 128 training
#: images, niter = 100, mb = 50): the reference and the catalogue's CNN variants reach 0.939-0.971 over 10
#: secrets each (tests/test_reexec_curieux.py); trained on the test set: 0.009-0.031; on a fixed subset of
#: 50 images: 0.908-0.959 (its minibatches fail instead: 50 of 128 images, 39 %).
_RERUN_CNN = Limit(0.8, "min", "reference and CNN variants: 0.939-0.971 over 10 secrets; test set: ≤ 0.031")

LIMITS = {
    "train_loss_best": _TRAIN_LOSS,
    "mb_rise_share": _RISES,
    "cnn_test_acc": _CNN,
    "cnn_params": Limit((1_000, 100_000), "range", "the parameter count of a small CNN, as the notebook asks (not measured)"),
    "rerun_cnn_acc": _RERUN_CNN,
}

# Names the checks use (read from the table above, never repeated).
TRAIN_LOSS_MAX = LIMITS["train_loss_best"].value
MB_MIN_RISE_SHARE = LIMITS["mb_rise_share"].value
CNN_TEST_ACC_MIN = LIMITS["cnn_test_acc"].value
CNN_PARAMS_MIN, CNN_PARAMS_MAX = LIMITS["cnn_params"].value
RERUN_CNN_ACC_MIN = LIMITS["rerun_cnn_acc"].value
