"""Mistakes of the worked example's catalogue: each must cost its own question only (`loses`), with
the French diagnostic `message` in that question's feedback. An entry is a change to the perfect
submission, {answer cell's grade id: [(old text, new text)]} (:mod:`tpkit.catalogue.entries`)."""
from tpkit.catalogue.entries import mistake

SOFTMAX_ANSWER = ("    E = th.exp(Z - Z.max(dim=1, keepdim=True).values)\n"
                  "    return E / E.sum(dim=1, keepdim=True)")
ZERO_GRAD_LINES = "        W.grad.zero_()\n        B.grad.zero_()\n"
STEP_LINES = "            W -= pas * W.grad\n            B -= pas * B.grad"

MISTAKES = [
    # ------------------------------------------------------------ 1. softmax and cost
    mistake("softmax_colonnes", "softmax normalisée sur les colonnes (dim=0) au lieu des lignes",
            {"r1_softmax": [(SOFTMAX_ANSWER, "    E = th.exp(Z - Z.max(dim=0, keepdim=True).values)\n"
                                       "    return E / E.sum(dim=0, keepdim=True)")]},
            loses="e1_softmax", message="mauvais axe"),
    mistake("softmax_instable", "softmax sans retirer le maximum de chaque ligne : exp(1000) déborde",
            {"r1_softmax": [(SOFTMAX_ANSWER, "    E = th.exp(Z)\n    return E / E.sum(dim=1, keepdim=True)")]},
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
            {"r2_descente": [(ZERO_GRAD_LINES, "")]},
            loses="e2_descente", message="les gradients s'accumulent"),
    mistake("descente_mauvais_sens", "pas fait dans le sens du gradient (+=)",
            {"r2_descente": [(STEP_LINES, "            W += pas * W.grad\n            B += pas * B.grad")]},
            loses="e2_descente", message="le coût augmente"),
    mistake("descente_variables_globales", "descente calcule le coût sur les X, Y globaux au lieu de ses arguments",
            {"r2_descente": [("        loss = cout(Y, softmax(X @ W + B))",
                              "        loss = cout(globals()[\"Y\"], softmax(globals()[\"X\"] @ W + B))")]},
            loses="e2_descente", message="utilise-t-elle ses arguments"),
]
