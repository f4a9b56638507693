"""Catalogue of assignment 2, `tp_pima_jouet`: realistic mistakes (each must cost its own question
only, with a French diagnostic) and valid variants (each must get full marks).

    python -m tpkit.catalogue --assignment tp_pima_jouet
"""
from tpkit.catalogue.entries import mistake

A = "tp_pima_jouet"

_LOAD = 'x, y, xt, yt = donnees["x"], donnees["y"], donnees["xt"], donnees["yt"]'
_STD_RETURN = "    return (x_app - moyenne) / ecart_type, (x_test - moyenne) / ecart_type"
_ZERO = "            W.grad.zero_()\n            B.grad.zero_()"
_STEP = "            W -= step * W.grad\n            B -= step * B.grad"
_SGD_LOOP = ("        loss = cout(Y, pred(X, W, B))\n        lst_loss.append(loss.item())\n        loss.backward()\n"
             "        optimiseur.step()\n        optimiseur.zero_grad()")
_MLP_INIT = ("        self.c1 = th.nn.Linear(d, nb_hidden).double()\n"
             "        self.c2 = th.nn.Linear(nb_hidden, p).double()")
_MLP_FORWARD = "        return th.softmax(self.c2(th.relu(self.c1(x))), dim=1)"
_LOOP_APP = ("        loss = cout(Y, modele(X))\n        lst_loss.append(loss.item())\n        loss.backward()\n"
             "        optimiseur.step()\n        optimiseur.zero_grad()")
_DRAW = "        idx = th.randint(len(X), (mb,))\n"
_Z_MLP = "Z_mlp = np.argmax(mlp_j(grille).detach().numpy(), axis=1).reshape(xx.shape)"
_PLOT = """fig, axes = pl.subplots(1, 2, figsize=(10, 4.5))
for ax, Z, titre in zip(axes, (Z_lin, Z_mlp), ("régression softmax", "réseau à deux couches")):
    ax.contourf(xx, yy, Z, levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.3, cmap="brg")
    ax.scatter(x2[:, 0], x2[:, 1], c=y2, s=8, cmap="brg")
    ax.set_title(titre)"""

MISTAKES = [
    # ------------------------------------------------------------ 1. Pima data
    mistake("chargement_x_xt_inverses", "x et xt (apprentissage et test) inversés au chargement",
            {"r1_chargement": [(_LOAD, 'x, y, xt, yt = donnees["xt"], donnees["yt"], donnees["x"], donnees["y"]')]},
            loses="j1_chargement", message="ne correspond pas au tableau"),
    mistake("chargement_p_en_dur", "nombre de classes p écrit en dur (3, comme dans le TP principal)",
            {"r1_chargement": [("p = len(np.unique(y))", "p = 3")]},
            loses="j1_chargement", message="`p` (nombre de classes) vaut 3"),
    mistake("standardisation_test_propres_stats",
            "données de test standardisées avec leurs propres moyenne et écart-type",
            {"r1_standardisation": [(_STD_RETURN, "    return (x_app - moyenne) / ecart_type, "
                                                  "(x_test - x_test.mean(axis=0)) / x_test.std(axis=0)")]},
            loses="j1_standardisation", message="leurs propres moyenne et écart-type"),
    mistake("standardisation_globale", "moyenne et écart-type calculés sur apprentissage + test",
            {"r1_standardisation": [("    moyenne = x_app.mean(axis=0)\n    ecart_type = x_app.std(axis=0)",
                                     "    tout = np.vstack([x_app, x_test])\n    moyenne = tout.mean(axis=0)\n"
                                     "    ecart_type = tout.std(axis=0)")]},
            loses="j1_standardisation", message="apprentissage + test"),
    mistake("standardisation_lignes", "statistiques calculées sur les lignes (axis=1)",
            {"r1_standardisation": [(_STD_RETURN,
                                     "    return ((x_app - x_app.mean(axis=1, keepdims=True)) / x_app.std(axis=1, keepdims=True),\n"
                                     "            (x_test - x_test.mean(axis=1, keepdims=True)) / x_test.std(axis=1, keepdims=True))")]},
            loses="j1_standardisation", message="sur les lignes (axis=1)"),
    mistake("standardisation_sans_reduction", "variables centrées mais pas divisées par l'écart-type",
            {"r1_standardisation": [(_STD_RETURN, "    return x_app - moyenne, x_test - moyenne")]},
            loses="j1_standardisation", message="divisez par l'écart-type"),
    mistake("tenseurs_donnees_brutes", "X et Xt construits à partir des données brutes x, xt (non standardisées)",
            {"r1_onehot": [("X, Xt = th.tensor(xs), th.tensor(xts)", "X, Xt = th.tensor(x), th.tensor(xt)")]},
            loses="j1_onehot", message="contient les données brutes"),
    mistake("onehot_deux_classes_en_dur", "one_hot écrite pour 2 classes seulement",
            {"r1_onehot": [("    Y = np.zeros((len(y), p))", "    Y = np.zeros((len(y), 2))")]},
            loses="j1_onehot", message="a levé une erreur"),
    mistake("onehot_eye_max", "one_hot avec np.eye(y.max() + 1) : une colonne de moins quand la dernière classe manque",
            {"r1_onehot": [("    Y = np.zeros((len(y), p))\n    Y[np.arange(len(y)), y] = 1\n    return Y",
                            "    return np.eye(y.max() + 1)[y]")]},
            loses="j1_onehot", message="même si une classe n'apparaît pas"),
    mistake("onehot_n_global", "one_hot utilise n (variable globale) au lieu de len(y)",
            {"r1_onehot": [("    Y = np.zeros((len(y), p))", "    Y = np.zeros((n, p))")]},
            loses="j1_onehot", message="au lieu de (9, 2)"),

    # ------------------------------------------------------------ 2. softmax regression
    mistake("pred_sans_biais", "biais B oublié dans pred",
            {"r2_pred": [("th.mm(X, W) + B", "th.mm(X, W)")]},
            loses="j2_pred", message="n'ajoute pas le biais"),
    mistake("pred_softmax_axe0", "softmax sur les colonnes (dim=0)",
            {"r2_pred": [("dim=1", "dim=0")]},
            loses="j2_pred", message="mauvais axe"),
    mistake("cout_somme", "coût sommé au lieu d'être moyenné sur les exemples",
            {"r2_cout": [("-th.mean(th.sum(", "-th.sum(th.sum(")]},
            loses="j2_cout", message="la somme et non la moyenne"),
    mistake("cout_sans_epsilon", "1e-16 oublié dans le log",
            {"r2_cout": [("th.log(Yhat + 1e-16)", "th.log(Yhat)")]},
            loses="j2_cout", message="0 exact"),
    mistake("initialisation_sans_requires_grad", "W créé sans requires_grad=True",
            {"r2_initialisation": [("np.random.randn(d, p) * 0.01, requires_grad=True)", "np.random.randn(d, p) * 0.01)")]},
            loses="j2_initialisation", message="requires_grad=True"),
    mistake("initialisation_B_float32", "B créé en float32 (dtype oublié)",
            {"r2_initialisation": [("th.zeros(1, p, dtype=th.float64, requires_grad=True)",
                                    "th.zeros(1, p, requires_grad=True)")]},
            loses="j2_initialisation", message="float64"),
    mistake("descente_sans_remise_a_zero", "gradients jamais remis à zéro dans la descente manuelle",
            {"r2_descente": [(_ZERO, "            pass")]},
            loses="j2_descente", message="s'accumulent"),
    mistake("descente_signe_plus", "pas de gradient dans le mauvais sens (+=)",
            {"r2_descente": [(_STEP, "            W += step * W.grad\n            B += step * B.grad")]},
            loses="j2_descente", message="le coût augmente"),
    mistake("descente_pas_en_dur", "pas de gradient écrit en dur (step ignoré)",
            {"r2_descente": [(_STEP, "            W -= W.grad\n            B -= B.grad")]},
            loses="j2_descente", message="n'utilise pas le pas"),
    mistake("pima_taux_sur_apprentissage", "taux_test calculé sur les données d'apprentissage",
            {"r2_pima_lineaire": [("pred(Xt, W, B).detach().numpy(), axis=1) == yt",
                                   "pred(X, W, B).detach().numpy(), axis=1) == y")]},
            loses="j2_pima_lineaire", message="alors que les paramètres appris donnent"),
    mistake("sgd_sans_zero_grad", "optimiseur.zero_grad() oublié",
            {"r2_sgd": [("        optimiseur.step()\n        optimiseur.zero_grad()", "        optimiseur.step()")]},
            loses="j2_sgd", message="s'accumulent"),
    mistake("sgd_sur_W_seul", "optimiseur SGD sur W seulement (B n'est jamais appris)",
            {"r2_sgd": [("th.optim.SGD([W, B], lr=step)", "th.optim.SGD([W], lr=step)")]},
            loses="j2_sgd", message="ne suit pas une descente de gradient"),

    # ------------------------------------------------------------ 3. two-layer network
    mistake("mlp_sans_relu", "forward sans ReLU",
            {"r3_mlp": [(_MLP_FORWARD, "        return th.softmax(self.c2(self.c1(x)), dim=1)")]},
            loses="j3_mlp", message="n'applique pas la ReLU"),
    mistake("mlp_sortie_en_dur", "seconde couche écrite pour 2 classes (p ignoré)",
            {"r3_mlp": [("th.nn.Linear(nb_hidden, p)", "th.nn.Linear(nb_hidden, 2)")]},
            loses="j3_mlp", message="au lieu de d → nb_hidden et nb_hidden → p"),
    mistake("mlp_float32", ".double() oublié sur les couches",
            {"r3_mlp": [(_MLP_INIT, "        self.c1 = th.nn.Linear(d, nb_hidden)\n"
                                    "        self.c2 = th.nn.Linear(nb_hidden, p)")]},
            loses="j3_mlp", message="double précision"),
    mistake("apprendre_sans_zero_grad", "gradients du réseau jamais remis à zéro",
            {"r3_apprendre": [(_LOOP_APP, _LOOP_APP.replace("\n        optimiseur.zero_grad()", ""))]},
            loses="j3_apprendre", message="s'accumulent"),
    mistake("apprendre_cout_apres_pas", "coût ajouté à la liste après le pas de gradient",
            {"r3_apprendre": [(_LOOP_APP, "        loss = cout(Y, modele(X))\n        loss.backward()\n"
                                          "        optimiseur.step()\n        optimiseur.zero_grad()\n"
                                          "        lst_loss.append(cout(Y, modele(X)).item())")]},
            loses="j3_apprendre", message="le premier coût renvoyé par `apprendre`"),
    mistake("minibatch_tire_une_fois", "minibatch tiré une seule fois, avant la boucle",
            {"r3_minibatch": [(_DRAW, ""),
                              ("    optimiseur = th.optim.SGD(modele.parameters(), lr=step)\n",
                               "    optimiseur = th.optim.SGD(modele.parameters(), lr=step)\n"
                               "    idx = th.randint(len(X), (mb,))\n")]},
            loses="j3_minibatch", message="n'est pas tiré au hasard à chaque itération"),
    mistake("minibatch_toute_la_base", "coût calculé sur toute la base dans apprendre_mb",
            {"r3_minibatch": [("cout(Y[idx], modele(X[idx]))", "cout(Y, modele(X))")]},
            loses="j3_minibatch", message="calculé sur toute la base"),
    mistake("minibatch_indices_differents", "X et Y indexés par deux tirages différents",
            {"r3_minibatch": [("cout(Y[idx], modele(X[idx]))", "cout(Y[th.randint(len(X), (mb,))], modele(X[idx]))")]},
            loses="j3_minibatch", message="avec les mêmes indices idx"),
    mistake("pima_nb_hidden_change", "nb_hidden changé dans la cellule notée",
            {"r3_pima": [("nb_hidden = 20", "nb_hidden = 50")]},
            loses="j3_pima", message="`nb_hidden` vaut 50"),
    mistake("pima_taux_mb_du_mauvais_reseau", "taux_test_mb calculé avec le réseau mlp au lieu de mlp_mb",
            {"r3_pima": [("np.argmax(mlp_mb(Xt)", "np.argmax(mlp(Xt)")]},
            loses="j3_pima", message="alors que les paramètres appris donnent"),

    # ------------------------------------------------------------ 4. 2-D toy data
    mistake("jouet_float32", "X2 et Xt2 convertis en float32",
            {"r4_donnees": [("X2, Xt2 = th.tensor(x2), th.tensor(xt2)", "X2, Xt2 = th.tensor(x2).float(), th.tensor(xt2).float()")]},
            loses="j4_donnees", message="torch.float32"),
    mistake("jouet_mlp_trop_court", "réseau des données jouet appris 50 itérations au lieu de 500",
            {"r4_jouet": [("step=1, niter=500)", "step=1, niter=50)")]},
            loses="j4_jouet", message="au lieu de 500"),
    mistake("regions_transposees", "classes du réseau transposées par rapport à la grille",
            {"r4_regions": [(_Z_MLP, _Z_MLP + ".T")]},
            loses="j4_regions", message="transposé"),
    mistake("regions_meme_modele", "les deux panneaux montrent le réseau",
            {"r4_regions": [("Z_lin = np.argmax(pred(grille, W_j, B_j)", "Z_lin = np.argmax(mlp_j(grille)")]},
            loses="j4_regions", message="l'autre modèle"),
    mistake("regions_probabilites", "probabilité maximale au lieu de la classe prédite",
            {"r4_regions": [(_Z_MLP, "Z_mlp = mlp_j(grille).detach().numpy().max(axis=1).reshape(xx.shape)")]},
            loses="j4_regions", message="pas des probabilités"),
    mistake("regions_deux_figures", "deux figures séparées au lieu d'une figure à deux panneaux",
            {"r4_regions": [(_PLOT, """for Z, titre in ((Z_lin, "régression softmax"), (Z_mlp, "réseau à deux couches")):
    pl.figure()
    pl.contourf(xx, yy, Z, levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.3, cmap="brg")
    pl.scatter(x2[:, 0], x2[:, 1], c=y2, s=8, cmap="brg")
    pl.title(titre)""")]},
            loses="j4_regions", message="aucune figure à deux panneaux"),
]
