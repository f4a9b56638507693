"""One notion of "a number", "a list of numbers" and "a figure of a curve" shared by every check
(issue #13): each form a student plausibly produces, seen through the witness as the checks see it.
Cheap: no notebook is executed."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tpkit.assignments.tp_reseaux_neurones import imposed  # noqa: E402
from tpkit.checks.tools import CheckFailed, as_number, number_list, require_number  # noqa: E402
from tpkit.witness import LocalTransport, Witness  # noqa: E402
from tpkit.witness.agent import figures  # noqa: E402

NUMBER_FORMS = {
    "float": lambda: 0.25,
    "int": lambda: 3,
    "numpy float64 scalar": lambda: np.float64(0.25),
    "numpy float32 scalar": lambda: np.float32(0.25),
    "0-d array float64": lambda: np.array(0.25),
    "0-d array float32 (loss.detach().float().numpy())": lambda: np.array(0.25, dtype=np.float32),
    "size-1 array (keepdims)": lambda: np.array([0.25]),
    "0-d tensor float64": lambda: torch.tensor(0.25, dtype=torch.float64),
    "0-d tensor float32": lambda: torch.tensor(0.25),
    "size-1 tensor": lambda: torch.tensor([[0.25]]),
    "0-d tensor float16": lambda: torch.tensor(0.25, dtype=torch.float16),
    "0-d tensor requiring grad": lambda: torch.tensor(0.25, requires_grad=True) * 1,
}


def seen(value):
    """The value as a check receives it (through the witness codec)."""
    return Witness(LocalTransport({"v": value})).get("v")


@pytest.mark.parametrize("form", sorted(NUMBER_FORMS))
def test_a_number_in_every_form(form):
    value = seen(NUMBER_FORMS[form]())
    assert as_number(value) == pytest.approx(0.25 if form != "int" else 3)
    assert require_number(value, "x") == pytest.approx(0.25 if form != "int" else 3)


@pytest.mark.parametrize("value", [True, "0.25", [0.25], np.array([0.25, 0.5]), torch.ones(2), None,
                                   torch.tensor(1 + 2j)])
def test_what_is_not_a_number(value):
    assert as_number(seen(value)) is None
    with pytest.raises(CheckFailed, match="doit être un nombre"):
        require_number(seen(value), "x")


LIST_FORMS = {
    "floats (loss.item())": lambda c: c,
    "0-d arrays (loss.detach().numpy())": lambda c: np.array(c),
    "0-d float32 arrays": lambda c: np.array(c, dtype=np.float32),
    "detached 0-d tensors (loss.detach())": lambda c: torch.tensor(c, dtype=torch.float64),
    "numpy scalars": lambda c: np.float64(c),
}


@pytest.mark.parametrize("form", sorted(LIST_FORMS))
def test_a_list_of_numbers_in_every_form(form):
    costs = [1.1, 0.5, 0.25]
    values = seen([LIST_FORMS[form](c) for c in costs])
    assert number_list(values, "lst_loss", 3) == pytest.approx(costs, rel=1e-7)
    assert number_list(tuple(values), "lst_loss") == pytest.approx(costs, rel=1e-7)


def test_a_list_of_numbers_refuses_attached_tensors_and_wrong_lengths():
    w = torch.tensor(1.0, requires_grad=True)
    with pytest.raises(CheckFailed, match="contient des tenseurs"):
        number_list(seen([w * 2, w * 3]), "lst_loss")
    with pytest.raises(CheckFailed, match="au lieu de 3"):
        number_list(seen([1.0, 2.0]), "lst_loss", 3)
    with pytest.raises(CheckFailed, match="doit être une liste"):
        number_list(seen(np.array([1.0, 2.0])), "lst_loss")
    with pytest.raises(CheckFailed, match="non finie"):
        number_list(seen([1.0, float("nan")]), "lst_loss")


CURVES = {
    "plot": lambda ax, y: ax.plot(y),
    "plot x, y with markers only": lambda ax, y: ax.plot(np.arange(1, len(y) + 1), np.array(y), "o"),
    "scatter": lambda ax, y: ax.scatter(range(len(y)), y, s=4),
    "step": lambda ax, y: ax.step(range(len(y)), y),
    "semilogy": lambda ax, y: ax.semilogy(y),
    "loglog": lambda ax, y: ax.loglog(np.arange(1, len(y) + 1), y),
}


@pytest.mark.parametrize("form", sorted(CURVES))
def test_a_figure_of_a_curve_in_every_form(form):
    costs = [1.1, 0.7, 0.5, 0.25, 0.2]
    figures.FIGURES.clear()
    fig, ax = plt.subplots()
    try:
        CURVES[form](ax, costs)
        figures.record(fig)
        curves = Witness(LocalTransport({})).figure_lines()
        assert any(c.shape == (5,) and np.allclose(c, costs, rtol=1e-9, atol=0) for c in curves), curves
    finally:
        plt.close(fig)
        figures.FIGURES.clear()


def test_a_histogram_is_not_a_curve():
    costs = [1.1, 0.7, 0.5, 0.25, 0.2]
    figures.FIGURES.clear()
    fig, ax = plt.subplots()
    try:
        ax.hist(costs)
        figures.record(fig)
        curves = Witness(LocalTransport({})).figure_lines()
        assert not any(c.shape == (5,) and np.allclose(c, costs) for c in curves)
    finally:
        plt.close(fig)
        figures.FIGURES.clear()


def test_graph_leaves_tell_a_tensor_of_section_2_from_a_fresh_one():
    W = torch.randn(3, 2, requires_grad=True)
    ns = {"W": W, "Yhat": torch.softmax(torch.ones(4, 3) @ W, dim=1)}
    w = Witness(LocalTransport(ns))
    assert w.get("W").witness_id in w.graph_leaf_ids("Yhat")
    ns["W"] = torch.randn(3, 2, requires_grad=True)
    assert w.get("W").witness_id not in w.graph_leaf_ids("Yhat")


def test_imposed_values_are_read_from_the_given_lines():
    cells = {"r3_descente": "np.random.seed(1)\n### BEGIN SOLUTION\nniter = 5\n### END SOLUTION\n"
                            "step = 1\nniter = 300\n",
             "r3_sgd": "np.random.seed(1)\nstep = 0.5\nniter = 200\n",
             "r4_mlp_manuel": "np.random.seed(2)\nnb_hidden = 100\nstep = 1\nniter = 200\n",
             "r4_mlp_apprentissage": "np.random.seed(3)\nstep = 1\nniter = 200\n",
             "r5_minibatch": "np.random.seed(4)\nstep = 1\nmb = 20\n"}
    values = imposed.parse(cells)
    assert values["r3_descente"] == {"seed": 1, "step": 1, "niter": 300}   # not the solution's line
    assert values["r3_sgd"]["step"] == 0.5
    with pytest.raises(ValueError, match="r5_minibatch"):
        imposed.parse(dict(cells, r5_minibatch="step = 1\n"))
    # the source notebook itself
    assert imposed.get("r3_descente", "niter") == 200 and imposed.get("r5_minibatch", "mb") == 20
