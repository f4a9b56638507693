"""Hidden checks of tp_pima_jouet, Pima data (see the package's docstring)."""
from __future__ import annotations

import numpy as np
import torch

from tpkit.assignments.tp_pima_jouet.reference import (ONE_HOT, STANDARDISER, _array, _labels, _pima_ddof, _same, data, one_hot, pima_tensors, standardise)
from tpkit.checks.common import (draws as _draws, gen as _gen)
from tpkit.checks.registry import (check, repair)
from tpkit.checks.tools import (require_loaded_arrays, call, fail, get, require_number, require_tensor)


# ---------------------------------------------------------------- section 1: Pima data
@check("j1_chargement")
def check_j1_chargement(ns):
    D = data()["pima"]
    require_loaded_arrays(ns, {name: D[name] for name in ("x", "y", "xt", "yt")}, "pima.npz")
    for name, good, meaning in (("n", 200, "nombre d'exemples d'apprentissage"),
                                ("d", 7, "nombre de variables"), ("p", 2, "nombre de classes")):
        value = require_number(get(ns, name), name)
        if value != good:
            fail(f"`{name}` ({meaning}) vaut {value:g} au lieu de {good}.")


@repair("j1_chargement")
def repair_j1_chargement(ns):
    D = data()["pima"]
    ns.update({k: v.copy() for k, v in D.items()}, n=200, d=7, p=2)


def _standardised_pair(out, shapes):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        fail("`standardiser` doit renvoyer le couple (x_app_std, x_test_std).")
    pair = [_array(v, "standardiser(...)") for v in out]
    for v, shape, what in zip(pair, shapes, ("x_app_std", "x_test_std")):
        if v.shape != shape:
            fail(f"`{what}` a la taille {v.shape} au lieu de {shape} : standardisez chaque colonne.")
    return pair


@check("j1_standardisation")
def check_j1_standardisation(ns):
    fn = get(ns, "standardiser", "fonction standardiser(x_app, x_test)")
    for g in _draws(ns, 11):
        _judge_standardiser(fn, g)
    D = data()["pima"]
    xs, xts = _array(get(ns, "xs"), "xs"), _array(get(ns, "xts"), "xts")
    if not any(_same(xs, r[0]) and _same(xts, r[1]) for r in
               (standardise(D["x"], D["xt"], k) for k in (0, 1))):
        fail("`xs, xts` doivent être standardiser(x, xt) : les données de Pima standardisées.")


def _judge_standardiser(fn, g):
    scales = torch.tensor([1.0, 50.0, 0.1, 10.0], dtype=torch.float64)
    offsets = torch.tensor([5.0, -100.0, 0.3, 40.0], dtype=torch.float64)
    A = (g.randn(40, 4) * scales + offsets).numpy()
    Tt = (g.randn(25, 4) * scales * 1.5 + offsets + 2 * scales).numpy()
    a, t = _standardised_pair(call("standardiser", fn, A, Tt), (A.shape, Tt.shape))
    ddof = next((k for k in (0, 1) if _same(a, standardise(A, Tt, k)[0])), None)
    if ddof is None:
        if _same(a, A):
            fail("`x_app_std` n'est pas standardisé : retirez la moyenne de chaque colonne et divisez "
                 "par son écart-type.")
        if _same(a, (A - A.mean(1, keepdims=True)) / A.std(1, keepdims=True)):
            fail("moyenne et écart-type calculés sur les lignes (axis=1) au lieu des colonnes (axis=0).")
        both = np.vstack([A, Tt])
        if _same(a, (A - both.mean(0)) / both.std(0)):
            fail("moyenne et écart-type calculés sur apprentissage + test : n'utilisez que les "
                 "données d'apprentissage.")
        means, stds = a.mean(axis=0), a.std(axis=0)
        if np.allclose(means, 0, atol=1e-8) and not np.allclose(stds, 1, atol=0.02):
            fail(f"les colonnes de `x_app_std` sont centrées mais leurs écarts-types valent {np.round(stds, 3)} "
                 "au lieu de 1 : divisez par l'écart-type.")
        if np.allclose(stds, 1, atol=0.02) and not np.allclose(means, 0, atol=1e-8):
            fail("les colonnes de `x_app_std` ne sont pas centrées (moyenne non nulle) : retirez la moyenne.")
        fail("`standardiser` ne renvoie pas (x_app − moyenne) / écart-type pour chaque colonne de x_app.")
    good_t = standardise(A, Tt, ddof)[1]
    if not _same(t, good_t):
        if _same(t, standardise(Tt, Tt, ddof)[0]):
            fail("les données de test sont standardisées avec leurs propres moyenne et écart-type : "
                 "utilisez ceux des données d'apprentissage.")
        if _same(t, Tt):
            fail("`x_test_std` n'est pas transformé : appliquez-lui la moyenne et l'écart-type "
                 "de l'apprentissage.")
        fail("`x_test_std` doit être (x_test − moyenne d'apprentissage) / écart-type d'apprentissage.")


@repair("j1_standardisation")
def repair_j1_standardisation(ns):
    D = data()["pima"]
    xs, xts = standardise(D["x"], D["xt"])
    ns.run(STANDARDISER)
    ns.update(xs=xs, xts=xts)


@check("j1_onehot")
def check_j1_onehot(ns):
    fn = get(ns, "one_hot", "fonction one_hot(y, p)")
    g = _gen(ns, 12)
    for m, p, present in ((9, 2, 2), (7, 3, 3), (8, 5, 4)):
        labels = _labels(g, m, present).numpy().astype(np.int64)
        out = _array(call("one_hot", fn, labels, p), "one_hot(y, p)")
        if out.shape != (m, p):
            hint = " (transposée ?)" if out.shape == (p, m) else ""
            if present < p and out.shape == (m, present):
                hint = " : il faut p colonnes même si une classe n'apparaît pas dans y"
            fail(f"one_hot(y, {p}) a la taille {out.shape} au lieu de ({m}, {p}){hint}.")
        if not np.all((out == 0) | (out == 1)) or not np.all(out.sum(axis=1) == 1):
            fail("one_hot(y, p) doit contenir exactement un 1 par ligne et des 0 ailleurs.")
        if not np.array_equal(out, one_hot(labels, p)):
            fail("one_hot(y, p) : le 1 de chaque ligne doit être dans la colonne de la classe y[i].")
    xs, xts = get(ns, "xs"), get(ns, "xts")
    D = data()["pima"]
    for name, source, raw in (("X", xs, D["x"]), ("Xt", xts, D["xt"])):
        t = require_tensor(get(ns, name), name)
        if t.dtype != torch.float64:
            fail(f"`{name}` est de type {t.dtype} : gardez la double précision (float64).")
        got = t.detach().numpy()
        if _same(got, raw):
            fail(f"`{name}` contient les données brutes : construisez-le à partir des données "
                 f"standardisées {'xs' if name == 'X' else 'xts'}.")
        if not _same(got, _array(source, "xs"), rtol=0, atol=0):
            fail(f"`{name}` doit être le tenseur de {'xs' if name == 'X' else 'xts'} (th.tensor).")
    for name, labels in (("Y", D["y"]), ("Yt", D["yt"])):
        t = require_tensor(get(ns, name), name)
        if t.dtype.is_complex or t.dtype == torch.bool:
            fail(f"`{name}` doit être un tenseur de nombres (float64).")
        if not _same(t.detach().to(torch.float64).numpy(), one_hot(labels, 2), rtol=0, atol=0):
            fail(f"`{name}` doit être one_hot({'y' if name == 'Y' else 'yt'}, p) converti en tenseur.")


@repair("j1_onehot")
def repair_j1_onehot(ns):
    ns.run(ONE_HOT)
    ddof = _pima_ddof(ns)
    xs, xts = standardise(data()["pima"]["x"], data()["pima"]["xt"], ddof)
    T_ = pima_tensors(ddof)
    ns.update(X=torch.tensor(xs), Xt=torch.tensor(xts), Y=T_["Y"], Yt=T_["Yt"])
