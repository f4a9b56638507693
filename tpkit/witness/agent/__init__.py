"""The witness agent: the kernel-side half of the check protocol (see ``tpkit/witness/__init__.py``).

It answers requests about the notebook's namespace with *data only*: tensors, arrays, numbers,
strings, lists, and descriptions of everything else (a callable becomes a handle the grader may call
with inputs it chooses). It never judges anything: the verdict is computed by the checks on the
grader's side, from these answers.

This package must stay self-contained (torch, numpy and the standard library only, its modules
importing one another relatively): in a sandboxed grading kernel the kit is not importable, so the
grader copies the package into the kernel's exchange folder and loads it as a package named
``_tpkit_agent`` when the kernel starts (:func:`tpkit.grading.trusted.agent_startup`). In plain
``nbgrader autograde`` (untrusted mode) it is imported as ``tpkit.witness.agent`` by the in-kernel
``verifier``.

Its parts, one concern each: :mod:`.silence` (student code called quietly), :mod:`.data` (answers as
data), :mod:`.figures` (the figures drawn), :mod:`.rerun` (a cell run again from the grader's state);
here, the requests (:class:`Agent`) and the kernel side of the transport (:func:`serve`,
:func:`session`), which the grader calls by these names.
"""
import os
import re

import numpy as np
import torch

from .data import safe_repr, safe_text, tensor_copy
from .figures import AREA_KINDS, FIGURES, install_figure_hook  # noqa: F401  (called by the kernel's start-up and the verifier)
from .rerun import Recorder, namespace_restored, seeds_mixed
from .silence import quiet

MAX_STR = 10_000          # characters of a string answer
MAX_ITEMS = 100_000       # items of a list answer
MAX_DEPTH = 4             # nesting of lists


class Agent:
    """Answers requests about one namespace (the notebook's globals)."""

    def __init__(self, ns):
        self.ns = ns
        self.objects = {}

    # ------------------------------------------------------------------ encoding of answers
    def _handle(self, obj):
        key = len(self.objects) + 1
        self.objects[key] = obj
        return key

    def encode(self, value, depth=0):
        if value is None or isinstance(value, bool):
            return {"k": "v", "v": value}
        if isinstance(value, str):
            return {"k": "v", "v": str.__str__(value)[:MAX_STR]}
        if isinstance(value, torch.Tensor):
            grad = value.grad if value.is_leaf else None
            return {"k": "tensor", "data": tensor_copy(value), "rg": bool(value.requires_grad),
                    "leaf": bool(value.is_leaf), "fn": value.grad_fn is not None,
                    "grad": None if grad is None else tensor_copy(grad), "id": id(value)}
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biufc" and value.dtype.byteorder in "=|<":
                try:
                    return {"k": "ndarray", "data": torch.from_numpy(np.ascontiguousarray(value).copy())}
                except TypeError:  # a dtype torch does not hold (uint32 ...): as float64
                    return {"k": "ndarray", "data": torch.from_numpy(value.astype(np.float64))}
            return {"k": "other", "type": "ndarray", "repr": safe_repr(value)}
        if isinstance(value, np.generic) and value.dtype.kind in "biufc":
            return {"k": "v", "v": value.item()}
        if isinstance(value, (int, float, complex)):
            plain = {int: int, float: float, complex: complex}
            for base, conv in plain.items():
                if isinstance(value, base):
                    return {"k": "v", "v": conv(value)}
        if isinstance(value, (list, tuple)) and depth < MAX_DEPTH:
            kind = "list" if isinstance(value, list) else "tuple"
            items = list(value)[:MAX_ITEMS + 1]
            return {"k": kind, "items": [self.encode(v, depth + 1) for v in items]}
        if isinstance(value, torch.optim.Optimizer):
            groups = []
            for g in value.param_groups:
                hyper = {k: v for k, v in g.items() if k != "params" and isinstance(v, (bool, int, float))}
                groups.append({"hyper": hyper, "params": [id(p) for p in g["params"]]})
            return {"k": "optimizer", "type": type(value).__name__,
                    "sgd": isinstance(value, torch.optim.SGD), "groups": groups}
        if callable(value):
            is_class = isinstance(value, type)
            return {"k": "callable", "ref": self._handle(value), "type": type(value).__name__,
                    "is_class": is_class,
                    "module_class": bool(is_class and issubclass(value, torch.nn.Module)),
                    "module": isinstance(value, torch.nn.Module)}
        return {"k": "other", "type": type(value).__name__, "repr": safe_repr(value)}

    # ------------------------------------------------------------------ decoding of pushed values
    def decode(self, enc):
        kind = enc["k"]
        if kind == "v":
            return enc["v"]
        if kind == "tensor":
            t = enc["data"].clone()
            return t.requires_grad_(True) if enc.get("rg") else t
        if kind == "ndarray":
            return enc["data"].numpy().copy()
        if kind in ("list", "tuple"):
            items = [self.decode(v) for v in enc["items"]]
            return items if kind == "list" else tuple(items)
        if kind == "ref":
            return self.objects[enc["ref"]]
        raise ValueError(f"unknown kind {kind!r}")

    # ------------------------------------------------------------------ requests
    def handle(self, req):
        if req.get("reset"):  # a check's first request also forgets the previous check's objects
            self.objects.clear()
        op = req["op"]
        with quiet():  # student code also runs in reprs, properties, metaclasses, module methods
            return getattr(self, "op_" + op)(req)

    def op_reset(self, req):
        self.objects.clear()
        return {}

    def op_get(self, req):
        name = req["name"]
        if name not in self.ns:
            return {"found": False}
        return {"found": True, "value": self.encode(self.ns[name])}

    def _call(self, fn, args, wrt=(), cot=None):
        args = [self.decode(a) for a in args]
        for i in wrt:
            args[i] = args[i].detach().clone().requires_grad_(True)
        try:
            with quiet():
                out = fn(*args)
                grads = None
                if cot is not None:
                    grads = self._vjp(out, [args[i] for i in wrt], cot)
        except Exception as exc:  # the student's code raised: say what, as data
            return {"ok": False, "etype": type(exc).__name__, "msg": safe_text(exc)}
        answer = {"ok": True, "value": self.encode(out)}
        if grads is not None:
            answer["grads"] = grads
        return answer

    @staticmethod
    def _vjp(out, leaves, cot):
        if not isinstance(out, torch.Tensor) or out.grad_fn is None or out.shape != cot.shape:
            return [None] * len(leaves)
        got = torch.autograd.grad(out, leaves, grad_outputs=cot.to(out.dtype), allow_unused=True)
        return [None if g is None else tensor_copy(g) for g in got]

    def op_call(self, req):
        return self._call(self.objects[req["ref"]], req["args"], req.get("wrt", ()), req.get("cot"))

    def op_module(self, req):
        model = self.objects[req["ref"]]

        def layer(m):
            if not isinstance(m, torch.nn.Linear):
                return None
            return {"in": int(m.in_features), "out": int(m.out_features),
                    "weight": self.encode(m.weight), "bias": None if m.bias is None else self.encode(m.bias)}

        return {"c1": layer(getattr(model, "c1", None)), "c2": layer(getattr(model, "c2", None)),
                "linears": [layer(m) for m in model.modules() if isinstance(m, torch.nn.Linear)],
                "params": [[name, self.encode(p)] for name, p in model.named_parameters()]}

    def op_module_call(self, req):
        """The model's forward with other parameter values (torch.func.functional_call), and the
        vector-Jacobian product with `cot` with respect to those parameters."""
        model = self.objects[req["ref"]]
        names = list(req["params"])
        values = [self.decode(req["params"][n]).detach().clone().requires_grad_(True) for n in names]
        x = self.decode(req["x"])
        try:
            with quiet():
                out = torch.func.functional_call(model, dict(zip(names, values)), (x,))
                grads = self._vjp(out, values, req["cot"]) if req.get("cot") is not None else None
        except Exception as exc:
            return {"ok": False, "etype": type(exc).__name__, "msg": safe_text(exc)}
        answer = {"ok": True, "value": self.encode(out)}
        if grads is not None:
            answer["grads"] = grads
        return answer

    def op_trace(self, req):
        """Names of the torch functions a call runs (conv2d, max_pool2d ...), whether they come from
        layers or from torch.nn.functional: what an architecture is made of, not how it is written."""
        names = []

        class _Record(torch.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if len(names) < MAX_ITEMS:
                    names.append(str(getattr(func, "__name__", "")))
                return func(*args, **(kwargs or {}))

        fn, args = self.objects[req["ref"]], [self.decode(a) for a in req["args"]]
        try:
            with quiet(), torch.no_grad(), _Record():
                fn(*args)
        except Exception as exc:
            return {"ok": False, "etype": type(exc).__name__, "msg": safe_text(exc)}
        return {"ok": True, "names": sorted(set(names))}

    def op_optimizers(self, req):
        return {"items": [self.encode(v) for v in list(self.ns.values())
                          if isinstance(v, torch.optim.Optimizer)]}

    def op_isinstance(self, req):
        value, cls = self.ns.get(req["name"]), self.objects[req["ref"]]
        return {"value": isinstance(cls, type) and isinstance(value, cls)}

    def op_figures(self, req):
        """The y values of every curve drawn: lines (plot, step, semilogy...) and point clouds
        (scatter), one array per artist."""
        lines = []
        for fig in list(FIGURES):
            for ax in fig.axes:
                for line in ax.get_lines():
                    try:
                        y = np.asarray(line.get_ydata(), dtype=np.float64).ravel()
                    except (TypeError, ValueError):
                        continue
                    lines.append(torch.from_numpy(y.copy()))
                for coll in ax.collections:
                    try:
                        offsets = np.asarray(coll.get_offsets(), dtype=np.float64)
                    except (TypeError, ValueError):
                        continue
                    if offsets.ndim == 2 and offsets.shape[1] == 2 and offsets.shape[0] > 1:
                        lines.append(torch.from_numpy(offsets[:, 1].copy()))
        return {"lines": lines}

    def op_leaves(self, req):
        """Ids of the leaf tensors a tensor of the namespace was computed from (its autograd graph)."""
        value, ids, seen = self.ns.get(req["name"]), [], set()
        todo = [value.grad_fn] if isinstance(value, torch.Tensor) and value.grad_fn is not None else []
        while todo and len(seen) < 10_000:
            node = todo.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            variable = getattr(node, "variable", None)
            if isinstance(variable, torch.Tensor):
                ids.append(id(variable))
            todo.extend(n for n, _ in getattr(node, "next_functions", ()))
        return {"ids": ids}

    def op_figure_axes(self, req):
        """Per figure, per panel (axes): how many filled areas it draws (images, meshes, filled
        contours: a map of decision regions) and how many collections in all (scatter points...)."""
        figures = []
        for fig in list(FIGURES):
            panels = []
            for ax in fig.axes:
                kinds = [type(c).__name__ for c in ax.collections]
                panels.append({"areas": len(ax.images) + sum(k in AREA_KINDS for k in kinds),
                               "collections": len(kinds)})
            figures.append(panels)
        return {"figures": figures}

    def op_set(self, req):
        for name, enc in req["values"].items():
            self.ns[name] = self.decode(enc)
        return {}

    def op_exec(self, req):
        """Repairs that define functions or classes (code written by the kit, run in the kernel)."""
        try:
            with quiet():
                exec(req["code"], self.ns)
        except Exception as exc:
            return {"ok": False, "etype": type(exc).__name__, "msg": safe_text(exc)}
        return {"ok": True}

    def op_rerun(self, req):
        """Run a notebook cell again (its source as submitted) from a state the grader chose: the values
        of `set` pushed first, and `np.random.seed` / `torch.manual_seed` seeding from `seed` (the
        grader's) mixed with the seed the cell asks for. The answer says what the cell did: the values
        of `keep` afterwards, the initial value of each tensor named in `initial` (its value when it
        first entered a computation autograd records), and for each module named in `watch` (a name or
        a list of names) its parameters at its first call and at the end, and the examples of each of
        its calls seen through the grader's `probe` (one number per example, each example flattened
        to a row whatever its shape: x.reshape(len(x), -1) @ probe, in float64), under `modules`.
        The namespace, the random generators and the figures are then put back as they were: the next
        cells see nothing of the re-run."""
        code = req["code"]
        try:
            from IPython import get_ipython
            shell = get_ipython()
            if shell is not None:
                code = shell.transform_cell(code)  # magics, as when the cell ran
        except Exception:
            pass
        probe = req.get("probe")
        watch = req.get("watch") or ()
        names = [watch] if isinstance(watch, str) else [str(n) for n in watch]
        recorder = Recorder(probe, tensors=bool(req.get("initial")), snap=req.get("snap"),
                             watched=lambda module: any(self.ns.get(n) is module for n in names))
        with namespace_restored(self.ns):
            for name, enc in req.get("set", {}).items():
                self.ns[name] = self.decode(enc)
            try:
                with quiet(), seeds_mixed(req.get("seed")), recorder:
                    exec(compile(code, "<cellule ré-exécutée>", "exec"), self.ns)
            except (Exception, SystemExit) as exc:  # its message is not sent: it may quote the state
                return {"ok": False, "etype": type(exc).__name__}
            answer = {"ok": True, "values": {n: self.encode(self.ns[n]) for n in req.get("keep", ())
                                             if n in self.ns}}
            answer["initial"] = {n: recorder.first_use(self.ns.get(n)) for n in req.get("initial", ())}
            answer["modules"] = {n: recorder.report(self.ns.get(n)) for n in names
                                 if isinstance(self.ns.get(n), torch.nn.Module)}
        return answer


# ---------------------------------------------------------------------- kernel side of the transport
_AGENT = None


def serve(request_path, answer_path):
    """Answer the request stored in `request_path` into `answer_path` (files of the exchange folder
    shared with the grader); `session` calls it for each request of a check."""
    global _AGENT
    if _AGENT is None:
        _AGENT = Agent(_user_namespace())
    with open(request_path, "rb") as f:
        req = torch.load(f, weights_only=True)
    try:
        answer = {"status": "ok", "answer": _AGENT.handle(req)}
    except Exception as exc:  # a broken request or a namespace the agent cannot read
        answer = {"status": "error", "etype": type(exc).__name__, "msg": safe_text(exc)}
    tmp = answer_path + ".part"
    with open(tmp, "wb") as f:
        torch.save(answer, f)
    os.replace(tmp, answer_path)


_TOKEN = re.compile(r"[0-9]+-[0-9a-f]+")  # names of request files (see trusted.KernelTransport)


def session(bell_path, done_path):
    """Serve one check's requests in a single execute request: each line the grader writes to the
    `bell` FIFO names a request file of the exchange folder; its answer is written, then the same line
    on the `done` FIFO. Any other line ends the session (the grader writes ``end``)."""
    folder = os.path.dirname(bell_path)
    # `done` first: the grader holds its read end, `bell` both ends, so neither open waits
    with open(done_path, "wb", buffering=0) as done, open(bell_path, "rb") as bell:
        for line in bell:
            token = line.strip().decode("ascii", "replace")
            if not _TOKEN.fullmatch(token):
                break
            serve(os.path.join(folder, f"req-{token}.pt"), os.path.join(folder, f"ans-{token}.pt"))
            done.write(token.encode("ascii") + b"\n")


def _user_namespace():
    from IPython import get_ipython
    return get_ipython().user_ns
