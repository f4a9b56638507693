"""Accuracies that decide points are measured on the hidden evaluation set (issue 23, item 1): a model
that recognises the shipped images (a lookup of `Xt`, and of `X` to fake a consistent training cost)
scores 100 % on the shipped test set but loses the points, while a trained network keeps them.
Checks run in this process through the witness (no notebook, no kernel)."""
import numpy as np
import pytest
import torch

from tpkit.assignments.tp_reseaux_neurones import reference as ref
from tpkit.assignments.tp_reseaux_neurones import thresholds as T
from tpkit.checks.common import mlp_test_accuracy
from tpkit.assignments.tp_reseaux_neurones.checks.section4_mlp import check_q4_mlp_apprentissage
from tpkit.assignments.tp_reseaux_neurones.checks.section5_minibatch import check_q5_minibatch
from tpkit.checks.tools import CheckFailed
from tpkit.witness import LocalTransport, Witness


class Lookup(torch.nn.Module):
    """The attack: the TP's layers, never trained; forward returns the one-hot label of every shipped
    image it recognises (training and test sets), the untrained network's output otherwise."""

    def __init__(self):
        super().__init__()
        D = ref.data()
        self.c1 = torch.nn.Linear(D["d"], ref.NB_HIDDEN).double()
        self.c2 = torch.nn.Linear(ref.NB_HIDDEN, ref.P).double()
        self.table = {row.tobytes(): label for x, y in ((D["x"], D["y"]), (D["xt"], D["yt"]))
                      for row, label in zip(x, y)}

    def forward(self, x):
        out = ref.mlp_forward(x, self.c1, self.c2)
        rows = x.detach().numpy()
        known = [(i, self.table[r.tobytes()]) for i, r in enumerate(rows) if r.tobytes() in self.table]
        if known:
            idx, labels = zip(*known)
            out = out.clone()
            out[list(idx)] = torch.eye(ref.P, dtype=out.dtype)[list(labels)]
        return out


def _fake_losses(n, rng):
    """A made-up noisy decreasing cost curve (half the steps rise), ending near the lookup's cost on X."""
    trend = np.linspace(1.1, 1e-3, n)
    return list(np.abs(trend + 0.02 * trend * rng.standard_normal(n)))


def _namespace(model_name, model, **extra):
    ns = {"step": 1, "mb": 20, "niter": 200, model_name: model,
          f"opt_{model_name}": torch.optim.SGD(model.parameters(), lr=1)}
    ns.update(extra)
    return ns


@pytest.fixture(scope="module")
def lookup():
    torch.manual_seed(0)
    return Lookup()


def test_the_lookup_scores_full_marks_on_the_shipped_test_set_only(lookup):
    assert mlp_test_accuracy(lookup) == 1.0                         # what the old checks measured
    hidden = mlp_test_accuracy(lookup, hidden=True)
    assert hidden < 0.5 and hidden < T.MLP_TEST_ACC_MIN < T.MB_TEST_ACC_MIN + 0.1


def test_a_lookup_model_loses_q4_10(lookup):
    rng = np.random.default_rng(0)
    ns = _namespace("mlp", lookup, lst_loss_mlp=_fake_losses(200, rng), taux_test_mlp=1.0)
    with pytest.raises(CheckFailed, match="exemples de test cachés"):
        check_q4_mlp_apprentissage(Witness(LocalTransport(ns)))


def test_a_lookup_model_loses_q5(lookup):
    rng = np.random.default_rng(1)
    losses = _fake_losses(1000, rng)
    ns = _namespace("mlp_mb", lookup, niter_mb=1000, lst_loss_mb=losses, taux_test_mb=1.0,
                    idx=torch.randint(1050, (20,)))
    with pytest.raises(CheckFailed, match="exemples de test cachés"):
        check_q5_minibatch(Witness(LocalTransport(ns)))


def test_a_trained_network_keeps_q5():
    """The honest counterpart of the lookup: the reference minibatch loop, same namespace shape."""
    torch.set_num_threads(1)
    R, D = ref.tensors(), ref.data()
    torch.manual_seed(4)
    mlp = ref.MLP()
    gen = torch.Generator().manual_seed(4)
    losses = ref.train(list(mlp.parameters()), mlp, R["X"], R["Y"], 1000, ref.STEP, batch=20, gen=gen)
    with torch.no_grad():
        rate = ref.accuracy(mlp(R["Xt"]), D["yt"])
    ns = _namespace("mlp_mb", mlp, niter_mb=1000, lst_loss_mb=losses, taux_test_mb=rate,
                    idx=torch.randint(1050, (20,)))
    check_q5_minibatch(Witness(LocalTransport(ns)))
    assert mlp_test_accuracy(mlp, hidden=True) >= T.MB_TEST_ACC_MIN


def test_an_error_on_hidden_images_is_reported_without_its_message():
    class Leaky(torch.nn.Module):
        def forward(self, x):
            raise ValueError(f"fuite {x[0, :5].tolist()}")

    with pytest.raises(CheckFailed) as info:
        mlp_test_accuracy(Witness(LocalTransport({"m": Leaky()})).get("m"), hidden=True)
    assert "fuite" not in str(info.value) and "ValueError" not in str(info.value)
    assert "exemples de test que vous n'avez pas" in str(info.value)
