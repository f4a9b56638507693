"""Reference of tp_pima_jouet: its data (Pima standardised, the 2-D toy set, their hidden rows), the
values its notebook asks for, and the reference code its repairs put in the notebook. The float64
computations are the shared ones (:mod:`tpkit.checks.reference`).
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from tpkit.checks.tools import all_finite, fail

PIMA_HIDDEN_MAJORITY = 0.62     # always answering "no" on the 100 hidden rows (62 No / 38 Yes)
PIMA_STEP, PIMA_NITER = 1.0, 200
NB_HIDDEN, MB = 20, 20
# what the training cells ask (Q3.4, Q4.2): the re-runs replay them
PIMA_MLP_STEP, PIMA_MLP_NITER, PIMA_MB_STEP = 0.1, 200, 0.05
TOY_LIN_STEP, TOY_LIN_NITER, TOY_HIDDEN, TOY_MLP_STEP, TOY_MLP_NITER = 1.0, 200, 100, 1.0, 500
ROWS_CLOSE = dict(rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- data
@functools.lru_cache(maxsize=1)
def data() -> dict:
    from tpkit import datasets
    pima, toy = datasets.load("pima"), datasets.load("toy2d")
    return {"pima": {k: np.array(pima[k]) for k in ("x", "y", "xt", "yt")},
            "toy": {k: np.array(toy[k]) for k in ("x", "y", "xt", "yt")}}


@functools.lru_cache(maxsize=1)
def hidden_data() -> dict:
    """The hidden evaluation sets (data/hidden/: examples the students never receive), on which the
    accuracies that decide points are measured: {"pima": (x, y), "toy": (x, y)}."""
    from tpkit import datasets
    return {name: tuple(np.array(datasets.load_hidden(key)[k]) for k in ("x", "y"))
            for name, key in (("pima", "pima"), ("toy", "toy2d"))}


def pima_hidden(ddof=0) -> tuple[torch.Tensor, np.ndarray]:
    """Pima's hidden rows standardised with the training set's mean and deviation, and their labels."""
    x, y = hidden_data()["pima"]
    return torch.tensor(standardise(data()["pima"]["x"], x, ddof)[1]), y


def standardise(a, t, ddof=0):
    mu, sd = a.mean(axis=0), a.std(axis=0, ddof=ddof)
    return (a - mu) / sd, (t - mu) / sd


def one_hot(labels, p) -> np.ndarray:
    return np.eye(p)[np.asarray(labels)]


def _array(value, name: str) -> np.ndarray:
    """A float64 numpy copy of an array or tensor the student produced."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64).numpy()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value.astype(np.float64)
    fail(f"`{name}` doit être un tableau numpy ou un tenseur (reçu : {type(value).__name__}).")


def _same(a: np.ndarray, b: np.ndarray, **tol) -> bool:
    """Same shape, finite, and allclose (NaN never matches, infinities neither)."""
    return a.shape == b.shape and all_finite(a) and all_finite(b) and bool(np.allclose(a, b, **(tol or ROWS_CLOSE)))


def _pima_ddof(ns) -> int:
    """The standard deviation the notebook standardised with (numpy's ddof 0 or torch's ddof 1):
    both are right; the checks evaluate on the matching reference data."""
    D = data()["pima"]
    Xt = ns.get("Xt")
    if isinstance(Xt, (torch.Tensor, np.ndarray)):
        got = _array(Xt, "Xt")
        for ddof in (0, 1):
            if _same(got, standardise(D["x"], D["xt"], ddof)[1]):
                return ddof
    return 0


def pima_tensors(ddof=0) -> dict:
    D = data()["pima"]
    xs, xts = standardise(D["x"], D["xt"], ddof)
    return dict(X=torch.tensor(xs), Xt=torch.tensor(xts), Y=torch.tensor(one_hot(D["y"], 2)),
                Yt=torch.tensor(one_hot(D["yt"], 2)))


def _labels(g, m, p):
    """m labels in 0..p-1 where every class occurs (a fixed pattern, shuffled)."""
    base = torch.arange(m) % p
    return base[g.randperm(m)]


# ---------------------------------------------------------------- code of the repairs
STANDARDISER = """\
def standardiser(x_app, x_test):
    moyenne, ecart_type = x_app.mean(axis=0), x_app.std(axis=0)
    return (x_app - moyenne) / ecart_type, (x_test - moyenne) / ecart_type
"""
ONE_HOT = """\
def one_hot(y, p):
    import numpy
    y = numpy.asarray(y)
    Y = numpy.zeros((len(y), p))
    Y[numpy.arange(len(y)), y] = 1
    return Y
"""
INITIALISER = """\
def initialiser(d, p):
    import numpy, torch
    W = torch.tensor(numpy.random.randn(d, p) * 0.01, requires_grad=True)
    B = torch.zeros(1, p, dtype=torch.float64, requires_grad=True)
    return W, B
"""
_LOOP = """\
    import torch
    lst_loss = []
    {init}
    for i in range(niter):
        {batch}
        loss = -torch.mean(torch.sum(Yb * torch.log({forward} + 1e-16), dim=1))
        lst_loss.append(loss.item())
        loss.backward()
        optimiseur.step()
        optimiseur.zero_grad()
    return lst_loss
"""
_FULL = "Xb, Yb = X, Y"
_MINI = "idx = torch.randint(len(X), (mb,))\n        Xb, Yb = X[idx], Y[idx]"
DESCENTE = "def descente(X, Y, W, B, step, niter):\n" + _LOOP.format(
    init="optimiseur = torch.optim.SGD([W, B], lr=step)", batch=_FULL,
    forward="torch.softmax(torch.mm(Xb, W) + B, dim=1)")
DESCENTE_SGD = DESCENTE.replace("def descente(", "def descente_sgd(")
APPRENDRE = "def apprendre(modele, X, Y, step, niter):\n" + _LOOP.format(
    init="optimiseur = torch.optim.SGD(modele.parameters(), lr=step)", batch=_FULL, forward="modele(Xb)")
APPRENDRE_MB = "def apprendre_mb(modele, X, Y, step, niter, mb):\n" + _LOOP.format(
    init="optimiseur = torch.optim.SGD(modele.parameters(), lr=step)", batch=_MINI, forward="modele(Xb)")
MLP_CLASS = """\
import torch as _torch_ref


class MLP(_torch_ref.nn.Module):
    def __init__(self, d, nb_hidden, p):
        super(MLP, self).__init__()
        self.c1 = _torch_ref.nn.Linear(d, nb_hidden).double()
        self.c2 = _torch_ref.nn.Linear(nb_hidden, p).double()

    def forward(self, x):
        return _torch_ref.softmax(self.c2(_torch_ref.relu(self.c1(x))), dim=1)
"""
