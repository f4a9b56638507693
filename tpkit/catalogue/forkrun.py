"""Execute many small variations of one notebook cheaply, for the catalogue and the flakiness audit.

A fresh Jupyter kernel per notebook costs ~3 s of start-up (Python, ipykernel, `import torch`) on top
of ~7 s of training, and most catalogue entries differ from the reference solution in one late cell.
This executor keeps the semantics of a fresh kernel per notebook while sharing that work:

* a *server* process (`python -m tpkit.catalogue.forkrun`, a clean interpreter with no threads)
  imports numpy, torch, matplotlib, IPython and the hidden checks once, then
* runs the *base* notebook (the reference solution) cell by cell in an IPython shell, and just before
  the first code cell where a job differs from the base it `fork()`s: the child process starts from
  exactly the state a fresh run of that identical, deterministic prefix would have reached (same
  variables, random generators, figures, warning registry) and executes the job's remaining cells;
* every cell runs with its stdout, stderr (Python-level *and* file-descriptor 2) and exception
  recorded as nbformat outputs, so `tpkit.execution.results` scores them with nbgrader's rule.

Children are separate processes: nothing leaks from one job to another (torch's "print once"
warnings, monkeypatching, global defaults). At most `workers` processes compute at once (the base
counts as one while it executes). Prefix sharing is used with one torch thread only; with more, every
job is forked before the first cell, so no computation ever crosses a fork.

Its fidelity to a real kernel (and to `nbgrader autograde`) is tested in tests/test_catalogue.py.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tpkit.environment import kernel_variables
from tpkit.vocabulary import grade_id

STREAM_LIMIT = 4000        # characters of stdout kept per cell (stderr is kept whole)


@dataclass
class Execution:
    """One executed job: the notebook with its outputs, how the run ended, measured values."""
    nb: nbformat.NotebookNode
    status: str                          # "ok", "timeout" or "crashed: ..."
    seconds: float                       # wall time of the job's own cells (the shared prefix excluded)
    shared_cells: int                    # code cells whose execution was shared with the base
    measures: dict = field(default_factory=dict)
    cpu_seconds: float = 0.0             # CPU time of the same (less sensitive than wall to other load)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def divergence(base_sources: list[str], sources: list[str]) -> int:
    """Index of the first code cell where a job differs from the base."""
    k = 0
    while k < min(len(base_sources), len(sources)) and base_sources[k] == sources[k]:
        k += 1
    return k


def execute_many(jobs: dict, base=None, workers: int = 2, threads: int = 1, timeout: int = 300,
                 probes: str | None = None, *, assignment_dir: Path,
                 secret: int = 0, audit_secrets=()) -> dict[str, Execution]:
    """Execute every notebook of `jobs` ({name: notebook}); `base` is the notebook whose prefixes
    are shared (none: every job starts from a fresh interpreter state). `probes` names a module
    whose `PROBES` ({grade id: fn(namespace) -> dict}) run right after those cells. `secret`: the
    course secret the in-kernel checks draw their inputs from (0: fixed inputs); `audit_secrets`: the
    secrets under each of which every check judges (`tpkit.checks.verifier`)."""
    from tpkit.checks import AUDIT_VARIABLE, SECRET_VARIABLE
    names = list(jobs)
    base_cells = _code_cells(base) if base is not None and threads == 1 else []
    base_sources = [c.source for c in base_cells]
    spec = {"threads": threads, "workers": max(1, workers), "timeout": timeout, "probes": probes,
            "assignment_dir": str(assignment_dir), "base": base_sources,
            "base_grade_ids": [grade_id(c) for c in base_cells], "jobs": []}
    for name in names:
        cells = _code_cells(jobs[name])
        sources = [c.source for c in cells]
        spec["jobs"].append({"name": name, "sources": sources, "grade_ids": [grade_id(c) for c in cells],
                             "start": divergence(base_sources, sources)})
    with tempfile.TemporaryDirectory(prefix="tp-forkrun-") as tmp:
        tmp = Path(tmp)
        (tmp / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        env = dict(os.environ, **kernel_variables(threads))
        env.pop(SECRET_VARIABLE, None)
        env.pop(AUDIT_VARIABLE, None)
        if secret:
            env[SECRET_VARIABLE] = str(int(secret))
        if audit_secrets:
            env[AUDIT_VARIABLE] = ",".join(str(int(s)) for s in audit_secrets)
        if threads > 1:  # threads that wait sleep instead of spinning on cores other runs need
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        proc = subprocess.run([sys.executable, "-m", "tpkit.catalogue.forkrun", str(tmp)],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"forkrun server failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        base_out = json.loads((tmp / "base.json").read_text(encoding="utf-8"))
        out = {}
        for j, name in enumerate(names):
            job = spec["jobs"][j]
            record = json.loads((tmp / f"job{j}.json").read_text(encoding="utf-8"))
            cells = base_out["cells"][:job["start"]] + record["cells"]
            nb = jobs[name]
            nb = nbformat.from_dict(json.loads(json.dumps(nb)))   # a copy
            measures = {}
            for cell, rec in zip(_code_cells(nb), cells + [None] * len(job["sources"])):
                if rec is None:
                    cell.outputs, cell.execution_count = [], None
                    continue
                cell.outputs = [nbformat.from_dict(o) for o in rec["outputs"]]
                cell.execution_count = 1
                measures.update(rec.get("measures", {}))
            out[name] = Execution(nb, record["status"], record["seconds"], job["start"], measures,
                                  record.get("cpu_seconds", 0.0))
    return out


# ------------------------------------------------------------------ server side
_DISPLAYED: list = []     # rich outputs of the running cell (execute_result, display_data)


def _make_shell():
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class Hook(DisplayHook):
        """The value of a cell's last expression: an execute_result, as in a kernel."""
        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            _DISPLAYED.append({"output_type": "execute_result", "metadata": {},
                               "data": {"text/plain": format_dict.get("text/plain", "")},
                               "execution_count": self.prompt_count})

    class Publisher(DisplayPublisher):
        """display(...) and inline figures: display_data outputs, as in a kernel."""
        def publish(self, data, metadata=None, source=None, **kwargs):
            _DISPLAYED.append({"output_type": "display_data", "metadata": {},
                               "data": {"text/plain": data.get("text/plain", "")}})

    cfg = Config()
    cfg.HistoryManager.enabled = False          # no history thread: the process is forked later
    cfg.InteractiveShell.colors = "nocolor"
    cfg.InteractiveShell.xmode = "Plain"

    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):
            """`%matplotlib inline` needs no event loop (the kernel's shell does the same)."""

        def showtraceback(self, *args, **kwargs):
            """A kernel sends the traceback as the error output, not to stdout; the error is
            taken from the cell's result."""

        def showsyntaxerror(self, *args, **kwargs):
            pass

    return Shell.instance(config=cfg, displayhook_class=Hook, display_pub_class=Publisher)


def _run_cell(shell, source: str) -> list[dict]:
    """Execute one cell; its outputs as nbformat dicts (stdout, stderr, error)."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    _DISPLAYED.clear()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as fd_err:
        saved = os.dup(2)
        os.dup2(fd_err.fileno(), 2)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                result = shell.run_cell(source, store_history=True)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        fd_err.seek(0)
        err_text = err.getvalue() + fd_err.read().decode("utf-8", "replace")
    outputs = []
    if out.getvalue():
        outputs.append({"output_type": "stream", "name": "stdout", "text": out.getvalue()[:STREAM_LIMIT]})
    if err_text:
        outputs.append({"output_type": "stream", "name": "stderr", "text": err_text})
    outputs += _DISPLAYED
    exc = result.error_before_exec or result.error_in_exec
    if exc is not None:
        outputs.append({"output_type": "error", "ename": type(exc).__name__, "evalue": str(exc),
                        "traceback": []})
    return outputs


def _reopen_npz(ns: dict) -> None:
    """An `np.load(...npz)` object reads lazily through a file descriptor shared with the parent:
    give the child its own, so that concurrent children never share a file offset."""
    import numpy as np
    for key, value in list(ns.items()):
        if isinstance(value, np.lib.npyio.NpzFile):
            try:
                ns[key] = np.load(value.fid.name)
            except Exception:
                pass


def _workdir(spec, root: Path, name: str) -> Path:
    work = root / name
    work.mkdir()
    for f in Path(spec["assignment_dir"]).iterdir():
        if f.is_file() and f.suffix != ".ipynb":
            shutil.copy(f, work)
    return work


def _cell_record(shell, source, gid, probes) -> dict:
    rec = {"outputs": _run_cell(shell, source)}
    if probes and gid in probes:
        try:
            rec["measures"] = probes[gid](shell.user_ns)
        except Exception as exc:  # a probe never breaks a run; the audit reports it missing
            rec["measures"] = {f"{gid}:probe_error": repr(exc)}
    return rec


def _child(spec, root: Path, shell, j: int, probes) -> None:
    job = spec["jobs"][j]
    t0, c0 = time.time(), time.process_time()
    signal.alarm(spec["timeout"])          # default action: the process ends, the server says "timeout"
    os.chdir(_workdir(spec, root, f"work{j}"))
    _reopen_npz(shell.user_ns)
    if spec["threads"] != 1:
        import torch
        torch.set_num_threads(spec["threads"])
    cells = [_cell_record(shell, src, gid, probes)
             for src, gid in zip(job["sources"][job["start"]:], job["grade_ids"][job["start"]:])]
    record = {"status": "ok", "seconds": round(time.time() - t0, 3),
              "cpu_seconds": round(time.process_time() - c0, 3), "cells": cells}
    (root / f"job{j}.json").write_text(json.dumps(record), encoding="utf-8")


def _prewarm() -> None:
    """Pay once, in the server, the lazy imports a notebook triggers on first use: the first
    optimizer step imports torch._dynamo (~1.3 s), the first drawing loads matplotlib's fonts.
    Nothing here touches a random generator or anything a notebook can see."""
    import matplotlib
    import torch
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=1.0)
    w.sum().backward()
    opt.step()
    opt.zero_grad()
    fig = Figure()
    fig.add_subplot().plot([0.0, 1.0])
    FigureCanvasAgg(fig).draw()
    matplotlib.get_backend()


def serve(root: Path) -> None:
    spec = json.loads((root / "spec.json").read_text(encoding="utf-8"))
    import importlib
    import matplotlib  # noqa: F401  (imported once in the server, before the forks)
    import numpy  # noqa: F401
    import torch
    torch.set_num_threads(1)   # the server computes on one thread: a fork never copies a thread pool
    from tpkit import assignments
    from tpkit.checks import reference as ref
    probes = importlib.import_module(spec["probes"]).PROBES if spec["probes"] else {}
    ref.data(), ref.tensors()
    if spec["threads"] == 1:  # what each assignment's checks compute first, on one thread as they would
        for assignment in assignments.registry():
            assignment.warm()
    _prewarm()
    shell = _make_shell()
    os.chdir(_workdir(spec, root, "work-base"))

    jobs = sorted(range(len(spec["jobs"])), key=lambda j: spec["jobs"][j]["start"])
    last = max((spec["jobs"][j]["start"] for j in jobs), default=0)
    live: dict[int, int] = {}     # pid -> job index
    ended: dict[int, str] = {}

    def reap(block: bool):
        while live:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            if pid == 0:
                return
            j = live.pop(pid)
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                ended[j] = "timeout" if sig == signal.SIGALRM else f"crashed: signal {sig}"
            elif os.WEXITSTATUS(status) != 0:
                ended[j] = f"crashed: exit status {os.WEXITSTATUS(status)}"
            if block:
                return

    def wait_slot():
        reap(False)
        while len(live) >= spec["workers"]:
            reap(True)

    base_cells = []
    pending = list(jobs)
    for i in range(last + 1):
        while pending and spec["jobs"][pending[0]]["start"] == i:
            j = pending.pop(0)
            wait_slot()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    _child(spec, root, shell, j, probes)
                except BaseException:
                    code = 3
                finally:
                    os._exit(code)
            live[pid] = j
        if i < last:
            wait_slot()
            signal.alarm(spec["timeout"])  # a base cell that never ends stops the server (an error)
            base_cells.append(_cell_record(shell, spec["base"][i], spec["base_grade_ids"][i], probes))
            signal.alarm(0)
    while live:
        reap(True)
    for j, status in ended.items():
        (root / f"job{j}.json").write_text(json.dumps({"status": status, "seconds": 0, "cells": []}),
                                           encoding="utf-8")
    (root / "base.json").write_text(json.dumps({"cells": base_cells}), encoding="utf-8")


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
