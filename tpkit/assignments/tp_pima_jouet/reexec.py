"""Training cells of `tp_pima_jouet` re-run from a state the grader chooses (trusted grading only;
issue 23, item 2), as :mod:`tpkit.checks.reexec` does for the main assignment.

The training functions (`descente`, `descente_sgd`, `apprendre`, `apprendre_mb`) are already judged on
inputs drawn from the course secret (their own checks call them). What those checks cannot see is the
cell that applies them to the shipped data (Q2.5, Q3.4, Q4.2): there the costs and the trained
parameters come from the cell's own run. In trusted grading the check re-runs that cell, as submitted,
with the training set replaced by a part of the shipped one chosen and ordered by the secret (the test
set left as it is) and seeds mixed with the secret, then trains itself from the initial values the
cell drew (recorded by the witness) and compares the costs the cell reports and the parameters it ends
with. Made-up or copied costs, a network trained on the test set, minibatches from a fixed subset: all
fail; any cell that trains as asked gives the grader's trajectory. Untrusted mode: nothing is re-run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tpkit.checks import reexec
from tpkit.checks import reference as ref
from tpkit.checks.common import gen
from tpkit.checks.reexec import (RERUN, _tensor, _value, compare, compare_params, initial_network, layers_of,
                                 minibatch_rows, network)
from tpkit.checks.tools import fail, number_list
from tpkit.witness import StudentError

#: Training examples of a re-run: 3/4 of Pima's 200 and 2/3 of the toy's 300 (the cells' loops and the
#: grader's replay cost less; every minibatch loop of 1,000 draws of 20 still visits them all).
PIMA_SUBSET = 150
TOY_SUBSET = 200
#: One key per re-run, for the secret's draws (`tpkit.checks.common.gen`; unique across the checks).
KEYS = {"r2_pima_lineaire": 81, "r3_pima": 82, "r4_jouet": 84}

active = reexec.active  # trusted grading only


@dataclass
class State:
    X: torch.Tensor        # the training examples pushed (rows of the notebook's tensor, in the secret's order)
    Y: torch.Tensor
    push: dict             # the variables set before the cell runs again
    seed: int
    probe: torch.Tensor    # x @ probe tells the rows apart


def draw_state(ns, key: int, X, Y, x, y, size: int, names=("X", "Y", "x", "y"), n_name="n") -> State:
    """`size` training examples of (X, Y, x, y) chosen and ordered by the course secret."""
    g = gen(ns, key)
    rows = g.rng.permutation(len(X))[:size]
    Xs, Ys = X[rows].clone(), Y[rows].clone()
    push = dict(zip(names, (Xs, Ys, np.array(x)[rows].copy(), np.array(y)[rows].copy())))
    if n_name:
        push[n_name] = size
    return State(Xs, Ys, push, g.integer(0, 2 ** 62), g.randn(X.shape[1]))


def rerun(ns, cell_id: str, st: State, keep, initial=(), watch=None, probe=False):
    """Run the answer cell `cell_id` again from the state `st`; a French failure if it raises."""
    code = ns.cells.get(cell_id)
    if code is None:
        fail(f"la cellule de réponse ({cell_id}) est introuvable dans le notebook rendu.")
    try:
        return ns.rerun(code, st.push, st.seed, keep=keep, initial=initial, watch=watch,
                        probe=st.probe if probe else None)
    except StudentError as exc:
        fail(f"{RERUN}, elle lève une erreur ({exc.etype}) : la cellule doit utiliser les variables de "
             "l'énoncé (X, Y…), sans valeurs écrites en dur.")


def _final(run, name, sizes):
    final = layers_of(run.module_final, sizes)
    if final is None:
        fail(f"{RERUN}, le réseau `{name}` n'a plus deux couches {' → '.join(map(str, sizes))}.")
    return final


# ------------------------------------------------------------------ judgements
def judge_linear(run, st: State, names, step: float, niter: int) -> None:
    """A linear softmax regression trained full batch by the cell: `names` = (costs, W, B)."""
    loss_name, w, b = names
    W0, B0 = (_tensor(run.initial.get(n), n) for n in (w, b))
    losses = number_list(_value(run, loss_name), loss_name)
    try:
        expected, W, B = ref.gradient_descent(st.X, st.Y, W0.to(torch.float64), B0.to(torch.float64), step, niter)
    except RuntimeError:
        fail(f"{RERUN}, {w} et {b} n'ont pas les tailles (d, p) et (1, p) attendues.")
    compare(losses, expected, loss_name)
    compare_params([_tensor(_value(run, w), w), _tensor(_value(run, b), b)], [W, B], f"{w}, {b}")


def judge_network(run, st: State, loss_name: str, model: str, sizes, step: float, niter: int) -> None:
    """The network `model` (sizes d → h → p) trained full batch with th.optim.SGD by the cell."""
    initial = initial_network(run, model, sizes)
    if initial is None:
        return  # another architecture: the network's own checks judge it
    c1, c2, params = network(initial)
    expected = ref.train(params, lambda x: ref.mlp_forward(x, c1, c2), st.X, st.Y, niter, step)
    compare(number_list(_value(run, loss_name), loss_name), expected, loss_name)
    compare_params(_final(run, model, sizes), params, model)


def judge_minibatch(run, st: State, loss_name: str, model: str, sizes, step: float, mb: int, Xt=None) -> None:
    """The network `model` trained on one minibatch of `mb` training examples per iteration, drawn
    across the whole training set (`Xt`: the test set, to say so when minibatches come from it); the
    grader replays the SGD on the very minibatches the network received."""
    initial = initial_network(run, model, sizes)
    losses = number_list(_value(run, loss_name), loss_name)
    per_batch = minibatch_rows(run, losses, st.X, st.probe, mb, model, loss_name, Xt)
    if not per_batch or initial is None:
        return  # another architecture: the minibatches are judged, the trajectory cannot be replayed
    c1, c2, params = network(initial)
    expected = []
    for batch in per_batch:
        idx = torch.from_numpy(batch)
        loss = ref.cout(st.Y[idx], ref.mlp_forward(st.X[idx], c1, c2))
        expected.append(loss.item())
        loss.backward()
        ref.sgd_step(params, step)
    compare(losses, expected, loss_name)
    compare_params(_final(run, model, sizes), params, model)

