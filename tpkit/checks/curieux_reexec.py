"""The bonus's CNN training cell (Q6.12) re-run from a state the grader chooses (trusted grading only;
issue 23, item 2).

The other training questions of the bonus are functions the checks call on configurations drawn from
the course secret (`entrainer`, the experiments). The CNN is trained by a cell: in trusted grading the
check runs that cell again, as submitted, with the training set replaced by `reexec.SUBSET` shipped
training images chosen and ordered by the secret, *their classes renamed* by a secret shift (every class
becomes another one: 1 → "7", 7 → "8", 8 → "1" or the other way round), seeds mixed with the secret. The
network the cell then holds in `cnn` (a new object: the notebook's own is put back) must have learnt the
renamed classes: its accuracy on the hidden images (never shipped), renamed the same way, must reach
`RERUN_CNN_ACC_MIN`. A network trained on the test set, or one copied from the notebook's run, learnt
the true classes and scores near 0; one that learns from the training set it is given scores like the
reference. The witness cannot record which rows a convolutional network received (it records 2-D
inputs only), so a fixed subset is judged by its accuracy alone.
"""
from __future__ import annotations

import torch

from tpkit.checks import reexec
from tpkit.checks import reference as ref
from tpkit.checks.common import gen, hidden_call, is_module
from tpkit.checks.reexec import RERUN
from tpkit.checks.tools import at_least, fail
from tpkit.witness import StudentError

KEY = 85
#: Accuracy of the re-run's CNN on the 1,500 hidden images, classes renamed (256 training images,
#: niter = 100, mb = 50): the reference and the catalogue's CNN variants reach 0.935-0.973 over 10
#: secrets each (tests/test_reexec_curieux.py); trained on the test set: 0.007-0.021.
RERUN_CNN_ACC_MIN = 0.8


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
        run = ns.rerun(code, push, st.seed, keep=("cnn",))
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
    if not at_least(acc, RERUN_CNN_ACC_MIN):
        fail(f"{RERUN}, avec des classes renommées, le réseau `cnn` appris par la cellule ne reconnaît que "
             f"{acc:.0%} des images de test cachées : la cellule doit créer le réseau et l'apprendre sur "
             "les données d'apprentissage X, Y (pas sur Xt, Yt, ni un réseau appris auparavant).")

