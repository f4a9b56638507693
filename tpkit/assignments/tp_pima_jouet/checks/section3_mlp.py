"""Hidden checks of tp_pima_jouet, two-layer network (see the package's docstring)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from tpkit.assignments.tp_pima_jouet import reexec as RX
from tpkit.assignments.tp_pima_jouet.thresholds import (PIMA_HIDDEN_ACC_MIN, PIMA_MB_TEST_ACC_MIN, PIMA_MLP_TEST_ACC_MIN)
from tpkit.assignments.tp_pima_jouet.checks.section2_regression import (_diagnose_descent, _simulate)
from tpkit.assignments.tp_pima_jouet.reference import (APPRENDRE, APPRENDRE_MB, MB, MLP_CLASS, NB_HIDDEN, PIMA_HIDDEN_MAJORITY, PIMA_MB_STEP, PIMA_MLP_NITER, PIMA_MLP_STEP, _labels, _pima_ddof, data, pima_hidden, pima_tensors)
from tpkit.checks import reference as ref
from tpkit.checks.common import (check_asked_values as _check_asked_values, gen as _gen, is_module as _is_module, linear_layers as _linear_layers, softmax_diagnosis as _softmax_diagnosis, student_rate as _student_rate, hidden_call as _hidden_call)
from tpkit.checks.registry import (check, repair)
from tpkit.checks.tools import (as_float64, at_least, call, close, fail, get, number_list, student_call, under, within)


# ---------------------------------------------------------------- section 3: two-layer network
def _mlp_forward(x, c1, c2):
    return ref.mlp_forward(x, c1, c2)


@check("j3_mlp")
def check_j3_mlp(ns):
    cls = get(ns, "MLP", "classe MLP(d, nb_hidden, p)")
    g = _gen(ns, 31)
    for d, h, p in ((5, 8, 2), (3, 6, 4)):
        model = call("MLP", cls, d, h, p)
        if not _is_module(model):
            fail("`MLP(d, nb_hidden, p)` doit créer un th.nn.Module (gardez super(MLP, self).__init__()).")
        c1, c2 = _linear_layers(model)
        if (c1.in_features, c1.out_features, c2.in_features, c2.out_features) != (d, h, h, p):
            fail(f"MLP({d}, {h}, {p}) a des couches {c1.in_features} → {c1.out_features} et "
                 f"{c2.in_features} → {c2.out_features} au lieu de d → nb_hidden et nb_hidden → p "
                 "(utilisez les arguments de __init__).")
        if c1.weight.dtype != torch.float64 or c2.weight.dtype != torch.float64:
            fail("les couches doivent être en double précision : ajoutez .double() à leur création.")
        x = g.randn(6, d)
        out = call("le réseau", model, x)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (6, p):
            fail(f"MLP({d}, {h}, {p})(x) doit renvoyer un tenseur de taille (nombre d'exemples, p).")
        got = as_float64(out, "forward")
        l1, l2 = c1.module(), c2.module()
        with torch.no_grad():
            good = ref.mlp_forward(x, l1, l2)
            no_relu = torch.softmax(l2(l1(x)), dim=1)
        _softmax_diagnosis("forward", got, good)
        if not close(got, good):
            if close(got, no_relu):
                fail("forward n'applique pas la ReLU après la première couche.")
            fail("forward ne calcule pas softmax(c2(relu(c1(x)))).")


@repair("j3_mlp")
def repair_j3_mlp(ns):
    ns.run(MLP_CLASS)


def _model(ns, g, d, h, p):
    cls = get(ns, "MLP", "classe MLP")
    model = call("MLP", cls, d, h, p)
    if not _is_module(model):
        fail("`MLP(d, nb_hidden, p)` doit créer un th.nn.Module.")
    return model


def _layers_now(model):
    c1, c2 = _linear_layers(model)
    return c1.module(), c2.module()


def _mlp_params(l1, l2):
    return [l1.weight, l1.bias, l2.weight, l2.bias]


def _mlp_fn(X, W1, b1, W2, b2):
    return torch.softmax(torch.relu(X @ W1.T + b1) @ W2.T + b2, dim=1)


@check("j3_apprendre")
def check_j3_apprendre(ns):
    fn = get(ns, "apprendre", "fonction apprendre(modele, X, Y, step, niter)")
    g = _gen(ns, 32)
    X = g.randn(30, 4)
    Y = torch.eye(3, dtype=torch.float64)[_labels(g, 30, 3)]
    model = _model(ns, g, 4, 6, 3)
    l1, l2 = _layers_now(model)
    step, niter = 0.5, 12
    got = number_list(call("apprendre", fn, model, X, Y, step, niter), "la liste renvoyée par apprendre", niter)
    params = _mlp_params(l1, l2)
    _diagnose_descent("apprendre", got, params, _mlp_fn, X, Y, step, niter,
                      "appelez optimiseur.zero_grad() à chaque itération")
    _, final = _simulate(params, _mlp_fn, X, Y, step, niter)
    n1, n2 = _layers_now(model)
    now = [t.detach() for t in _mlp_params(n1, n2)]
    if not all(close(a.to(torch.float64), b.detach()) for a, b in zip(now, final)):
        fail("le réseau passé à `apprendre` n'a pas été appris : l'optimiseur doit porter sur "
             "modele.parameters() (le réseau reçu en argument).")


@repair("j3_apprendre")
def repair_j3_apprendre(ns):
    ns.run(APPRENDRE)


def _example_losses(X, Y, l1, l2) -> np.ndarray:
    with torch.no_grad():
        P = ref.mlp_forward(X, l1, l2)
        return (-torch.sum(Y * torch.log(P + ref.EPS), dim=1)).numpy()


def _in(values, allowed: np.ndarray) -> bool:
    allowed = np.sort(allowed)
    for v in values:
        i = np.searchsorted(allowed, v)
        near = [allowed[j] for j in (i - 1, i) if 0 <= j < len(allowed)]
        if not any(within(abs(v - a), 1e-9 * max(1.0, abs(a))) for a in near):
            return False
    return True


@check("j3_minibatch")
def check_j3_minibatch(ns):
    fn = get(ns, "apprendre_mb", "fonction apprendre_mb(modele, X, Y, step, niter, mb)")
    g = _gen(ns, 33)
    X = g.randn(30, 4)
    Y = torch.eye(3, dtype=torch.float64)[_labels(g, 30, 3)]
    model = _model(ns, g, 4, 6, 3)
    l1, l2 = _layers_now(model)
    singles = _example_losses(X, Y, l1, l2)
    # step = 0: the parameters stay put, so each cost is the mean cost of the mb examples drawn
    got = number_list(call("apprendre_mb", fn, model, X, Y, 0.0, 40, 1),
                      "la liste renvoyée par apprendre_mb", 40)
    n1, n2 = _layers_now(model)
    if not all(close(a.detach(), b.detach()) for a, b in zip(_mlp_params(n1, n2), _mlp_params(l1, l2))):
        fail("avec step = 0 les paramètres du réseau ont changé : `apprendre_mb` doit utiliser le pas "
             "`step` reçu en argument.")
    if not _in(got, singles):
        if any(math.isclose(v, float(singles.mean()), rel_tol=1e-9) for v in got):
            fail("le coût est calculé sur toute la base et non sur un minibatch de mb exemples tirés au hasard.")
        fail("avec mb = 1, chaque coût doit être celui d'un seul exemple : le minibatch contient-il "
             "bien mb exemples (argument mb, X[idx] et Y[idx] avec les mêmes indices idx) ?")
    if len({round(v, 9) for v in got}) < 5:
        fail("le minibatch n'est pas tiré au hasard à chaque itération (th.randint dans la boucle).")
    got2 = number_list(call("apprendre_mb", fn, model, X, Y, 0.0, 20, 2),
                       "la liste renvoyée par apprendre_mb", 20)
    pairs = np.array([(a + b) / 2 for a, b in itertools.combinations_with_replacement(singles, 2)])
    if not _in(got2, pairs):
        fail("avec mb = 2, chaque coût doit être la moyenne des coûts de 2 exemples : le minibatch "
             "contient-il bien mb exemples ?")
    # it learns: the full cost goes down after a few hundred small minibatch steps
    Xs = g.randn(60, 2)
    Ys = torch.eye(3, dtype=torch.float64)[torch.argmax(Xs @ torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]],
                                                                             dtype=torch.float64), dim=1)]
    model2 = _model(ns, g, 2, 16, 3)
    with torch.no_grad():
        before = float(ref.cout(Ys, ref.mlp_forward(Xs, *_layers_now(model2))))
    number_list(call("apprendre_mb", fn, model2, Xs, Ys, 0.5, 300, 10), "la liste renvoyée par apprendre_mb", 300)
    with torch.no_grad():
        after = float(ref.cout(Ys, ref.mlp_forward(Xs, *_layers_now(model2))))
    if not under(after, 0.8 * before):  # the reference gets below 0.18 × before for 200 seeds of inputs
        fail(f"`apprendre_mb` n'apprend pas : coût sur toute la base {before:.3g} → {after:.3g} après 300 "
             "itérations (optimiseur sur modele.parameters(), .step() et .zero_grad() à chaque itération ?).")


@repair("j3_minibatch")
def repair_j3_minibatch(ns):
    ns.run(APPRENDRE_MB)


def _model_accuracy(ns, name, X, labels, d, h, p, hidden=False) -> float:
    """Accuracy of the student's network `name` on (X, labels); `hidden`: the examples are a hidden
    evaluation set, so an error the network raises is reported without its message."""
    model = get(ns, name, "réseau appris")
    if not _is_module(model):
        fail(f"`{name}` doit être le réseau MLP(d, nb_hidden, p) appris.")
    c1, c2 = _linear_layers(model)
    if (c1.in_features, c1.out_features, c2.out_features) != (d, h, p):
        fail(f"`{name}` doit être un MLP({d}, {h}, {p}).")
    if hidden:
        out = _hidden_call(name, lambda: model(X))
    else:
        with torch.no_grad():
            out = student_call(name, lambda: model(X))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (X.shape[0], p):
        fail(f"`{name}` ne renvoie pas une sortie de taille (nombre d'exemples, p).")
    return ref.accuracy(out.to(torch.float64), labels)


@check("j3_pima")
def check_j3_pima(ns):
    _check_asked_values(ns, (("nb_hidden", NB_HIDDEN), ("mb", MB)))
    ddof = _pima_ddof(ns)
    R, D, (Xh, yh) = pima_tensors(ddof), data()["pima"], pima_hidden(ddof)
    for loss_name, model_name, rate, niter, minimum in (
            ("lst_loss_mlp", "mlp", "taux_test_mlp", 200, PIMA_MLP_TEST_ACC_MIN),
            ("lst_loss_mb", "mlp_mb", "taux_test_mb", 1000, PIMA_MB_TEST_ACC_MIN)):
        losses = number_list(get(ns, loss_name), loss_name, niter)
        k = max(1, niter // 10)
        if not np.mean(losses[-k:]) < np.mean(losses[:k]):
            fail(f"`{loss_name}` ne décroît pas : le réseau n'apprend pas.")
        acc = _model_accuracy(ns, model_name, R["Xt"], D["yt"], 7, NB_HIDDEN, 2)
        _student_rate(ns, rate, acc)
        if not at_least(acc, minimum):
            fail(f"taux de bonne reconnaissance en test de `{model_name}` {acc:.3f} < {minimum} "
                 "(toujours répondre « pas de diabète » donne déjà 0.672).")
        acc = _model_accuracy(ns, model_name, Xh, yh, 7, NB_HIDDEN, 2, hidden=True)
        if not at_least(acc, PIMA_HIDDEN_ACC_MIN):
            fail(f"taux de bonne reconnaissance de `{model_name}` sur des patientes de test cachées "
                 f"{acc:.3f} < {PIMA_HIDDEN_ACC_MIN} (toujours répondre « pas de diabète » y donne "
                 f"{PIMA_HIDDEN_MAJORITY}).")
    if RX.active(ns):  # trusted grading: the cell run again once, both networks watched
        sizes = (7, NB_HIDDEN, 2)
        st = RX.draw_state(ns, RX.KEYS["r3_pima"], R["X"], R["Y"], D["x"], D["y"], RX.PIMA_SUBSET)
        run = RX.rerun(ns, "r3_pima", st, keep=("lst_loss_mlp", "lst_loss_mb"), watch=("mlp", "mlp_mb"), probe=True)
        RX.judge_network(run.networks["mlp"], st, "lst_loss_mlp", "mlp", sizes, PIMA_MLP_STEP, PIMA_MLP_NITER)
        RX.judge_minibatch(run.networks["mlp_mb"], st, "lst_loss_mb", "mlp_mb", sizes, PIMA_MB_STEP, MB, Xt=R["Xt"])
