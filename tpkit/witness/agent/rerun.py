"""Re-execution of a notebook cell for the agent's ``op_rerun``: from a state the grader chose, with
the cell's seeds mixed with the grader's, recording what it trains, then undone.

Apart from the request handling because it is the one part of the agent that patches the interpreter's
state (random generators, torch modes, seeding functions, a torch function mode, module hooks).
"""
import contextlib
import random

import numpy as np
import torch

from .data import tensor_copy
from .figures import FIGURES

MAX_FIRST_USES = 256      # tensors (and modules) whose initial value a re-run keeps
MAX_RECORDED_ROWS = 2_000_000  # rows of module inputs a re-run records (one float64 each)
MAX_SNAPSHOTS = 64        # training calls of a module at which a re-run keeps its parameters


@contextlib.contextmanager
def namespace_restored(ns):
    """Whatever a re-run does to the namespace, its tensors and modules, the random generators and the
    figures is undone when it ends (even when interrupted)."""
    saved = dict(ns)
    tensors = [(t, t.detach().clone()) for t in saved.values()
               if isinstance(t, torch.Tensor) and t.layout == torch.strided]
    modules = [(m, {k: v.detach().clone() for k, v in m.state_dict().items()})
               for m in saved.values() if isinstance(m, torch.nn.Module)]
    generators = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    modes = (torch.is_grad_enabled(), torch.get_default_dtype())
    figures = len(FIGURES)
    try:
        import matplotlib.pyplot as plt
        before = set(plt.get_fignums())
    except Exception:
        plt = None
    try:
        yield
    finally:
        ns.clear()
        ns.update(saved)
        with torch.no_grad():  # only what changed: a copy bumps a tensor's version (saved graphs)
            for t, value in tensors:
                if t.shape == value.shape and t.dtype == value.dtype and not torch.equal(t, value):
                    t.copy_(value)
            for m, state in modules:
                for key, value in m.state_dict(keep_vars=True).items():
                    if key in state and value.shape == state[key].shape and not torch.equal(value, state[key]):
                        value.copy_(state[key])
        torch.set_grad_enabled(modes[0])
        torch.set_default_dtype(modes[1])
        random.setstate(generators[0])
        np.random.set_state(generators[1])
        torch.set_rng_state(generators[2])
        if plt is not None:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
        del FIGURES[figures:]


@contextlib.contextmanager
def seeds_mixed(seed):
    """`np.random.seed(s)` and `torch.manual_seed(s)` seed from the grader's `seed` mixed with s (and
    both generators start from it): the cell draws initial values nobody saw, the same way it draws
    them from its own seeds."""
    if seed is None:
        yield
        return
    np_seed, torch_seed = np.random.seed, torch.manual_seed

    def mix(value):
        return (int(seed) + 0x9E3779B1 * (int(value) + 1)) % (2 ** 32)

    def seed_numpy(value=None):
        try:
            value = None if value is None else mix(value)
        except (TypeError, ValueError):
            pass
        return np_seed(value)

    def seed_torch(value):
        try:
            value = mix(value)
        except (TypeError, ValueError):
            pass
        return torch_seed(value)

    np_seed(mix(-1))
    torch_seed(mix(-1))
    np.random.seed, torch.manual_seed = seed_numpy, seed_torch
    try:
        yield
    finally:
        np.random.seed, torch.manual_seed = np_seed, torch_seed


def _recorded_by_autograd(out):
    items = out if isinstance(out, (list, tuple)) else (out,)
    return any(isinstance(t, torch.Tensor) and t.grad_fn is not None for t in items)


class Recorder(torch.overrides.TorchFunctionMode):
    """What a re-run trains: the value of each leaf tensor that requires grad when it first enters a
    computation autograd records (the initial parameters of a loop, whatever created them: reading
    `W.grad` or building an optimiser is no use), and for every module its parameters at its first
    call and each call's examples (flattened to rows) seen through `probe`. With `snap` ({"rows": r, "at": [k...]}),
    also its parameters just before its training calls number k (calls with autograd on and r rows,
    counted from 0) and before its last such call, for the module that `watched` names (the one bound to
    the watched name when it is called): the steps the grader audits."""

    def __init__(self, probe=None, tensors=True, snap=None, watched=None):
        super().__init__()
        self.probe = probe
        self.tensors = tensors  # watch tensors too (a mode on every torch call: slower)
        self.first = {}      # id(tensor) -> its value at first use
        self.modules = {}    # id(module) -> [[name, value at its first call]]
        self.calls = []      # [id(module), grad enabled, x @ probe]
        self.alive = []      # the objects recorded, kept alive so that their ids stay theirs
        self.rows = 0
        self.handle = None
        snap = snap if isinstance(snap, dict) else {}
        self.snap_rows = int(snap.get("rows") or 0) if watched is not None else 0
        self.watched = watched
        self.snap_at = {int(k) for k in list(snap.get("at") or ())[:MAX_SNAPSHOTS]}
        self.trained = {}    # id(module) -> training calls so far
        self.snaps = {}      # id(module) -> {k: [[name, value]]}
        self.last = {}       # id(module) -> [k, [[name, value]]] of its last training call

    def __enter__(self):
        self.handle = torch.nn.modules.module.register_module_forward_pre_hook(self._module_call)
        return super().__enter__() if self.tensors else self

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc) if self.tensors else None
        finally:
            self.handle.remove()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if _recorded_by_autograd(out):  # a computation autograd records (not `W.grad`, `W.is_leaf`...)
            for arg in args:
                for t in (arg if isinstance(arg, (list, tuple)) else (arg,)):
                    if isinstance(t, torch.Tensor):
                        self._see(t)
        return out

    def _see(self, t):
        if t.requires_grad and t.is_leaf and id(t) not in self.first and len(self.first) < MAX_FIRST_USES:
            self.first[id(t)] = tensor_copy(t)
            self.alive.append(t)

    def _module_call(self, module, args):
        key = id(module)
        if key not in self.modules and len(self.modules) < MAX_FIRST_USES:
            self.modules[key] = [[str(n), tensor_copy(p)] for n, p in module.named_parameters()]
            self.alive.append(module)
        x = args[0] if args else None
        # one row per example, whatever its shape (vectors, images (n, 1, 28, 28) of a CNN...)
        if self.probe is not None and isinstance(x, torch.Tensor) and x.dim() >= 2 and \
                x.shape[1:].numel() == self.probe.shape[0] and self.rows + x.shape[0] <= MAX_RECORDED_ROWS:
            self.rows += x.shape[0]
            grad = torch.is_grad_enabled()  # a training call, or an evaluation under no_grad
            with torch.no_grad():
                self.calls.append((key, grad, x.detach().reshape(x.shape[0], -1).to(torch.float64) @ self.probe))
            if grad and self.snap_rows and x.shape[0] == self.snap_rows and self.watched(module):
                self._snapshot(key, module)

    def _snapshot(self, key, module):
        k = self.trained.get(key, 0)
        self.trained[key] = k + 1
        if k in self.snap_at:
            self.snaps.setdefault(key, {})[k] = [[str(n), tensor_copy(p)] for n, p in module.named_parameters()]
        # the parameters before the last call: kept in buffers overwritten at each call (no allocation)
        previous = self.last.get(key)
        params = list(module.named_parameters())
        if previous is None or [n for n, _ in previous[1]] != [str(n) for n, _ in params] or \
                any(b.shape != p.shape or b.dtype != p.dtype for (_, b), (_, p) in zip(previous[1], params)):
            self.last[key] = [k, [[str(n), tensor_copy(p)] for n, p in params]]
        else:
            with torch.no_grad():
                for (_, buffer), (_, p) in zip(previous[1], params):
                    buffer.copy_(p)
            previous[0] = k

    def report(self, model):
        """What the re-run did to one module: its parameters at its first call and at the end, its
        calls, its snapshots."""
        key = id(model)
        return {"module_initial": self.modules.get(key),
                "module_final": [[str(n), tensor_copy(p)] for n, p in model.named_parameters()],
                "calls": self.calls_of(key), "snaps": self.snapshots_of(key)}

    def snapshots_of(self, key):
        """{"at": {k: parameters}, "last": [k, parameters] or None} of one module."""
        return {"at": {int(k): v for k, v in self.snaps.get(key, {}).items()}, "last": self.last.get(key)}

    def calls_of(self, key):
        """The calls of one module: rows per call, autograd enabled or not, x @ probe of every row."""
        calls = [(grad, rows) for k, grad, rows in self.calls if k == key]
        return {"sizes": torch.tensor([len(r) for _, r in calls], dtype=torch.int64),
                "grad": torch.tensor([g for g, _ in calls], dtype=torch.bool),
                "rows": torch.cat([r for _, r in calls]) if calls else torch.zeros(0, dtype=torch.float64)}

    def first_use(self, value):
        return self.first.get(id(value)) if isinstance(value, torch.Tensor) else None
