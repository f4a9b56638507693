"""Spread of the re-run tolerances (tpkit.checks.reexec, thresholds RERUN_COST_RTOL, REPLAY_RTOL,
RERUN_STEP_RTOL) over draws of training examples and initial values, at the re-run's size (SUBSET).

The loops are written here in plain torch, as students write them (no kernel): each draw takes SUBSET
examples of the shipped training set and fresh initial values, runs a correct variant or a mistake,
and measures what the grader measures against its own computation. Prints, per loop and variant, the
smallest and largest gap over the draws; a valid variant's largest gap must stay under the tolerance, a
mistake's smallest above it.

    python bench/rerun_calibration.py [--draws 30]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from tpkit.assignments.tp_reseaux_neurones import reexec, reference as ref
from tpkit.assignments.tp_reseaux_neurones import thresholds as T

EPS = 1e-16


def cost_plus(Y, Yhat):  # the statement's cost
    return -torch.mean(torch.sum(Y * torch.log(Yhat + EPS), dim=1))


def cost_clamp(Y, Yhat):  # valid: log(clamp(Ŷ, 1e-16))
    return -torch.mean(torch.sum(Y * torch.log(Yhat.clamp(min=EPS)), dim=1))


def cost_no_epsilon(Y, Yhat):  # NOT valid (the statement imposes + 1e-16): shown for its gradient gap
    return -torch.mean(torch.sum(Y * torch.log(Yhat), dim=1).clamp(min=-745.0))


def _draw(rng):
    D = ref.data()
    rows = rng.permutation(D["n"])[:reexec.SUBSET]
    return torch.tensor(D["x"][rows]), torch.tensor(ref.one_hot(D["y"][rows]))


def linear(X, Y, W0, B0, cost=cost_plus, step=1.0, freeze_b=False, accumulate=False, niter=200):
    W, B = W0.clone().requires_grad_(True), B0.clone().requires_grad_(True)
    losses = []
    for _ in range(niter):
        loss = cost(Y, ref.pred(X, W, B))
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            W -= step * W.grad
            if not freeze_b:
                B -= step * B.grad
            if not accumulate:
                W.grad.zero_()
                B.grad.zero_()
    return losses, [W.detach(), B.detach()]


def cost_gap(losses, expected):
    floor = 0.01 * max(abs(b) for b in expected)
    return max(abs(a - b) / max(abs(b), floor) for a, b in zip(losses, expected))


def param_gap(got, expected):
    g = torch.cat([t.reshape(-1) for t in got])
    e = torch.cat([t.reshape(-1) for t in expected])
    return float((g - e).norm() / e.norm())


def minibatch(X, Y, c1, c2, idx_all, cost=cost_plus, lr=1.0, accumulate=False, momentum=0.0, audited=()):
    """Minibatch SGD as the notebook writes it; the parameters before each audited step and the next."""
    params = [c1.weight, c1.bias, c2.weight, c2.bias]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    snaps, losses = {}, []
    for k, idx in enumerate(idx_all):
        if k in audited or k - 1 in audited:
            snaps[k] = [p.detach().clone() for p in params]
        loss = cost(Y[idx], ref.mlp_forward(X[idx], c1, c2))
        losses.append(loss.item())
        loss.backward()
        opt.step()
        if not accumulate:
            opt.zero_grad()
    return losses, snaps


def step_gaps(X, Y, losses, snaps, idx_all, audited):
    """The audit's gaps: largest cost gap and largest step gap over the audited steps."""
    class St:
        pass
    st = St()
    st.X, st.Y = X, Y
    reported, expected, steps = [], [], []
    for k in audited:
        cost, after = reexec._step(snaps[k], idx_all[k].numpy(), st, 1.0)
        reported.append(losses[k])
        expected.append(cost)
        b = torch.cat([t.reshape(-1) for t in snaps[k]])
        g = torch.cat([t.reshape(-1) for t in snaps[k + 1]])
        e = torch.cat([t.reshape(-1) for t in after])
        steps.append(float((g - e).norm() / (e - b).norm()))
    return cost_gap(reported, expected), max(steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--draws", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261207)
    D = ref.data()
    full_X, full_Y = ref.tensors()["X"], ref.tensors()["Y"]
    lin = {name: [] for name in ("clamp", "B gelé", "step 0.9", "gradients cumulés", "1 050 exemples")}
    mb = {name: [] for name in ("clamp", "log sans 1e-16 (*)", "lr / 2", "gradients cumulés", "momentum 0.9")}
    for _ in range(args.draws):
        X, Y = _draw(rng)
        W0 = torch.tensor(rng.standard_normal((D["d"], ref.P)) * 0.01)
        B0 = torch.zeros(1, ref.P, dtype=torch.float64)
        expected, final = linear(X, Y, W0, B0)
        for name, kw in (("clamp", dict(cost=cost_clamp)), ("B gelé", dict(freeze_b=True)),
                         ("step 0.9", dict(step=0.9)), ("gradients cumulés", dict(accumulate=True))):
            losses, params = linear(X, Y, W0, B0, **kw)
            lin[name].append((cost_gap(losses, expected), param_gap(params, final)))
        losses, params = linear(full_X, full_Y, W0, B0)
        lin["1 050 exemples"].append((cost_gap(losses, expected), param_gap(params, final)))
        seed = int(rng.integers(2 ** 31))
        audited = sorted({0, *(int(k) for k in rng.choice(np.arange(1, reexec.MB_MIN_ITER - 1),
                                                          size=reexec.AUDITED, replace=False))})
        gen = torch.Generator().manual_seed(seed)
        idx_all = [torch.randint(reexec.SUBSET, (20,), generator=gen) for _ in range(1000)]
        for name, kw in (("clamp", dict(cost=cost_clamp)), ("log sans 1e-16 (*)", dict(cost=cost_no_epsilon)),
                         ("lr / 2", dict(lr=0.5)), ("gradients cumulés", dict(accumulate=True)),
                         ("momentum 0.9", dict(momentum=0.9))):
            torch.manual_seed(seed)
            c1 = torch.nn.Linear(D["d"], ref.NB_HIDDEN, dtype=torch.float64)
            c2 = torch.nn.Linear(ref.NB_HIDDEN, ref.P, dtype=torch.float64)
            losses, snaps = minibatch(X, Y, c1, c2, idx_all, audited=set(audited), **kw)
            mb[name].append(step_gaps(X, Y, losses, snaps, idx_all, audited))

    def show(title, table, labels, tolerances):
        print(title)
        for name, gaps in table.items():
            cols = "  ".join(f"{label} {min(g[i] for g in gaps):.2g}-{max(g[i] for g in gaps):.2g} (tol {tol})"
                             for i, (label, tol) in enumerate(zip(labels, tolerances)))
            print(f"  {name:20s} {cols}")
    print(f"{args.draws} draws of {reexec.SUBSET} training examples and initial values")
    show("linear descent, 200 iterations, replayed whole:", lin, ("costs", "parameters"),
         (T.RERUN_COST_RTOL, T.REPLAY_RTOL))
    show(f"minibatch SGD, 1000 iterations of 20, {reexec.AUDITED + 1} audited steps:", mb, ("costs", "steps"),
         (T.RERUN_COST_RTOL, T.RERUN_STEP_RTOL))
    print("(*) not a valid answer: Q2.5's check fails a cost without 1e-16 (its gradient and a 0 in Ŷ) and "
          "repairs `cout` before the training cells run, so no loop is judged with it")


if __name__ == "__main__":
    main()
