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


def _agent_module(ns):
    import importlib.util
    spec = importlib.util.spec_from_file_location("_tpkit_agent", trusted.AGENT_SOURCE)
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    agent._AGENT = agent.Agent(ns)
    return agent


class ThreadLink:
    """A kernel for KernelTransport: each execute request runs in a thread of this process, as the
    kernel's shell would run it (`run` replaces the agent's session to play a broken kernel)."""

    def __init__(self, agent, timeout=10.0, run=None):
        self.agent, self.timeout, self.run = agent, timeout, run
        self.threads, self.interrupted = [], 0

    def start(self, code):
        import ast
        import threading
        args = ast.literal_eval(code[code.index("session(") + len("session"):])
        thread = threading.Thread(target=self.run or self.agent.session, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)
        return len(self.threads) - 1

    def finish(self, msg_id):
        self.threads[msg_id].join(self.timeout)
        return None if self.threads[msg_id].is_alive() else {"content": {"status": "ok"}}

    def check_alive(self):
        pass

    def interrupt(self):
        self.interrupted += 1


def test_kernel_transport_one_execute_request_per_check(tmp_path):
    """A check's requests share one execute request (the agent's session); closing it ends the
    session and leaves nothing in the exchange folder."""
    link = ThreadLink(_agent_module({"n": 3, "lst": [1, 2]}))
    transport = trusted.KernelTransport(tmp_path, link)
    w = Witness(transport)
    assert w.get("n") == 3 and w.get("lst") == [1, 2] and w.get("n") == 3
    assert len(link.threads) == 1
    transport.close()
    assert not link.threads[0].is_alive()
    assert not list(tmp_path.iterdir())  # request and answer files, FIFOs removed
    assert Witness(transport).get("n") == 3 and len(link.threads) == 2  # a new check, a new session
    transport.close()


def test_kernel_transport_timeouts_and_broken_sessions(tmp_path):
    """A kernel that never serves: the request fails after the timeout and the kernel is interrupted;
    a session that stops early fails at once; a dead kernel is reported as such."""
    import time
    agent = _agent_module({"n": 3})
    silent = ThreadLink(agent, timeout=0.3, run=lambda bell, done: time.sleep(0.5))
    transport = trusted.KernelTransport(tmp_path, silent)
    t0 = time.monotonic()
    with pytest.raises(WitnessError, match="délai dépassé"):
        Witness(transport).get("n")
    assert 0.3 <= time.monotonic() - t0 < 5 and silent.interrupted == 1
    assert not list(tmp_path.iterdir())

    def stops(bell, done):  # opens its end and leaves (the student's code replaced the session...)
        open(done, "wb").close()
    quitter = ThreadLink(agent, timeout=30, run=stops)
    t0 = time.monotonic()
    with pytest.raises(WitnessError, match="interrompu"):
        Witness(trusted.KernelTransport(tmp_path, quitter)).get("n")
    assert time.monotonic() - t0 < 5 and quitter.interrupted == 0

    def scribbles(bell, done):  # a line with no end, then nothing
        with open(done, "wb") as f:
            f.write(b"x" * 10_000)
        time.sleep(1)
    with pytest.raises(WitnessError, match="invalide"):
        Witness(trusted.KernelTransport(tmp_path, ThreadLink(agent, timeout=30, run=scribbles))).get("n")

    class Dead(Exception):
        pass

    dead = ThreadLink(agent, timeout=5, run=lambda bell, done: time.sleep(0.5))
    dead.check_alive = lambda: (_ for _ in ()).throw(Dead())
    trusted._Session.POLL_S = 0.1
    try:
        with pytest.raises(Dead):
            Witness(trusted.KernelTransport(tmp_path, dead)).get("n")
    finally:
        trusted._Session.POLL_S = 1.0
    assert not list(tmp_path.iterdir())


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
