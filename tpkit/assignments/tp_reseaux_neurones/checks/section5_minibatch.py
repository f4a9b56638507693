"""Hidden checks of section 5: minibatch SGD of tp_reseaux_neurones (one check, and its repair, per
graded question)."""
from __future__ import annotations


import numpy as np
import torch

from tpkit.assignments.tp_reseaux_neurones import imposed, reexec
from tpkit.assignments.tp_reseaux_neurones import reference as ref
from tpkit.assignments.tp_reseaux_neurones import thresholds as T
from tpkit.checks.tools import (at_least, fail, get, number_list, require_number, require_tensor)
from tpkit.checks.common import (check_asked_values, check_sgd, find_sgd, is_module, mlp_test_accuracy, student_rate)
from tpkit.checks.registry import check


@check("q5_minibatch")
def check_q5_minibatch(ns):
    D = ref.data()
    cell = imposed.values()["r5_minibatch"]
    mb = cell["mb"]
    check_asked_values(ns, (("mb", mb), ("step", cell["step"])))
    idx = get(ns, "idx", "indices du dernier minibatch")
    if isinstance(idx, np.ndarray) and idx.dtype.kind in "iu":  # drawn with np.random.randint
        idx = torch.from_numpy(idx.astype(np.int64))
    idx = require_tensor(idx, "idx")
    if tuple(idx.shape) != (mb,):
        fail(f"`idx` a la taille {tuple(idx.shape)} au lieu de ({mb},) : tirez mb indices "
             "avec th.randint(n, (mb,)).")
    if idx.dtype not in (torch.int64, torch.int32) or int(idx.min()) < 0 or int(idx.max()) >= D["n"]:
        fail("`idx` doit contenir des indices entiers entre 0 et n − 1.")
    niter_mb = int(require_number(get(ns, "niter_mb"), "niter_mb"))
    losses = number_list(get(ns, "lst_loss_mb"), "lst_loss_mb", niter_mb)
    if not at_least(niter_mb, T.MB_NITER_MIN):
        fail(f"niter_mb = {niter_mb} itérations ne suffisent pas à converger avec des minibatchs "
             f"de {mb} exemples.")
    rises = sum(b > a for a, b in zip(losses, losses[1:])) / (len(losses) - 1)
    if not at_least(rises, T.MB_MIN_RISE_SHARE):
        fail("le coût `lst_loss_mb` n'est pas bruité : tirez un nouveau minibatch aléatoire "
             "(th.randint) à chaque itération, dans la boucle.")
    k = max(1, len(losses) // 10)
    if not np.mean(losses[-k:]) < np.mean(losses[:k]):
        fail("le coût `lst_loss_mb` ne décroît pas en moyenne le long des itérations.")
    model = get(ns, "mlp_mb", "réseau appris par minibatchs")
    if not is_module(model):
        fail("`mlp_mb` doit être le réseau MLP() appris par minibatchs.")
    opt = find_sgd(ns, [p for _, p in model.module().params], "mlp_mb.parameters()")
    check_sgd(opt, cell["step"], "mlp_mb.parameters()")
    student_rate(ns, "taux_test_mb", mlp_test_accuracy(model))
    acc = mlp_test_accuracy(model, hidden=True)
    if not at_least(acc, T.MB_TEST_ACC_MIN):
        fail(f"taux de bonne reconnaissance sur des exemples de test cachés {acc:.3f} < {T.MB_TEST_ACC_MIN} : "
             "augmentez niter_mb pour converger.")
    if reexec.active(ns):  # trusted grading: the loop run again from the grader's state
        reexec.judge_minibatch(ns, "r5_minibatch", 75, cell["step"], mb)
