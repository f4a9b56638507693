"""Section 2 of the worked example: Q2.1 `descente(X, Y, W, B, pas, niter)` and the notebook's run
of it (`lst_loss`, `W`, `B`), judged on the check's own problem and on hidden points."""
from __future__ import annotations

import math

import torch

from tpkit.assignments.tp_exemple import reference as ref
from tpkit.assignments.tp_exemple import thresholds as T
from tpkit.checks.common import draws, gen
from tpkit.checks.registry import check, repair
from tpkit.checks.tools import as_float64, at_least, call, fail, finite_tensor, get, number_list, require_shape, within

KEY_DESCENT, KEY_HIDDEN = 903, 904  # keys of the checks' draws (see section1_softmax)


def _same_losses(got, good) -> bool:
    return len(got) == len(good) and all(
        within(abs(a - b), T.TRAJECTORY_RTOL * max(abs(b), 1e-12)) for a, b in zip(got, good))


def _judge_descent(fn, g):
    """The student's descente on a problem the check draws (other points, random start), its costs
    against the reference trajectory, with the usual slips named. The sizes are the notebook's (2
    variables, 3 classes): a function that reads the global X, Y then runs, and its first cost says so."""
    X, labels = g.randn(25, 2), g.randint(0, ref.P, (25,))
    Y = torch.eye(ref.P, dtype=torch.float64)[labels]
    W0, B0 = 0.3 * g.randn(2, ref.P), 0.1 * g.randn(1, ref.P)
    step, niter = 0.4, 12
    out = call("descente", fn, X, Y, W0.clone().requires_grad_(True), B0.clone().requires_grad_(True), step, niter)
    got = number_list(out, "la liste renvoyée par descente", niter)
    good, _, _ = ref.descent(X, Y, W0, B0, step, niter)
    if _same_losses(got, good):
        return
    if not math.isclose(got[0], good[0], rel_tol=1e-7):
        fail(f"le premier coût renvoyé par `descente` ({got[0]:.6g}) n'est pas celui des paramètres reçus "
             f"({good[0]:.6g}) : la fonction utilise-t-elle ses arguments X, Y, W, B (et pas les variables globales) ?")
    if _same_losses(got, ref.descent(X, Y, W0, B0, step, niter, zero_grad=False)[0]):
        fail("`descente` : les gradients s'accumulent d'une itération à l'autre : remettez W.grad et B.grad "
             "à zéro après chaque mise à jour.")
    if got[-1] > got[0]:
        fail(f"`descente` : le coût augmente ({got[0]:.3g} → {got[-1]:.3g}) : le pas se fait dans le sens du "
             "gradient au lieu du sens opposé (paramètre −= pas × gradient).")
    if _same_losses(got, ref.descent(X, Y, W0, B0, 0.5, niter)[0]):
        fail("`descente` n'utilise pas le pas `pas` reçu en argument.")
    fail(f"les coûts renvoyés par `descente` ne suivent pas une descente de gradient : {got[1]:.6g}, … au lieu "
         f"de {good[1]:.6g}, … (paramètre −= pas × gradient, gradients remis à zéro à chaque itération).")


@check("e2_descente")
def check_e2_descente(ns):
    fn = get(ns, "descente", "fonction descente(X, Y, W, B, pas, niter)")
    for g in draws(ns, KEY_DESCENT):
        _judge_descent(fn, g)
    # the notebook's own run: lst_loss, and W, B trained by it
    losses = number_list(get(ns, "lst_loss"), "lst_loss", ref.NITER)
    if not within(abs(losses[0] - math.log(ref.P)), T.INIT_LOSS_GAP):
        fail(f"le premier coût de `lst_loss` vaut {losses[0]:.4g} au lieu de log(3) : W et B doivent partir "
             "de zéro, comme dans la cellule donnée.")
    W, B = finite_tensor(ns, "W"), finite_tensor(ns, "B")
    require_shape(W, (2, ref.P), "W")
    require_shape(B, (1, ref.P), "B")
    W, B = as_float64(W, "W"), as_float64(B, "B")
    D = ref.notebook_data()
    with torch.no_grad():
        final = float(ref.cost(D["Y"], ref.softmax(D["X"] @ W + B)))
    if not within(final - losses[-1], T.FINAL_VS_LAST):
        fail(f"`W` et `B` ne sont pas les paramètres appris par la descente sur X, Y (leur coût {final:.4g} "
             f"dépasse le dernier coût de lst_loss {losses[-1]:.4g}).")
    acc = ref.accuracy(W, B, *ref.hidden_set(gen(ns, KEY_HIDDEN)))
    if not at_least(acc, T.HIDDEN_ACC_MIN):
        fail(f"taux de bonne reconnaissance sur des points de test cachés {acc:.3f} < {T.HIDDEN_ACC_MIN} "
             "(pas = 0.5, niter = 100 ?).")


@repair("e2_descente")
def repair_e2_descente(ns):
    ns.run(ref.DESCENT_CODE)
    ns.update(ref.trained())
