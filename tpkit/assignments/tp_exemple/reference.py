"""Reference computations of the worked example `tp_exemple` (float64): the notebook's data, softmax,
cost and gradient descent, written once here and used by the checks, the repairs and the calibration."""
from __future__ import annotations

import functools

import torch

EPS = 1e-16                   # the guard inside the log (Q1.2)
P = 3                         # classes of the toy data
STEP, NITER = 0.5, 100        # what the training cell asks (Q2.1)
N_TRAIN, N_TEST = 60, 200     # the notebook's data: generer(60, 0), generer(200, 1)
N_HIDDEN = 500                # points of the grader's hidden evaluation set
# The rule of the notebook's data (its given cell `donnees`): a point's class is the column of A
# with the largest score.
A = torch.tensor([[2.0, -1.0, -1.0], [0.0, 1.7, -1.7]], dtype=torch.float64)


def softmax(Z: torch.Tensor) -> torch.Tensor:
    return torch.softmax(Z, dim=1)


def cost(Y: torch.Tensor, Yhat: torch.Tensor) -> torch.Tensor:
    return -torch.mean(torch.sum(Y * torch.log(Yhat + EPS), dim=1))


def labels_of(points: torch.Tensor) -> torch.Tensor:
    return torch.argmax(points @ A, dim=1)


def generate(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The notebook's `generer(n, graine)`, bit for bit (same torch generator, same draws)."""
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return points, labels_of(points)


@functools.lru_cache(maxsize=1)
def notebook_data() -> dict:
    """The data the notebook builds (X, y, Y, Xt, yt)."""
    X, y = generate(N_TRAIN, 0)
    Xt, yt = generate(N_TEST, 1)
    return dict(X=X, y=y, Y=torch.eye(P, dtype=torch.float64)[y], Xt=Xt, yt=yt)


def hidden_set(draw) -> tuple[torch.Tensor, torch.Tensor]:
    """Points the student never sees, from the same law as the notebook's data, drawn by a check
    (`draw`: a :class:`tpkit.checks.common.Draw` seeded from the course secret)."""
    points = draw.randn(N_HIDDEN, 2)
    return points, labels_of(points)


def descent(X, Y, W0, B0, step: float, niter: int, zero_grad: bool = True):
    """Full-batch gradient descent of the softmax regression from copies of (W0, B0): the costs it
    reports and the final parameters. `zero_grad=False` models the usual slip (gradients accumulated)."""
    W = W0.detach().clone().requires_grad_(True)
    B = B0.detach().clone().requires_grad_(True)
    losses = []
    for _ in range(niter):
        loss = cost(Y, softmax(X @ W + B))
        losses.append(float(loss.detach()))
        loss.backward()
        with torch.no_grad():
            W -= step * W.grad
            B -= step * B.grad
        if zero_grad:
            W.grad.zero_()
            B.grad.zero_()
    return losses, W.detach(), B.detach()


def accuracy(W, B, X, labels) -> float:
    with torch.no_grad():
        return float(torch.mean((torch.argmax(softmax(X @ W + B), dim=1) == labels).to(torch.float64)))


# What a repair defines in the notebook when a check fails: reference code, so that a mistake costs
# its own question only (the later cells run on a correct definition).
SOFTMAX_CODE = """\
def softmax(Z):
    import torch
    return torch.softmax(Z, dim=1)
"""
COST_CODE = """\
def cout(Y, Yhat):
    import torch
    return -torch.mean(torch.sum(Y * torch.log(Yhat + 1e-16), dim=1))
"""
DESCENT_CODE = """\
def descente(X, Y, W, B, pas, niter):
    import torch
    lst_loss = []
    for i in range(niter):
        loss = -torch.mean(torch.sum(Y * torch.log(torch.softmax(X @ W + B, dim=1) + 1e-16), dim=1))
        lst_loss.append(float(loss))
        loss.backward()
        with torch.no_grad():
            W -= pas * W.grad
            B -= pas * B.grad
        W.grad.zero_()
        B.grad.zero_()
    return lst_loss
"""


def trained() -> dict:
    """The notebook's training run done by the reference (the values a repair of Q2.1 puts back)."""
    D = notebook_data()
    zeros = torch.zeros(2, P, dtype=torch.float64), torch.zeros(1, P, dtype=torch.float64)
    losses, W, B = descent(D["X"], D["Y"], *zeros, STEP, NITER)
    return dict(lst_loss=losses, W=W.requires_grad_(True), B=B.requires_grad_(True),
                taux_test=accuracy(W, B, D["Xt"], D["yt"]))
