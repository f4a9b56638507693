"""Hidden checks of section 2: cost and gradient of tp_reseaux_neurones (one check, and its repair, per
graded question)."""
from __future__ import annotations

import math

import torch

from tpkit.assignments.tp_reseaux_neurones import reference as ref
from tpkit.checks import repairs_code
from tpkit.assignments.tp_reseaux_neurones import thresholds as T
from tpkit.checks.tools import (all_finite, as_float64, between, call, close, fail, get, rel_error,
                                require_finite, require_shape, require_tensor, vjp, within)
from tpkit.checks.common import (LOG3, draws, grad_flows, judge_cost, linear_loss, softmax_diagnosis,
                                 student_output)
from tpkit.checks.registry import check, repair


@check("q2_W")
def check_q2_W(ns):
    D = ref.data()
    W = require_tensor(get(ns, "W"), "W")
    require_shape(W, (D["d"], D["p"]), "W", " (d × p attendu ; transposée ?)"
                  if tuple(W.shape) == (D["p"], D["d"]) else "")
    if not W.dtype.is_floating_point:
        fail("`W` doit contenir des flottants.")
    if W.dtype != torch.float64:
        fail(f"`W` est de type {W.dtype} : gardez la double précision (float64) des données X, "
             "sinon pred ne peut pas calculer XW.")
    if not W.requires_grad or not W.is_leaf:
        fail("`W` doit être créé avec requires_grad=True (et ne pas être le résultat d'un calcul) "
             "pour que torch calcule son gradient.")
    w = W.detach().to(torch.float64)
    std, mean = float(w.std()), float(w.mean())
    if not all_finite(w) or not between(std, T.W_STD_MIN, T.W_STD_MAX) or not within(abs(mean), T.W_MEAN_MAX):
        fail(f"`W` doit être gaussien de petite amplitude (np.random.randn(d, p) * 0.01) : "
             f"écart-type obtenu {std:.3g}, moyenne {mean:.3g}.")
    loss0 = linear_loss(ns, W, torch.zeros(1, D["p"], dtype=torch.float64))
    if not within(abs(loss0 - LOG3), T.INIT_LOSS_TOL):
        fail(f"avec ce `W`, le coût initial vaut {loss0:.3f}, loin de log(3) ≈ 1.099 : "
             "W est-il bien petit ?")


@repair("q2_W")
def repair_q2_W(ns):
    ns["W"], _ = ref.statement_init(0, ref.data()["d"])


@check("q2_B")
def check_q2_B(ns):
    p = ref.P
    B = require_tensor(get(ns, "B"), "B")
    require_shape(B, (1, p), "B", " : B est une ligne de taille 1 × p")
    if not B.dtype.is_floating_point:
        fail("`B` doit contenir des flottants (th.zeros(1, p, ...)).")
    if not B.requires_grad or not B.is_leaf:
        fail("`B` doit être créé avec requires_grad=True pour que torch calcule son gradient.")
    if bool((B.detach() != 0).any()):
        fail("`B` doit être initialisé à zéro (th.zeros).")


@repair("q2_B")
def repair_q2_B(ns):
    ns["B"] = torch.zeros(1, ref.P, dtype=torch.float64, requires_grad=True)


@check("q2_pred")
def check_q2_pred(ns):
    fn = get(ns, "pred", "fonction pred(X, W, B)")
    for g in draws(ns, 1):
        _judge_pred(fn, g)
    # numerical stability: large logits
    Xbig = torch.full((3, 2), 1.0, dtype=torch.float64)
    Wbig = torch.tensor([[400.0, -400.0, 0.0], [400.0, 0.0, -400.0]], dtype=torch.float64)
    out_big = student_output("pred", fn, (Xbig, Wbig, torch.zeros(1, 3, dtype=torch.float64)), (3, 3))
    softmax_diagnosis("pred", out_big.detach().to(torch.float64), None)
    # the prediction Yhat of the notebook
    R = ref.tensors()
    Yhat = require_tensor(get(ns, "Yhat", "prédiction Ŷ sur les données d'apprentissage"), "Yhat")
    require_shape(Yhat, (ref.data()["n"], ref.P), "Yhat")
    W_nb, B_nb = get(ns, "W"), get(ns, "B")
    if not close(as_float64(Yhat, "Yhat"), ref.pred(R["X"], as_float64(W_nb, "W"), as_float64(B_nb, "B"))):
        fail("`Yhat` doit être la prédiction pred(X, W, B) sur les données d'apprentissage.")
    if not Yhat.requires_grad:
        fail("`Yhat` n'est pas relié à W et B pour autograd (calculé sous th.no_grad() ou détaché ?) : "
             "loss.backward() ne pourra pas calculer leurs gradients.")


def _judge_pred(fn, g):
    """pred on one draw of inputs: the values of softmax(XW + B) and the gradient through it."""
    X, W, B = g.rand(7, 5), g.randn(5, 4).requires_grad_(True), g.randn(1, 4).requires_grad_(True)
    out = student_output("pred", fn, (X, W, B), (7, 4))
    grad_flows("pred", out, (W, B))
    good = ref.pred(X, W, B).detach()
    softmax_diagnosis("pred", out.detach().to(torch.float64), good)
    if not close(as_float64(out, "pred"), good):
        no_bias = ref.pred(X, W, torch.zeros_like(B)).detach()
        if close(as_float64(out, "pred"), no_bias):
            fail("`pred` n'ajoute pas le biais B : Ŷ = softmax(XW + B).")
        fail("`pred(X, W, B)` ne renvoie pas softmax(XW + B) sur les lignes.")
    # gradient agreement: autograd through pred, reference cost, vs the analytic gradient
    Y = torch.eye(4, dtype=torch.float64)[g.randint(0, 4, (7,))]
    leaf = out.detach().to(torch.float64).requires_grad_(True)
    (cot,) = torch.autograd.grad(ref.cout(Y, leaf), (leaf,))
    gW, gB = vjp("pred", fn, (X, W, B), (1, 2), cot)
    with torch.no_grad():
        R = good - Y
        if gW is None or gB is None or gW.shape != W.shape or gB.numel() != B.numel() or \
                not within(rel_error(gW.to(torch.float64), X.T @ R / 7), T.GRAD_REL_ERR) or \
                not within(rel_error(gB.to(torch.float64).reshape(B.shape), R.mean(0, keepdim=True)),
                           T.GRAD_REL_ERR):
            fail("le gradient calculé à travers `pred` ne correspond pas à la formule "
                 "analytique Xᵀ(Ŷ − Y)/n.")


@repair("q2_pred")
def repair_q2_pred(ns):
    # X/W/B unusable: they were (or will be) reported by their own check
    ns.run(repairs_code.PRED + "try:\n    Yhat = pred(X, W, B)\nexcept Exception:\n    pass\n")


@check("q2_cout")
def check_q2_cout(ns):
    fn = get(ns, "cout", "fonction cout(Y, Yhat)")
    Y = torch.eye(4, dtype=torch.float64)[torch.tensor([0, 1, 2, 3, 1, 2])]
    for g in draws(ns, 2):
        Yhat = torch.softmax(g.randn(6, 4), dim=1).requires_grad_(True)
        out = judge_cost(fn, Y, Yhat)
        (gY,) = vjp("cout", fn, (Y, Yhat), (1,), torch.ones_like(out.detach()))
        if gY is None or gY.shape != Yhat.shape:
            fail("la sortie de `cout` n'est pas reliée à Ŷ pour autograd : n'utilisez ni .detach() "
                 "ni .numpy() dans la fonction.")
        gY = gY.to(torch.float64)
        # Ŷ comes out of a softmax, which ignores a constant added to each row of this gradient: a cost
        # written with log_softmax / cross_entropy adds one. Compare the rows without their means.
        centred = lambda g: g - g.mean(dim=1, keepdim=True)  # noqa: E731
        if not within(rel_error(centred(gY), centred(-Y / (Yhat.detach() + ref.EPS) / 6)), T.GRAD_REL_ERR):
            fail("le gradient de `cout` par rapport à Ŷ ne correspond pas à −Y/(n Ŷ).")
    # an exact 0 in the prediction must not give NaN: the 1e-16 guard inside the log
    Yhat0 = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]], dtype=torch.float64)
    Y0 = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    out0 = call("cout", fn, Y0, Yhat0)
    if not isinstance(out0, torch.Tensor) or not all_finite(out0.detach()):
        fail("`cout` renvoie NaN quand Ŷ contient un 0 exact : ajoutez 1e-16 dans le log.")
    if not math.isclose(float(out0.detach().reshape(())), float(ref.cout(Y0, Yhat0)), rel_tol=1e-8):
        fail("`cout` est faux quand Ŷ contient un 0 exact : ajoutez 1e-16 à l'intérieur du log.")
    # the loss of the notebook
    R = ref.tensors()
    loss = require_tensor(get(ns, "loss", "coût J à l'initialisation"), "loss")
    if loss.numel() != 1:
        fail("`loss` doit contenir un seul nombre.")
    W, B = as_float64(get(ns, "W"), "W"), as_float64(get(ns, "B"), "B")
    good_loss = float(ref.cout(R["Y"], ref.pred(R["X"], W, B)))
    if not math.isclose(float(loss.detach().reshape(())), good_loss, rel_tol=1e-8):
        fail(f"`loss` vaut {float(loss.detach().reshape(())):.6g} au lieu de cout(Y, Yhat) = {good_loss:.6g}.")


@repair("q2_cout")
def repair_q2_cout(ns):
    ns.run(repairs_code.COUT + "try:\n    loss = cout(Y, Yhat)\nexcept Exception:\n    pass\n")


@check("q2_gradient")
def check_q2_gradient(ns):
    R = ref.tensors()
    W, B = require_tensor(get(ns, "W"), "W"), require_tensor(get(ns, "B"), "B")
    if W.grad is None or B.grad is None:
        fail("`W.grad` ou `B.grad` est vide : appelez loss.backward().")
    require_finite(W.grad, "W.grad")
    require_finite(B.grad, "B.grad")
    Wd, Bd = as_float64(W, "W"), as_float64(B, "B")
    with torch.no_grad():
        Rr = ref.pred(R["X"], Wd, Bd) - R["Y"]
        gW, gB = R["X"].T @ Rr / Rr.shape[0], Rr.mean(0, keepdim=True)
    err = max(rel_error(W.grad.detach().to(torch.float64), gW),
              rel_error(B.grad.detach().to(torch.float64).reshape(gB.shape), gB))
    if not within(err, T.GRAD_REL_ERR):
        ratio = float((W.grad.detach().to(torch.float64) * gW).sum() / (gW * gW).sum())
        hint = (f" (il vaut {ratio:.3g} fois le bon : backward appelé plusieurs fois sans remise à zéro ?)"
                if within(abs(ratio - round(ratio)), 1e-6) and round(ratio) > 1 else "")
        fail("`W.grad` / `B.grad` ne correspondent pas au gradient analytique Xᵀ(Ŷ − Y)/n "
             f"et à la moyenne des lignes de Ŷ − Y (erreur relative {err:.2g}){hint}.")
