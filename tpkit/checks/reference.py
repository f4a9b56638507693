"""Reference computations shared by the assignments (float64), and the digitz data of the main TP and
its bonus, used by the hidden checks. An assignment's own reference (its imposed values, its models)
is its package's ``reference.py`` (:mod:`tpkit.assignments`).

Every check compares the student's code with these on inputs the check chooses itself,
so a hard-coded answer fails and an earlier mistake does not leak into a later question.
"""
from __future__ import annotations

import functools

import numpy as np
import torch


CLASSES = (1, 7, 8)          # digits kept in digitz.npz, remapped to 0, 1, 2
P = 3
MLP_INIT_SCALE = 0.1       # W1, W2 = 0.1 * randn in the manual two-layer network
EPS = 1e-16                  # the guard inside the log

def remap(labels) -> np.ndarray:
    out = np.full(np.shape(labels), -1, dtype=np.int64)
    for k, c in enumerate(CLASSES):
        out[np.asarray(labels) == c] = k
    return out


def one_hot(labels, p=P) -> np.ndarray:
    return np.eye(p)[np.asarray(labels)]


@functools.lru_cache(maxsize=1)
def data() -> dict:
    """The digitz data in every form the TP builds (fresh copies are handed out by `fresh`)."""
    from tpkit import datasets
    raw = datasets.load("digitz")
    x, y, xt, yt = (np.array(raw[k]) for k in ("x", "y", "xt", "yt"))
    y0, yt0 = remap(y), remap(yt)
    return dict(x=x, y_raw=y, xt=xt, yt_raw=yt, y=y0, yt=yt0, Y=one_hot(y0), Yt=one_hot(yt0),
                n=x.shape[0], d=x.shape[1], p=P)


@functools.lru_cache(maxsize=1)
def hidden() -> dict:
    """The hidden evaluation set of digitz (data/hidden/digitz.npz, MNIST images the students never
    receive): `xh` (float64, pixels / 255) and `yh` (labels remapped to 0, 1, 2). The accuracies that
    decide points are measured on it; the rates a student reports stay those of the shipped test set."""
    from tpkit import datasets
    raw = datasets.load_hidden("digitz")
    return dict(xh=np.array(raw["x"]), yh=remap(raw["y"]))


def hidden_tensor() -> torch.Tensor:
    return torch.tensor(hidden()["xh"])


def tensors() -> dict:
    D = data()
    return dict(X=torch.tensor(D["x"]), Xt=torch.tensor(D["xt"]),
                Y=torch.tensor(D["Y"]), Yt=torch.tensor(D["Yt"]))


def pred(X, W, B):
    return torch.softmax(torch.mm(X, W) + B, dim=1)


def cout(Y, Yhat):
    return -torch.mean(torch.sum(Y * torch.log(Yhat + EPS), dim=1))


def pred2(X, W1, B1, W2, B2):
    return torch.softmax(torch.mm(torch.relu(torch.mm(X, W1) + B1), W2) + B2, dim=1)


def mlp_forward(x, c1, c2):
    return torch.softmax(c2(torch.relu(c1(x))), dim=1)


def init_params(seed: int, *shapes, scale=0.01):
    """W = scale * randn as the statement asks (numpy's global generator, seeded), then biases."""
    rng = np.random.RandomState(seed)
    return [torch.tensor(rng.randn(*s) * scale, requires_grad=True) for s in shapes]


def statement_init(seed: int, d: int, p: int = P):
    """What `np.random.seed(seed); W = th.tensor(np.random.randn(d, p) * 0.01)` gives."""
    (W,) = init_params(seed, (d, p))
    return W, torch.zeros(1, p, dtype=torch.float64, requires_grad=True)


def sgd_step(params, step) -> None:
    """One step of plain ``torch.optim.SGD(params, lr=step)`` then ``zero_grad()``, the same arithmetic
    (``p.add_(p.grad, alpha=-step)``, gradients set to None) without torch.optim, whose first step imports
    torch._dynamo: 1.3 s of CPU in every process that grades (the kernels keep the real one)."""
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-step)
                p.grad = None


def train(params, forward, X, Y, niter, step, batch=None, gen=None) -> list:
    """The reference training loop: plain SGD (:func:`sgd_step`, lr = ``step``) on the cost of ``forward`` over (X, Y), full batch or ``batch`` rows drawn with
    ``gen``; returns the costs."""
    params = list(params)
    losses = []
    for _ in range(niter):
        if batch:
            idx = torch.randint(X.shape[0], (batch,), generator=gen)
            loss = cout(Y[idx], forward(X[idx]))
        else:
            loss = cout(Y, forward(X))
        losses.append(loss.item())
        loss.backward()
        sgd_step(params, step)
    return losses


def gradient_descent(X, Y, W, B, step, niter):
    """Full-batch gradient descent of the linear model; returns (losses, W, B). The statement's own
    update (``W -= step * W.grad``), not :func:`train`: a descent with step = 1 amplifies rounding, and
    the checks compare students' trajectories with this one."""
    W = W.detach().clone().requires_grad_(True)
    B = B.detach().clone().requires_grad_(True)
    losses = []
    for _ in range(niter):
        loss = cout(Y, pred(X, W, B))
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            W -= step * W.grad
            B -= step * B.grad
            W.grad.zero_()
            B.grad.zero_()
    return losses, W, B


def accuracy(probas, labels) -> float:
    """Share of rows whose arg-max is the label."""
    probas = probas.detach().numpy() if isinstance(probas, torch.Tensor) else np.asarray(probas)
    return float(np.mean(np.argmax(probas, axis=1) == np.asarray(labels)))


def rate(output, labels) -> float:
    """Share of rows of a network's output (a tensor, maybe float32) whose arg-max is the label."""
    with torch.no_grad():
        return float(np.mean(np.argmax(output.detach().double().numpy(), axis=1) == np.asarray(labels)))
