"""Catalogue of `tp_soyez_curieux`, valid variants: each one change to the perfect submission that must get
full marks (its mistakes: mistakes.py).
"""
from __future__ import annotations

from tpkit.catalogue.entries import replace_cell, variant

VARIANTS = [
    variant("mlp_sequential", "MLP écrit avec th.nn.Sequential et des modules d'activation",
            edits=[replace_cell("r6_mlp", '''\
class MLP(th.nn.Module):

    def __init__(self, d, nb_hidden, p, nb_couches=2, activation="relu"):
        super(MLP, self).__init__()
        Act = {"relu": th.nn.ReLU, "tanh": th.nn.Tanh, "sigmoid": th.nn.Sigmoid}[activation]
        couches, entree = [], d
        for k in range(nb_couches - 1):
            couches += [th.nn.Linear(entree, nb_hidden), Act()]
            entree = nb_hidden
        couches += [th.nn.Linear(entree, p), th.nn.Softmax(dim=1)]
        self.reseau = th.nn.Sequential(*couches).double()

    def forward(self, x):
        return self.reseau(x)
''')]),
    variant("mlp_add_module_getattr", "couches ajoutées une à une (add_module), activation par getattr(th, ...)",
            edits=[replace_cell("r6_mlp", '''\
class MLP(th.nn.Module):

    def __init__(self, d, nb_hidden, p, nb_couches=2, activation="relu"):
        super(MLP, self).__init__()
        self.nom_activation = activation
        self.nb = nb_couches
        for k in range(nb_couches):
            entree = d if k == 0 else nb_hidden
            sortie = p if k == nb_couches - 1 else nb_hidden
            self.add_module(f"c{k}", th.nn.Linear(entree, sortie, dtype=th.float64))

    def forward(self, x):
        f = getattr(th, self.nom_activation)
        for k in range(self.nb - 1):
            x = f(getattr(self, f"c{k}")(x))
        return th.nn.functional.softmax(getattr(self, f"c{self.nb - 1}")(x), dim=-1)
''')]),
    variant("entrainer_a_la_main", "entrainer sans optimiseur : pas à la main sous no_grad, float(loss), "
            "gradients remis à zéro en début d'itération, minibatch par permutation",
            edits=[replace_cell("r6_entrainer", '''\
def entrainer(modele, X, Y, niter, step, mb=None):
    lst_loss = []
    for i in range(niter):
        modele.zero_grad()
        if mb:
            idx = th.randperm(X.shape[0])[:mb]
            loss = cout(Y[idx], modele(X[idx]))
        else:
            loss = cout(Y, modele(X))
        lst_loss.append(float(loss))
        loss.backward()
        with th.no_grad():
            for w in modele.parameters():
                w -= step * w.grad
    return lst_loss
''')]),
    variant("taux_pourcent_time_time", "taux de l'expérience des neurones en pourcentage, durées mesurées avec "
            "time.time()",
            {"r6_neurones": [("        taux.append(precision(modele, Xt, yt))",
                              "        taux.append(100 * precision(modele, Xt, yt))")],
             "r6_minibatch": [("        debut = time.perf_counter()", "        debut = time.time()"),
                              ("durees.append(time.perf_counter() - debut)", "durees.append(time.time() - debut)")]},
            edits=[]),
    variant("cnn_lenet_fonctionnel", "CNN à deux convolutions, pooling moyen par th.nn.functional, sortie en "
            "log-softmax exponentiée",
            edits=[replace_cell("r6_cnn", '''\
import torch.nn.functional as F


class CNN(th.nn.Module):

    def __init__(self):
        super(CNN, self).__init__()
        self.conv1 = th.nn.Conv2d(1, 6, 3, padding=1).double()
        self.conv2 = th.nn.Conv2d(6, 12, 3).double()
        self.fc = th.nn.Linear(12 * 6 * 6, 3).double()

    def forward(self, x):
        h = F.avg_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return th.exp(F.log_softmax(self.fc(th.flatten(h, 1)), dim=1))
''')]),
    variant("graines_differentes", "autres graines dans les cellules d'expériences et du CNN",
            {"r6_neurones": [("th.manual_seed(1)", "th.manual_seed(11)")],
             "r6_cnn_apprentissage": [("th.manual_seed(5)", "th.manual_seed(55)")]}),
]

