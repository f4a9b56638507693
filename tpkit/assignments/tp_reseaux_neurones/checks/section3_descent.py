"""Hidden checks of section 3: gradient descent of tp_reseaux_neurones (one check, and its repair, per
graded question)."""
from __future__ import annotations

import math

import numpy as np
import torch

from tpkit.assignments.tp_reseaux_neurones import imposed, reexec
from tpkit.assignments.tp_reseaux_neurones import reference as ref
from tpkit.assignments.tp_reseaux_neurones import thresholds as T
from tpkit.checks.tools import (CheckFailed, as_float64, at_least, fail, finite_tensor, get, number_list, within)
from tpkit.checks.common import (LOG3, check_asked_values, check_sgd, find_sgd, linear_loss, student_rate, trained_on_training_data)
from tpkit.checks.registry import check, repair


def _decreasing(losses, name, final_max):
    if not losses[-1] < losses[0]:
        fail(f"`{name}` ne décroît pas ({losses[0]:.3g} → {losses[-1]:.3g}) : le pas de "
             "gradient est-il bien W -= step * W.grad ?")
    rises = sum(not within(b - a, 1e-12) for a, b in zip(losses, losses[1:]))
    if not within(rises, T.GD_MAX_RISES):
        fail(f"`{name}` remonte {rises} fois sur {len(losses) - 1} itérations : les gradients "
             "sont-ils remis à zéro à chaque itération ?")
    if not within(losses[-1], final_max):
        fail(f"le coût final ({losses[-1]:.3g}) est trop élevé (attendu < {final_max:g}).")


def _test_accuracy_linear(W, B):
    """Accuracy on the hidden evaluation set (images the student never received): what decides the
    points. Computed here from W and B, so the hidden images never reach the student's kernel."""
    H = ref.hidden()
    with torch.no_grad():
        return ref.accuracy(ref.pred(ref.hidden_tensor(), as_float64(W, "W"), as_float64(B, "B")), H["yh"])


def _started_from_section_2(ns, params, first_cost) -> bool:
    """True when a loop started from the very tensors of section 2 (not re-initialised): they are the
    leaves `Yhat` (Q2.3) was computed from, and the loop's first cost is the cost of that Yhat."""
    try:
        leaves = ns.graph_leaf_ids("Yhat")
    except Exception:
        return False
    if not leaves or not ({getattr(p, "witness_id", None) for p in params} & leaves):
        return False
    Yhat = ns.get("Yhat")
    if not isinstance(Yhat, torch.Tensor) or tuple(Yhat.shape) != (ref.data()["n"], ref.P):
        return False
    with torch.no_grad():
        cost = float(ref.cout(ref.tensors()["Y"], Yhat.detach().to(torch.float64)))
    return math.isclose(cost, first_cost, rel_tol=1e-9)


def _replay_differs(losses, expected) -> bool:
    return not within(max(abs(a - b) / abs(b) for a, b in zip(losses, expected)), T.REPLAY_RTOL)


@check("q3_descente")
def check_q3_descente(ns):
    cell = imposed.values()["r3_descente"]
    step, niter = cell["step"], cell["niter"]
    check_asked_values(ns, (("step", step), ("niter", niter)))
    losses = number_list(get(ns, "lst_loss"), "lst_loss", niter)
    if not within(abs(losses[0] - LOG3), T.INIT_LOSS_TOL):
        fail(f"le premier coût de `lst_loss` vaut {losses[0]:.3g}, loin de log(3) : "
             "W et B sont-ils réinitialisés avant la boucle ?")
    W, B = finite_tensor(ns, "W"), finite_tensor(ns, "B")
    if _started_from_section_2(ns, (W, B), losses[0]):
        fail("W et B ne sont pas réinitialisés avant la boucle : la descente part de ceux de la "
             "section 2 (et de leur gradient déjà calculé) ; créez-les à nouveau comme demandé.")
    _decreasing(losses, "lst_loss", T.GD_FINAL_LOSS_MAX)
    # extra: the statement's seeded initialisation replayed exactly (float32 costs accepted)
    W0, B0 = ref.statement_init(cell["seed"], ref.data()["d"])
    expected, _, _ = gd_reference(W0, B0, step, niter)
    if math.isclose(losses[0], expected[0], rel_tol=1e-7) and _replay_differs(losses, expected):
        fail("`lst_loss` ne suit pas une descente de gradient W -= step * W.grad, "
             "B -= step * B.grad avec gradients remis à zéro à chaque itération.")
    final = linear_loss(ns, W, B)
    trained_on_training_data(losses, final, "lst_loss", "le modèle", T.CONSISTENCY_MAX)
    if not within(final - losses[-1], 1e-9):
        fail("`W` et `B` ne sont pas les paramètres appris par la boucle "
             f"(coût {final:.3g} > dernier coût de lst_loss {losses[-1]:.3g}).")
    acc = _test_accuracy_linear(W, B)
    if not at_least(acc, T.GD_TEST_ACC_MIN):
        fail(f"taux de bonne reconnaissance sur des exemples de test cachés {acc:.3f} < {T.GD_TEST_ACC_MIN} "
             "après la descente.")
    if reexec.active(ns):  # trusted grading: the loop run again from the grader's state
        reexec.judge_linear(ns, "r3_descente", 71, "lst_loss", step, niter)


_GD_CACHE: dict = {}


def gd_reference(W0, B0, step, niter):
    key = (W0.detach().numpy().tobytes(), B0.detach().numpy().tobytes(), step, niter)
    if key not in _GD_CACHE:
        R = ref.tensors()
        _GD_CACHE[key] = ref.gradient_descent(R["X"], R["Y"], W0, B0, step, niter)
    return _GD_CACHE[key]


def prewarm() -> None:
    """What a fork server computes once before its forks (:attr:`Assignment.prewarm`): the data and
    the reference descent that the first q3_descente of each submission would compute."""
    ref.data(), ref.tensors()
    cell = imposed.values()["r3_descente"]
    gd_reference(*ref.statement_init(cell["seed"], ref.data()["d"]), cell["step"], cell["niter"])


@repair("q3_descente")
def repair_q3_descente(ns):
    cell = imposed.values()["r3_descente"]
    W0, B0 = ref.statement_init(cell["seed"], ref.data()["d"])
    losses, W, B = gd_reference(W0, B0, cell["step"], cell["niter"])
    ns.update(step=cell["step"], niter=cell["niter"], lst_loss=list(losses),
              W=W.detach().clone().requires_grad_(True), B=B.detach().clone().requires_grad_(True))


@check("q3_courbe")
def check_q3_courbe(ns):
    losses = np.asarray(number_list(get(ns, "lst_loss"), "lst_loss"), dtype=np.float64)
    for ydata in ns.figure_lines():
        if ydata.shape == losses.shape and np.allclose(ydata, losses, rtol=1e-9, atol=0):
            return
    fail("aucune figure ne montre l'évolution de `lst_loss` : tracez-la avec pl.plot(lst_loss).")


@check("q3_precision")
def check_q3_precision(ns):
    D, R = ref.data(), ref.tensors()
    W, B = finite_tensor(ns, "W"), finite_tensor(ns, "B")
    with torch.no_grad():
        Wd, Bd = as_float64(W, "W"), as_float64(B, "B")
        train = ref.accuracy(ref.pred(R["X"], Wd, Bd), D["y"])
        test = ref.accuracy(ref.pred(R["Xt"], Wd, Bd), D["yt"])
    student_rate(ns, "taux_app", train)
    student_rate(ns, "taux_test", test)


@check("q3_sgd")
def check_q3_sgd(ns):
    cell = imposed.values()["r3_sgd"]
    losses = number_list(get(ns, "lst_loss_sgd"), "lst_loss_sgd", cell["niter"])
    W, B = finite_tensor(ns, "W"), finite_tensor(ns, "B")
    opt = find_sgd(ns, (W, B), "[W, B]")
    check_sgd(opt, cell["step"], "[W, B]")
    if not within(abs(losses[0] - LOG3), T.INIT_LOSS_TOL):
        fail(f"le premier coût de `lst_loss_sgd` vaut {losses[0]:.3g}, loin de log(3) : W et B doivent "
             "être réinitialisés avant SGD (et non repris de la descente déjà faite).")
    _decreasing(losses, "lst_loss_sgd", T.GD_FINAL_LOSS_MAX)
    final = linear_loss(ns, W, B)
    trained_on_training_data(losses, final, "lst_loss_sgd", "le modèle", T.CONSISTENCY_MAX)
    # extra: started where the manual descent started (the student's own run, Q3.1): the same
    # trajectory, at the tolerance of float32 costs. Compared with the student's values only.
    try:
        manual = number_list(ns.get("lst_loss"), "lst_loss", len(losses))
    except CheckFailed:
        manual = None
    if manual and math.isclose(manual[0], losses[0], rel_tol=1e-7) and _replay_differs(losses, manual):
        fail("`lst_loss_sgd` ne reproduit pas la descente manuelle partie de la même "
             "initialisation : optimiseur sur [W, B], .step() puis .zero_grad() à chaque itération ?")
    acc = _test_accuracy_linear(W, B)
    if not at_least(acc, T.GD_TEST_ACC_MIN):
        fail(f"taux de bonne reconnaissance sur des exemples de test cachés {acc:.3f} < {T.GD_TEST_ACC_MIN} "
             "après SGD.")
    if reexec.active(ns):
        reexec.judge_linear(ns, "r3_sgd", 72, "lst_loss_sgd", cell["step"], cell["niter"])
