"""Hidden checks of tp_pima_jouet, softmax regression (see the package's docstring)."""
from __future__ import annotations

import math

import torch

from tpkit.assignments.tp_pima_jouet import reexec as RX
from tpkit.assignments.tp_pima_jouet import thresholds as T
from tpkit.assignments.tp_pima_jouet.thresholds import (PIMA_HIDDEN_ACC_MIN, PIMA_LIN_TEST_ACC_MIN)
from tpkit.assignments.tp_pima_jouet.reference import (DESCENTE, DESCENTE_SGD, INITIALISER, PIMA_HIDDEN_MAJORITY, PIMA_NITER, PIMA_STEP, _labels, _pima_ddof, data, pima_hidden, pima_tensors)
from tpkit.checks import reference as ref, repairs_code
from tpkit.checks.common import (judge_cost, gen as _gen, grad_flows as _grad_flows, softmax_diagnosis as _softmax_diagnosis, student_output as _student_output, student_rate as _student_rate)
from tpkit.checks.registry import (check, repair)
from tpkit.checks.tools import (all_finite, as_float64, at_least, between, call, close, fail, finite_tensor, get, number_list, require_shape, require_tensor, within)


# ---------------------------------------------------------------- section 2: softmax regression
@check("j2_pred")
def check_j2_pred(ns):
    fn = get(ns, "pred", "fonction pred(X, W, B)")
    g = _gen(ns, 21)
    for p in (2, 4):
        X = g.rand(7, 5)
        W = g.randn(5, p).requires_grad_(True)
        B = g.randn(1, p).requires_grad_(True)
        out = _student_output("pred", fn, (X, W, B), (7, p))
        _grad_flows("pred", out, (W, B))
        good = ref.pred(X, W, B).detach()
        got = as_float64(out, "pred")
        _softmax_diagnosis("pred", got, good)
        if not close(got, good):
            if close(got, ref.pred(X, W, torch.zeros_like(B)).detach()):
                fail("`pred` n'ajoute pas le biais B : Ŷ = softmax(XW + B).")
            fail(f"`pred(X, W, B)` ne renvoie pas softmax(XW + B) sur les lignes (essai avec p = {p}).")
    Xbig = torch.ones(3, 2, dtype=torch.float64)
    Wbig = torch.tensor([[400.0, -400.0], [400.0, 0.0]], dtype=torch.float64)
    out = _student_output("pred", fn, (Xbig, Wbig, torch.zeros(1, 2, dtype=torch.float64)), (3, 2))
    _softmax_diagnosis("pred", as_float64(out, "pred"), None)


@repair("j2_pred")
def repair_j2_pred(ns):
    ns.run(repairs_code.PRED)


@check("j2_cout")
def check_j2_cout(ns):
    fn = get(ns, "cout", "fonction cout(Y, Yhat)")
    g = _gen(ns, 22)
    for m, p in ((6, 2), (8, 5)):
        Y = torch.eye(p, dtype=torch.float64)[_labels(g, m, p)]
        Yhat = torch.softmax(g.randn(m, p), dim=1).requires_grad_(True)
        judge_cost(fn, Y, Yhat, suffix=f" (p = {p})")
    Yhat0 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    Y0 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    out0 = call("cout", fn, Y0, Yhat0)
    if not isinstance(out0, torch.Tensor) or not all_finite(out0.detach()):
        fail("`cout` renvoie NaN quand Ŷ contient un 0 exact : ajoutez 1e-16 dans le log.")
    if not math.isclose(float(out0.detach().reshape(())), float(ref.cout(Y0, Yhat0)), rel_tol=1e-8):
        fail("`cout` est faux quand Ŷ contient un 0 exact : ajoutez 1e-16 à l'intérieur du log.")


@repair("j2_cout")
def repair_j2_cout(ns):
    ns.run(repairs_code.COUT)


@check("j2_initialisation")
def check_j2_initialisation(ns):
    fn = get(ns, "initialiser", "fonction initialiser(d, p)")
    for d, p in ((200, 3), (150, 2)):
        out = call("initialiser", fn, d, p)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            fail("`initialiser(d, p)` doit renvoyer le couple (W, B).")
        W, B = require_tensor(out[0], "W"), require_tensor(out[1], "B")
        require_shape(W, (d, p), "W")
        require_shape(B, (1, p), "B", " : B est une ligne de taille 1 × p")
        if W.dtype != torch.float64 or B.dtype != torch.float64:
            fail("W et B doivent être des tenseurs float64 (double précision, comme X).")
        for name, t in (("W", W), ("B", B)):
            if not t.requires_grad or not t.is_leaf:
                fail(f"`{name}` doit être créé avec requires_grad=True (et ne pas être le résultat d'un calcul).")
        std, mean = float(W.detach().std()), float(W.detach().mean())
        if not between(std, T.W_STD_MIN, T.W_STD_MAX) or not within(abs(mean), T.W_MEAN_MAX):
            fail(f"`W` doit être gaussien de petite amplitude (np.random.randn(d, p) * 0.01) : "
                 f"écart-type obtenu {std:.3g}, moyenne {mean:.3g}.")
        if bool((B.detach() != 0).any()):
            fail("`B` doit être initialisé à zéro (th.zeros).")


@repair("j2_initialisation")
def repair_j2_initialisation(ns):
    ns.run(INITIALISER)


def _simulate(params, forward, X, Y, step, niter, zero=True, batch_rows=None):
    """Full-batch descent from copies of `params` (the reference; variants model common mistakes)."""
    params = [p.detach().clone().requires_grad_(True) for p in params]
    losses = []
    for _ in range(niter):
        loss = ref.cout(Y, forward(X, *params))
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= step * p.grad
                if zero:
                    p.grad.zero_()
    return losses, params


def _same_losses(a, b, rtol=1e-7) -> bool:
    return len(a) == len(b) and all(within(abs(x - y), rtol * max(abs(y), 1e-12)) for x, y in zip(a, b))


def _descent_problem(ns, seed):
    g = _gen(ns, seed)
    X = g.randn(30, 4)
    Y = torch.eye(3, dtype=torch.float64)[_labels(g, 30, 3)]
    W0 = 0.3 * g.randn(4, 3)
    B0 = 0.1 * g.randn(1, 3)
    return X, Y, W0, B0


def _diagnose_descent(fn_name, got, params, forward, X, Y, step, niter, reset_hint):
    """A French diagnosis of a trajectory `got` that differs from the reference descent."""
    good, _ = _simulate(params, forward, X, Y, step, niter)
    if _same_losses(got, good):
        return
    if got and not math.isclose(got[0], good[0], rel_tol=1e-7):
        fail(f"le premier coût renvoyé par `{fn_name}` ({got[0]:.6g}) n'est pas le coût des paramètres "
             f"reçus ({good[0]:.6g}) : la fonction utilise-t-elle ses arguments (et pas X, Y ou W globaux) ?")
    if _same_losses(got, _simulate(params, forward, X, Y, step, niter, zero=False)[0]):
        fail(f"`{fn_name}` : les gradients s'accumulent d'une itération à l'autre : {reset_hint}.")
    if got[-1] > got[0]:
        fail(f"`{fn_name}` : le coût augmente ({got[0]:.3g} → {got[-1]:.3g}) : le pas de gradient "
             "se fait dans le sens opposé au gradient (paramètre -= step * gradient).")
    if _same_losses(got, _simulate(params, forward, X, Y, 1.0, niter)[0]):
        fail(f"`{fn_name}` n'utilise pas le pas `step` reçu en argument.")
    fail(f"la liste renvoyée par `{fn_name}` ne suit pas une descente de gradient (paramètre -= step × "
         f"gradient, gradients remis à zéro à chaque itération) : coûts {got[1]:.6g}, … au lieu de {good[1]:.6g}, ….")


def _check_linear_descent(ns, fn_name, seed, reset_hint):
    fn = get(ns, fn_name, f"fonction {fn_name}(X, Y, W, B, step, niter)")
    X, Y, W0, B0 = _descent_problem(ns, seed)
    step, niter = 0.5, 15
    got = call(fn_name, fn, X, Y, W0.clone().requires_grad_(True), B0.clone().requires_grad_(True), step, niter)
    got = number_list(got, f"la liste renvoyée par {fn_name}", niter)
    _diagnose_descent(fn_name, got, (W0, B0), ref.pred, X, Y, step, niter, reset_hint)


@check("j2_descente")
def check_j2_descente(ns):
    _check_linear_descent(ns, "descente", 23, "W.grad.zero_() et B.grad.zero_() après chaque pas")


@repair("j2_descente")
def repair_j2_descente(ns):
    ns.run(DESCENTE)


@check("j2_pima_lineaire")
def check_j2_pima_lineaire(ns):
    losses = number_list(get(ns, "lst_loss"), "lst_loss", PIMA_NITER)
    if not within(abs(losses[0] - math.log(2)), T.INIT_LOSS_TOL):
        fail(f"le premier coût de `lst_loss` vaut {losses[0]:.3g}, loin de log(2) ≈ 0.693 : W et B "
             "sont-ils initialisés avec initialiser(d, p) juste avant la descente ?")
    if not losses[-1] < losses[0]:
        fail("`lst_loss` ne décroît pas : la descente n'apprend pas.")
    W, B = finite_tensor(ns, "W"), finite_tensor(ns, "B")
    require_shape(W, (7, 2), "W")
    require_shape(B, (1, 2), "B")
    ddof = _pima_ddof(ns)
    R, D, (Xh, yh) = pima_tensors(ddof), data()["pima"], pima_hidden(ddof)
    with torch.no_grad():
        Wd, Bd = as_float64(W, "W"), as_float64(B, "B")
        final = float(ref.cout(R["Y"], ref.pred(R["X"], Wd, Bd)))
        acc = ref.accuracy(ref.pred(R["Xt"], Wd, Bd), D["yt"])
        acc_hidden = ref.accuracy(ref.pred(Xh, Wd, Bd), yh)
    if not within(final - losses[-1], 1e-9):
        fail("`W` et `B` ne sont pas les paramètres appris par la descente "
             f"(coût {final:.3g} > dernier coût de lst_loss {losses[-1]:.3g}).")
    _student_rate(ns, "taux_test", acc)
    if not at_least(acc, PIMA_LIN_TEST_ACC_MIN):
        fail(f"taux de bonne reconnaissance en test {acc:.3f} < {PIMA_LIN_TEST_ACC_MIN} après la "
             "descente (toujours répondre « pas de diabète » donne déjà 0.672).")
    if not at_least(acc_hidden, PIMA_HIDDEN_ACC_MIN):
        fail(f"taux de bonne reconnaissance sur des patientes de test cachées {acc_hidden:.3f} < "
             f"{PIMA_HIDDEN_ACC_MIN} après la descente (toujours répondre « pas de diabète » y donne "
             f"{PIMA_HIDDEN_MAJORITY}).")
    if RX.active(ns):  # trusted grading: the cell run again on other training examples, other seeds
        st = RX.draw_state(ns, RX.KEYS["r2_pima_lineaire"], R["X"], R["Y"], D["x"], D["y"], RX.PIMA_SUBSET)
        run = RX.rerun(ns, "r2_pima_lineaire", st, keep=("lst_loss", "W", "B"), initial=("W", "B"))
        RX.judge_linear(run, st, ("lst_loss", "W", "B"), PIMA_STEP, PIMA_NITER)


@check("j2_sgd")
def check_j2_sgd(ns):
    _check_linear_descent(ns, "descente_sgd", 24, "appelez optimiseur.zero_grad() à chaque itération")


@repair("j2_sgd")
def repair_j2_sgd(ns):
    ns.run(DESCENTE_SGD)
