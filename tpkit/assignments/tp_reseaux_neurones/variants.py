"""Catalogue of valid variants: correct answers written differently from the instructor's
solution. Each one must get full marks."""
from tpkit.catalogue.entries import insert_after, move_after, variant

_PRED = "    return th.softmax(th.mm(X, W) + B, dim=1)"
_ONEHOT = ("Y = np.zeros((n, p))\nY[np.arange(n), y] = 1\n"
           "Yt = np.zeros((len(yt), p))\nYt[np.arange(len(yt)), yt] = 1")
_ZERO = "        W.grad.zero_()\n        B.grad.zero_()"
_INIT_W = "W = th.tensor(np.random.randn(d, p) * 0.01, requires_grad=True)"

VARIANTS = [
    variant("solution_complete",
            "la solution de l'enseignant avec ses cellules d'expériences (non vidées)",
            keep_experiments=True),
    variant("produit_arobase",
            "X @ W au lieu de th.mm",
            {"r2_pred": [(_PRED, "    return th.softmax(X @ W + B, dim=1)")],
             "r4_pred2": [("th.mm(X, W1)", "X @ W1"), ("th.mm(H, W2)", "H @ W2")]}),
    variant("produit_methode_mm",
            "X.mm(W) et th.matmul",
            {"r2_pred": [(_PRED, "    return th.softmax(X.mm(W) + B, dim=1)")],
             "r4_pred2": [("th.mm(X, W1)", "th.matmul(X, W1)")]}),
    variant("softmax_fonctionnelle",
            "torch.nn.functional.softmax et relu",
            {"r2_pred": [(_PRED, "    return th.nn.functional.softmax(th.mm(X, W) + B, dim=1)")],
             "r4_pred2": [("th.relu(", "th.nn.functional.relu(")],
             "r4_mlp_classe": [("th.softmax(self.c2(th.relu(self.c1(x))), dim=1)",
                                "th.nn.functional.softmax(self.c2(th.nn.functional.relu(self.c1(x))), dim=-1)")]}),
    variant("softmax_stable_a_la_main",
            "softmax écrite à la main en soustrayant le max de chaque ligne",
            {"r2_pred": [(_PRED, "    Z = th.mm(X, W) + B\n"
                                 "    Z = Z - Z.max(dim=1, keepdim=True).values\n"
                                 "    E = th.exp(Z)\n"
                                 "    return E / E.sum(dim=1, keepdim=True)")]}),
    variant("cout_chaine_de_methodes",
            "coût écrit avec des méthodes de tenseur (log, sum, mean)",
            {"r2_cout": [("return -th.mean(th.sum(Y * th.log(Yhat + 1e-16), dim=1))",
                          "return -(Y * (Yhat + 1e-16).log()).sum(dim=1).mean()")]}),
    variant("cout_nll_loss_sur_log",
            "coût via th.nn.functional.nll_loss sur le log des probabilités",
            {"r2_cout": [("return -th.mean(th.sum(Y * th.log(Yhat + 1e-16), dim=1))",
                          "return th.nn.functional.nll_loss(th.log(Yhat + 1e-16), Y.argmax(dim=1))")]}),
    variant("cout_cross_entropy_log_softmax",
            "coût via th.nn.functional.cross_entropy (log-softmax) appliqué au log des probabilités",
            {"r2_cout": [("return -th.mean(th.sum(Y * th.log(Yhat + 1e-16), dim=1))",
                          "return th.nn.functional.cross_entropy(th.log(Yhat + 1e-16), Y)")]}),
    variant("onehot_np_eye",
            "One-Hot avec np.eye",
            {"r1_onehot": [(_ONEHOT, "Y = np.eye(p)[y]\nYt = np.eye(p)[yt]")]}),
    variant("onehot_comparaison",
            "One-Hot par comparaison avec np.arange(p)",
            {"r1_onehot": [(_ONEHOT, "Y = (y[:, None] == np.arange(p)).astype(float)\n"
                                     "Yt = (yt[:, None] == np.arange(p)).astype(float)")]}),
    variant("onehot_torch_one_hot",
            "One-Hot avec torch.nn.functional.one_hot (déjà des tenseurs)",
            {"r1_onehot": [(_ONEHOT, "Y = th.nn.functional.one_hot(th.tensor(y), p).double()\n"
                                     "Yt = th.nn.functional.one_hot(th.tensor(yt), p).double()")],
             "r1_tenseurs": [("Y = th.tensor(Y)\nYt = th.tensor(Yt)", "")]}),
    variant("etiquettes_dictionnaire",
            "renumérotation avec un dictionnaire et dimensions par len / np.unique",
            {"r1_etiquettes": [("y = np.argmax(y[:, None] == classes, axis=1)\n"
                                "yt = np.argmax(yt[:, None] == classes, axis=1)",
                                "code = {1: 0, 7: 1, 8: 2}\n"
                                "y = np.array([code[int(c)] for c in y])\n"
                                "yt = np.array([code[int(c)] for c in yt])")],
             "r1_dimensions": [("n, d = x.shape\np = 3", "n = len(x)\nd = x.shape[1]\np = len(np.unique(y))")]}),
    variant("tenseurs_from_numpy",
            "th.from_numpy au lieu de th.tensor",
            {"r1_tenseurs": [("X = th.tensor(x)\nXt = th.tensor(xt)\nY = th.tensor(Y)\nYt = th.tensor(Yt)",
                              "X, Xt = th.from_numpy(x), th.from_numpy(xt)\n"
                              "Y, Yt = th.from_numpy(Y), th.from_numpy(Yt)")]}),
    variant("init_torch_randn",
            "W tiré avec th.randn (float64) puis requires_grad_(), partout",
            {"r2_W": [(_INIT_W, "W = (0.01 * th.randn(d, p, dtype=th.float64)).requires_grad_()")],
             "r2_B": [("th.zeros(1, p, dtype=th.float64, requires_grad=True)",
                       "th.zeros((1, p), dtype=th.float64).requires_grad_(True)")],
             "r3_descente": [(_INIT_W, "W = (0.01 * th.randn(d, p, dtype=th.float64)).requires_grad_()")],
             "r3_sgd": [(_INIT_W, "W = (0.01 * th.randn(d, p, dtype=th.float64)).requires_grad_()")]}),
    variant("B_sans_dtype",
            "B = th.zeros(1, p, requires_grad=True), comme l'énoncé l'écrit (float32, sans dtype)",
            {"r2_B": [("th.zeros(1, p, dtype=th.float64, requires_grad=True)",
                       "th.zeros(1, p, requires_grad=True)")]}),
    variant("grad_mis_a_None",
            "W.grad = None au lieu de W.grad.zero_(), float(loss) dans la liste",
            {"r3_descente": [(_ZERO, "        W.grad = None\n        B.grad = None"),
                             ("lst_loss.append(loss.item())", "lst_loss.append(float(loss))")]}),
    variant("zero_grad_en_tete_de_boucle",
            "gradients remis à zéro en début d'itération (manuel et optimiseur)",
            {"r3_descente": [("\n" + _ZERO, ""),
                             ("    loss = cout(Y, pred(X, W, B))\n",
                              "    if W.grad is not None:\n        W.grad.zero_()\n        B.grad.zero_()\n"
                              "    loss = cout(Y, pred(X, W, B))\n")],
             "r3_sgd": [("\n    optimiseur.zero_grad()", ""),
                        ("    loss = cout(Y, pred(X, W, B))\n",
                         "    optimiseur.zero_grad()\n    loss = cout(Y, pred(X, W, B))\n")]}),
    variant("mlp_zero_grad_en_tete",
            "réseaux de la section 4 : gradients remis à zéro en début d'itération",
            {"r4_mlp_manuel": [("    optimiseur2.zero_grad()\n", ""),
                               ("    loss = cout(Y, pred2(X, W1, B1, W2, B2))\n",
                                "    optimiseur2.zero_grad()\n    loss = cout(Y, pred2(X, W1, B1, W2, B2))\n")],
             "r4_mlp_apprentissage": [("    optimiseur_mlp.zero_grad()\n", ""),
                                      ("    loss = cout(Y, mlp(X))\n",
                                       "    mlp.zero_grad()\n    loss = cout(Y, mlp(X))\n")]}),
    variant("maj_via_data",
            "mise à jour par W.data -= step * W.grad (sans no_grad)",
            {"r3_descente": [("    with th.no_grad():\n        W -= step * W.grad\n        B -= step * B.grad\n" + _ZERO,
                              "    W.data -= step * W.grad\n    B.data -= step * B.grad\n"
                              "    W.grad.zero_()\n    B.grad.zero_()")]}),
    variant("graines_differentes",
            "autres graines, les mêmes pour la descente manuelle et SGD",
            {"setup": [("np.random.seed(0)", "np.random.seed(2024)"), ("th.manual_seed(0)", "th.manual_seed(2024)")],
             "r3_descente": [("np.random.seed(1)", "np.random.seed(7)"), ("th.manual_seed(1)", "th.manual_seed(7)")],
             "r3_sgd": [("np.random.seed(1)", "np.random.seed(7)"), ("th.manual_seed(1)", "th.manual_seed(7)")],
             "r4_mlp_manuel": [("np.random.seed(2)", "np.random.seed(11)"), ("th.manual_seed(2)", "th.manual_seed(11)")],
             "r4_mlp_apprentissage": [("np.random.seed(3)", "np.random.seed(13)"),
                                      ("th.manual_seed(3)", "th.manual_seed(13)")],
             "r5_minibatch": [("np.random.seed(4)", "np.random.seed(17)"), ("th.manual_seed(4)", "th.manual_seed(17)")]}),
    variant("graine_650",
            "graine 650 (setup et descentes) : W = 0.01·randn donne un coût initial à 0.063 de log 3",
            {"setup": [("np.random.seed(0)", "np.random.seed(650)"), ("th.manual_seed(0)", "th.manual_seed(650)")],
             "r3_descente": [("np.random.seed(1)", "np.random.seed(650)"), ("th.manual_seed(1)", "th.manual_seed(650)")],
             "r3_sgd": [("np.random.seed(1)", "np.random.seed(650)"), ("th.manual_seed(1)", "th.manual_seed(650)")]}),
    variant("taux_en_pourcentage_et_torch",
            "taux en pourcentage (apprentissage, test) et taux du MLP calculé en torch",
            {"r3_precision": [("taux_app = np.mean(", "taux_app = 100 * np.mean("),
                              ("taux_test = np.mean(", "taux_test = 100 * np.mean(")],
             "r4_mlp_apprentissage": [("taux_test_mlp = np.mean(np.argmax(mlp(Xt).detach().numpy(), axis=1) == yt)",
                                       "with th.no_grad():\n"
                                       "    taux_test_mlp = (mlp(Xt).argmax(dim=1) == th.tensor(yt)).double().mean()")]}),
    variant("taux_float32",
            "taux calculés en torch avec .float().mean() (float32)",
            {"r3_precision": [("taux_test = np.mean(np.argmax(pred(Xt, W, B).detach().numpy(), axis=1) == yt)",
                               "taux_test = (pred(Xt, W, B).argmax(dim=1) == th.tensor(yt)).float().mean().item()")],
             "r5_minibatch": [("taux_test_mb = np.mean(np.argmax(mlp_mb(Xt).detach().numpy(), axis=1) == yt)",
                               "taux_test_mb = (mlp_mb(Xt).argmax(dim=1) == th.tensor(yt)).float().mean()")]}),
    variant("minibatch_indices_numpy",
            "minibatch tiré avec np.random.randint (indices numpy)",
            {"r5_minibatch": [("idx = th.randint(n, (mb,))", "idx = np.random.randint(n, size=mb)")]}),
    variant("courbe_semilogy_subplots",
            "courbe tracée avec fig, ax = pl.subplots() et une échelle log",
            {"r3_courbe": [("pl.figure()\npl.plot(lst_loss)", "fig, ax = pl.subplots()\nax.semilogy(range(niter), lst_loss)")]}),
    variant("pred2_clamp",
            "ReLU écrite avec clamp(min=0), calcul en une ligne",
            {"r4_pred2": [("    H = th.relu(th.mm(X, W1) + B1)\n    return th.softmax(th.mm(H, W2) + B2, dim=1)",
                           "    return th.softmax((X @ W1 + B1).clamp(min=0) @ W2 + B2, dim=1)")]}),
    variant("mlp_sequential",
            "MLP construit avec th.nn.Sequential",
            {"r4_mlp_classe": [("        self.c1 = th.nn.Linear(d, nb_hidden).double()\n"
                                "        self.c2 = th.nn.Linear(nb_hidden, p).double()",
                                "        self.reseau = th.nn.Sequential(\n"
                                "            th.nn.Linear(d, nb_hidden), th.nn.ReLU(),\n"
                                "            th.nn.Linear(nb_hidden, p), th.nn.Softmax(dim=1)).double()"),
                               ("return th.softmax(self.c2(th.relu(self.c1(x))), dim=1)", "return self.reseau(x)")]}),
    variant("mlp_dtype_float64",
            "couches créées avec dtype=th.float64 au lieu de .double()",
            {"r4_mlp_classe": [("th.nn.Linear(d, nb_hidden).double()", "th.nn.Linear(d, nb_hidden, dtype=th.float64)"),
                               ("th.nn.Linear(nb_hidden, p).double()", "th.nn.Linear(nb_hidden, p, dtype=th.float64)")]}),
    variant("minibatch_plus_iterations",
            "niter_mb = 2000 (le nombre d'itérations est libre)",
            {"r5_minibatch": [("niter_mb = 1000", "niter_mb = 2000")]}),
    variant("minibatch_randperm",
            "minibatch tiré sans remise avec th.randperm",
            {"r5_minibatch": [("idx = th.randint(n, (mb,))", "idx = th.randperm(n)[:mb]")]}),
    variant("fonctions_aides_et_affichages",
            "fonction d'aide pour les taux, affichages en plus",
            {"r3_precision": [("taux_app = np.mean(np.argmax(pred(X, W, B).detach().numpy(), axis=1) == y)\n"
                               "taux_test = np.mean(np.argmax(pred(Xt, W, B).detach().numpy(), axis=1) == yt)",
                               "def taux(Yhat, etiquettes):\n"
                               "    return np.mean(np.argmax(Yhat.detach().numpy(), axis=1) == etiquettes)\n\n\n"
                               "taux_app = taux(pred(X, W, B), y)\ntaux_test = taux(pred(Xt, W, B), yt)\n"
                               "print(f'{taux_app:.2%} / {taux_test:.2%}')")],
             "r3_descente": [(_ZERO, _ZERO + "\n    if i % 50 == 0:\n        print(i, loss.item())")],
             "r4_mlp_apprentissage": [("    optimiseur_mlp.zero_grad()\n",
                                       "    optimiseur_mlp.zero_grad()\n    if i % 100 == 0:\n        print(i, lst_loss_mlp[-1])\n")]}),
    variant("cellules_supplementaires",
            "cellules de code ajoutées (vérifications, figure, bonus en fin de notebook)",
            edits=[insert_after("r3_descente", "print(len(lst_loss), lst_loss[0], lst_loss[-1])\n"
                                               "pl.figure()\npl.plot(np.diff(lst_loss))"),
                   insert_after("r4_mlp_classe", "print(sum(t.numel() for t in mlp.parameters()))"),
                   insert_after(None, "# bonus : trois couches\n"
                                      "profond = th.nn.Sequential(th.nn.Linear(d, 50), th.nn.ReLU(),\n"
                                      "                           th.nn.Linear(50, 50), th.nn.ReLU(),\n"
                                      "                           th.nn.Linear(50, p), th.nn.Softmax(dim=1)).double()\n"
                                      "opt_profond = th.optim.SGD(profond.parameters(), lr=1)\n"
                                      "for i in range(20):\n"
                                      "    perte = cout(Y, profond(X))\n"
                                      "    perte.backward()\n"
                                      "    opt_profond.step()\n"
                                      "    opt_profond.zero_grad()\n"
                                      "print(perte.item())")]),
    variant("cellules_reordonnees",
            "taux (Q3.5) calculés avant la courbe (Q3.3), expériences déplacées après SGD",
            edits=[move_after(["r3_precision", "q3_precision"], "q3_descente"),
                   move_after(["r3_experiences"], "q3_sgd")],
            keep_experiments=True),
]

# Second generation (issue #13), written by method: see generalisation.py (this package).
from tpkit.assignments.tp_reseaux_neurones import generalisation as _generalisation  # noqa: E402

VARIANTS += _generalisation.VARIANTS
