"""Catalogue of the worked example `tp_exemple`: realistic mistakes (each must cost its own question
only, with the French diagnostic named in `message`) and valid variants (each must get full marks).
An entry is a change to the perfect submission: {answer cell's grade id: [(old text, new text)]}
(:mod:`tpkit.catalogue.entries`)."""
from tpkit.catalogue.entries import mistake, variant

EXPERIMENT_CELLS = ()              # no ungraded experiment cell in this notebook
SEEDED_CELLS = ("setup",)          # the cells with seed lines (the flakiness audit replaces each seed)

_SOFTMAX = ("    E = th.exp(Z - Z.max(dim=1, keepdim=True).values)\n"
            "    return E / E.sum(dim=1, keepdim=True)")
_ZERO = "        W.grad.zero_()\n        B.grad.zero_()\n"
_STEP = "            W -= pas * W.grad\n            B -= pas * B.grad"

MISTAKES = [
    # ------------------------------------------------------------ 1. softmax and cost
    mistake("softmax_colonnes", "softmax normalisée sur les colonnes (dim=0) au lieu des lignes",
            {"r1_softmax": [(_SOFTMAX, "    E = th.exp(Z - Z.max(dim=0, keepdim=True).values)\n"
                                       "    return E / E.sum(dim=0, keepdim=True)")]},
            loses="e1_softmax", message="mauvais axe"),
    mistake("softmax_instable", "softmax sans retirer le maximum de chaque ligne : exp(1000) déborde",
            {"r1_softmax": [(_SOFTMAX, "    E = th.exp(Z)\n    return E / E.sum(dim=1, keepdim=True)")]},
            loses="e1_softmax", message="instable numériquement"),
    mistake("softmax_max_global", "maximum de toute la matrice retiré au lieu de celui de chaque ligne",
            {"r1_softmax": [("Z.max(dim=1, keepdim=True).values", "Z.max()")]},
            loses="e1_softmax", message="son propre maximum"),
    mistake("cout_somme", "coût sommé sur les exemples au lieu d'être moyenné",
            {"r1_cout": [("-th.mean(th.sum(", "-th.sum(th.sum(")]},
            loses="e1_cout", message="la somme et non la moyenne"),
    mistake("cout_sans_signe", "signe moins oublié dans le coût",
            {"r1_cout": [("return -th.mean(", "return th.mean(")]},
            loses="e1_cout", message="signe moins"),
    # ------------------------------------------------------------ 2. gradient descent
    mistake("descente_gradients_accumules", "gradients jamais remis à zéro dans la boucle",
            {"r2_descente": [(_ZERO, "")]},
            loses="e2_descente", message="les gradients s'accumulent"),
    mistake("descente_mauvais_sens", "pas fait dans le sens du gradient (+=)",
            {"r2_descente": [(_STEP, "            W += pas * W.grad\n            B += pas * B.grad")]},
            loses="e2_descente", message="le coût augmente"),
    mistake("descente_variables_globales", "descente calcule le coût sur les X, Y globaux au lieu de ses arguments",
            {"r2_descente": [("        loss = cout(Y, softmax(X @ W + B))",
                              "        loss = cout(globals()[\"Y\"], softmax(globals()[\"X\"] @ W + B))")]},
            loses="e2_descente", message="utilise-t-elle ses arguments"),
]

VARIANTS = [
    variant("softmax_torch", "softmax de torch (th.softmax sur dim=1)",
            {"r1_softmax": [(_SOFTMAX, "    return th.softmax(Z, dim=1)")]}),
    variant("cout_clamp", "log(clamp(Ŷ, 1e-16)) au lieu de log(Ŷ + 1e-16), et somme / n",
            {"r1_cout": [("return -th.mean(th.sum(Y * th.log(Yhat + 1e-16), dim=1))",
                          "return -th.sum(Y * th.log(th.clamp(Yhat, min=1e-16))) / Y.shape[0]")]}),
    variant("descente_optim_sgd", "descente écrite avec th.optim.SGD",
            {"r2_descente": [("    lst_loss = []\n", "    lst_loss = []\n    optimiseur = th.optim.SGD([W, B], lr=pas)\n"),
                             ("        loss.backward()\n        with th.no_grad():\n" + _STEP + "\n" + _ZERO,
                              "        loss.backward()\n        optimiseur.step()\n        optimiseur.zero_grad()\n")]}),
]
