"""The witness protocol: how a check questions a notebook without trusting it.

The kernel is a witness, not a judge. A check never holds an object of the student's: it asks the
kernel-side :mod:`agent <tpkit.witness.agent>` for *values* (tensors, arrays, numbers, strings, lists),
calls the student's functions on inputs it drew itself, and pushes repaired values. Everything that
decides a score is recomputed on the check's side with its own torch and numpy.

Requests and answers travel as ``torch.save`` bytes read back with ``torch.load(weights_only=True)``
(plain data and tensors, never code) under a size cap and a decoding budget (:mod:`tpkit.witness.budget`:
what the bytes expand to, counted before anything is copied). Two transports carry the same bytes:

* :class:`LocalTransport` — the agent in the same process: the in-kernel ``verifier`` of plain
  ``nbgrader autograde`` / ``validate`` (untrusted mode: the student's code shares the process);
* :class:`tpkit.grading.trusted.KernelTransport` — the agent in the (sandboxed) grading kernel, the
  checks in the grading process, where the student's code cannot reach them (trusted mode).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from tpkit.witness import budget
from tpkit.witness.agent import Agent

MAX_ANSWER_BYTES = budget.MAX_BYTES
#: Start of the message of an answer refused by the budget (tpkit.grading.traces flags it).
REFUSED = "réponse du notebook refusée"


class WitnessError(Exception):
    """The kernel could not answer (dead, silent, malformed answer); the message is French."""


class AnswerRefused(WitnessError):
    """An answer over the decoding budget: only code that replaced the agent sends one."""


class StudentError(Exception):
    """The student's code raised while called by a check."""

    def __init__(self, etype: str, message: str):
        super().__init__(f"{etype}: {message}" if message else etype)
        self.etype = etype
        self.message = message


def dumps(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def loads(data: bytes):
    """Data only (tensors, dicts, lists, numbers, strings): no code runs while loading, and what the
    bytes expand to stays within the decoding budget (checked before and after unpickling, before any
    tensor is copied)."""
    if len(data) > MAX_ANSWER_BYTES:
        raise WitnessError(f"réponse du noyau trop volumineuse ({len(data) // 2**20} Mo)")
    try:
        budget.check_archive(data)
        value = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        budget.check_value(value)
    except budget.OverBudget as exc:
        raise AnswerRefused(f"{REFUSED} (budget de décodage dépassé : {exc})") from None
    except Exception as exc:
        raise WitnessError(f"réponse du noyau illisible ({type(exc).__name__})") from None
    return value


class LocalTransport:
    """The agent in this process (untrusted mode); bytes still go through the codec, so both
    transports give the checks exactly the same objects."""

    def __init__(self, ns: dict):
        self.agent = Agent(ns)

    def request(self, req: dict) -> dict:
        answer = self.agent.handle(loads(dumps(req)))
        return loads(dumps(answer))


# ---------------------------------------------------------------------- what the checks receive
@dataclass
class Opaque:
    """A value the protocol does not carry (described by its type and repr)."""
    type: str
    repr: str


@dataclass
class OptimizerInfo:
    type: str
    is_sgd: bool
    groups: list  # [{"hyper": {...}, "params": [ids]}]

    @property
    def param_ids(self) -> set:
        return {i for g in self.groups for i in g["params"]}


@dataclass
class Layer:
    """A th.nn.Linear of the student's model, rebuilt on the check's side."""
    in_features: int
    out_features: int
    weight: torch.Tensor
    bias: Optional[torch.Tensor]

    def module(self) -> torch.nn.Linear:
        m = torch.nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                            dtype=self.weight.dtype)
        with torch.no_grad():
            m.weight.copy_(self.weight)
            if self.bias is not None:
                m.bias.copy_(self.bias)
        return m


@dataclass
class ModuleInfo:
    c1: Optional[Layer]
    c2: Optional[Layer]
    linears: list
    params: list = field(default_factory=list)  # [(name, tensor snapshot)]


@dataclass
class Rerun:
    """What a cell re-run by the grader did (:meth:`Witness.rerun`): the values of the names asked for,
    the initial value of the tensors asked for (None: never used in a computation autograd records),
    and for the watched module its parameters at its first call and at the end, and its calls (rows
    per call, autograd on, the probe's value of every row, all calls concatenated). Several modules
    watched in one re-run: `networks` holds one such answer per name."""
    values: dict
    initial: dict
    module_initial: list
    module_final: list
    call_sizes: Optional[torch.Tensor] = None
    call_grad: Optional[torch.Tensor] = None
    call_rows: Optional[torch.Tensor] = None
    snaps: Optional[dict] = None        # training call k -> [(name, value)] just before it
    last: Optional[tuple] = None        # (k, [(name, value)]) of the last training call
    networks: dict = field(default_factory=dict)  # watched name -> its Rerun (watch=("a", "b"))


class Remote:
    """A callable of the notebook (function, class, model): calling it runs it in the kernel on the
    check's inputs and returns a snapshot of the result."""

    def __init__(self, witness: "Witness", enc: dict):
        self.witness = witness
        self.ref = enc["ref"]
        self.type = enc["type"]
        self.is_class = enc["is_class"]
        self.is_module_class = enc["module_class"]
        self.is_module = enc["module"]

    def __call__(self, *args):
        return self.witness.call(self, args)

    def vjp(self, args, wrt, cotangent):
        """Gradients of <f(*args), cotangent> with respect to args[i] for i in wrt (None: no path)."""
        return self.witness.call(self, args, wrt=wrt, cotangent=cotangent, grads=True)[1]

    def module(self) -> ModuleInfo:
        return self.witness.module(self)

    def functional_call(self, params: dict, x, cotangent=None):
        return self.witness.module_call(self, params, x, cotangent)


# ---------------------------------------------------------------------- the witness
class Witness:
    """The notebook's namespace seen through a transport: a read-mostly mapping of snapshots.

    ``salt`` varies the inputs the checks draw (0 in untrusted mode; a course secret when grading).
    ``cells`` maps the grade id of each answer cell to its source as submitted: given (trusted mode
    only), the training checks re-run those cells from a state they choose (:meth:`rerun`)."""

    def __init__(self, transport, salt: int = 0, cells: Optional[dict] = None):
        self.transport = transport
        self.salt = salt
        self.cells = dict(cells) if cells else {}
        self._reset = False

    def _ask(self, req: dict) -> dict:
        if self._reset:
            req, self._reset = dict(req, reset=True), False
        answer = self.transport.request(req)
        if not isinstance(answer, dict):
            raise WitnessError("réponse du noyau malformée")
        return answer

    # mapping interface used by the checks
    def __contains__(self, name: str) -> bool:
        return bool(self._ask({"op": "get", "name": name}).get("found"))

    def get(self, name: str, default=None):
        answer = self._ask({"op": "get", "name": name})
        return self.decode(answer["value"]) if answer.get("found") else default

    def __setitem__(self, name: str, value) -> None:
        self.update({name: value})

    def update(self, values: dict = (), **kwargs) -> None:
        values = dict(values, **kwargs)
        self._ask({"op": "set", "values": {k: encode_push(v) for k, v in values.items()}})

    def run(self, code: str) -> None:
        """Execute kit-written code in the notebook's namespace (repairs that define functions)."""
        self._ask({"op": "exec", "code": code})

    def optimizers(self) -> list:
        return [self.decode(e) for e in self._ask({"op": "optimizers"})["items"]]

    def figure_lines(self) -> list:
        return [np.asarray(t.numpy(), dtype=np.float64) for t in self._ask({"op": "figures"})["lines"]]

    def graph_leaf_ids(self, name: str) -> set:
        """Ids (as in a tensor's `witness_id`) of the leaves the tensor `name` was computed from."""
        return {int(i) for i in self._ask({"op": "leaves", "name": name}).get("ids", [])}

    def figure_axes(self) -> list:
        """Per figure, a list of its panels: {"areas": filled areas drawn, "collections": all}."""
        return [[{k: int(v) for k, v in panel.items()} for panel in fig]
                for fig in self._ask({"op": "figure_axes"})["figures"]]

    def is_instance(self, name: str, cls: Remote) -> bool:
        return bool(self._ask({"op": "isinstance", "name": name, "ref": cls.ref})["value"])

    def call(self, fn: Remote, args, wrt=(), cotangent=None, grads=False):
        req = {"op": "call", "ref": fn.ref, "args": [encode_push(a) for a in args], "wrt": list(wrt),
               "cot": None if cotangent is None else cotangent.detach()}
        answer = self._ask(req)
        if not answer.get("ok"):
            raise StudentError(str(answer.get("etype", "Exception")), str(answer.get("msg", "")))
        value = self.decode(answer["value"])
        return (value, answer.get("grads", [None] * len(wrt))) if grads else value

    def module(self, model: Remote) -> ModuleInfo:
        answer = self._ask({"op": "module", "ref": model.ref})

        def layer(enc):
            if enc is None:
                return None
            return Layer(int(enc["in"]), int(enc["out"]), self.decode(enc["weight"]).detach(),
                         None if enc["bias"] is None else self.decode(enc["bias"]).detach())

        return ModuleInfo(layer(answer["c1"]), layer(answer["c2"]), [layer(e) for e in answer["linears"]],
                          [(str(n), self.decode(e)) for n, e in answer["params"]])

    def trace(self, fn: Remote, args) -> set:
        """Names of the torch functions that calling `fn` on `args` runs in the kernel."""
        answer = self._ask({"op": "trace", "ref": fn.ref, "args": [encode_push(a) for a in args]})
        if not answer.get("ok"):
            raise StudentError(str(answer.get("etype", "Exception")), str(answer.get("msg", "")))
        return {str(n) for n in answer.get("names", [])}

    def module_call(self, model: Remote, params: dict, x, cotangent=None):
        req = {"op": "module_call", "ref": model.ref, "x": encode_push(x),
               "params": {n: encode_push(p.detach()) for n, p in params.items()},
               "cot": None if cotangent is None else cotangent.detach()}
        answer = self._ask(req)
        if not answer.get("ok"):
            raise StudentError(str(answer.get("etype", "Exception")), str(answer.get("msg", "")))
        return self.decode(answer["value"]), answer.get("grads")

    def rerun(self, code: str, state: dict, seed: int, keep=(), initial=(), watch=None, probe=None,
              snap=None) -> "Rerun":
        """Run `code` (a cell of the notebook) again after pushing `state`, its seeds mixed with `seed`;
        the namespace is put back afterwards (see the agent's `op_rerun`). `watch`: a module's name (its
        answer in the Rerun's own fields) or several names (one answer each in `networks`)."""
        names = [watch] if isinstance(watch, str) else [str(n) for n in watch or ()]
        req = {"op": "rerun", "code": str(code), "set": {k: encode_push(v) for k, v in state.items()},
               "seed": int(seed), "keep": list(keep), "initial": list(initial), "watch": names,
               "probe": None if probe is None else probe.detach().to(torch.float64).clone(),
               "snap": snap}
        answer = self._ask(req)
        if not answer.get("ok"):
            raise StudentError(str(answer.get("etype", "Exception")), "")
        values = {str(k): self.decode(v) for k, v in answer.get("values", {}).items()}
        initial = {str(k): v for k, v in answer.get("initial", {}).items()}
        modules = answer.get("modules") or {}

        def of(name):
            module = modules.get(name) or {}
            calls = module.get("calls") or {}
            return Rerun(values=values, initial=initial,
                         module_initial=[(str(n), t) for n, t in module.get("module_initial") or []],
                         module_final=[(str(n), t) for n, t in module.get("module_final") or []],
                         call_sizes=calls.get("sizes"), call_grad=calls.get("grad"), call_rows=calls.get("rows"),
                         snaps=_snapshots(module.get("snaps")), last=_last_snapshot(module.get("snaps")))

        if isinstance(watch, str):
            return of(watch)
        run = of(None)
        run.networks = {n: of(n) for n in names}
        return run

    def reset(self) -> None:
        """Forget the objects referenced by earlier checks, before this check's first question is
        answered: the order travels with that question (one round trip to the kernel less per check)."""
        self._reset = True

    # decoding of the agent's descriptions
    def decode(self, enc):
        kind = enc["k"]
        if kind == "v":
            return enc["v"]
        if kind == "tensor":
            return _rebuild_tensor(enc)
        if kind == "ndarray":
            return enc["data"].numpy().copy()
        if kind == "list":
            return [self.decode(v) for v in enc["items"]]
        if kind == "tuple":
            return tuple(self.decode(v) for v in enc["items"])
        if kind == "optimizer":
            return OptimizerInfo(str(enc["type"]), bool(enc["sgd"]), list(enc["groups"]))
        if kind == "callable":
            return Remote(self, enc)
        return Opaque(str(enc.get("type")), str(enc.get("repr")))


def _params(items) -> list | None:
    try:
        return [(str(n), t) for n, t in items if isinstance(t, torch.Tensor)]
    except (TypeError, ValueError):
        return None


def _snapshots(snaps) -> dict:
    at = snaps.get("at") if isinstance(snaps, dict) else None
    if not isinstance(at, dict):
        return {}
    return {int(k): p for k, v in at.items() if isinstance(k, int) and (p := _params(v)) is not None}


def _last_snapshot(snaps):
    last = snaps.get("last") if isinstance(snaps, dict) else None
    try:
        k, params = last
        return int(k), _params(params)
    except (TypeError, ValueError):
        return None


def _rebuild_tensor(enc: dict) -> torch.Tensor:
    """A local tensor with the autograd facts of the student's one: requires_grad, leaf or not,
    attached to a graph or not, its .grad."""
    t = enc["data"].detach().clone()
    if enc["rg"] and (t.dtype.is_floating_point or t.dtype.is_complex):
        t.requires_grad_(True)
        if not enc["leaf"]:
            t = t * 1  # a non-leaf, like the student's (its .grad is not kept by torch)
        elif enc["grad"] is not None and enc["grad"].shape == t.shape:
            t.grad = enc["grad"].to(t.dtype)
    t.witness_id = enc.get("id")
    return t


def encode_push(value) -> dict:
    """A value the checks send to the kernel (inputs of a call, repaired variables)."""
    if isinstance(value, Remote):
        return {"k": "ref", "ref": value.ref}
    if isinstance(value, torch.Tensor):
        return {"k": "tensor", "data": value.detach().clone(), "rg": bool(value.requires_grad)}
    if isinstance(value, np.ndarray):
        return {"k": "ndarray", "data": torch.from_numpy(np.ascontiguousarray(value).copy())}
    if isinstance(value, np.generic):
        return {"k": "v", "v": value.item()}
    if isinstance(value, (list, tuple)):
        return {"k": "list" if isinstance(value, list) else "tuple", "items": [encode_push(v) for v in value]}
    return {"k": "v", "v": value}
