"""The witness protocol and the trusted executor's parsing (fast, no kernel): what a check receives,
how answers are read, which hidden lines the grader runs on its side."""
import os

import numpy as np
import pytest
import torch

from tpkit.checks import run_check
from tpkit.grading import trusted
from tpkit.witness import (LocalTransport, Opaque, OptimizerInfo, Remote, StudentError, Witness,
                           WitnessError, dumps, loads)


def witness(ns):
    return Witness(LocalTransport(ns))


def test_snapshots_keep_values_and_autograd_facts():
    W = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    (W * 2).sum().backward()
    nonleaf = torch.ones(2, requires_grad=True) * 3
    ns = {"W": W, "nonleaf": nonleaf, "a": np.arange(4), "n": np.int64(7), "f": np.float32(0.5),
          "lst": [1.0, torch.tensor(2.0)], "s": "texte", "d": {"k": 1}}
    w = witness(ns)
    got = w.get("W")
    assert torch.equal(got, W.detach()) and got.requires_grad and got.is_leaf
    assert torch.equal(got.grad, torch.full((3, 2), 2.0, dtype=torch.float64))
    assert got is not W and got.witness_id == id(W)
    nl = w.get("nonleaf")
    assert nl.requires_grad and not nl.is_leaf and nl.grad_fn is not None
    assert isinstance(w.get("a"), np.ndarray) and w.get("a").tolist() == [0, 1, 2, 3]
    assert w.get("n") == 7 and isinstance(w.get("n"), int) and w.get("f") == 0.5
    lst = w.get("lst")
    assert lst[0] == 1.0 and isinstance(lst[1], torch.Tensor)
    assert w.get("s") == "texte"
    assert isinstance(w.get("d"), Opaque) and w.get("d").type == "dict"
    assert w.get("absent", "défaut") == "défaut" and "W" in w and "absent" not in w


def test_student_objects_never_reach_the_check():
    class Egal:
        def __eq__(self, other):
            return True

    ns = {"x": Egal(), "f": lambda t: t * 2, "cls": torch.nn.Linear}
    w = witness(ns)
    assert isinstance(w.get("x"), Opaque) and w.get("x") != 1
    f = w.get("f")
    assert isinstance(f, Remote) and not f.is_class
    out = f(torch.ones(2))
    assert torch.equal(out, torch.full((2,), 2.0))
    assert w.get("cls").is_module_class


def test_calls_report_errors_as_data_and_give_vjp():
    def pred(X, W):
        return torch.softmax(X @ W, dim=1)

    def broken(*args):
        raise NotImplementedError()

    w = witness({"pred": pred, "broken": broken})
    X, W = torch.randn(4, 3, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    cot = torch.randn(4, 2, dtype=torch.float64)
    (gW,) = w.get("pred").vjp((X, W), (1,), cot)
    Wl = W.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(pred(X, Wl), Wl, cot)
    assert torch.allclose(gW, expected)
    with pytest.raises(StudentError) as err:
        w.get("broken")(X)
    assert err.value.etype == "NotImplementedError"


def test_models_optimizers_and_pushes():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ns = {"mlp": model, "opt": opt}
    w = witness(ns)
    info = w.get("mlp").module()
    assert [(lin.in_features, lin.out_features) for lin in info.linears] == [(3, 4), (4, 2)]
    assert info.c1 is None and len(info.params) == 4
    (found,) = w.optimizers()
    assert isinstance(found, OptimizerInfo) and found.is_sgd and found.groups[0]["hyper"]["lr"] == 0.5
    assert {p.witness_id for _, p in info.params} <= found.param_ids
    w.update(W=torch.zeros(2, 2, requires_grad=True), liste=[1.0, 2.0])
    assert ns["W"].requires_grad and ns["W"].is_leaf and ns["liste"] == [1.0, 2.0]
    w.run("def f(x):\n    return x + 1\n")
    assert ns["f"](1) == 2


def test_answers_are_data_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    import pickle
    with pytest.raises(WitnessError):
        loads(pickle.dumps({"answer": Evil()}))
    assert loads(dumps({"a": torch.ones(2), "b": [1, "x"]}))["b"] == [1, "x"]


def test_read_answer_refuses_links_fifos_and_oversize(tmp_path):
    target = tmp_path / "secret"
    target.write_bytes(b"gradebook")
    os.symlink(target, tmp_path / "link")
    with pytest.raises(WitnessError):
        trusted.read_answer(tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(WitnessError):
        trusted.read_answer(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * 2048)
    with pytest.raises(WitnessError):
        trusted.read_answer(tmp_path / "big", cap=1024)
    assert trusted.read_answer(target) == b"gradebook"


def test_plan_splits_hidden_checks_from_visible_lines():
    source = ("### BEGIN HIDDEN TESTS\nfrom tpkit.checks import verifier\nverifier(\"q2_pred\", globals())\n"
              "### END HIDDEN TESTS\nassert pred is not None\n")
    assert trusted.plan(source) == [("check", "q2_pred"), ("kernel", "assert pred is not None\n")]
    assert trusted.plan("x = 1") is None
    with pytest.raises(trusted.HiddenTestError):
        trusted.plan("### BEGIN HIDDEN TESTS\nimport os; print(open('gradebook.db').read())\n### END HIDDEN TESTS\n")


def test_kernel_transport_round_trip_and_timeouts(tmp_path):
    """KernelTransport with an 'execute' that runs the agent's serve() here, as the kernel would."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_tpkit_agent", trusted.AGENT_SOURCE)
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    agent._AGENT = agent.Agent({"n": 3})

    def execute(code):
        exec(code, {"__import__": lambda name: agent})
        return {"content": {"status": "ok"}}

    w = Witness(trusted.KernelTransport(tmp_path, execute))
    assert w.get("n") == 3
    assert not list(tmp_path.iterdir())  # request and answer files removed
    silent = Witness(trusted.KernelTransport(tmp_path, lambda code: None))
    with pytest.raises(WitnessError):
        silent.get("n")


def test_run_check_judges_and_repairs_without_trusting_the_namespace():
    """A failed check returns the French diagnostic and repairs; a hostile object fails cleanly."""
    class Egal(float):
        def __eq__(self, other):
            return True

    ns = {"n": Egal(1), "d": Egal(1), "p": Egal(1)}
    message = run_check("q1_dimensions", witness(ns))
    assert message and "vaut 1 au lieu de" in message
    assert ns["n"] == 1050 and type(ns["n"]) is int  # repaired with the reference value
    assert run_check("q1_dimensions", witness(ns)) is None
