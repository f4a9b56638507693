"""The witness protocol and the trusted executor's parsing (fast, no kernel): what a check receives,
how answers are read, which hidden lines the grader runs on its side."""
import os

import numpy as np
import pytest
import torch

from tpkit.checks import run_check
from tpkit.grading import trusted
from tpkit.witness import (AnswerRefused, LocalTransport, Opaque, OptimizerInfo, Remote, StudentError,
                           Witness, WitnessError, dumps, loads)


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
    """A copy of the agent's package loaded from its files, as a kernel loads it (its own `_AGENT`)."""
    import importlib.util
    import sys
    folder = trusted.AGENT_PACKAGE
    spec = importlib.util.spec_from_file_location("_tpkit_agent", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    agent = importlib.util.module_from_spec(spec)
    sys.modules["_tpkit_agent"] = agent  # while it loads: its parts import one another relatively
    try:
        spec.loader.exec_module(agent)
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "_tpkit_agent"]:
            sys.modules.pop(name)
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


# ---------------------------------------------------------------------- decoding budget (issue 22)
def _answer(value) -> bytes:
    return dumps({"status": "ok", "answer": {"found": True, "value": value}})


def _tensor_enc(data, i=1):
    return {"k": "tensor", "data": data, "rg": False, "leaf": True, "fn": False, "grad": None, "id": i}


def _archive(pkl: bytes, compression=None) -> bytes:
    """A torch.save archive whose pickle is `pkl` (what a kernel may write by hand)."""
    import io
    import zipfile
    src = zipfile.ZipFile(io.BytesIO(dumps({})))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression or zipfile.ZIP_STORED) as z:
        for e in src.infolist():
            z.writestr(e.filename, pkl if e.filename.endswith("/data.pkl") else src.read(e))
    return out.getvalue()


def _dag(levels, width):
    x = {"k": "v", "v": 1.0}
    for _ in range(levels):
        x = {"k": "list", "items": [x] * width}
    return x


def _bombs() -> dict:
    """name -> () -> answer bytes a kernel whose agent was replaced can write: each expands far beyond
    what its size says."""
    import zipfile
    nested = 100_000
    return {
        "dag_profond": lambda: _answer(_dag(60, 2)),  # 2**60 paths in 2 kB
        "dag_large": lambda: _answer(_dag(4, 100)),  # 10**8 paths, 8 levels
        "pas_nul": lambda: _answer(_tensor_enc(torch.zeros(1).expand(10**5, 10**5))),  # 40 GB once copied
        "stockage_partage": lambda: _answer({"k": "list", "items": [
            _tensor_enc(t, i) for i, t in enumerate([torch.zeros(2**20)] * 300)]}),  # 300 views of 4 MB
        "liste_geante": lambda: _answer({"k": "list", "items": [{"k": "v", "v": 1}] * 1_200_000}),
        "imbrication": lambda: _archive(b"\x80\x02" + b"]" * nested + b"a" * (nested - 1) + b"."),
        "imbrication_moyenne": lambda: _archive(b"\x80\x02" + b"]" * 1000 + b"a" * 999 + b"."),
        "marques": lambda: _archive(b"\x80\x02" + b"(" * 1_000_000 + b"N."),
        "compressee": lambda: _archive(b"\x80\x02]q\x00.", zipfile.ZIP_DEFLATED),
        "pas_une_archive": lambda: b"\x80\x02]q\x00.",
    }


@pytest.mark.parametrize("name", sorted(_bombs()))
def test_decoding_bombs_are_refused_before_they_expand(name):
    """Each bomb is refused with the French reason, before any tensor is copied (the figures printed:
    CPU time of the refusal; before the budget these cost tens of seconds or the grader's memory)."""
    import resource
    import time
    data = _bombs()[name]()
    cpu = time.process_time()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, hard))  # a copy of the stride-0 view would need 40 GB
    try:
        with pytest.raises(AnswerRefused) as refused:
            loads(data)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    message = str(refused.value)
    assert message.startswith("réponse du notebook refusée (budget de décodage dépassé : "), message
    print(f"{name}: {len(data)} octets, refusé en {time.process_time() - cpu:.2f} s de CPU : {message}")


def test_a_refused_answer_fails_only_its_check_and_is_flagged():
    """Through a check: the question fails with the reason, the notebook's next answers are read again;
    the reason is flagged in the status column."""
    import nbformat

    from tpkit.grading import traces

    class Replayed:  # a kernel whose agent answers every `get` with a bomb
        def request(self, req):
            if req["op"] == "get" and req["name"] == "n":
                return loads(_answer(_dag(60, 2)))["answer"]
            return LocalTransport({"n": 1050, "d": 64, "p": 10}).request(req)

    message = run_check("q1_dimensions", Witness(Replayed()))
    assert message and "réponse du notebook refusée (budget de décodage dépassé" in message
    cell = nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output(
        "error", ename="AssertionError", evalue=message, traceback=[])])
    flags = traces.flags(nbformat.v4.new_notebook(cells=[cell]))
    assert flags == ["réponse au correcteur hors budget de décodage, refusée : cellule n°1"]


def test_honest_answers_of_every_kind_stay_within_the_budget():
    """What the honest agent sends at its own limits decodes: the longest list it sends (100,001 items),
    its deepest nesting, a large tensor, models, optimizers, figures (the tests above cover the rest)."""
    from tpkit.witness import agent as agent_module
    items = agent_module.MAX_ITEMS + 5
    deep = [1.0]
    for _ in range(agent_module.MAX_DEPTH + 2):
        deep = [deep, 2.0]
    model = torch.nn.Sequential(torch.nn.Linear(64, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    ns = {"pertes": [float(i) for i in range(items)], "deep": deep, "X": torch.randn(4096, 1024),
          "T": tuple(torch.ones(3) for _ in range(100)), "model": model,
          "opt": torch.optim.SGD(model.parameters(), lr=0.1), "idx": np.arange(10**6)}
    w = witness(ns)
    assert len(w.get("pertes")) == agent_module.MAX_ITEMS + 1
    assert w.get("deep")[1] == 2.0
    assert torch.equal(w.get("X"), ns["X"]) and len(w.get("T")) == 100
    assert len(w.get("model").module().linears) == 2 and w.optimizers()[0].is_sgd
    assert w.get("idx")[-1] == 10**6 - 1
    big = torch.arange(60 * 2**20 // 4, dtype=torch.float32)  # 60 MB, stride 1: what it says it is
    assert torch.equal(loads(_answer(_tensor_enc(big)))["answer"]["value"]["data"], big)


def test_a_rerun_watches_several_networks_and_records_examples_of_any_shape():
    """watch=(a, b): each network's calls and parameters apart; an image batch (n, 1, 4, 4) is
    recorded one row per image (x.reshape(n, -1) @ probe), as a batch of vectors (n, 16)."""
    code = ("a = th.nn.Linear(16, 2).double()\nb = th.nn.Conv2d(1, 1, 4).double()\n"
            "a(X[:3])\nwith th.no_grad():\n    b(X[3:5].reshape(-1, 1, 4, 4))\nb(X.reshape(-1, 1, 4, 4))\n")
    X = torch.randn(6, 16, dtype=torch.float64)
    probe = torch.randn(16, dtype=torch.float64)
    w = witness({"th": torch})
    run = w.rerun(code, {"X": X}, seed=1, watch=("a", "b"), probe=probe)
    a, b = run.networks["a"], run.networks["b"]
    assert a.call_sizes.tolist() == [3] and a.call_grad.tolist() == [True]
    assert torch.allclose(a.call_rows, X[:3] @ probe)
    assert b.call_sizes.tolist() == [2, 6] and b.call_grad.tolist() == [False, True]
    assert torch.allclose(b.call_rows, torch.cat([X[3:5], X]) @ probe)
    assert [n for n, _ in a.module_final] == ["weight", "bias"] and a.module_final[0][1].shape == (2, 16)
    assert b.module_initial and b.module_final[0][1].shape == (1, 1, 4, 4)
    one = w.rerun(code, {"X": X}, seed=1, watch="b", probe=probe)  # one name: the Rerun's own fields
    assert one.call_sizes.tolist() == [2, 6] and one.networks == {}


def test_the_agent_package_is_self_contained():
    """A sandboxed kernel cannot import the kit: the agent's modules import torch, numpy, matplotlib,
    IPython and the standard library only, and one another relatively (never as ``tpkit.…``)."""
    import ast
    import sys
    allowed = set(sys.stdlib_module_names) | {"torch", "numpy", "matplotlib", "IPython"}
    foreign = []
    for path in trusted.agent_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            foreign += [f"{path.name}: {n}" for n in names if n.split(".")[0] not in allowed]
    assert foreign == []
