"""The bonus's CNN training cell (Q6.12) re-run from a state the grader chooses (trusted grading only;
issue 23, item 2).

The other training questions of the bonus are functions the checks call on configurations drawn from
the course secret (`entrainer`, the experiments). The CNN is trained by a cell: in trusted grading the
check runs that cell again, as submitted, with the training set replaced by `reexec.SUBSET` shipped
training images chosen and ordered by the secret, *their classes renamed* by a secret shift (every class
becomes another one: 1 → "7", 7 → "8", 8 → "1" or the other way round), seeds mixed with the secret. The
network the cell then holds in `cnn` (a new object: the notebook's own is put back) must have learnt the
renamed classes: its accuracy on the hidden images (never shipped), renamed the same way, must reach
`thresholds.RERUN_CNN_ACC_MIN`. A network trained on the test set, or one copied from the notebook's run, learnt
the true classes and scores near 0; one that learns from the training set it is given scores like the
reference. The witness also records the images of each call of `cnn` (flattened to rows, seen through
the secret's probe): its training minibatches of `mb` images must come from the training set given and
visit nearly all of it (`tpkit.checks.thresholds.RERUN_MB_COVERAGE_MIN`, as the other minibatch questions). A
network trained on a fixed subset (`Ximg[:50]` at every iteration) can still reach the accuracy, and
fails there.
"""
from __future__ import annotations

import torch

from tpkit.assignments.tp_soyez_curieux import reference as C
from tpkit.assignments.tp_soyez_curieux import thresholds as T
from tpkit.checks import reexec
from tpkit.checks import reference as ref
from tpkit.checks.common import gen, hidden_call, is_module
from tpkit.checks.reexec import RERUN
from tpkit.checks.tools import at_least, fail
from tpkit.witness import StudentError

KEY = 85


def judge_cnn(ns, cell_id: str = "r6_cnn_apprentissage") -> None:
    code = ns.cells.get(cell_id)
    if code is None:
        fail(f"la cellule de réponse ({cell_id}) est introuvable dans le notebook rendu.")
    st = reexec.draw_state(ns, KEY)
    shift = gen(ns, KEY, 1).integer(1, ref.P - 1)
    labels = (st.labels + shift) % ref.P
    push = dict(X=st.X, Y=torch.tensor(ref.one_hot(labels)), x=st.X.numpy().copy(), y=labels.copy(),
                n=reexec.SUBSET)
    try:
        run = ns.rerun(code, push, st.seed, keep=("cnn",), watch="cnn", probe=st.probe)
    except StudentError as exc:
        fail(f"{RERUN}, elle lève une erreur ({exc.etype}) : la cellule doit utiliser les variables de "
             "l'énoncé (X, Y…), sans valeurs écrites en dur.")
    model = run.values.get("cnn")
    if not is_module(model):
        fail(f"{RERUN}, `cnn` n'est plus un réseau : créez-le et apprenez-le dans la cellule.")
    images = ref.hidden_tensor().reshape(-1, 1, 28, 28)
    out = hidden_call("cnn", lambda: model(images))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (images.shape[0], ref.P):
        fail(f"{RERUN}, `cnn` ne renvoie pas un tenseur de taille ({images.shape[0]}, {ref.P}).")
    acc = ref.accuracy(out.detach().to(torch.float64), (ref.hidden()["yh"] + shift) % ref.P)
    if not at_least(acc, T.RERUN_CNN_ACC_MIN):
        fail(f"{RERUN}, avec des classes renommées, le réseau `cnn` appris par la cellule ne reconnaît que "
             f"{acc:.0%} des images de test cachées : la cellule doit créer le réseau et l'apprendre sur "
             "les données d'apprentissage X, Y (pas sur Xt, Yt, ni un réseau appris auparavant).")
    _judge_minibatches(run, st)


def _judge_minibatches(run, st) -> None:
    """The training calls of `cnn` (autograd on) of C.CNN_MB images: images of the training set given
    (not of the test set), nearly all of them visited."""
    batches = reexec.training_batches(run, "cnn", C.CNN_MB)
    if not batches:
        fail(f"{RERUN}, le réseau `cnn` n'a reçu aucun minibatch de mb = {C.CNN_MB} images : "
             f"apprenez-le avec entrainer(cnn, Ximg, Y, {C.CNN_NITER}, {C.CNN_STEP}, mb={C.CNN_MB}).")
    rows, from_test = reexec.batch_origin(batches, st.X, st.probe, ref.tensors()["Xt"])
    if from_test:
        fail(f"{RERUN}, des minibatchs contiennent des images de l'ensemble de test Xtimg : tirez-les "
             "dans les images d'apprentissage Ximg.")
    if (rows < 0).any():
        fail(f"{RERUN}, des minibatchs contiennent des images qui ne sont pas des images de X : formez "
             "Ximg avec X.reshape(-1, 1, 28, 28).")
    distinct, enough = reexec.covers(rows, reexec.SUBSET)
    if not enough:
        fail(f"{RERUN}, les {len(batches)} minibatchs du réseau `cnn` n'ont utilisé que {distinct} images "
             f"différentes sur n = {reexec.SUBSET} : apprenez-le sur toutes les images d'apprentissage Ximg, Y.")
