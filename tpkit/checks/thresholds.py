"""Tolerances and thresholds of the hidden checks.

Accuracy and loss thresholds come from `python -m tpkit.checks.calibration`, which trains the
reference recipe under many seeds; its figures are in docs/thresholds.md. Each threshold keeps a
margin below the worst measured run.
"""
# Initialisation: W = 0.01 * randn(d, p); its entries have a standard deviation of 0.01.
W_STD_MIN, W_STD_MAX, W_MEAN_MAX = 0.005, 0.02, 0.003
# |initial loss - log 3| with W = 0.01 * randn: up to 0.072 over 20000 seeds (79 of them above 0.05,
# e.g. seed 650: 0.063, which 0.05 wrongly failed); 0.1 as the notebook's visible check in q2_cout.
INIT_LOSS_TOL = 0.1
GRAD_REL_ERR = 1e-7             # CS231n relative error, float64

SEED_GD = 1                     # the seed line given in the §3 cells

# Measured over 30 seeds (1 torch thread); see docs/thresholds.md.
# Full-batch gradient descent (step = 1, niter = 200): the loss rises 2-3 times (never more),
# ends at 0.0201-0.0215; test accuracy 0.969-0.971.
GD_MAX_RISES = 10
GD_FINAL_LOSS_MAX = 0.05
GD_TEST_ACC_MIN = 0.95

# Two-layer networks (nb_hidden = 100, step = 1, niter = 200): by hand (W = 0.1 randn)
# 0.976-0.989, nn.Module (torch's default init) 0.967-0.982.
MLP_MANUAL_TEST_ACC_MIN = 0.93
MLP_TEST_ACC_MIN = 0.93

# Minibatch SGD (mb = 20): 47-51 % of the steps raise the loss (a fixed batch: almost none);
# test accuracy 0.938-0.991 after 1000 iterations (one 2-thread run gave 0.893).
MB_NITER_MIN = 500
MB_MIN_RISE_SHARE = 0.2
MB_TEST_ACC_MIN = 0.85
