"""Catalogue of `tp_pima_jouet`, valid variants: each one change to the perfect submission that must get
full marks (its mistakes: mistakes.py).
"""
from __future__ import annotations

from tpkit.catalogue.entries import variant
from tpkit.assignments.tp_pima_jouet.mistakes import _DRAW, _MLP_FORWARD, _MLP_INIT, _SGD_LOOP

VARIANTS = [
    variant("standardisation_ddof1", "écart-type non biaisé (ddof=1, comme torch.std)",
            {"r1_standardisation": [("x_app.std(axis=0)", "x_app.std(axis=0, ddof=1)")]}),
    variant("onehot_np_eye", "one_hot avec np.eye(p)[y]",
            {"r1_onehot": [("    Y = np.zeros((len(y), p))\n    Y[np.arange(len(y)), y] = 1\n    return Y",
                            "    return np.eye(p)[y]")]}),
    variant("onehot_torch", "one_hot avec torch.nn.functional.one_hot (renvoie un tenseur)",
            {"r1_onehot": [("    Y = np.zeros((len(y), p))\n    Y[np.arange(len(y)), y] = 1\n    return Y",
                            "    return th.nn.functional.one_hot(th.as_tensor(y), p).double()"),
                           ("Y, Yt = th.tensor(one_hot(y, p)), th.tensor(one_hot(yt, p))",
                            "Y, Yt = one_hot(y, p), one_hot(yt, p)")],
             "r4_donnees": [("Y2, Yt2 = th.tensor(one_hot(y2, p2)), th.tensor(one_hot(yt2, p2))",
                             "Y2, Yt2 = one_hot(y2, p2), one_hot(yt2, p2)")]}),
    variant("pred_fonctionnelle", "X @ W et torch.nn.functional.softmax",
            {"r2_pred": [("th.softmax(th.mm(X, W) + B, dim=1)", "th.nn.functional.softmax(X @ W + B, dim=-1)")]}),
    variant("cout_nll_loss", "coût via torch.nn.functional.nll_loss sur le log des probabilités",
            {"r2_cout": [("-th.mean(th.sum(Y * th.log(Yhat + 1e-16), dim=1))",
                          "th.nn.functional.nll_loss(th.log(Yhat + 1e-16), Y.argmax(dim=1))")]}),
    variant("liste_float_python", "coûts ajoutés avec float(loss), comme dans l'énoncé (avertissement de torch)",
            {"r2_descente": [("lst_loss.append(loss.item())", "lst_loss.append(float(loss))")],
             "r2_sgd": [("lst_loss.append(loss.item())", "lst_loss.append(float(loss))")]}),
    variant("sgd_zero_grad_en_tete", "zero_grad() au début de chaque itération",
            {"r2_sgd": [(_SGD_LOOP, "        optimiseur.zero_grad()\n        loss = cout(Y, pred(X, W, B))\n"
                                    "        lst_loss.append(loss.item())\n        loss.backward()\n        optimiseur.step()")]}),
    variant("mlp_sequentiel", "réseau écrit avec th.nn.Sequential",
            {"r3_mlp": [(_MLP_INIT, "        self.reseau = th.nn.Sequential(th.nn.Linear(d, nb_hidden), th.nn.ReLU(),\n"
                                    "                                       th.nn.Linear(nb_hidden, p), th.nn.Softmax(dim=1)).double()"),
                        (_MLP_FORWARD, "        return self.reseau(x)")]}),
    variant("minibatch_randperm", "minibatch tiré sans remise avec th.randperm",
            {"r3_minibatch": [(_DRAW, "        idx = th.randperm(len(X))[:mb]\n")]}),
    variant("regions_pcolormesh", "régions dessinées avec pcolormesh",
            {"r4_regions": [('ax.contourf(xx, yy, Z, levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.3, cmap="brg")',
                             'ax.pcolormesh(xx, yy, Z, alpha=0.3, cmap="brg", shading="auto")')]}),
]
