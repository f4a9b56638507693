"""Reference definitions of the bonus assignment `tp_soyez_curieux`, and its thresholds.

The definitions are source text: a repair runs them in the notebook's kernel (functions and classes
cannot travel as data), and the calibration (`python -m tpkit.checks.curieux_calibration`) and the
checks execute the same text on their side, so there is one reference.
"""
from __future__ import annotations

import functools

STEP = 0.5                 # the step the notebook asks for in the experiments
CNN_STEP, CNN_NITER, CNN_MB = 0.2, 100, 50

# Measured over 30 seeds with 1 torch thread: `python -m tpkit.checks.curieux_calibration`, figures in
# docs/thresholds.md, section "Bonus: tp_soyez_curieux".
# Best train loss of the networks an experiment returns after 15 full-batch iterations (step 0.5):
# 2 layers with nb_hidden 8-16 and 25-40 (q6_neurones) 0.101-0.147, 1 and 2 layers (q6_couches)
# 0.099-0.104; untrained about 1.1. One network alone may stay stuck (nb_hidden = 12: up to 0.79 over
# 40 seeds; 5: 1.106), hence the best of the networks.
TRAIN_LOSS_MAX = 0.8
# Share of the steps that raise the loss: entrainer with mb = 4 on 40 examples 0.385-0.564;
# experience_minibatch with mb = 5, 30 iterations 0.241-0.552 (a batch drawn once, or mb ignored, is
# caught: catalogue entries entrainer_minibatch_fixe, minibatch_mb_oublie).
MB_MIN_RISE_SHARE = 0.15
# CNN (conv 8@5x5, max-pool 2, linear; step 0.2, 100 iterations, mb = 50): test accuracy 0.944-0.987
# (another 30-seed run: 0.958-0.982); untrained about 0.33. The notebook's recipe alone, seeded right
# before CNN() as its cell is, over 100 seeds: 0.927-0.984 (seed 10: 0.927, then 0.944), median 0.976.
# 0.90, the value the notebook states (its visible check): nothing hidden is stricter than the statement.
# The check measures it on the hidden evaluation set (data/hidden/digitz.npz): 0.953-0.975 over 30 seeds.
CNN_TEST_ACC_MIN = 0.90
CNN_PARAMS_MIN, CNN_PARAMS_MAX = 1_000, 100_000

MLP = """\
import torch as _torch_ref


class MLP(_torch_ref.nn.Module):
    def __init__(self, d, nb_hidden, p, nb_couches=2, activation="relu"):
        super(MLP, self).__init__()
        tailles = [d] + [nb_hidden] * (nb_couches - 1) + [p]
        self.couches = _torch_ref.nn.ModuleList(
            [_torch_ref.nn.Linear(a, b).double() for a, b in zip(tailles[:-1], tailles[1:])])
        self.activation = {"relu": _torch_ref.relu, "tanh": _torch_ref.tanh,
                           "sigmoid": _torch_ref.sigmoid}[activation]

    def forward(self, x):
        for couche in self.couches[:-1]:
            x = self.activation(couche(x))
        return _torch_ref.softmax(self.couches[-1](x), dim=1)
"""

ENTRAINER = """\
def entrainer(modele, X, Y, niter, step, mb=None):
    import torch as _torch_ref
    optimiseur = _torch_ref.optim.SGD(modele.parameters(), lr=step)
    lst_loss = []
    for i in range(niter):
        if mb is None:
            Xb, Yb = X, Y
        else:
            idx = _torch_ref.randint(X.shape[0], (mb,))
            Xb, Yb = X[idx], Y[idx]
        Yhat = modele(Xb)
        loss = -_torch_ref.mean(_torch_ref.sum(Yb * _torch_ref.log(Yhat + 1e-16), dim=1))
        lst_loss.append(loss.item())
        loss.backward()
        optimiseur.step()
        optimiseur.zero_grad()
    return lst_loss
"""

CNN = """\
import torch as _torch_ref


class CNN(_torch_ref.nn.Module):
    def __init__(self):
        super(CNN, self).__init__()
        self.conv = _torch_ref.nn.Conv2d(1, 8, 5).double()
        self.pool = _torch_ref.nn.MaxPool2d(2)
        self.lin = _torch_ref.nn.Linear(8 * 12 * 12, 3).double()

    def forward(self, x):
        h = self.pool(_torch_ref.relu(self.conv(x)))
        return _torch_ref.softmax(self.lin(h.reshape(h.shape[0], -1)), dim=1)
"""


@functools.lru_cache(maxsize=1)
def definitions() -> dict:
    """MLP, entrainer and CNN defined on this side (calibration, reference computations)."""
    ns: dict = {}
    for code in (MLP, ENTRAINER, CNN):
        exec(code, ns)
    return {k: ns[k] for k in ("MLP", "entrainer", "CNN")}
