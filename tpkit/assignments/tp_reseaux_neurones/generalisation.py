"""Second generation of the catalogue (issue #13), written by method rather than by replay of known
failures: for each graded question, every imposed value changed, every step of the recipe skipped,
repeated or moved, every plausible representation of each result. They were graded *before* the checks
were changed; the figures per question are in docs/catalogue.md ("Generalisation").

Kept apart from the first catalogue so that the before/after figures stay reproducible
(`python -m tpkit.catalogue --only $(python -c "from tpkit.assignments.tp_reseaux_neurones import generalisation as g;
print(g.names())")`); `mistakes.MISTAKES` and `variants.VARIANTS` include them.
"""
from tpkit.catalogue.entries import mistake, variant

_ZERO = "        W.grad.zero_()\n        B.grad.zero_()"
_INIT_WB = ("W = th.tensor(np.random.randn(d, p) * 0.01, requires_grad=True)\n"
            "B = th.zeros(1, p, dtype=th.float64, requires_grad=True)\n")
_INIT_MLP = ("W1 = th.tensor(np.random.randn(d, nb_hidden) * 0.1, requires_grad=True)\n"
             "B1 = th.zeros(1, nb_hidden, dtype=th.float64, requires_grad=True)\n"
             "W2 = th.tensor(np.random.randn(nb_hidden, p) * 0.1, requires_grad=True)\n")
_TAUX_TEST = "taux_test = np.mean(np.argmax(pred(Xt, W, B).detach().numpy(), axis=1) == yt)"

MISTAKES = [
    # ------------------------------------------------------------ 1. data: values swapped, steps skipped
    mistake("g_chargement_y_yt_inverses",
            "étiquettes y et yt inversées au chargement",
            {"r1_chargement": [('data["x"], data["y"], data["xt"], data["yt"]',
                                'data["x"], data["yt"], data["xt"], data["y"]')]},
            loses="q1_chargement", message="ne correspond pas au tableau 'y'"),
    mistake("g_etiquettes_decalees",
            "classes renumérotées 1, 2, 3 au lieu de 0, 1, 2",
            {"r1_etiquettes": [("y = np.argmax(y[:, None] == classes, axis=1)\n",
                                "y = np.argmax(y[:, None] == classes, axis=1) + 1\n")]},
            loses="q1_etiquettes", message="uniquement les classes 0, 1, 2"),
    mistake("g_etiquettes_test_depuis_y",
            "yt renuméroté à partir de y (copier-coller)",
            {"r1_etiquettes": [("yt = np.argmax(yt[:, None] == classes, axis=1)",
                                "yt = np.argmax(y[:, None] == classes, axis=1)")]},
            loses="q1_etiquettes", message="`yt` a la taille"),
    mistake("g_dimensions_n_du_test",
            "n pris sur les données de test",
            {"r1_dimensions": [("n, d = x.shape", "n, d = xt.shape")]},
            loses="q1_dimensions", message="`n` (nombre d'exemples d'apprentissage) vaut 450"),
    mistake("g_onehot_p_plus_un",
            "One-Hot à p + 1 colonnes",
            {"r1_onehot": [("Y = np.zeros((n, p))", "Y = np.zeros((n, p + 1))")]},
            loses="q1_onehot", message="au lieu de (1050, 3)"),
    mistake("g_tenseurs_Xt_depuis_x",
            "Xt converti à partir de x (copier-coller)",
            {"r1_tenseurs": [("Xt = th.tensor(xt)", "Xt = th.tensor(x)")]},
            loses="q1_tenseurs", message="`Xt` doit contenir les données de xt"),
    # ------------------------------------------------------------ 2. imposed values of the initialisation
    mistake("g_W_echelle_0_1",
            "W = randn * 0.1 au lieu de 0.01",
            {"r2_W": [(" * 0.01", " * 0.1")]},
            loses="q2_W", message="petite amplitude"),
    mistake("g_W_uniforme",
            "W tiré avec np.random.rand (uniforme, positif) au lieu de randn",
            {"r2_W": [("np.random.randn(d, p)", "np.random.rand(d, p)")]},
            loses="q2_W", message="gaussien"),
    mistake("g_W_zeros",
            "W initialisé à zéro",
            {"r2_W": [("th.tensor(np.random.randn(d, p) * 0.01, requires_grad=True)",
                       "th.zeros(d, p, dtype=th.float64, requires_grad=True)")]},
            loses="q2_W", message="gaussien"),
    mistake("g_B_uns",
            "B initialisé à un",
            {"r2_B": [("th.zeros(1, p,", "th.ones(1, p,")]},
            loses="q2_B", message="initialisé à zéro"),
    mistake("g_pred_log_softmax",
            "pred renvoie log_softmax",
            {"r2_pred": [("th.softmax(th.mm(X, W) + B, dim=1)", "th.log_softmax(th.mm(X, W) + B, dim=1)")]},
            loses="q2_pred", message="ne somment pas à 1"),
    mistake("g_pred_sigmoide",
            "pred applique une sigmoïde au lieu de la softmax",
            {"r2_pred": [("th.softmax(th.mm(X, W) + B, dim=1)", "th.sigmoid(th.mm(X, W) + B)")]},
            loses="q2_pred", message="ne somment pas à 1"),
    mistake("g_yhat_detache",
            "Yhat = pred(X, W, B).detach()",
            {"r2_pred": [("Yhat = pred(X, W, B)", "Yhat = pred(X, W, B).detach()")]},
            loses="q2_pred", message="`Yhat` n'est pas relié"),
    mistake("g_cout_log10",
            "log décimal au lieu du log népérien",
            {"r2_cout": [("th.log(Yhat + 1e-16)", "th.log10(Yhat + 1e-16)")]},
            loses="q2_cout", message="au lieu de"),
    mistake("g_cout_epsilon_1e-3",
            "valeur imposée 1e-16 remplacée par 1e-3 dans le log",
            {"r2_cout": [("th.log(Yhat + 1e-16)", "th.log(Yhat + 1e-3)")]},
            loses="q2_cout", message="au lieu de"),
    mistake("g_loss_sur_test",
            "loss calculé sur les données de test",
            {"r2_cout": [("loss = cout(Y, Yhat)", "loss = cout(Yt, pred(Xt, W, B))")]},
            loses="q2_cout", message="au lieu de cout(Y, Yhat)"),
    mistake("g_gradient_sur_test",
            "gradient calculé sur le coût de test",
            {"r2_gradient": [("loss.backward()", "cout(Yt, pred(Xt, W, B)).backward()")]},
            loses="q2_gradient", message="ne correspondent pas au gradient analytique"),
    # ------------------------------------------------------------ 3. descent: recipe steps skipped, moved, values changed
    mistake("g_descente_sans_reinitialisation",
            "W et B non réinitialisés avant la descente (ceux de la section 2, avec leur gradient)",
            {"r3_descente": [(_INIT_WB, "")]},
            loses="q3_descente", message="réinitialis"),
    mistake("g_descente_sur_test",
            "descente de gradient faite sur les données de test",
            {"r3_descente": [("    loss = cout(Y, pred(X, W, B))\n    lst_loss.append",
                              "    loss = cout(Yt, pred(Xt, W, B))\n    lst_loss.append")]},
            loses="q3_descente", message="données d'apprentissage"),
    mistake("g_descente_pas_en_dur",
            "pas écrit en dur (0.5) dans la mise à jour, step = 1 gardé",
            {"r3_descente": [("W -= step * W.grad", "W -= 0.5 * W.grad"),
                             ("B -= step * B.grad", "B -= 0.5 * B.grad")]},
            loses="q3_descente", message="descente de gradient"),
    mistake("g_descente_B_non_mis_a_jour",
            "B jamais mis à jour dans la boucle",
            {"r3_descente": [("        B -= step * B.grad\n", "")]},
            loses="q3_descente", message="descente de gradient"),
    mistake("g_descente_zero_grad_avant_maj",
            "gradients remis à zéro avant la mise à jour",
            {"r3_descente": [("        W -= step * W.grad\n        B -= step * B.grad\n" + _ZERO,
                              _ZERO + "\n        W -= step * W.grad\n        B -= step * B.grad")]},
            loses="q3_descente", message="ne décroît pas"),
    mistake("g_descente_iterations_en_dur",
            "boucle for i in range(100) alors que niter = 200",
            {"r3_descente": [("for i in range(niter):", "for i in range(100):")]},
            loses="q3_descente", message="au lieu de 200"),
    mistake("g_courbe_histogramme",
            "pl.hist(lst_loss) au lieu de la courbe",
            {"r3_courbe": [("pl.plot(lst_loss)", "pl.hist(lst_loss)")]},
            loses="q3_courbe", message="aucune figure ne montre"),
    mistake("g_taux_erreur",
            "taux d'erreur (1 − taux) au lieu du taux de bonne reconnaissance",
            {"r3_precision": [("taux_test = np.mean(", "taux_test = 1 - np.mean(")]},
            loses="q3_precision", message="`taux_test` vaut"),
    mistake("g_sgd_suite_des_parametres_appris",
            "SGD continué à partir de W, B déjà appris (pas de réinitialisation)",
            {"r3_sgd": [(_INIT_WB, "")]},
            loses="q3_sgd", message="réinitialis"),
    mistake("g_sgd_sur_test",
            "SGD appris sur les données de test",
            {"r3_sgd": [("    loss = cout(Y, pred(X, W, B))\n    lst_loss_sgd",
                         "    loss = cout(Yt, pred(Xt, W, B))\n    lst_loss_sgd")]},
            loses="q3_sgd", message="données d'apprentissage"),
    mistake("g_sgd_momentum",
            "SGD avec momentum=0.9 : ce n'est plus la descente de gradient demandée",
            {"r3_sgd": [("th.optim.SGD([W, B], lr=step)", "th.optim.SGD([W, B], lr=step, momentum=0.9)")]},
            loses="q3_sgd", message="momentum"),
    # ------------------------------------------------------------ 4. two-layer networks
    mistake("g_pred2_sans_softmax",
            "pred2 sans softmax finale",
            {"r4_pred2": [("return th.softmax(th.mm(H, W2) + B2, dim=1)", "return th.mm(H, W2) + B2")]},
            loses="q4_pred2", message="ne somment pas à 1"),
    mistake("g_pred2_sigmoide",
            "sigmoïde au lieu de la ReLU dans pred2",
            {"r4_pred2": [("H = th.relu(", "H = th.sigmoid(")]},
            loses="q4_pred2", message="ne calcule pas softmax(relu(X W1 + B1) W2 + B2)"),
    mistake("g_mlp_manuel_echelle_0_01",
            "réseau à deux couches initialisé avec 0.01 au lieu de 0.1",
            {"r4_mlp_manuel": [("np.random.randn(d, nb_hidden) * 0.1", "np.random.randn(d, nb_hidden) * 0.01"),
                               ("np.random.randn(nb_hidden, p) * 0.1", "np.random.randn(nb_hidden, p) * 0.01")]},
            loses="q4_mlp_manuel", message="0.1"),
    mistake("g_mlp_manuel_lr_change",
            "lr = 0.5 dans l'optimiseur du réseau manuel",
            {"r4_mlp_manuel": [("th.optim.SGD([W1, B1, W2, B2], lr=step)",
                                "th.optim.SGD([W1, B1, W2, B2], lr=0.5)")]},
            loses="q4_mlp_manuel", message="le pas (lr) de l'optimiseur vaut 0.5"),
    mistake("g_mlp_manuel_sur_test",
            "réseau manuel appris sur les données de test",
            {"r4_mlp_manuel": [("    loss = cout(Y, pred2(X, W1, B1, W2, B2))",
                                "    loss = cout(Yt, pred2(Xt, W1, B1, W2, B2))")]},
            loses="q4_mlp_manuel", message="données d'apprentissage"),
    mistake("g_mlp_manuel_niter_change",
            "niter = 100 pour le réseau manuel",
            {"r4_mlp_manuel": [("niter = 200\n", "niter = 100\n")]},
            loses="q4_mlp_manuel", message="au lieu de 200"),
    mistake("g_mlp_classe_nb_hidden_en_dur",
            "couche cachée de 50 neurones écrite en dur",
            {"r4_mlp_classe": [("th.nn.Linear(d, nb_hidden)", "th.nn.Linear(d, 50)"),
                               ("th.nn.Linear(nb_hidden, p)", "th.nn.Linear(50, p)")]},
            loses="q4_mlp_classe", message="nb_hidden = 100"),
    mistake("g_mlp_step_change",
            "step = 0.5 pour l'apprentissage du MLP",
            {"r4_mlp_apprentissage": [("step = 1\n", "step = 0.5\n")]},
            loses="q4_mlp_apprentissage", message="step"),
    mistake("g_mlp_sur_test",
            "MLP appris sur les données de test",
            {"r4_mlp_apprentissage": [("    loss = cout(Y, mlp(X))", "    loss = cout(Yt, mlp(Xt))")]},
            loses="q4_mlp_apprentissage", message="données d'apprentissage"),
    mistake("g_mlp_adam",
            "th.optim.Adam au lieu de SGD",
            {"r4_mlp_apprentissage": [("th.optim.SGD(mlp.parameters(), lr=step)",
                                       "th.optim.Adam(mlp.parameters(), lr=step)")]},
            loses="q4_mlp_apprentissage", message="ne décroît pas"),  # Adam with lr = 1 diverges first
    # ------------------------------------------------------------ 5. minibatch
    mistake("g_minibatch_lr_change",
            "lr = 0.5 pour les minibatchs",
            {"r5_minibatch": [("th.optim.SGD(mlp_mb.parameters(), lr=step)",
                               "th.optim.SGD(mlp_mb.parameters(), lr=0.5)")]},
            loses="q5_minibatch", message="le pas (lr) de l'optimiseur vaut 0.5"),
    mistake("g_minibatch_taille_en_dur",
            "minibatch de 50 indices écrit en dur (mb = 20 gardé)",
            {"r5_minibatch": [("idx = th.randint(n, (mb,))", "idx = th.randint(n, (50,))")]},
            loses="q5_minibatch", message="au lieu de (20,)"),
]

_LOOPS_ITEM = {  # every cost list of the notebook, in the form of 0-d arrays (loss.detach().numpy())
    "r3_descente": [("lst_loss.append(loss.item())", "lst_loss.append(loss.detach().numpy())")],
    "r3_sgd": [("lst_loss_sgd.append(loss.item())", "lst_loss_sgd.append(loss.detach().numpy())")],
    "r4_mlp_manuel": [("lst_loss2.append(loss.item())", "lst_loss2.append(loss.detach().numpy())")],
    "r4_mlp_apprentissage": [("lst_loss_mlp.append(loss.item())", "lst_loss_mlp.append(loss.detach().numpy())")],
    "r5_minibatch": [("lst_loss_mb.append(loss.item())", "lst_loss_mb.append(loss.detach().numpy())")],
}

VARIANTS = [
    variant("g_couts_tableaux_0d",
            "coûts ajoutés comme tableaux numpy 0-d (loss.detach().numpy()) dans toutes les boucles",
            _LOOPS_ITEM),
    variant("g_couts_tenseurs_detaches",
            "coûts ajoutés comme tenseurs 0-d détachés (loss.detach()) dans toutes les boucles",
            {k: [(a, b.replace(".detach().numpy()", ".detach()")) for a, b in v] for k, v in _LOOPS_ITEM.items()}),
    variant("g_couts_float32",
            "coûts ajoutés en float32 (loss.detach().float().numpy())",
            {"r3_descente": [("lst_loss.append(loss.item())", "lst_loss.append(loss.detach().float().numpy())")],
             "r4_mlp_apprentissage": [("lst_loss_mlp.append(loss.item())",
                                       "lst_loss_mlp.append(np.float32(loss.item()))")]}),
    variant("g_courbe_scatter",
            "courbe du coût tracée avec pl.scatter",
            {"r3_courbe": [("pl.plot(lst_loss)", "pl.scatter(range(len(lst_loss)), lst_loss, s=4)")]}),
    variant("g_courbe_step",
            "courbe du coût tracée en escalier (pl.step)",
            {"r3_courbe": [("pl.plot(lst_loss)", "pl.step(range(niter), lst_loss)")]}),
    variant("g_courbe_points_numpy",
            "courbe tracée avec marqueurs seuls, abscisses 1..niter, à partir d'un tableau numpy",
            {"r3_courbe": [("pl.plot(lst_loss)", "pl.plot(np.arange(1, niter + 1), np.array(lst_loss), 'o', ms=2)")]}),
    variant("g_cout_clamp",
            "coût avec clamp(min=1e-16) au lieu de + 1e-16",
            {"r2_cout": [("th.log(Yhat + 1e-16)", "th.log(Yhat.clamp(min=1e-16))")]}),
    variant("g_init_copiee_sans_graine",
            "initialisation tirée une fois (W0) et copiée pour la descente manuelle et SGD",
            {"r3_descente": [(_INIT_WB, "W0 = np.random.randn(d, p) * 0.01\n"
                                        "W = th.tensor(W0, requires_grad=True)\n"
                                        "B = th.zeros(1, p, dtype=th.float64, requires_grad=True)\n")],
             "r3_sgd": [("np.random.seed(1)  # même initialisation que la descente manuelle\n", ""),
                        (_INIT_WB, "W = th.tensor(W0, requires_grad=True)\n"
                                   "B = th.zeros(1, p, dtype=th.float64, requires_grad=True)\n")]}),
    variant("g_descente_while",
            "boucle while et mise à jour par .data.sub_",
            {"r3_descente": [("for i in range(niter):\n", "i = 0\nwhile i < niter:\n    i += 1\n"),
                             ("        W -= step * W.grad\n        B -= step * B.grad\n",
                              "        W.data.sub_(step * W.grad)\n        B.data.sub_(step * B.grad)\n")]}),
    variant("g_sgd_cout_apres_step",
            "coût ajouté à la liste après optimiseur.step() (même valeur)",
            {"r3_sgd": [("    lst_loss_sgd.append(loss.item())\n", ""),
                        ("    optimiseur.zero_grad()", "    optimiseur.zero_grad()\n    lst_loss_sgd.append(loss.item())")]}),
    variant("g_mlp_manuel_init_torch",
            "réseau manuel initialisé avec th.randn(...) * 0.1 (float64) et gradients mis à None",
            {"r4_mlp_manuel": [(_INIT_MLP, "W1 = (th.randn(d, nb_hidden, dtype=th.float64) * 0.1).requires_grad_()\n"
                                           "B1 = th.zeros(1, nb_hidden, dtype=th.float64, requires_grad=True)\n"
                                           "W2 = (th.randn(nb_hidden, p, dtype=th.float64) * 0.1).requires_grad_()\n"),
                               ("    optimiseur2.zero_grad()\n",
                                "    for t in (W1, B1, W2, B2):\n        t.grad = None\n")]}),
    variant("g_mlp_manuel_init_normal",
            "réseau manuel initialisé avec th.nn.init.normal_(std=0.1)",
            {"r4_mlp_manuel": [(_INIT_MLP, "W1 = th.nn.init.normal_(th.empty(d, nb_hidden, dtype=th.float64), std=0.1)"
                                           ".requires_grad_()\n"
                                           "B1 = th.zeros(1, nb_hidden, dtype=th.float64, requires_grad=True)\n"
                                           "W2 = th.nn.init.normal_(th.empty(nb_hidden, p, dtype=th.float64), std=0.1)"
                                           ".requires_grad_()\n")]}),
    variant("g_mlp_groupes_de_parametres",
            "optimiseur du MLP créé avec un groupe de paramètres (liste de dictionnaires), lr=1 écrit",
            {"r4_mlp_apprentissage": [("th.optim.SGD(mlp.parameters(), lr=step)",
                                       "th.optim.SGD([{'params': mlp.parameters()}], lr=1)")]}),
    variant("g_mlp_zero_grad_set_to_none_false",
            "zero_grad(set_to_none=False) dans toutes les boucles avec optimiseur",
            {"r3_sgd": [("optimiseur.zero_grad()", "optimiseur.zero_grad(set_to_none=False)")],
             "r4_mlp_manuel": [("optimiseur2.zero_grad()", "optimiseur2.zero_grad(set_to_none=False)")],
             "r4_mlp_apprentissage": [("optimiseur_mlp.zero_grad()", "optimiseur_mlp.zero_grad(set_to_none=False)")]}),
    variant("g_minibatch_epoques",
            "minibatchs tirés par époques (permutation, sans remise)",
            {"r5_minibatch": [("    idx = th.randint(n, (mb,))\n",
                               "    if i % (n // mb) == 0:\n        perm = th.randperm(n)\n"
                               "    k = i % (n // mb)\n    idx = perm[k * mb:(k + 1) * mb]\n")]}),
    variant("g_taux_somme_sur_effectif",
            "taux calculés en torch comme somme / effectif (tenseurs 0-d float32)",
            {"r3_precision": [(_TAUX_TEST, "taux_test = (pred(Xt, W, B).argmax(dim=1) == th.from_numpy(yt)).sum() / len(yt)")],
             "r4_mlp_manuel": [("taux_test2 = np.mean(np.argmax(pred2(Xt, W1, B1, W2, B2).detach().numpy(), axis=1) == yt)",
                                "taux_test2 = (pred2(Xt, W1, B1, W2, B2).argmax(dim=1) == th.from_numpy(yt)).sum() / len(yt)")]}),
    variant("g_taux_tableau_taille_1",
            "taux rangés dans des tableaux de taille 1 (np.mean(..., keepdims=True))",
            {"r4_mlp_apprentissage": [("taux_test_mlp = np.mean(np.argmax(mlp(Xt).detach().numpy(), axis=1) == yt)",
                                       "taux_test_mlp = np.mean(np.argmax(mlp(Xt).detach().numpy(), axis=1) == yt, "
                                       "keepdims=True)")]}),
    variant("g_onehot_entiers",
            "One-Hot en entiers (dtype=int)",
            {"r1_onehot": [("Y = np.zeros((n, p))", "Y = np.zeros((n, p), dtype=int)"),
                           ("Yt = np.zeros((len(yt), p))", "Yt = np.zeros((len(yt), p), dtype=int)")]}),
    variant("g_mlp_identite_clone",
            "forward de la classe identité : return x.clone()",
            {"r4_mlp_identite": [("        return x\n", "        return x.clone()\n")]}),
    variant("g_courbe_ax_loglog",
            "courbe tracée sur un axe explicite avec ax.loglog",
            {"r3_courbe": [("pl.figure()\npl.plot(lst_loss)", "fig = pl.figure()\nax = fig.add_subplot(1, 1, 1)\n"
                                                             "ax.loglog(np.arange(1, niter + 1), lst_loss)")]}),
]


def names() -> str:
    return ",".join(e.name for e in MISTAKES + VARIANTS)


# Graded before any change of the checks (commit 0a10ada, fork executor, 1522 s): question ->
# (mistakes caught, mistakes whose own question it is, valid variants losing points there).
BEFORE_FIX = {
    "q1_chargement": (1, 1, 0), "q1_etiquettes": (2, 2, 0), "q1_dimensions": (1, 1, 0),
    "q1_onehot": (1, 1, 0), "q1_tenseurs": (1, 1, 0), "q2_W": (3, 3, 0), "q2_B": (1, 1, 0),
    "q2_pred": (3, 3, 0), "q2_cout": (3, 3, 0), "q2_gradient": (1, 1, 0), "q3_descente": (5, 6, 4),
    "q3_courbe": (1, 1, 1), "q3_precision": (1, 1, 0), "q3_sgd": (1, 3, 3), "q4_pred2": (2, 2, 0),
    "q4_mlp_manuel": (1, 4, 2), "q4_mlp_identite": (0, 0, 0), "q4_mlp_classe": (1, 1, 0),
    "q4_mlp_apprentissage": (1, 3, 2), "q5_minibatch": (1, 2, 2),
}
BEFORE_FIX_VARIANTS_FULL_MARKS = 15   # of 20
BEFORE_FIX_ESCAPED = ("g_descente_sans_reinitialisation", "g_sgd_suite_des_parametres_appris", "g_sgd_sur_test",
                      "g_mlp_manuel_echelle_0_01", "g_mlp_manuel_lr_change", "g_mlp_manuel_sur_test",
                      "g_mlp_step_change", "g_mlp_sur_test", "g_minibatch_lr_change")
BEFORE_FIX_PENALISED = ("g_couts_tableaux_0d", "g_couts_tenseurs_detaches", "g_couts_float32",
                        "g_courbe_scatter", "g_cout_clamp")


def markdown(report) -> str:
    """The generalisation section of docs/catalogue.md: before-fix figures (recorded above) next to
    this run's, per question, for the entries of this module present in the report."""
    mine = {e.name for e in MISTAKES + VARIANTS}
    outcomes = [o for o in report.outcomes if o.entry.name in mine]
    if not outcomes:
        return ""
    now = {q: [0, 0, 0] for q in BEFORE_FIX}
    for o in outcomes:
        if o.entry.kind == "mistake":
            now[o.entry.own][1] += 1
            now[o.entry.own][0] += o.entry.own in o.lost()
        else:
            for q in o.lost():
                now[q][2] += 1
    caught = sum(o.entry.own in o.lost() for o in outcomes if o.entry.kind == "mistake")
    full = sum(not o.lost() and o.status == "ok" for o in outcomes if o.entry.kind == "variant")
    before_caught = sum(c for c, _, _ in BEFORE_FIX.values())
    out = ["## Generalisation (issue #13)", "",
           f"{len(MISTAKES)} mistakes and {len(VARIANTS)} valid variants written by method "
           "(`tpkit/assignments/tp_reseaux_neurones/generalisation.py`: for each graded question, every imposed value changed, "
           "every recipe step skipped, repeated or moved, every plausible representation of each result), "
           "graded once **before** any change of the checks, then with the checks of this run.", "",
           f"- before the fix: mistakes caught {before_caught}/{len(MISTAKES)}, variants at full marks "
           f"{BEFORE_FIX_VARIANTS_FULL_MARKS}/{len(VARIANTS)}; escaped: "
           + ", ".join(f"`{n}`" for n in BEFORE_FIX_ESCAPED) + "; penalised: "
           + ", ".join(f"`{n}`" for n in BEFORE_FIX_PENALISED),
           f"- this run: mistakes caught {caught}/{len(MISTAKES)}, variants at full marks {full}/{len(VARIANTS)}",
           "", "| question | mistakes caught, before | now | variants losing points here, before | now |",
           "|---|---|---|---|---|"]
    for q, (c, t, v) in BEFORE_FIX.items():
        nc, nt, nv = now[q]
        out.append(f"| {q} | {c}/{t} | {nc}/{nt} | {v} | {nv} |")
    return "\n".join(out) + "\n"
