"""One hidden check per graded question, with the repair that keeps later questions fair.

A check questions the notebook through `ns`, a :class:`tpkit.witness.Witness`: it reads snapshots
of variables (tensors, arrays, numbers, lists), calls the student's functions on inputs it draws
itself, recomputes what decides the grade with its own torch, and raises CheckFailed with a French
diagnostic. It never holds an object of the student's.

Rules every check follows (issue #13):

* **Judge every submission.** For each graded run, what must hold whatever the seed and the path is
  checked always: the imposed values where the statement imposes them (read from the source
  notebook's given lines, :mod:`tpkit.checks.imposed`), a fresh initialisation as asked, the optimiser
  asked (plain SGD, lr = step), the data it was trained on (the cost of the final parameters on X, Y
  agrees with the last reported cost), reported values equal to recomputed ones. An exact replay of
  the statement's seeded recipe is only an extra that can fail a run, never a gate that lets one
  skip the other conditions.
* **One notion of a value** (:mod:`tpkit.checks.tools`): `as_number` / `require_number` (floats,
  numpy scalars, 0-d and size-1 arrays and tensors of any real dtype), `number_list` (lists of
  those; tensors still attached to the graph refused), `Witness.figure_lines` (line, step, log and
  scatter plots).
* **Repairs never change another question's yardstick.** When a check fails, its *repair* puts
  reference values in place of the faulty variables so that the student's later cells run on sound
  inputs and a mistake costs one question only (the way Gradescope stubs prerequisites). A later
  check therefore compares the student's own values with each other, or with the reference run on
  the student's accepted functions, at a tolerance that every accepted variant meets
  (`thresholds.REPLAY_RTOL`: float32 costs, clamp instead of + 1e-16), so that a repaired value and
  the student's own give the same verdict. Repairs happen only in the hidden part of the tests, which exists only when grading.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from tpkit.checks import imposed
from tpkit.checks import reference as ref
from tpkit.checks import thresholds as T
from tpkit.checks import repairs_code
from tpkit.checks.tools import (CheckFailed, require_loaded_arrays, all_finite, as_float64, call, close, fail, get, number_list,
                                rel_error, require_number, require_shape, require_tensor,
                                student_call, vjp)

LOG3 = math.log(3)
CHECKS: dict = {}
REPAIRS: dict = {}


def check(qid):
    def register(fn):
        CHECKS[qid] = fn
        return fn
    return register


def repair(qid):
    def register(fn):
        REPAIRS[qid] = fn
        return fn
    return register


def _gen(ns, seed: int) -> torch.Generator:
    """The generator of a check's inputs: fixed seeds in untrusted mode, seeds drawn from the course's
    secret when grading (`ns.salt`), so that no submission can recognise the inputs it is tested on."""
    if ns.salt:
        seed = (seed * 1_000_003 + ns.salt) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


def _is_module(value) -> bool:
    return getattr(value, "is_module", False) is True


# ---------------------------------------------------------------- section 1: data
@check("q1_chargement")
def _(ns):
    D = ref.data()
    require_loaded_arrays(ns, {"x": D["x"], "xt": D["xt"], "y": D["y_raw"], "yt": D["yt_raw"]},
                          "digitz.npz")


@repair("q1_chargement")
def _(ns):
    D = ref.data()
    ns.update(x=D["x"].copy(), xt=D["xt"].copy(), y=D["y_raw"].copy(), yt=D["yt_raw"].copy())


@check("q1_etiquettes")
def _(ns):
    D = ref.data()
    for name, raw, good in (("y", D["y_raw"], D["y"]), ("yt", D["yt_raw"], D["yt"])):
        value = get(ns, name)
        arr = value.detach().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if arr.shape != good.shape:
            fail(f"`{name}` a la taille {arr.shape} au lieu de {good.shape}.")
        if set(np.unique(arr).tolist()) & {7, 8}:
            fail(f"`{name}` contient encore les classes 7 ou 8 : remplacez 1, 7, 8 par 0, 1, 2.")
        if not set(np.unique(arr).tolist()) <= {0, 1, 2}:
            fail(f"`{name}` doit contenir uniquement les classes 0, 1, 2.")
        if not np.array_equal(arr, good):
            pairs = {int(r): sorted(set(arr[raw == r].tolist())) for r in ref.CLASSES}
            fail(f"`{name}` : les classes ne sont pas bien renumérotées (obtenu {pairs}) ; "
                 "attendu 1 → 0, 7 → 1, 8 → 2.")


@repair("q1_etiquettes")
def _(ns):
    ns.update(y=ref.data()["y"].copy(), yt=ref.data()["yt"].copy())


@check("q1_dimensions")
def _(ns):
    D = ref.data()
    for name, meaning in (("n", "nombre d'exemples d'apprentissage"),
                          ("d", "nombre de variables"), ("p", "nombre de classes")):
        value = require_number(get(ns, name), name)
        if value != D[name]:
            fail(f"`{name}` ({meaning}) vaut {value:g} au lieu de {D[name]}.")


@repair("q1_dimensions")
def _(ns):
    D = ref.data()
    ns.update(n=D["n"], d=D["d"], p=D["p"])


@check("q1_onehot")
def _(ns):
    D = ref.data()
    for name, good in (("Y", D["Y"]), ("Yt", D["Yt"])):
        value = get(ns, name)
        arr = value.detach().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if arr.shape != good.shape:
            hint = " (transposée ?)" if arr.shape == good.shape[::-1] else ""
            fail(f"`{name}` a la taille {arr.shape} au lieu de {good.shape}{hint} : "
                 "une ligne par exemple, une colonne par classe.")
        if not np.all((arr == 0) | (arr == 1)) or not np.all(arr.sum(axis=1) == 1):
            fail(f"`{name}` doit contenir exactement un 1 par ligne et des 0 ailleurs.")
        if not np.array_equal(arr, good):
            fail(f"`{name}` : le 1 de chaque ligne doit être dans la colonne de la classe "
                 f"de l'exemple ({'y' if name == 'Y' else 'yt'} renuméroté en 0, 1, 2).")


@repair("q1_onehot")
def _(ns):
    ns.update(Y=ref.data()["Y"].copy(), Yt=ref.data()["Yt"].copy())


@check("q1_tenseurs")
def _(ns):
    D = ref.data()
    for name, good in (("X", D["x"]), ("Xt", D["xt"])):
        t = require_tensor(get(ns, name), name)
        if t.dtype != torch.float64:
            fail(f"`{name}` est de type {t.dtype} : gardez des flottants float64 "
                 "(th.tensor sur le tableau numpy, sans conversion en float32).")
        if not close(t.detach(), torch.from_numpy(good), rtol=0, atol=0):
            fail(f"`{name}` doit contenir les données de {name.lower()} converties en tenseur.")
    for name, good in (("Y", D["Y"]), ("Yt", D["Yt"])):
        t = require_tensor(get(ns, name), name)
        if t.dtype.is_complex or t.dtype == torch.bool:
            fail(f"`{name}` doit être un tenseur de nombres (float64 de préférence).")
        if not close(t.detach().to(torch.float64), torch.from_numpy(good), rtol=0, atol=0):
            fail(f"`{name}` doit contenir la matrice One-Hot {name} convertie en tenseur.")


@repair("q1_tenseurs")
def _(ns):
    ns.update(ref.tensors())


# ---------------------------------------------------------------- section 2: cost and gradient
def _linear_loss(ns, W, B) -> float:
    R = ref.tensors()
    with torch.no_grad():
        return float(ref.cout(R["Y"], ref.pred(R["X"], W.detach().to(torch.float64),
                                               B.detach().to(torch.float64))))


@check("q2_W")
def _(ns):
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
    if not all_finite(w) or not (T.W_STD_MIN <= std <= T.W_STD_MAX) or abs(mean) > T.W_MEAN_MAX:
        fail(f"`W` doit être gaussien de petite amplitude (np.random.randn(d, p) * 0.01) : "
             f"écart-type obtenu {std:.3g}, moyenne {mean:.3g}.")
    loss0 = _linear_loss(ns, W, torch.zeros(1, D["p"], dtype=torch.float64))
    if abs(loss0 - LOG3) > T.INIT_LOSS_TOL:
        fail(f"avec ce `W`, le coût initial vaut {loss0:.3f}, loin de log(3) ≈ 1.099 : "
             "W est-il bien petit ?")


@repair("q2_W")
def _(ns):
    ns["W"], _ = ref.statement_init(0, ref.data()["d"])


@check("q2_B")
def _(ns):
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
def _(ns):
    ns["B"] = torch.zeros(1, ref.P, dtype=torch.float64, requires_grad=True)


def _softmax_diagnosis(name: str, out: torch.Tensor, good: torch.Tensor):
    """Explain in French how a softmax output differs from the expected one."""
    if not all_finite(out):
        fail(f"`{name}` renvoie des NaN ou inf pour de grandes valeurs de XW + B : softmax "
             "écrite à la main instable numériquement (soustrayez le max de chaque ligne "
             "ou utilisez th.softmax).")
    rows = out.sum(dim=1)
    if not close(rows, torch.ones_like(rows), rtol=0, atol=1e-8):
        cols = out.sum(dim=0)
        if close(cols, torch.ones_like(cols), rtol=0, atol=1e-8):
            fail(f"les lignes de la sortie de `{name}` ne somment pas à 1 (ce sont les "
                 "colonnes) : softmax appliquée sur le mauvais axe ? (dim=1 pour les lignes)")
        fail(f"les lignes de la sortie de `{name}` ne somment pas à 1 : "
             "la softmax est-elle appliquée (et normalisée) ?")
    if bool((out < 0).any()):
        fail(f"la sortie de `{name}` contient des valeurs négatives : ce ne sont pas des probabilités.")


def _student_output(fn_name, fn, args, shape):
    out = call(fn_name, fn, *args)
    if not isinstance(out, torch.Tensor):
        fail(f"`{fn_name}` doit renvoyer un tenseur torch (reçu : {type(out).__name__}).")
    if tuple(out.shape) != tuple(shape):
        fail(f"`{fn_name}` renvoie une sortie de taille {tuple(out.shape)} au lieu de "
             f"{tuple(shape)} : utilise-t-elle bien ses arguments (et pas des variables globales) ?")
    return out


def _grad_flows(fn_name, out, leaves):
    if out.grad_fn is None or not all(getattr(l, "requires_grad", False) for l in leaves):
        fail(f"la sortie de `{fn_name}` n'est pas reliée aux paramètres pour autograd : "
             "n'utilisez ni .detach(), ni .numpy(), ni th.tensor(...) dans la fonction.")


@check("q2_pred")
def _(ns):
    fn = get(ns, "pred", "fonction pred(X, W, B)")
    g = _gen(ns, 1)
    X = torch.rand(7, 5, generator=g, dtype=torch.float64)
    W = (torch.randn(5, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    B = torch.randn(1, 4, generator=g, dtype=torch.float64).requires_grad_(True)
    out = _student_output("pred", fn, (X, W, B), (7, 4))
    _grad_flows("pred", out, (W, B))
    good = ref.pred(X, W, B).detach()
    _softmax_diagnosis("pred", out.detach().to(torch.float64), good)
    if not close(as_float64(out, "pred"), good):
        no_bias = ref.pred(X, W, torch.zeros_like(B)).detach()
        if close(as_float64(out, "pred"), no_bias):
            fail("`pred` n'ajoute pas le biais B : Ŷ = softmax(XW + B).")
        fail("`pred(X, W, B)` ne renvoie pas softmax(XW + B) sur les lignes.")
    # gradient agreement: autograd through pred, reference cost, vs the analytic gradient
    Y = torch.eye(4, dtype=torch.float64)[torch.randint(0, 4, (7,), generator=g)]
    leaf = out.detach().to(torch.float64).requires_grad_(True)
    (cot,) = torch.autograd.grad(ref.cout(Y, leaf), (leaf,))
    gW, gB = vjp("pred", fn, (X, W, B), (1, 2), cot)
    with torch.no_grad():
        R = good - Y
        if gW is None or gB is None or gW.shape != W.shape or gB.numel() != B.numel() or \
                rel_error(gW.to(torch.float64), X.T @ R / 7) > T.GRAD_REL_ERR or \
                rel_error(gB.to(torch.float64).reshape(B.shape), R.mean(0, keepdim=True)) > T.GRAD_REL_ERR:
            fail("le gradient calculé à travers `pred` ne correspond pas à la formule "
                 "analytique Xᵀ(Ŷ − Y)/n.")
    # numerical stability: large logits
    Xbig = torch.full((3, 2), 1.0, dtype=torch.float64)
    Wbig = torch.tensor([[400.0, -400.0, 0.0], [400.0, 0.0, -400.0]], dtype=torch.float64)
    out_big = _student_output("pred", fn, (Xbig, Wbig, torch.zeros(1, 3, dtype=torch.float64)), (3, 3))
    _softmax_diagnosis("pred", out_big.detach().to(torch.float64), None)
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


@repair("q2_pred")
def _(ns):
    # X/W/B unusable: they were (or will be) reported by their own check
    ns.run(repairs_code.PRED + "try:\n    Yhat = pred(X, W, B)\nexcept Exception:\n    pass\n")


@check("q2_cout")
def _(ns):
    fn = get(ns, "cout", "fonction cout(Y, Yhat)")
    g = _gen(ns, 2)
    Y = torch.eye(4, dtype=torch.float64)[torch.tensor([0, 1, 2, 3, 1, 2])]
    Yhat = torch.softmax(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=1).requires_grad_(True)
    out = call("cout", fn, Y, Yhat)
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        fail("`cout` doit renvoyer un tenseur contenant un seul nombre (le coût moyen).")
    good = float(ref.cout(Y, Yhat))
    got = float(out.detach().reshape(()))
    if not math.isclose(got, good, rel_tol=1e-8, abs_tol=1e-12):
        if math.isclose(got, -good, rel_tol=1e-6):
            fail("`cout` renvoie l'opposé du coût : il manque le signe moins de J = −1/n Σ Y log Ŷ.")
        if math.isclose(got, 6 * good, rel_tol=1e-6):
            fail("`cout` renvoie la somme et non la moyenne sur les exemples (facteur 1/n).")
        if math.isclose(got, good / 4, rel_tol=1e-6):
            fail("`cout` moyenne aussi sur les classes : sommez sur les classes, "
                 "moyennez sur les exemples.")
        fail(f"`cout(Y, Yhat)` vaut {got:.6g} au lieu de {good:.6g} pour J = −1/n Σ Y log Ŷ.")
    if out.grad_fn is None:
        fail("la sortie de `cout` n'est pas reliée à Ŷ pour autograd : n'utilisez ni .detach() "
             "ni .numpy() dans la fonction.")
    (gY,) = vjp("cout", fn, (Y, Yhat), (1,), torch.ones_like(out.detach()))
    if gY is None or gY.shape != Yhat.shape:
        fail("la sortie de `cout` n'est pas reliée à Ŷ pour autograd : n'utilisez ni .detach() "
             "ni .numpy() dans la fonction.")
    gY = gY.to(torch.float64)
    # Ŷ comes out of a softmax, which ignores a constant added to each row of this gradient: a cost
    # written with log_softmax / cross_entropy adds one. Compare the rows without their means.
    centred = lambda g: g - g.mean(dim=1, keepdim=True)  # noqa: E731
    if rel_error(centred(gY), centred(-Y / (Yhat.detach() + ref.EPS) / 6)) > T.GRAD_REL_ERR:
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
def _(ns):
    ns.run(repairs_code.COUT + "try:\n    loss = cout(Y, Yhat)\nexcept Exception:\n    pass\n")


@check("q2_gradient")
def _(ns):
    R = ref.tensors()
    W, B = require_tensor(get(ns, "W"), "W"), require_tensor(get(ns, "B"), "B")
    if W.grad is None or B.grad is None:
        fail("`W.grad` ou `B.grad` est vide : appelez loss.backward().")
    Wd, Bd = as_float64(W, "W"), as_float64(B, "B")
    with torch.no_grad():
        Rr = ref.pred(R["X"], Wd, Bd) - R["Y"]
        gW, gB = R["X"].T @ Rr / Rr.shape[0], Rr.mean(0, keepdim=True)
    err = max(rel_error(W.grad.detach().to(torch.float64), gW),
              rel_error(B.grad.detach().to(torch.float64).reshape(gB.shape), gB))
    if err > T.GRAD_REL_ERR:
        ratio = float((W.grad.detach().to(torch.float64) * gW).sum() / (gW * gW).sum())
        hint = (f" (il vaut {ratio:.3g} fois le bon : backward appelé plusieurs fois sans remise à zéro ?)"
                if abs(ratio - round(ratio)) < 1e-6 and round(ratio) > 1 else "")
        fail("`W.grad` / `B.grad` ne correspondent pas au gradient analytique Xᵀ(Ŷ − Y)/n "
             f"et à la moyenne des lignes de Ŷ − Y (erreur relative {err:.2g}){hint}.")


# ---------------------------------------------------------------- section 3: gradient descent
def _check_asked_values(ns, names_values):
    for name, value in names_values:
        got = require_number(get(ns, name), name)
        if got != value:
            fail(f"`{name}` vaut {got:g} : gardez {name} = {value:g} pour la version notée "
                 "(expérimentez dans la cellule d'expériences, avec d'autres variables).")


def _decreasing(losses, name, final_max):
    if not losses[-1] < losses[0]:
        fail(f"`{name}` ne décroît pas ({losses[0]:.3g} → {losses[-1]:.3g}) : le pas de "
             "gradient est-il bien W -= step * W.grad ?")
    rises = sum(b > a + 1e-12 for a, b in zip(losses, losses[1:]))
    if rises > T.GD_MAX_RISES:
        fail(f"`{name}` remonte {rises} fois sur {len(losses) - 1} itérations : les gradients "
             "sont-ils remis à zéro à chaque itération ?")
    if losses[-1] > final_max:
        fail(f"le coût final ({losses[-1]:.3g}) est trop élevé (attendu < {final_max:g}).")


def _test_accuracy_linear(W, B):
    R, D = ref.tensors(), ref.data()
    with torch.no_grad():
        return ref.accuracy(ref.pred(R["Xt"], as_float64(W, "W"), as_float64(B, "B")), D["yt"])


def _trained_on_training_data(losses, final, name, what):
    """Reported vs recomputed: the cost of the final parameters on the training data must agree with
    the last cost the loop reported (they differ by about one step of the descent). A model trained on
    other data (the test set) reports costs of that data: far from its cost on X, Y."""
    scale = abs(losses[-2] - losses[-1]) + 0.01 * abs(losses[-1])
    if not abs(final - losses[-1]) <= T.CONSISTENCY_MAX * scale + 1e-12:
        fail(f"le coût des paramètres appris sur les données d'apprentissage ({final:.4g}) ne correspond "
             f"pas au dernier coût de `{name}` ({losses[-1]:.4g}) : {what} doit être appris sur les "
             "données d'apprentissage X, Y, et la liste doit contenir le coût de chaque itération.")


def _check_sgd(opt, step, what):
    """The optimiser the statement asks for: plain th.optim.SGD with lr = step."""
    group = opt.groups[0]["hyper"] if opt.groups else {}
    lr = group.get("lr")
    if len(opt.groups) != 1 or lr != step:
        fail(f"le pas (lr) de l'optimiseur vaut {lr:g} au lieu de step = {step:g}." if isinstance(lr, (int, float))
             else f"l'optimiseur de {what} doit avoir un seul pas lr = step = {step:g}.")
    extras = [k for k in ("momentum", "weight_decay", "nesterov", "maximize") if group.get(k)]
    if extras:
        fail(f"l'optimiseur de {what} utilise {', '.join(extras)} : la descente demandée est "
             f"th.optim.SGD(..., lr=step) sans momentum ni weight_decay.")


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
    return max(abs(a - b) / abs(b) for a, b in zip(losses, expected)) > T.REPLAY_RTOL


@check("q3_descente")
def _(ns):
    cell = imposed.values()["r3_descente"]
    step, niter = cell["step"], cell["niter"]
    _check_asked_values(ns, (("step", step), ("niter", niter)))
    losses = number_list(get(ns, "lst_loss"), "lst_loss", niter)
    if abs(losses[0] - LOG3) > T.INIT_LOSS_TOL:
        fail(f"le premier coût de `lst_loss` vaut {losses[0]:.3g}, loin de log(3) : "
             "W et B sont-ils réinitialisés avant la boucle ?")
    W, B = require_tensor(get(ns, "W"), "W"), require_tensor(get(ns, "B"), "B")
    if _started_from_section_2(ns, (W, B), losses[0]):
        fail("W et B ne sont pas réinitialisés avant la boucle : la descente part de ceux de la "
             "section 2 (et de leur gradient déjà calculé) ; créez-les à nouveau comme demandé.")
    _decreasing(losses, "lst_loss", T.GD_FINAL_LOSS_MAX)
    # extra: the statement's seeded initialisation replayed exactly (float32 costs accepted)
    W0, B0 = ref.statement_init(cell["seed"], ref.data()["d"])
    expected, _, _ = _gd_reference(W0, B0, step, niter)
    if math.isclose(losses[0], expected[0], rel_tol=1e-7) and _replay_differs(losses, expected):
        fail("`lst_loss` ne suit pas une descente de gradient W -= step * W.grad, "
             "B -= step * B.grad avec gradients remis à zéro à chaque itération.")
    final = _linear_loss(ns, W, B)
    _trained_on_training_data(losses, final, "lst_loss", "le modèle")
    if not final <= losses[-1] + 1e-9:
        fail("`W` et `B` ne sont pas les paramètres appris par la boucle "
             f"(coût {final:.3g} > dernier coût de lst_loss {losses[-1]:.3g}).")
    acc = _test_accuracy_linear(W, B)
    if acc < T.GD_TEST_ACC_MIN:
        fail(f"taux de bonne reconnaissance en test {acc:.3f} < {T.GD_TEST_ACC_MIN} après la descente.")


_GD_CACHE: dict = {}


def _gd_reference(W0, B0, step, niter):
    key = (W0.detach().numpy().tobytes(), B0.detach().numpy().tobytes(), step, niter)
    if key not in _GD_CACHE:
        R = ref.tensors()
        _GD_CACHE[key] = ref.gradient_descent(R["X"], R["Y"], W0, B0, step, niter)
    return _GD_CACHE[key]


@repair("q3_descente")
def _(ns):
    cell = imposed.values()["r3_descente"]
    W0, B0 = ref.statement_init(cell["seed"], ref.data()["d"])
    losses, W, B = _gd_reference(W0, B0, cell["step"], cell["niter"])
    ns.update(step=cell["step"], niter=cell["niter"], lst_loss=list(losses),
              W=W.detach().clone().requires_grad_(True), B=B.detach().clone().requires_grad_(True))


@check("q3_courbe")
def _(ns):
    losses = np.asarray(number_list(get(ns, "lst_loss"), "lst_loss"), dtype=np.float64)
    for ydata in ns.figure_lines():
        if ydata.shape == losses.shape and np.allclose(ydata, losses, rtol=1e-9, atol=0):
            return
    fail("aucune figure ne montre l'évolution de `lst_loss` : tracez-la avec pl.plot(lst_loss).")


def _student_rate(ns, name, good):
    value = require_number(get(ns, name), name)
    # rates are multiples of 1/1050 or 1/450: 1e-6 tells every count apart and accepts float32
    if math.isclose(value, good, abs_tol=1e-6) or math.isclose(value, 100 * good, abs_tol=1e-4):
        return
    fail(f"`{name}` vaut {value:.4g} alors que les paramètres appris donnent {good:.4g} : "
         "calculez la prédiction sur les bonnes données, puis np.mean(np.argmax(Ŷ, 1) == étiquettes).")


@check("q3_precision")
def _(ns):
    D, R = ref.data(), ref.tensors()
    W, B = require_tensor(get(ns, "W"), "W"), require_tensor(get(ns, "B"), "B")
    with torch.no_grad():
        Wd, Bd = as_float64(W, "W"), as_float64(B, "B")
        train = ref.accuracy(ref.pred(R["X"], Wd, Bd), D["y"])
        test = ref.accuracy(ref.pred(R["Xt"], Wd, Bd), D["yt"])
    _student_rate(ns, "taux_app", train)
    _student_rate(ns, "taux_test", test)


def _find_sgd(ns, params, name_hint):
    ids = {p.witness_id for p in params}
    for opt in ns.optimizers():
        if opt.is_sgd and ids <= opt.param_ids:
            return opt
    fail(f"aucun optimiseur th.optim.SGD ne porte sur {name_hint} : "
         f"créez-le avec th.optim.SGD({name_hint}, lr=step).")


@check("q3_sgd")
def _(ns):
    cell = imposed.values()["r3_sgd"]
    losses = number_list(get(ns, "lst_loss_sgd"), "lst_loss_sgd", cell["niter"])
    W, B = require_tensor(get(ns, "W"), "W"), require_tensor(get(ns, "B"), "B")
    opt = _find_sgd(ns, (W, B), "[W, B]")
    _check_sgd(opt, cell["step"], "[W, B]")
    if abs(losses[0] - LOG3) > T.INIT_LOSS_TOL:
        fail(f"le premier coût de `lst_loss_sgd` vaut {losses[0]:.3g}, loin de log(3) : W et B doivent "
             "être réinitialisés avant SGD (et non repris de la descente déjà faite).")
    _decreasing(losses, "lst_loss_sgd", T.GD_FINAL_LOSS_MAX)
    final = _linear_loss(ns, W, B)
    _trained_on_training_data(losses, final, "lst_loss_sgd", "le modèle")
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
    if acc < T.GD_TEST_ACC_MIN:
        fail(f"taux de bonne reconnaissance en test {acc:.3f} < {T.GD_TEST_ACC_MIN} après SGD.")


def _accumulated_gradients(params, opt, grads_at) -> bool:
    """After a full-batch training loop with a plain SGD optimizer: True when the parameters'
    `.grad` hold gradients summed over iterations (never zeroed). Accepted: no gradient or zero
    gradients (zeroed at the end), the gradient of the last iteration (zeroed at the top of the loop:
    it is the gradient at θ + lr·grad, the point before the last step), or the gradient at θ."""
    grads = [p.grad for p in params]
    if any(g is None for g in grads) or all(not bool((g != 0).any()) for g in grads):
        return False
    group = opt.groups[0]["hyper"]
    if len(opt.groups) != 1 or any(group.get(k) for k in ("momentum", "weight_decay", "nesterov",
                                                             "maximize")):
        return False  # another update rule than θ -= lr·grad: the last point cannot be rebuilt
    with torch.no_grad():
        G = torch.cat([g.detach().to(torch.float64).reshape(-1) for g in grads])
        now = [p.detach().to(torch.float64) for p in params]
        before = [t + group["lr"] * g.detach().to(torch.float64) for t, g in zip(now, grads)]
    for point in (before, now):
        got = grads_at(point)
        got = torch.cat([(torch.zeros_like(t) if g is None else g.to(torch.float64)).reshape(-1)
                         for g, t in zip(got, point)])
        if float((got - G).norm()) <= 1e-6 * float(got.norm() + G.norm()):
            return False
    return True


ACCUMULATED = ("les gradients s'accumulent d'une itération à l'autre dans `{}` : remettez-les à zéro "
               "à chaque itération (méthode .zero_grad() de l'optimiseur).")


# ---------------------------------------------------------------- section 4: MLP
@check("q4_pred2")
def _(ns):
    fn = get(ns, "pred2", "fonction pred2(X, W1, B1, W2, B2)")
    g = _gen(ns, 4)
    X = torch.randn(7, 5, generator=g, dtype=torch.float64)
    W1 = torch.randn(5, 6, generator=g, dtype=torch.float64).requires_grad_(True)
    B1 = torch.randn(1, 6, generator=g, dtype=torch.float64).requires_grad_(True)
    W2 = torch.randn(6, 4, generator=g, dtype=torch.float64).requires_grad_(True)
    B2 = torch.randn(1, 4, generator=g, dtype=torch.float64).requires_grad_(True)
    out = _student_output("pred2", fn, (X, W1, B1, W2, B2), (7, 4))
    _grad_flows("pred2", out, (W1, B1, W2, B2))
    good = ref.pred2(X, W1, B1, W2, B2).detach()
    got = as_float64(out, "pred2")
    _softmax_diagnosis("pred2", got, good)
    if not close(got, good):
        with torch.no_grad():
            no_relu = torch.softmax((X @ W1 + B1) @ W2 + B2, dim=1)
            relu_last = torch.softmax(torch.relu(torch.relu(X @ W1 + B1) @ W2 + B2), dim=1)
        if close(got, no_relu):
            fail("`pred2` n'applique pas la ReLU après la première couche.")
        if close(got, relu_last):
            fail("`pred2` applique une ReLU après la seconde couche : seule la première "
                 "couche est suivie d'une ReLU, la seconde d'une softmax.")
        fail("`pred2` ne calcule pas softmax(relu(X W1 + B1) W2 + B2).")


@repair("q4_pred2")
def _(ns):
    ns.run(repairs_code.PRED2)


def _mlp_test_accuracy(model_or_fn) -> float:
    R, D = ref.tensors(), ref.data()
    with torch.no_grad():
        out = student_call("mlp", lambda: model_or_fn(R["Xt"]))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (R["Xt"].shape[0], ref.P):
        fail("le réseau ne renvoie pas une sortie de taille (nombre d'exemples, p).")
    return ref.accuracy(out.to(torch.float64), D["yt"])


@check("q4_mlp_manuel")
def _(ns):
    D = ref.data()
    cell = imposed.values()["r4_mlp_manuel"]
    nb_hidden = cell["nb_hidden"]
    _check_asked_values(ns, (("nb_hidden", nb_hidden),))
    shapes = dict(W1=(D["d"], nb_hidden), B1=(1, nb_hidden),
                  W2=(nb_hidden, ref.P), B2=(1, ref.P))
    params = []
    for name, shape in shapes.items():
        t = require_tensor(get(ns, name), name)
        require_shape(t, shape, name)
        if not t.requires_grad or not t.is_leaf:
            fail(f"`{name}` doit être créé avec requires_grad=True.")
        params.append(t)
    opt = _find_sgd(ns, params, "[W1, B1, W2, B2]")
    _check_sgd(opt, cell["step"], "[W1, B1, W2, B2]")
    losses = number_list(get(ns, "lst_loss2"), "lst_loss2", cell["niter"])
    _check_asked_values(ns, (("step", cell["step"]), ("niter", cell["niter"])))
    if not losses[-1] < losses[0]:
        fail("`lst_loss2` ne décroît pas : le réseau n'apprend pas.")
    R = ref.tensors()

    def grads_at(point):
        leaves = [t.clone().requires_grad_(True) for t in point]
        return torch.autograd.grad(ref.cout(R["Y"], ref.pred2(R["X"], *leaves)), leaves, allow_unused=True)

    if _accumulated_gradients(params, opt, grads_at):
        fail(ACCUMULATED.format("[W1, B1, W2, B2]"))
    # the initial scale asked (0.1 · randn) shows through training in the spread of W1
    w1_std = float(params[0].detach().to(torch.float64).std())
    if not T.MLP_W1_STD_MIN <= w1_std <= T.MLP_W1_STD_MAX:
        fail(f"après apprentissage, l'écart-type de W1 vaut {w1_std:.3g} : W1 et W2 doivent être "
             f"initialisés comme demandé, np.random.randn(...) * {ref.MLP_INIT_SCALE}.")
    with torch.no_grad():
        final = float(ref.cout(R["Y"], ref.pred2(R["X"], *(as_float64(t, "W") for t in params))))
    _trained_on_training_data(losses, final, "lst_loss2", "le réseau")
    W1, B1, W2, B2 = (as_float64(t, "W") for t in params)
    acc = _mlp_test_accuracy(lambda x: ref.pred2(x, W1, B1, W2, B2))
    _student_rate(ns, "taux_test2", acc)
    if acc < T.MLP_MANUAL_TEST_ACC_MIN:
        fail(f"taux de bonne reconnaissance en test {acc:.3f} < {T.MLP_MANUAL_TEST_ACC_MIN} "
             "pour le réseau à deux couches.")


@repair("q4_mlp_manuel")
def _(ns):
    # the class MLP of Q4.7 is sized with nb_hidden: a changed value must not cost that question too
    ns["nb_hidden"] = ref.NB_HIDDEN


@check("q4_mlp_identite")
def _(ns):
    cls = get(ns, "MLP", "classe MLP")
    model = call("MLP", cls)
    if not _is_module(model):
        fail("`MLP()` doit créer un th.nn.Module (gardez super(MLP, self).__init__()).")
    x = torch.randn(4, 6, generator=_gen(ns, 5), dtype=torch.float64)
    out = call("mlp", model, x)
    if not isinstance(out, torch.Tensor) or not close(as_float64(out, "mlp(x)"), x, rtol=0, atol=0):
        fail("`mlp(x)` doit renvoyer exactement son entrée x (forward renvoie x).")
    if not ns.is_instance("mlp", cls):
        fail("créez le réseau avec mlp = MLP().")


def _linear_layers(model):
    info = model.module()
    layers, c1, c2 = info.linears, info.c1, info.c2
    if c1 is not None and c2 is not None:
        return c1, c2
    if len(layers) == 2:
        return layers[0], layers[1]
    fail(f"`MLP` doit contenir deux couches th.nn.Linear (self.c1, self.c2) ; trouvé {len(layers)}.")


@check("q4_mlp_classe")
def _(ns):
    D = ref.data()
    cls = get(ns, "MLP", "classe MLP")
    model = call("MLP", cls)
    if not _is_module(model):
        fail("`MLP()` doit créer un th.nn.Module (gardez super(MLP, self).__init__()).")
    c1, c2 = _linear_layers(model)
    if (c1.in_features, c1.out_features) != (D["d"], ref.NB_HIDDEN):
        fail(f"la première couche va de {c1.in_features} à {c1.out_features} neurones "
             f"au lieu de d = {D['d']} → nb_hidden = {ref.NB_HIDDEN}.")
    if (c2.in_features, c2.out_features) != (ref.NB_HIDDEN, ref.P):
        fail(f"la seconde couche va de {c2.in_features} à {c2.out_features} neurones "
             f"au lieu de nb_hidden = {ref.NB_HIDDEN} → p = {ref.P}.")
    if c1.weight.dtype != torch.float64 or c2.weight.dtype != torch.float64:
        fail("les couches doivent être en double précision : ajoutez .double() à leur création.")
    x = torch.rand(6, D["d"], generator=_gen(ns, 6), dtype=torch.float64)
    out = call("mlp", model, x)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (6, ref.P):
        fail("`mlp(x)` doit renvoyer un tenseur de taille (nombre d'exemples, p).")
    got = as_float64(out, "mlp(x)")
    with torch.no_grad():
        good = ref.mlp_forward(x, c1.module(), c2.module())
    _softmax_diagnosis("forward", got, good)
    if not close(got, good):
        fail("forward ne calcule pas softmax(c2(relu(c1(x)))).")
    if not ns.is_instance("mlp", cls):
        fail("créez le réseau avec mlp = MLP().")


@repair("q4_mlp_classe")
def _(ns):
    ns.run(repairs_code.mlp_class(ref.data()["d"], ref.NB_HIDDEN) + "mlp = MLP()\n")


@check("q4_mlp_apprentissage")
def _(ns):
    cell = imposed.values()["r4_mlp_apprentissage"]
    model = get(ns, "mlp", "réseau appris")
    if not _is_module(model):
        fail("`mlp` doit être le réseau MLP() appris.")
    losses = number_list(get(ns, "lst_loss_mlp"), "lst_loss_mlp", cell["niter"])
    _check_asked_values(ns, (("step", cell["step"]), ("niter", cell["niter"])))
    if not losses[-1] < losses[0]:
        fail("`lst_loss_mlp` ne décroît pas : le réseau n'apprend pas.")
    named = model.module().params
    params = [p for _, p in named]
    opt = _find_sgd(ns, params, "mlp.parameters()")
    _check_sgd(opt, cell["step"], "mlp.parameters()")
    R = ref.tensors()

    def grads_at(point):
        # the student's forward at these parameter values, autograd in the kernel, reference cost here
        values = dict(zip([n for n, _ in named], point))
        out, _ = student_call("mlp", lambda: model.functional_call(values, R["X"]))
        leaf = out.detach().to(torch.float64).requires_grad_(True)
        (cot,) = torch.autograd.grad(ref.cout(R["Y"], leaf), (leaf,))
        _, grads = student_call("mlp", lambda: model.functional_call(values, R["X"], cot))
        return grads or [None] * len(point)

    if _accumulated_gradients(params, opt, grads_at):
        fail(ACCUMULATED.format("mlp"))
    out = student_call("mlp", lambda: model(R["X"]))
    if isinstance(out, torch.Tensor) and tuple(out.shape) == (R["X"].shape[0], ref.P):
        final = float(ref.cout(R["Y"], out.detach().to(torch.float64)))
        _trained_on_training_data(losses, final, "lst_loss_mlp", "le réseau")
    acc = _mlp_test_accuracy(model)
    _student_rate(ns, "taux_test_mlp", acc)
    if acc < T.MLP_TEST_ACC_MIN:
        fail(f"taux de bonne reconnaissance en test {acc:.3f} < {T.MLP_TEST_ACC_MIN} pour le MLP appris.")


# ---------------------------------------------------------------- section 5: minibatch SGD
@check("q5_minibatch")
def _(ns):
    D = ref.data()
    cell = imposed.values()["r5_minibatch"]
    mb = cell["mb"]
    _check_asked_values(ns, (("mb", mb), ("step", cell["step"])))
    idx = get(ns, "idx", "indices du dernier minibatch")
    if isinstance(idx, np.ndarray) and idx.dtype.kind in "iu":  # drawn with np.random.randint
        idx = torch.from_numpy(idx.astype(np.int64))
    idx = require_tensor(idx, "idx")
    if tuple(idx.shape) != (mb,):
        fail(f"`idx` a la taille {tuple(idx.shape)} au lieu de ({mb},) : tirez mb indices "
             "avec th.randint(n, (mb,)).")
    if idx.dtype not in (torch.int64, torch.int32) or int(idx.min()) < 0 or int(idx.max()) >= D["n"]:
        fail("`idx` doit contenir des indices entiers entre 0 et n − 1.")
    niter_mb = int(require_number(get(ns, "niter_mb"), "niter_mb"))
    losses = number_list(get(ns, "lst_loss_mb"), "lst_loss_mb", niter_mb)
    if niter_mb < T.MB_NITER_MIN:
        fail(f"niter_mb = {niter_mb} itérations ne suffisent pas à converger avec des minibatchs "
             f"de {mb} exemples.")
    rises = sum(b > a for a, b in zip(losses, losses[1:])) / (len(losses) - 1)
    if rises < T.MB_MIN_RISE_SHARE:
        fail("le coût `lst_loss_mb` n'est pas bruité : tirez un nouveau minibatch aléatoire "
             "(th.randint) à chaque itération, dans la boucle.")
    k = max(1, len(losses) // 10)
    if not np.mean(losses[-k:]) < np.mean(losses[:k]):
        fail("le coût `lst_loss_mb` ne décroît pas en moyenne le long des itérations.")
    model = get(ns, "mlp_mb", "réseau appris par minibatchs")
    if not _is_module(model):
        fail("`mlp_mb` doit être le réseau MLP() appris par minibatchs.")
    opt = _find_sgd(ns, [p for _, p in model.module().params], "mlp_mb.parameters()")
    _check_sgd(opt, cell["step"], "mlp_mb.parameters()")
    acc = _mlp_test_accuracy(model)
    _student_rate(ns, "taux_test_mb", acc)
    if acc < T.MB_TEST_ACC_MIN:
        fail(f"taux de bonne reconnaissance en test {acc:.3f} < {T.MB_TEST_ACC_MIN} : "
             "augmentez niter_mb pour converger.")
