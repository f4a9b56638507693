"""The grading process's zygotes, client side (the zygote itself: :mod:`tpkit.grading.zygote`): one
pre-imported kernel parent per set of preloaded modules and environment, started early
(:func:`prestart`), asked to fork a kernel into a sandbox whose holder waits (:func:`fork_into`, or
:func:`zygote_fork` for the coordinator answering a worker), stopped at exit. The limits, environment
and paths of a fork come from the run's kernel settings (:class:`tpkit.grading.kernels.KernelSettings`),
never from the asker."""
from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
import time
from typing import Optional

from tpkit.environment import THREAD_VARIABLES
from tpkit.grading.proctools import process_tree


def fork_into(kernel, cmd: list, settings, forker=None) -> int:
    """Have the zygote fork the kernel into the sandbox just started (whose holder waits for it)."""
    request = {"holder": _find_holder(kernel.pid), "uid": kernel.uid,
               "args": cmd[cmd.index("ipykernel_launcher") + 1:],
               "cgroup": kernel.cgroup.procs_files if kernel.cgroup is not None else []}
    if forker is not None:
        return int(forker(request))
    return zygote_fork(settings, request)


def zygote_fork(settings, request: dict) -> int:
    """Fork a kernel from this process's zygote into the sandbox of ``request["holder"]`` as
    ``request["uid"]`` with ipykernel's ``request["args"]``; everything else of the request (limits,
    environment, paths) comes from ``settings``, never from the asker."""
    from tpkit.grading import cgroups, sandbox
    full = {"holder": int(request["holder"]), "uid": request["uid"],
            "rlimits": sandbox.rlimits(settings.sandbox_limits()), "env": settings.env(),
            "args": [str(a) for a in request["args"]], "cwd": sandbox.WORKDIR_INSIDE,
            "python_dirs": sandbox._python_dirs(),
            # the kernel's group: only one the holder is already in (checked, not taken on trust)
            "cgroup": cgroups.member_procs_files(int(request["holder"]), request.get("cgroup") or []),
            "seccomp": (sandbox.seccomp_program() or b"").hex() or None}
    return _zygote(settings).fork(full)


def _find_holder(pid: Optional[int], timeout: float = 60) -> int:
    """Host pid of the sandbox's holder (a descendant of bwrap), once it runs. Walks the sandbox's own
    tree (:func:`process_tree`), not the machine's process table: on a busy machine the wait can last
    seconds, and a full scan every few milliseconds then costs the grader more than the kernel's start."""
    from tpkit.grading import zygote
    mark = zygote.HOLDER_MARK.encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid or not os.path.exists(f"/proc/{pid}"):
            raise RuntimeError("the kernel's sandbox ended before its kernel started")
        for child in process_tree([pid])[1:]:
            try:
                with open(f"/proc/{child}/comm", "rb") as f:
                    if f.read().strip() == b"bwrap":  # bwrap's own processes carry the holder's code too
                        continue
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    if mark in f.read():
                        return child
            except OSError:
                continue
        time.sleep(0.01)
    raise RuntimeError("the kernel's sandbox did not start")


class Zygote:
    """The grading process's pre-imported kernel parent (:mod:`tpkit.grading.zygote`), one per set of
    preloaded modules and environment; shared by the grading threads (a fork takes milliseconds).

    Creating it only starts the process; the first :meth:`fork` waits until it has imported its modules
    (:func:`prestart` starts it early from the grading run's main thread: the zygote dies with the
    thread that started it, ``PR_SET_PDEATHSIG``)."""

    def __init__(self, settings):
        from tpkit.grading import sandbox_oneoff, zygote
        env = settings.env()
        # fork copies one thread: with OMP/OPENBLAS_NUM_THREADS > 1 (a run with fewer workers than cores)
        # `import numpy` starts OpenBLAS's pool and no kernel could be forked. The zygote imports with
        # one thread; each kernel then sets torch's threads itself (startup_line), numpy's BLAS stays at one
        env.update({k: "1" for k in THREAD_VARIABLES})
        fontlist = sandbox_oneoff.mpl_fontlist()
        if fontlist is not None:  # the font list the sandbox shows, without rebuilding it
            env["MPLCONFIGDIR"] = str(fontlist.parent)
        # what a kernel imports before its first cell (the debugger: ~0.2 s of CPU, 110 modules)
        modules = [*settings.preload, "ipykernel.kernelapp", "ipykernel.ipkernel",
                   "ipykernel.debugger", "matplotlib_inline.backend_inline", "pdb", "sqlite3"]
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([sys.executable, "-s", "-P", zygote.__file__, *modules],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     stderr=subprocess.DEVNULL,  # as a cold kernel's (import warnings)
                                     # Ctrl-C stops the run, whose coordinator ends the zygote itself
                                     start_new_session=True,
                                     cwd="/", text=True, bufsize=1)
        self._ready = False

    def _wait_ready(self) -> None:
        """(Holding ``self.lock``.) Raise RuntimeError when the zygote cannot fork kernels."""
        if self._ready:
            return
        ready = json.loads(self.proc.stdout.readline() or "{}")
        if not ready.get("ready"):
            self.close()
            raise RuntimeError("the zygote did not start")
        if ready.get("threads") != 1:  # fork would copy one thread of several
            self.close()
            raise RuntimeError(f"the zygote runs {ready.get('threads')} threads")
        self._ready = True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fork(self, request: dict) -> int:
        with self.lock:
            self._wait_ready()
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            answer = json.loads(self.proc.stdout.readline() or '{"error": "the zygote died"}')
        if "error" in answer:
            raise RuntimeError(f"warm kernel: {answer['error']}")
        return int(answer["pid"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_zygotes: dict = {}
_zygotes_lock = threading.Lock()


def _zygote(settings) -> Zygote:
    key = (tuple(settings.preload), tuple(sorted(settings.env().items())))
    with _zygotes_lock:
        z = _zygotes.get(key)
        if z is None or not z.alive():
            z = _zygotes[key] = Zygote(settings)
        return z


def prestart(settings) -> None:
    """Start the zygote of these settings now, without waiting for it: it imports its modules while
    the caller goes on (the pre-check), and dies with the calling thread (call it from one that lives
    as long as the run)."""
    if settings.sandbox and settings.warm:
        _zygote(settings)


def close_zygotes() -> None:
    """Stop the zygotes (at exit; they also die with this process)."""
    with _zygotes_lock:
        for z in _zygotes.values():
            z.close()
        _zygotes.clear()


atexit.register(close_zygotes)
