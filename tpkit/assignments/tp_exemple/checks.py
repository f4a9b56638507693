"""Hidden checks of the worked example `tp_exemple`, one per graded cell, each with its repair.

A check is registered under the grade id of its test cell (the hidden line `verifier("e1_softmax",
globals())` runs it). It questions the notebook through a :class:`tpkit.witness.Witness` (`ns`): it
calls the student's functions on inputs it draws itself from the course secret (`gen`, `draws`: a
different key per check), recomputes the expected answer with :mod:`.reference`, and fails with a
French message (`fail`) that names the mistake. When a check fails, its repair defines the reference
in the notebook, so that the later questions are graded on a correct definition.
"""
from __future__ import annotations

import math

import torch

from tpkit.assignments.tp_exemple import reference as ref
from tpkit.assignments.tp_exemple import thresholds as T
from tpkit.checks.common import draws, gen, grad_flows, judge_cost, softmax_diagnosis, student_output
from tpkit.checks.registry import check, repair
from tpkit.checks.tools import (all_finite, as_float64, at_least, call, close, fail, finite_tensor, get, number_list,
                                require_shape, within)

# Keys of the checks' draws (unique across the course's checks: the 9xx are the example's).
KEY_SOFTMAX, KEY_COST, KEY_DESCENT, KEY_HIDDEN = 901, 902, 903, 904


# ---------------------------------------------------------------- section 1: softmax and cost
@check("e1_softmax")
def check_e1_softmax(ns):
    fn = get(ns, "softmax", "fonction softmax(Z)")
    for g in draws(ns, KEY_SOFTMAX):
        m, p = g.integer(4, 9), g.integer(2, 6)
        Z = (3 * g.randn(m, p)).requires_grad_(True)
        out = student_output("softmax", fn, (Z,), (m, p))
        grad_flows("softmax", out, (Z,))
        got, good = as_float64(out, "softmax"), ref.softmax(Z).detach()
        softmax_diagnosis("softmax", got, good)
        if not close(got, good):
            if close(got, torch.exp(Z.detach())):
                fail("`softmax(Z)` renvoie exp(Z) sans le diviser par la somme de chaque ligne.")
            fail(f"`softmax(Z)` ne renvoie pas exp(Z) / somme de chaque ligne (essai sur une matrice {m} × {p}).")
    # large scores: exp overflows unless each row's maximum is taken off first
    big = torch.tensor([[1000.0, 0.0, -5.0], [0.0, 1.0, 2.0]], dtype=torch.float64)
    got = as_float64(student_output("softmax", fn, (big,), (2, 3)), "softmax")
    if not close(got, ref.softmax(big)):
        if all_finite(got[0]) and not all_finite(got[1]):
            fail("`softmax(Z)` renvoie NaN pour la ligne [0, 1, 2] quand une autre ligne contient 1000 : "
                 "retirez à chaque ligne son propre maximum (Z.max(dim=1, keepdim=True)), pas celui de "
                 "toute la matrice.")
        if not all_finite(got):
            fail("`softmax(Z)` renvoie NaN ou inf quand Z contient une grande valeur (1000) : exp déborde, "
                 "la softmax est instable numériquement ; retirez d'abord le maximum de chaque ligne.")
        fail("`softmax(Z)` est fausse quand Z contient une grande valeur (1000) : retirez à chaque ligne "
             "son maximum avant th.exp.")


@repair("e1_softmax")
def repair_e1_softmax(ns):
    ns.run(ref.SOFTMAX_CODE)


@check("e1_cout")
def check_e1_cout(ns):
    fn = get(ns, "cout", "fonction cout(Y, Yhat)")
    g = gen(ns, KEY_COST)
    for m, p in ((6, 2), (9, 4)):
        Y = torch.eye(p, dtype=torch.float64)[g.randint(0, p, (m,))]
        Yhat = torch.softmax(g.randn(m, p), dim=1).requires_grad_(True)
        judge_cost(fn, Y, Yhat, suffix=f" (p = {p})")


@repair("e1_cout")
def repair_e1_cout(ns):
    ns.run(ref.COST_CODE)


# ---------------------------------------------------------------- section 2: gradient descent
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
