"""Hidden checks of section 1: data of tp_reseaux_neurones (one check, and its repair, per
graded question)."""
from __future__ import annotations


import numpy as np
import torch

from tpkit.assignments.tp_reseaux_neurones import reference as ref
from tpkit.checks.tools import (close, fail, get, require_loaded_arrays, require_number, require_tensor)
from tpkit.checks.registry import check, repair


@check("q1_chargement")
def check_q1_chargement(ns):
    D = ref.data()
    require_loaded_arrays(ns, {"x": D["x"], "xt": D["xt"], "y": D["y_raw"], "yt": D["yt_raw"]},
                          "digitz.npz")


@repair("q1_chargement")
def repair_q1_chargement(ns):
    D = ref.data()
    ns.update(x=D["x"].copy(), xt=D["xt"].copy(), y=D["y_raw"].copy(), yt=D["yt_raw"].copy())


@check("q1_etiquettes")
def check_q1_etiquettes(ns):
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
def repair_q1_etiquettes(ns):
    ns.update(y=ref.data()["y"].copy(), yt=ref.data()["yt"].copy())


@check("q1_dimensions")
def check_q1_dimensions(ns):
    D = ref.data()
    for name, meaning in (("n", "nombre d'exemples d'apprentissage"),
                          ("d", "nombre de variables"), ("p", "nombre de classes")):
        value = require_number(get(ns, name), name)
        if value != D[name]:
            fail(f"`{name}` ({meaning}) vaut {value:g} au lieu de {D[name]}.")


@repair("q1_dimensions")
def repair_q1_dimensions(ns):
    D = ref.data()
    ns.update(n=D["n"], d=D["d"], p=D["p"])


@check("q1_onehot")
def check_q1_onehot(ns):
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
def repair_q1_onehot(ns):
    ns.update(Y=ref.data()["Y"].copy(), Yt=ref.data()["Yt"].copy())


@check("q1_tenseurs")
def check_q1_tenseurs(ns):
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
def repair_q1_tenseurs(ns):
    ns.update(ref.tensors())
