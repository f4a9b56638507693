"""Reference of tp_reseaux_neurones: the shared float64 computations and digitz data
(:mod:`tpkit.checks.reference`, also used by the bonus) and the values this TP imposes.

Imposed values live in the source notebook's given lines (:mod:`.imposed`); these names read them at
each use (module ``__getattr__``), from the cell of the TP where each one is given.
"""
from __future__ import annotations

import torch

from tpkit.assignments.tp_reseaux_neurones import imposed
from tpkit.checks.reference import *  # noqa: F401,F403  (the shared computations, under one name `ref`)
from tpkit.checks.reference import EPS, MLP_INIT_SCALE, P, data, mlp_forward  # noqa: F401

_IMPOSED = {"STEP": ("r3_descente", "step"), "NITER": ("r3_descente", "niter"),
            "NB_HIDDEN": ("r4_mlp_manuel", "nb_hidden"), "MB": ("r5_minibatch", "mb")}


def __getattr__(name):
    if name in _IMPOSED:
        return imposed.get(*_IMPOSED[name])
    raise AttributeError(name)


class MLP(torch.nn.Module):
    """The TP's final two-layer network (sizes of digitz)."""

    def __init__(self):
        super(MLP, self).__init__()
        d = data()["d"]
        nb_hidden = imposed.get(*_IMPOSED["NB_HIDDEN"])
        self.c1 = torch.nn.Linear(d, nb_hidden).double()
        self.c2 = torch.nn.Linear(nb_hidden, P).double()

    def forward(self, x):
        return mlp_forward(x, self.c1, self.c2)
