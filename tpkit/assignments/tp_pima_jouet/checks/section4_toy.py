"""Hidden checks of tp_pima_jouet, 2-D toy data (see the package's docstring)."""
from __future__ import annotations

import numpy as np
import torch

from tpkit.assignments.tp_pima_jouet import reexec as RX
from tpkit.assignments.tp_pima_jouet.thresholds import (TOY_MLP_TEST_ACC_MIN)
from tpkit.assignments.tp_pima_jouet.checks.section3_mlp import (_model_accuracy)
from tpkit.assignments.tp_pima_jouet.reference import (TOY_HIDDEN, TOY_LIN_NITER, TOY_LIN_STEP, TOY_MLP_NITER, TOY_MLP_STEP, _array, _same, data, hidden_data, one_hot)
from tpkit.checks import reference as ref
from tpkit.checks.common import (is_module as _is_module, student_rate as _student_rate)
from tpkit.checks.registry import (check, repair)
from tpkit.checks.tools import (as_float64, at_least, fail, finite_tensor, get, number_list, require_number, require_shape, require_tensor, student_call, within)


# ---------------------------------------------------------------- section 4: 2-D toy data
@check("j4_donnees")
def check_j4_donnees(ns):
    D = data()["toy"]
    for name, key in (("x2", "x"), ("y2", "y"), ("xt2", "xt"), ("yt2", "yt")):
        value = get(ns, name)
        arr = value.detach().numpy() if isinstance(value, torch.Tensor) else value
        if not isinstance(arr, np.ndarray) or arr.shape != D[key].shape or not np.array_equal(arr, D[key]):
            fail(f"`{name}` ne correspond pas au tableau '{key}' de toy2d.npz.")
    if require_number(get(ns, "p2"), "p2") != 3:
        fail("`p2` (nombre de classes des données jouet) doit valoir 3.")
    for name, good in (("X2", D["x"]), ("Xt2", D["xt"]), ("Y2", one_hot(D["y"], 3)), ("Yt2", one_hot(D["yt"], 3))):
        t = require_tensor(get(ns, name), name)
        if t.dtype != torch.float64:
            fail(f"`{name}` est de type {t.dtype} : gardez la double précision (float64).")
        if not _same(t.detach().numpy(), good, rtol=0, atol=0):
            what = "les coordonnées" if name in ("X2", "Xt2") else "one_hot des étiquettes (p2 = 3)"
            fail(f"`{name}` doit contenir {what} converties en tenseur.")


@repair("j4_donnees")
def repair_j4_donnees(ns):
    D = data()["toy"]
    ns.update(x2=D["x"].copy(), y2=D["y"].copy(), xt2=D["xt"].copy(), yt2=D["yt"].copy(), p2=3,
              X2=torch.tensor(D["x"]), Xt2=torch.tensor(D["xt"]), Y2=torch.tensor(one_hot(D["y"], 3)),
              Yt2=torch.tensor(one_hot(D["yt"], 3)))


@check("j4_jouet")
def check_j4_jouet(ns):
    D = data()["toy"]
    X, Y, Xt = torch.tensor(D["x"]), torch.tensor(one_hot(D["y"], 3)), torch.tensor(D["xt"])
    W, B = finite_tensor(ns, "W_j"), finite_tensor(ns, "B_j")
    require_shape(W, (2, 3), "W_j")
    require_shape(B, (1, 3), "B_j")
    losses = number_list(get(ns, "lst_loss_lin_j"), "lst_loss_lin_j", 200)
    with torch.no_grad():
        Wd, Bd = as_float64(W, "W_j"), as_float64(B, "B_j")
        final = float(ref.cout(Y, ref.pred(X, Wd, Bd)))
        acc_lin = ref.accuracy(ref.pred(Xt, Wd, Bd), D["yt"])
    if not (losses[-1] < losses[0] and within(final - losses[-1], 1e-9)):
        fail("`W_j`, `B_j` doivent être appris par descente_sgd (le coût `lst_loss_lin_j` doit décroître).")
    _student_rate(ns, "taux_test_lin_j", acc_lin)
    losses = number_list(get(ns, "lst_loss_mlp_j"), "lst_loss_mlp_j", 500)
    if not losses[-1] < losses[0]:
        fail("`lst_loss_mlp_j` ne décroît pas : le réseau n'apprend pas.")
    _student_rate(ns, "taux_test_mlp_j", _model_accuracy(ns, "mlp_j", Xt, D["yt"], 2, 100, 3))
    xh, yh = hidden_data()["toy"]
    acc = _model_accuracy(ns, "mlp_j", torch.tensor(xh), yh, 2, 100, 3, hidden=True)
    if not at_least(acc, TOY_MLP_TEST_ACC_MIN):
        fail(f"taux de bonne reconnaissance du réseau sur des points de test cachés {acc:.3f} < {TOY_MLP_TEST_ACC_MIN} "
             "sur les données jouet (step = 1, niter = 500 ?).")
    if RX.active(ns):  # trusted grading: the cell run again on other training points, other seeds
        st = RX.draw_state(ns, RX.KEYS["r4_jouet"], X, Y, D["x"], D["y"], RX.TOY_SUBSET,
                           names=("X2", "Y2", "x2", "y2"), n_name=None)
        run = RX.rerun(ns, "r4_jouet", st, keep=("lst_loss_lin_j", "W_j", "B_j", "lst_loss_mlp_j"),
                       initial=("W_j", "B_j"), watch="mlp_j")
        RX.judge_linear(run, st, ("lst_loss_lin_j", "W_j", "B_j"), TOY_LIN_STEP, TOY_LIN_NITER)
        RX.judge_network(run, st, "lst_loss_mlp_j", "mlp_j", (2, TOY_HIDDEN, 3), TOY_MLP_STEP, TOY_MLP_NITER)


def _classes(value, name, shape) -> np.ndarray:
    arr = _array(value, name)
    if arr.shape != shape:
        fail(f"`{name}` a la taille {arr.shape} au lieu de celle de la grille xx {shape} "
             "(reshape(xx.shape) ?).")
    if not np.all(arr == np.round(arr)):
        fail(f"`{name}` doit contenir des classes (np.argmax des prédictions), pas des probabilités.")
    return arr


def _agree(a, b) -> bool:
    return a.shape == b.shape and at_least(float(np.mean(a == b)), 0.999)


@check("j4_regions")
def check_j4_regions(ns):
    xx, yy = _array(get(ns, "xx"), "xx"), _array(get(ns, "yy"), "yy")
    if xx.ndim != 2 or xx.shape != yy.shape or min(xx.shape) < 20:
        fail("`xx, yy` doivent être la grille de np.meshgrid (deux tableaux 2D de même taille, "
             "au moins 20 valeurs par axe).")
    if not (xx.min() <= -1 and xx.max() >= 1 and yy.min() <= -1 and yy.max() >= 1):
        fail("la grille `xx, yy` doit couvrir les données (le carré [−1.2, 1.2]²).")
    z_lin = _classes(get(ns, "Z_lin"), "Z_lin", xx.shape)
    z_mlp = _classes(get(ns, "Z_mlp"), "Z_mlp", xx.shape)
    grid = torch.tensor(np.column_stack([xx.ravel(), yy.ravel()]))
    W, B = finite_tensor(ns, "W_j"), finite_tensor(ns, "B_j")
    with torch.no_grad():
        lin = torch.argmax(ref.pred(grid, as_float64(W, "W_j"), as_float64(B, "B_j")), dim=1).numpy().reshape(xx.shape)
    model = get(ns, "mlp_j", "réseau des données jouet")
    if not _is_module(model):
        fail("`mlp_j` doit être le réseau appris sur les données jouet.")
    out = student_call("mlp_j", lambda: model(grid))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (grid.shape[0], 3):
        fail("`mlp_j` ne renvoie pas une sortie de taille (nombre de points, 3) sur la grille.")
    mlp = torch.argmax(out.detach(), dim=1).numpy().reshape(xx.shape)
    for name, got, good, other in (("Z_lin", z_lin, lin, mlp), ("Z_mlp", z_mlp, mlp, lin)):
        if _agree(got, good):
            continue
        if _agree(got.T, good):
            fail(f"`{name}` est transposé par rapport à la grille : calculez les prédictions sur "
                 "np.column_stack([xx.ravel(), yy.ravel()]) puis reshape(xx.shape).")
        if _agree(got, other):
            fail(f"`{name}` montre les classes de l'autre modèle : Z_lin vient de (W_j, B_j), Z_mlp de mlp_j.")
        fail(f"`{name}` ne contient pas les classes prédites par le modèle aux points de la grille (xx, yy).")
    panels = [sum(1 for ax in fig if ax["areas"] > 0) for fig in ns.figure_axes()]
    if not any(k >= 2 for k in panels):
        fail("aucune figure à deux panneaux ne montre les régions de décision : "
             "fig, axes = pl.subplots(1, 2), puis axes[0].contourf(xx, yy, Z_lin) et axes[1].contourf(xx, yy, Z_mlp).")
