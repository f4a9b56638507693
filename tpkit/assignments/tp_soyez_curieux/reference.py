"""Reference definitions of the bonus assignment `tp_soyez_curieux` (its thresholds: thresholds.py).

The definitions are source text: a repair runs them in the notebook's kernel (functions and classes
cannot travel as data), and the calibration (`python -m tpkit.assignments.tp_soyez_curieux.calibration`) and the
checks execute the same text on their side, so there is one reference.
"""
from __future__ import annotations

import functools

STEP = 0.5                 # the step the notebook asks for in the experiments
CNN_STEP, CNN_NITER, CNN_MB = 0.2, 100, 50


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
