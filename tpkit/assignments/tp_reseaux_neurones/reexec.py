"""Re-runs of tp_reseaux_neurones' training cells (trusted grading only): what the grader replays for
Q3 (descents), Q4 (two-layer networks) and Q5 (minibatches), on the machinery of
:mod:`tpkit.checks.reexec` (the state drawn from the secret, the re-run, the comparisons).
"""
from __future__ import annotations

import numpy as np
import torch

from tpkit.assignments.tp_reseaux_neurones import reference as ref
from tpkit.assignments.tp_reseaux_neurones import thresholds as T
from tpkit.checks.common import gen
from tpkit.checks.reexec import (RERUN, SUBSET, _tensor, _value, active, compare, compare_params,  # noqa: F401
                                 draw_state, initial_network, layers_of, minibatch_rows, network, rerun)
from tpkit.checks.tools import fail, number_list, within


def sizes() -> tuple:
    """This TP's two-layer network: d → nb_hidden → p."""
    return ref.data()["d"], ref.NB_HIDDEN, ref.P


# ------------------------------------------------------------------ full-batch loops of tensors
def judge_linear(ns, cell_id: str, key: int, loss_name: str, step, niter) -> None:
    """Q3.1-3.2 (manual descent) and Q3.6 (th.optim.SGD): the same descent of W, B."""
    st = draw_state(ns, key)
    run = rerun(ns, cell_id, st, keep=(loss_name, "W", "B"), initial=("W", "B"))
    W0, B0 = (_tensor(run.initial.get(n), n) for n in ("W", "B"))
    losses = number_list(_value(run, loss_name), loss_name)
    try:
        expected, W, B = ref.gradient_descent(st.X, st.Y, W0.to(torch.float64), B0, step, niter)
    except RuntimeError:
        fail(f"{RERUN}, W et B n'ont pas les tailles (d, p) et (1, p) attendues.")
    compare(losses, expected, loss_name)
    compare_params([_tensor(_value(run, "W"), "W"), _tensor(_value(run, "B"), "B")], [W, B], "W, B")


def judge_two_layers(ns, cell_id: str, key: int, step, niter) -> None:
    """Q4.2-4.4: the two-layer network written with tensors W1, B1, W2, B2 and th.optim.SGD."""
    names = ("W1", "B1", "W2", "B2")
    st = draw_state(ns, key)
    run = rerun(ns, cell_id, st, keep=("lst_loss2",) + names, initial=names)
    params = [_tensor(run.initial.get(n), n).clone().requires_grad_(True) for n in names]
    losses = number_list(_value(run, "lst_loss2"), "lst_loss2")
    try:
        expected = ref.train(params, lambda x: ref.pred2(x, *params), st.X, st.Y, niter, step)
    except RuntimeError:
        fail(f"{RERUN}, W1, B1, W2, B2 n'ont pas les tailles attendues.")
    compare(losses, expected, "lst_loss2")
    compare_params([_tensor(_value(run, n), n) for n in names], params, "W1, B1, W2, B2")


def judge_mlp(ns, cell_id: str, key: int, step, niter) -> None:
    """Q4.10-4.11: the MLP of Q4.7 trained full batch with th.optim.SGD; the grader audits a few of its
    steps, drawn from the secret, and the last (a replay of the 200 steps parts from correct variants of
    the cost, as for minibatches: see AUDITED)."""
    st = draw_state(ns, key)
    audited = audit_points(ns, key, niter)
    run = rerun(ns, cell_id, st, keep=("lst_loss_mlp",), watch="mlp",
                snap={"rows": SUBSET, "at": sorted({*audited, *(k + 1 for k in audited), niter - 1, niter})})
    initial = initial_network(run, "mlp", sizes())
    if initial is None:
        return  # another architecture than d → nb_hidden → p: Q4.7's check judges it
    losses = number_list(_value(run, "lst_loss_mlp"), "lst_loss_mlp")
    if len(losses) != niter:
        fail(f"{RERUN}, `lst_loss_mlp` contient {len(losses)} valeurs au lieu de niter = {niter}.")
    everything = np.arange(SUBSET)
    _audit(run, lambda k: everything, losses, audited, st, step, "mlp", "lst_loss_mlp", niter - 1)


AUDITED = 6
MB_MIN_ITER = 500


def audit_points(ns, key, upto: int = MB_MIN_ITER) -> list:
    """Training calls k < upto - 1 whose step the grader audits: 0 and AUDITED others drawn from the
    secret (the student cannot know them)."""
    picks = gen(ns, key, 1).rng.choice(np.arange(1, upto - 1), size=AUDITED, replace=False)
    return sorted({0, *(int(k) for k in picks)})


def _step(params, rows, st, step):
    """The grader's SGD step from `params` on the training examples `rows`: the cost and the
    parameters after the step (the network d → nb_hidden → p of ref.mlp_forward)."""
    c1, c2, weights = network(params)
    idx = torch.from_numpy(np.asarray(rows))
    loss = ref.cout(st.Y[idx], ref.mlp_forward(st.X[idx], c1, c2))
    grads = torch.autograd.grad(loss, weights)
    return loss.item(), [(w - step * g).detach() for w, g in zip(weights, grads)]


def compare_step(before, got, expected, what):
    """One SGD step: the change of the parameters the loop made against the grader's (relative)."""
    b = torch.cat([t.to(torch.float64).reshape(-1) for t in before])
    g = torch.cat([t.to(torch.float64).reshape(-1) for t in got])
    e = torch.cat([t.to(torch.float64).reshape(-1) for t in expected])
    gap = float((g - e).norm() / max(float((e - b).norm()), 1e-12))
    if not within(gap, T.RERUN_STEP_RTOL):
        fail(f"{RERUN}, une itération de la boucle ne fait pas le pas de gradient attendu sur {what} "
             f"(écart relatif {gap:.2g} avec le pas que le correcteur calcule à partir des mêmes paramètres "
             "et des mêmes exemples) : à chaque itération, un seul pas optimiseur.step() de lr = step sur le "
             "gradient du coût de l'itération, remis à zéro à chaque itération.")


def judge_minibatch(ns, cell_id: str, key: int, step, mb: int) -> None:
    """Q5.1-5.4: one minibatch of `mb` training examples per iteration, drawn across the whole set;
    the grader audits a few SGD steps, drawn from the secret, on the very minibatches the network
    received, and the last one."""
    st = draw_state(ns, key)
    audited = audit_points(ns, key)
    run = rerun(ns, cell_id, st, keep=("lst_loss_mb",), watch="mlp_mb", snap={"rows": int(mb), "at": sorted({*audited, *(k + 1 for k in audited)})})
    initial = initial_network(run, "mlp_mb", sizes())
    losses = number_list(_value(run, "lst_loss_mb"), "lst_loss_mb")
    per_batch = minibatch_rows(run, losses, st.X, st.probe, mb, "mlp_mb", "lst_loss_mb", ref.tensors()["Xt"], "n")
    if not per_batch or initial is None:
        return  # another architecture: the minibatches are judged, the steps cannot be replayed
    _audit(run, lambda k: per_batch[k], losses, audited, st, step, "mlp_mb", "lst_loss_mb", len(per_batch) - 1)


def _audit(run, rows_of, losses, audited, st, step, what: str, loss_name: str, last: int) -> None:
    """The audited steps k and the last one (`last`): the cost the loop reported at step k is the
    grader's cost of the parameters before training call k on its rows (`rows_of(k)`), and the
    parameters before call k + 1 (after the loop, for the last) are one SGD step of lr = step from them."""
    snaps = dict(run.snaps or {})
    final = run.last[0] if run.last is not None and run.last[1] is not None else None
    if final is not None:
        snaps.setdefault(final, run.last[1])
    reported, expected = [], []
    for k in sorted({*(k for k in audited if k < last), last}):
        after = snaps.get(k + 1)
        if after is None and k == final:
            after = run.module_final  # no call after the last step: the parameters left in the network
        if k not in snaps or after is None:
            fail(f"{RERUN}, les paramètres du réseau `{what}` au fil de la boucle n'ont pas pu être relevés : "
                 f"un appel de `{what}` par itération, sur les données d'apprentissage.")
        before, after = layers_of(snaps[k], sizes()), layers_of(after, sizes())
        if before is None or after is None:
            fail(f"{RERUN}, le réseau `{what}` n'a plus deux couches d → nb_hidden → p au fil de la boucle.")
        cost, params = _step(before, rows_of(k), st, step)
        reported.append(losses[k])
        expected.append(cost)
        compare_step(before, after, params, what + (" (dernière itération)" if k == last else f" (itération {k})"))
    compare(reported, expected, loss_name)
