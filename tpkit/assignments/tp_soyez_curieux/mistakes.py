"""Catalogue of the bonus assignment `tp_soyez_curieux`: realistic mistakes and valid variants, each
one change to the perfect submission, graded like every assignment's catalogue (`tpkit.catalogue.runner`).

    python -m tpkit.catalogue --assignment tp_soyez_curieux [--workers N] [--only a,b]

prints the matrix entry × question, sensitivity, specificity and blast radius; exit 1 on a problem.
"""
from __future__ import annotations

from tpkit import paths
from tpkit.catalogue.entries import mistake

ASSIGNMENT = "tp_soyez_curieux"
SOURCE = paths.source_dir(ASSIGNMENT)
SOURCE_NOTEBOOK = paths.source_notebook(ASSIGNMENT)
RELEASE_NOTEBOOK = paths.release_notebook(ASSIGNMENT)

_ACT = '        self.activation = {"relu": th.relu, "tanh": th.tanh, "sigmoid": th.sigmoid}[activation]'
_SIZES = "        tailles = [d] + [nb_hidden] * (nb_couches - 1) + [p]"
_LAYERS = "th.nn.Linear(a, b).double()"
_TRAIN_N = "        entrainer(modele, X, Y, niter, 0.5)\n        taux.append(precision(modele, Xt, yt))"

MISTAKES = [
    # ------------------------------------------------------------ Q6.1 MLP
    mistake("mlp_activation_ignoree", "MLP utilise toujours ReLU, quel que soit l'argument activation",
            {"r6_mlp": [(_ACT, "        self.activation = th.relu")]},
            loses="q6_mlp", message="utilise l'activation relu au lieu de"),
    mistake("mlp_liste_python", "couches rangées dans une liste Python (paramètres invisibles)",
            {"r6_mlp": [("th.nn.ModuleList([", "list([")]},
            loses="q6_mlp", message="contient 0 couche(s) th.nn.Linear"),
    mistake("mlp_sans_softmax", "forward renvoie les scores de la dernière couche, sans softmax",
            {"r6_mlp": [("        return th.softmax(self.couches[-1](x), dim=1)",
                         "        return self.couches[-1](x)")]},
            loses="q6_mlp", message="ne somment pas à 1"),
    mistake("mlp_activation_derniere_couche", "activation appliquée aussi après la dernière couche",
            {"r6_mlp": [("        return th.softmax(self.couches[-1](x), dim=1)",
                         "        return th.softmax(self.activation(self.couches[-1](x)), dim=1)")]},
            loses="q6_mlp", message="la softmax après la dernière couche seulement"),
    mistake("mlp_une_couche_de_trop", "nb_couches couches cachées au lieu de nb_couches couches en tout",
            {"r6_mlp": [(_SIZES, "        tailles = [d] + [nb_hidden] * nb_couches + [p]")]},
            loses="q6_mlp", message="au lieu de nb_couches"),
    mistake("mlp_float32", "couches laissées en float32 (sans .double())",
            {"r6_mlp": [(_LAYERS, "th.nn.Linear(a, b)")]},
            loses="q6_mlp", message="double précision"),
    # ------------------------------------------------------------ Q6.2 entrainer
    mistake("entrainer_sans_zero_grad", "gradients jamais remis à zéro dans entrainer",
            {"r6_entrainer": [("        optimiseur.zero_grad()\n", "")]},
            loses="q6_entrainer", message="ne suit pas la descente de gradient attendue"),
    mistake("entrainer_mb_ignore", "entrainer calcule toujours le coût sur toutes les données",
            {"r6_entrainer": [("        if mb is None:", "        if True:")]},
            loses="q6_entrainer", message="calcule le coût sur tous les exemples"),
    mistake("entrainer_minibatch_fixe", "minibatch tiré une seule fois, avant la boucle",
            {"r6_entrainer": [("    for i in range(niter):\n        if mb is None:",
                               "    if mb is not None:\n        idx = th.randint(X.shape[0], (mb,))\n"
                               "    for i in range(niter):\n        if mb is None:"),
                              ("            idx = th.randint(X.shape[0], (mb,))\n", "")]},
            loses="q6_entrainer", message="n'est pas bruité"),
    mistake("entrainer_pas_fixe", "pas de l'optimiseur fixé à 0.5 au lieu de l'argument step",
            {"r6_entrainer": [("lr=step", "lr=0.5")]},
            loses="q6_entrainer", message="ne suit pas la descente de gradient attendue"),
    mistake("entrainer_cout_apres_pas", "coût enregistré après le pas de gradient (recalculé)",
            {"r6_entrainer": [("        lst_loss.append(loss.item())\n", ""),
                              ("        optimiseur.zero_grad()\n",
                               "        optimiseur.zero_grad()\n        lst_loss.append(cout(Yb, modele(Xb)).item())\n")]},
            loses="q6_entrainer", message="calculé avant le pas de gradient"),
    # ------------------------------------------------------------ Q6.3-Q6.9 experiments
    mistake("neurones_nb_hidden_ignore", "experience_neurones crée toujours 100 neurones cachés",
            {"r6_neurones": [("        modele = MLP(d, nb_hidden, p, 2)", "        modele = MLP(d, 100, p, 2)")]},
            loses="q6_neurones", message="au lieu de"),
    mistake("neurones_taux_apprentissage", "taux mesuré sur les données d'apprentissage",
            {"r6_neurones": [("taux.append(precision(modele, Xt, yt))", "taux.append(precision(modele, X, y))")]},
            loses="q6_neurones", message="calculez le taux en test de chaque réseau"),
    mistake("neurones_pas_appris", "réseaux créés mais jamais appris",
            {"r6_neurones": [(_TRAIN_N, "        taux.append(precision(modele, Xt, yt))")]},
            loses="q6_neurones", message="aucun des réseaux renvoyés n'a appris"),
    mistake("couches_nb_couches_ignore", "experience_couches crée toujours 2 couches",
            {"r6_couches": [("        modele = MLP(d, 30, p, nb_couches)", "        modele = MLP(d, 30, p)")]},
            loses="q6_couches", message="au lieu de nb_couches"),
    mistake("couches_modeles_non_renvoyes", "experience_couches ne renvoie que les taux",
            {"r6_couches": [("    return taux, modeles", "    return taux, taux")]},
            loses="q6_couches", message="la liste des 3 réseaux appris"),
    mistake("activations_argument_oublie", "experience_activations n'utilise pas l'activation demandée",
            {"r6_activations": [("MLP(d, 30, p, nb_couches, activation)", "MLP(d, 30, p, nb_couches)")]},
            loses="q6_activations", message="n'utilise pas"),
    mistake("activations_profondeur_fixe", "experience_activations crée toujours 5 couches",
            {"r6_activations": [("MLP(d, 30, p, nb_couches, activation)", "MLP(d, 30, p, 5, activation)")]},
            loses="q6_activations", message="au lieu de nb_couches = 3"),
    mistake("minibatch_mb_oublie", "experience_minibatch apprend sans minibatch",
            {"r6_minibatch": [("entrainer(modele, X, Y, niter, 0.5, mb=mb)", "entrainer(modele, X, Y, niter, 0.5)")]},
            loses="q6_minibatch", message="avec mb = 5 le coût n'est pas bruité"),
    mistake("minibatch_durees_en_ms", "durées en millisecondes",
            {"r6_minibatch": [("durees.append(time.perf_counter() - debut)",
                               "durees.append(1000 * (time.perf_counter() - debut))")]},
            loses="q6_minibatch", message="ne sont pas celles des apprentissages"),
    # ------------------------------------------------------------ Q6.11-Q6.12 CNN
    mistake("cnn_sans_pooling", "CNN sans couche de pooling",
            {"r6_cnn": [("        self.pool = th.nn.MaxPool2d(2)\n", ""),
                        ("8 * 12 * 12", "8 * 24 * 24"), ("self.pool(th.relu(self.conv(x)))", "th.relu(self.conv(x))")]},
            loses="q6_cnn", message="aucune couche de pooling"),
    mistake("cnn_sans_softmax", "CNN renvoie les scores sans softmax",
            {"r6_cnn": [("        return th.softmax(self.lin(h.reshape(h.shape[0], -1)), dim=1)",
                         "        return self.lin(h.reshape(h.shape[0], -1))")]},
            loses="q6_cnn", message="ne somment pas à 1"),
    mistake("cnn_float32", "couches du CNN en float32",
            {"r6_cnn": [("th.nn.Conv2d(1, 8, 5).double()", "th.nn.Conv2d(1, 8, 5)"),
                        ("th.nn.Linear(8 * 12 * 12, p).double()", "th.nn.Linear(8 * 12 * 12, p)")]},
            loses="q6_cnn", message="double précision"),
    mistake("cnn_trop_gros", "CNN avec une couche cachée de 512 neurones (≈ 590 000 paramètres)",
            {"r6_cnn": [("        self.lin = th.nn.Linear(8 * 12 * 12, p).double()",
                         "        self.cache = th.nn.Linear(8 * 12 * 12, 512).double()\n"
                         "        self.lin = th.nn.Linear(512, p).double()"),
                        ("self.lin(h.reshape(h.shape[0], -1))", "self.lin(th.relu(self.cache(h.reshape(h.shape[0], -1))))")]},
            loses="q6_cnn", message="paramètres : restez entre"),
    mistake("cnn_pas_appris", "CNN créé mais jamais appris",
            {"r6_cnn_apprentissage": [("lst_loss_cnn = entrainer(cnn, Ximg, Y, 100, 0.2, mb=50)", "lst_loss_cnn = []")]},
            loses="q6_cnn_apprentissage", message="pour le réseau convolutionnel"),
    mistake("cnn_taux_apprentissage", "taux_test_cnn mesuré sur les images d'apprentissage",
            {"r6_cnn_apprentissage": [("taux_test_cnn = precision(cnn, Xtimg, yt)",
                                       "taux_test_cnn = precision(cnn, Ximg, y)")]},
            loses="q6_cnn_apprentissage", message="`taux_test_cnn` vaut"),
]
