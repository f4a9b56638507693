"""Training cells re-run from a state the grader chooses (trusted grading only; issue 23, item 2).

A training check first judges the run the notebook made (its data, its seeds). In trusted grading the
witness knows the answer cells as submitted (`Witness.cells`), and the check then runs the question's
cell again, unchanged, in the kernel (`Witness.rerun`), from a state drawn from the course secret:

* the training set is replaced by `SUBSET` examples of the shipped one, chosen and ordered by the
  secret (`X`, `Y`, `x`, `y`, `n` pushed; the test set is left as it is);
* `np.random.seed` / `th.manual_seed` seed from the secret mixed with the seeds the cell asks for, so
  the cell draws initial values nobody saw;
* the agent records the value each trained tensor had when the loop first used it, the watched
  network's parameters at its first call, and the rows of each of its calls (through a random
  projection drawn from the secret, so that the grader can tell which examples each call received).

The grader then trains itself, with its own torch and cost, from those initial values on the same
rows, and compares the costs the cell reported and the parameters it ended with
(`thresholds.RERUN_COST_RTOL`, `thresholds.REPLAY_RTOL`). A loop that does not run, values copied from
an earlier run or from a repair, training on another set (the test set), a fixed subset of examples:
all fail; a loop that trains as asked, however written, gives the grader's trajectory. The namespace is put back after the
re-run: the next cells and checks see the notebook's own run. Untrusted mode: nothing is re-run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tpkit.checks import reference as ref
from tpkit.checks import thresholds as T
from tpkit.checks.common import gen
from tpkit.checks.tools import at_least, fail, within
from tpkit.witness import StudentError

#: Training examples of a re-run: far fewer than the notebook's 1,050 (a two-layer replay costs 0.37 s of
#: CPU at 128 against 0.78 s at 256: the rows fit in the cache), enough for
#: every minibatch loop of 500 iterations or more to visit nearly all of them.
SUBSET = 128

RERUN = ("à la ré-exécution de la cellule par le correcteur (autres exemples d'apprentissage dans X, Y, n, "
         "autres graines)")


def active(ns) -> bool:
    """Re-runs happen only where the grader knows the cells as submitted (trusted grading)."""
    return bool(getattr(ns, "cells", None))


@dataclass
class State:
    rows: np.ndarray       # the examples of the shipped training set, in the order pushed
    X: torch.Tensor
    Y: torch.Tensor
    labels: np.ndarray
    seed: int
    probe: torch.Tensor    # x @ probe tells the rows apart


def draw_state(ns, key) -> State:
    D = ref.data()
    g = gen(ns, key)
    rows = g.rng.permutation(D["n"])[:SUBSET]
    labels = D["y"][rows]
    return State(rows, torch.tensor(D["x"][rows]), torch.tensor(ref.one_hot(labels)), labels,
                 g.integer(0, 2 ** 62), g.randn(D["d"]))


def rerun(ns, cell_id: str, st: State, keep, initial=(), watch=None, snap=None):
    """Run the answer cell `cell_id` again from the state `st`; a French failure if it raises."""
    code = ns.cells.get(cell_id)
    if code is None:
        fail(f"la cellule de réponse ({cell_id}) est introuvable dans le notebook rendu.")
    push = dict(X=st.X, Y=st.Y, x=st.X.numpy().copy(), y=st.labels.copy(), n=SUBSET)
    try:
        return ns.rerun(code, push, st.seed, keep=keep, initial=initial, watch=watch,
                        probe=st.probe if watch else None, snap=snap)
    except StudentError as exc:
        fail(f"{RERUN}, elle lève une erreur ({exc.etype}) : la boucle doit utiliser les variables de "
             "l'énoncé (X, Y, n...), sans valeurs écrites en dur.")


def _tensor(value, name):
    if not isinstance(value, torch.Tensor) or not value.dtype.is_floating_point:
        fail(f"{RERUN}, la boucle n'a calculé aucun coût à partir de `{name}` : la boucle doit "
             f"(ré)initialiser `{name}` puis l'apprendre, à chaque exécution de la cellule.")
    return value.detach()


def _value(run, name):
    if name not in run.values:
        fail(f"{RERUN}, la variable `{name}` n'existe plus.")
    return run.values[name]


def compare(losses, expected, name):
    """The costs the cell reported against the grader's own training from the same state."""
    if len(losses) != len(expected):
        fail(f"{RERUN}, `{name}` contient {len(losses)} valeurs au lieu de {len(expected)}.")
    # relative gaps, but never relative to less than 1 % of the largest cost: a minibatch of examples
    # already learnt costs ~1e-4, where rounding differences between correct loops are relatively large
    floor = 0.01 * max((abs(b) for b in expected), default=1.0)
    gap = max((abs(a - b) / max(abs(b), floor) for a, b in zip(losses, expected)), default=0.0)
    if not within(gap, T.RERUN_COST_RTOL):
        fail(f"{RERUN}, `{name}` ne correspond pas à l'apprentissage que le correcteur recalcule à partir "
             f"des mêmes paramètres initiaux (écart relatif {gap:.2g}) : la boucle doit calculer à chaque "
             "itération le coût sur les données d'apprentissage X, Y de l'énoncé et mettre à jour les "
             "paramètres (pas de valeurs reprises d'une exécution précédente ou écrites en dur).")


def compare_params(got, expected, what):
    """Parameters the cell ended with against the grader's (relative gap of all entries together)."""
    if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected)):
        fail(f"{RERUN}, les paramètres de {what} n'ont pas les tailles attendues.")
    g = torch.cat([t.detach().to(torch.float64).reshape(-1) for t in got])
    e = torch.cat([t.detach().to(torch.float64).reshape(-1) for t in expected])
    gap = float((g - e).norm() / max(float(e.norm()), 1e-12))
    if not within(gap, T.REPLAY_RTOL):
        fail(f"{RERUN}, les paramètres de {what} à la fin de la boucle ne sont pas ceux de l'apprentissage "
             f"recalculé par le correcteur (écart relatif {gap:.2g}) : ce sont les paramètres appris par "
             "la boucle qui doivent rester dans les variables.")


# ------------------------------------------------------------------ the MLP class (Q4.10, Q5)
def layers_of(named, sizes) -> list | None:
    """[weight 1, bias 1, weight 2, bias 2] of a sizes[0] → sizes[1] → sizes[2] network, matched by shape
    whatever the names (self.c1, a Sequential...); None for another architecture."""
    d, h, p = sizes
    shapes = [(h, d), (h,), (p, h), (p,)]
    by_shape = {}
    for _, t in named or []:
        if not isinstance(t, torch.Tensor) or tuple(t.shape) in by_shape:
            return None
        by_shape[tuple(t.shape)] = t.detach()
    if sorted(by_shape) != sorted(shapes):
        return None
    return [by_shape[s] for s in shapes]


def network(params):
    """Two float64 Linear layers holding `params` (copies, as layers_of gives them), and their parameters."""
    (W1, b1, W2, b2) = params
    c1 = torch.nn.Linear(W1.shape[1], W1.shape[0], dtype=torch.float64)
    c2 = torch.nn.Linear(W2.shape[1], W2.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for target, value in zip((c1.weight, c1.bias, c2.weight, c2.bias), params):
            target.copy_(value.to(torch.float64))
    return c1, c2, [c1.weight, c1.bias, c2.weight, c2.bias]


def initial_network(run, name, sizes):
    """The watched network's parameters at its first call (layers_of), failing if it was never called."""
    if not run.module_initial:
        fail(f"{RERUN}, le réseau `{name}` n'a jamais été appelé : créez-le et apprenez-le dans la cellule.")
    return layers_of(run.module_initial, sizes)


def identify(values: torch.Tensor, table: torch.Tensor) -> np.ndarray:
    """Index in `table` (probe values of known rows) of each value, -1 where none is equal (up to the
    rounding of a matrix product computed in another order)."""
    order = torch.argsort(table)
    keys = table[order].numpy()
    v = values.numpy()
    pos = np.clip(np.searchsorted(keys, v), 1, max(len(keys) - 1, 1))
    candidates = np.stack([pos - 1, pos])
    best = candidates[np.argmin(np.abs(keys[candidates] - v), axis=0), np.arange(len(v))]
    found = np.isclose(keys[best], v, rtol=1e-9, atol=1e-9)  # NaN: not found
    return np.where(found, order.numpy()[best], -1)


#: Steps of a minibatch loop the grader audits (step k: the parameters before training call k, its
#: minibatch, its reported cost, the parameters before call k + 1), drawn from the secret among the
#: first MB_MIN_ITER (the visible check asks for at least 500 iterations), plus the first and the last.
#: A replay of the whole loop cannot judge it: 1,000 steps of SGD at step = 1 amplify the gap between two
#: correct costs (log(clamp(Ŷ, 1e-16)) against log(Ŷ + 1e-16) differ where Ŷ ~ 1e-16) into trajectories
#: that part after a few dozen steps; one step never amplifies anything.
def training_batches(run, model: str, mb: int) -> list:
    """The inputs (x @ probe, a row per example) of each training call (autograd on) of `mb` examples
    the watched network `model` received; a French failure where its calls were not recorded."""
    sizes, grad, values = run.call_sizes, run.call_grad, run.call_rows
    if not all(isinstance(t, torch.Tensor) for t in (sizes, grad, values)) or len(sizes) != len(grad) or \
            int(sizes.sum()) != len(values) or values.dtype != torch.float64:
        fail(f"{RERUN}, les appels du réseau `{model}` n'ont pas pu être relevés.")
    starts = np.concatenate([[0], np.cumsum(sizes.numpy())])
    return [values[starts[i]:starts[i + 1]] for i in range(len(sizes)) if bool(grad[i]) and int(sizes[i]) == mb]


def batch_origin(batches: list, X, probe, Xt=None) -> tuple:
    """(the index in X of every example of `batches`, -1 where none; whether the unknown ones come from
    the test set `Xt`)."""
    values = torch.cat(batches)
    rows = identify(values, X @ probe)
    from_test = bool(Xt is not None and (rows < 0).any() and (identify(values, Xt @ probe)[rows < 0] >= 0).any())
    return rows, from_test


def covers(rows: np.ndarray, size: int) -> tuple:
    """(distinct examples among `rows`, whether they cover the `size` training examples enough)."""
    distinct = len(np.unique(rows))
    return distinct, at_least(distinct / min(size, len(rows)), T.RERUN_MB_COVERAGE_MIN)


def minibatch_rows(run, losses, X, probe, mb: int, model: str, loss_name: str, Xt=None, n_name=None) -> list:
    """The rows of `X` (told apart by `X @ probe`) of each minibatch of `mb` examples the watched
    network `model` trained on, one array a minibatch, [] for none. A French failure where its calls
    were not recorded, do not match the costs `loss_name` reported (`losses`), hold examples of the
    test set `Xt` or rows that are not examples of X, or use too few of X's examples. `n_name`: the
    variable that counts the training examples where the cell draws the indices itself (named in the
    hints); None where a function of the statement draws them."""
    batches = training_batches(run, model, mb)
    if len(batches) != len(losses):
        fail(f"{RERUN}, le réseau `{model}` a reçu {len(batches)} minibatchs de mb = {mb} exemples pour "
             f"{len(losses)} coûts dans `{loss_name}` : un minibatch X[idx] par itération.")
    if not batches:
        return []
    rows, from_test = batch_origin(batches, X, probe, Xt)
    if from_test:
        among = f" (idx parmi les {n_name} exemples d'apprentissage)" if n_name else ""
        fail(f"{RERUN}, des minibatchs contiennent des exemples de l'ensemble de test Xt : tirez-les "
             f"dans les données d'apprentissage X, Y{among}.")
    if (rows < 0).any():
        fail(f"{RERUN}, des minibatchs contiennent des lignes qui ne sont pas des exemples "
             "d'apprentissage X : formez-les avec X[idx], Y[idx].")
    size = X.shape[0]
    distinct, enough = covers(rows, size)
    if not enough:
        of, draw = (f"{n_name} = {size}", f", th.randint({n_name}, (mb,))") if n_name else \
            (f"les {size} exemples d'apprentissage", "")
        fail(f"{RERUN}, les {len(batches)} minibatchs n'ont utilisé que {distinct} exemples différents sur "
             f"{of} : tirez les indices parmi tous les exemples{draw}.")
    return np.split(rows, len(batches))
