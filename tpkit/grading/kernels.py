"""Fresh, warm kernels for grading, and the limits that guard them.

Every submission runs in a kernel of its own, never reused. Sandboxed kernels start *warm*
(:mod:`tpkit.grading.zygote`): one zygote per grading process imports torch, numpy, matplotlib and
ipykernel once (about 3 s of CPU, see shared/notes/nbgrader-facts.md), and each kernel is a process
forked from it into a fresh sandbox of its own (:func:`start_kernel` starts the sandbox, whose holder
waits; :func:`_fork_into` asks the zygote). ``TPKIT_KERNELS=cold`` starts every kernel from scratch
instead (and a warm start that fails falls back to a cold one). The zygote belongs to the grading
run's coordinator (:mod:`tpkit.grading.pipeline`): a submission's worker process asks it for a fork
through a *forker* (:class:`KernelSupply`), and the coordinator checks that the sandbox named belongs
to that worker before it forwards the request.

A kernel is started with:

* a start-up line (IPython's ``exec_lines``) that runs in a throw-away namespace: it imports the heavy
  modules the notebooks use (nothing is bound in the student's namespace, ``import torch`` in the
  notebook then costs nothing), seeds ``random``/numpy/torch (re-grading gives the same result) and sets
  the torch thread count and an ``RLIMIT_DATA`` memory limit (an allocation over the limit raises
  ``MemoryError``/``RuntimeError`` in the student's cell; the kernel survives);
* IPython's *Plain* tracebacks: each frame's file, line and failing line, without the surrounding lines
  of the default *Context* mode, whose formatting (pygments, stack_data) cost 37 ms of CPU per error
  against 6 ms: 13 s of kernel CPU over a class of 40 (350 errors), 9 % of what the notebooks compute;
* a fixed environment: ``NBGRADER_EXECUTION=autograde`` (as ``nbgrader autograde`` sets it), one BLAS/
  OpenMP thread count, the inline matplotlib backend, ``PYTHONHASHSEED``.

Each kernel has two folders of its own: a *scratch* copy of the submission's files (its working
directory, filled by :class:`~tpkit.grading.preprocessors.LimitedExecute` before the first cell runs;
nothing is ever copied back) and an *exchange* folder (its connection file and ZeroMQ ipc sockets, the
witness agent's source, the answers of the trusted checks). With ``sandbox=True`` (the default of the
grading command) the kernel runs inside bubblewrap (:mod:`tpkit.grading.sandbox`): it sees those two
folders and the Python installation, nothing of the course. A sandboxed kernel also gets, where the
host allows, a cgroup of its own (equal CPU share, memory and process limits, kill-everything:
:mod:`tpkit.grading.cgroups`), its two folders in a tmpfs of bounded size and file count
(:mod:`tpkit.grading.quota`) and a seccomp filter (:mod:`tpkit.grading.seccomp`). :class:`Watchdog`
enforces the whole-notebook time limit, a resident-memory backstop, reports the cgroup's
out-of-memory kills and, for a kernel without cgroup, its CPU share, by killing the kernel's processes.
"""
from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from tpkit.environment import THREAD_VARIABLES, kernel_variables, venv_on_path
from tpkit.grading.proctools import cpu_seconds, descendants, kill_tree, process_tree
from tpkit.grading import config

#: IPython's traceback mode in grading kernels (see the module docstring)
TRACEBACKS = "Plain"

_STARTUP = """
import importlib, random, resource, sys
for _name in {preload!r}:
    try:
        importlib.import_module(_name)
    except Exception:
        pass
random.seed({seed})
if "numpy" in sys.modules:
    sys.modules["numpy"].random.seed({seed})
if "torch" in sys.modules:
    sys.modules["torch"].manual_seed({seed})
    sys.modules["torch"].set_num_threads({threads})
if {memory_bytes}:
    resource.setrlimit(resource.RLIMIT_DATA, ({memory_bytes}, {memory_bytes}))
if {free_cpu}:  # unsandboxed: the grading worker's own CPU limit is not the kernel's
    _cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (_cpu, _cpu))
"""


#: Resident memory a kernel may hold beyond its memory limit before the watchdog kills it: shared
#: libraries (torch's alone: about 600 MB) count in resident memory, not in RLIMIT_DATA.
RESIDENT_MARGIN_MB = 1024


@dataclass(frozen=True)
class KernelSettings:
    """How grading kernels are started (the same for every submission of a run), derived from the run's
    settings by :func:`settings_for`, the one place that turns them into a kernel's limits."""

    preload: tuple
    threads: int
    memory_mb: int  # RLIMIT_DATA inside the kernel, its cgroup's memory, its address space (sandbox_limits); 0 = none
    sandbox: bool  # run the kernel inside bubblewrap (tpkit.grading.sandbox)
    time_limit: int  # seconds for a notebook (the watchdog; the sandbox's CPU-time limit is derived from it)
    kernel_name: str = "python3"
    seed: int = 0
    extra_env: dict = field(default_factory=dict)
    # sandboxed kernels forked from a pre-imported zygote (tpkit.grading.zygote); TPKIT_KERNELS=cold
    # in the environment starts each kernel from scratch instead (bench/grading_bench.py --cold)
    warm: bool = field(default_factory=lambda: os.environ.get("TPKIT_KERNELS", "warm") != "cold")
    # where each kernel's folders are made (None: the system's temporary folder); the grading run
    # gives one of its own, removed at its end (a killed worker cannot leave them behind)
    tmp_root: Optional[str] = None

    @property
    def resident_mb(self) -> int:
        """The watchdog's resident-memory threshold (0: none): the memory limit plus the shared libraries
        (:data:`RESIDENT_MARGIN_MB`); a backstop, RLIMIT_DATA or the cgroup act first."""
        return self.memory_mb + RESIDENT_MARGIN_MB if self.memory_mb else 0

    def startup_line(self, exchange: str) -> str:
        from tpkit.grading import trusted
        code = _STARTUP.format(preload=tuple(self.preload), seed=int(self.seed),
                               threads=max(1, int(self.threads)),
                               memory_bytes=int(self.memory_mb) * 1024 * 1024, free_cpu=not self.sandbox)
        code += trusted.agent_startup(exchange)
        # exec in a fresh dict: nothing is left in the student's namespace
        return f"exec({code!r}, {{}})"

    def sandbox_limits(self):
        from tpkit.grading import sandbox
        # memory_mb 0 (no RLIMIT_DATA): the address space and the cgroup stay bounded, at the default
        return sandbox.Limits(memory_mb=self.memory_mb or config.default("memory_limit"),
                              cpu_seconds=max(60, 3 * int(self.time_limit or config.default("time_limit"))))

    def env(self) -> dict:
        extra = kernel_variables(self.threads)
        extra.update(self.extra_env)
        if self.sandbox:
            from tpkit.grading import sandbox
            return sandbox.kernel_env(extra)  # nothing of the grader's environment
        env = venv_on_path()
        env.update(extra)
        return env


class _WrappedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command line goes through `wrap` (the sandbox)."""

    wrap: Optional[Callable[[list], list]] = None
    owner_uid: Optional[int] = None  # the sandbox's user must read its connection file

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        return self.wrap(cmd) if self.wrap is not None else cmd

    def write_connection_file(self, **kwargs):
        result = super().write_connection_file(**kwargs)
        if self.owner_uid is not None:
            os.chown(self.connection_file, self.owner_uid, self.owner_uid)
        return result


@dataclass
class GradingKernel:
    """A started kernel and the folders it owns (see the module docstring)."""

    km: AsyncKernelManager
    scratch: Path  # the kernel's working copy of the submission (host path)
    exchange: Path  # connection file, ipc sockets, agent source, answers (same path on both sides)
    workdir: str  # the scratch folder as the kernel sees it
    uid: Optional[int] = None  # the sandbox's user (root only), returned to the pool at the end
    forked: Optional[int] = None  # warm kernel: its host pid (a child of the zygote, not of bwrap)
    cgroup: Optional[object] = None  # its cgroups.KernelCgroup (sandboxed, where the host allows)
    capped: bool = False  # its folders lie in a tmpfs of bounded size and file count (quota.py)

    @property
    def pid(self) -> Optional[int]:
        return kernel_pid(self.km)

    @property
    def pids(self) -> list:
        """The process trees to watch and kill: the sandbox (bwrap) and, when warm, the kernel."""
        return [p for p in (self.pid, self.forked) if p]


_UIDS = None


def _uid_pool():
    global _UIDS
    if _UIDS is None:
        from tpkit.grading import sandbox
        _UIDS = sandbox.UidPool()
    return _UIDS


def start_kernel(settings: KernelSettings, forker: Optional[Callable[[dict], int]] = None) -> GradingKernel:
    """Launch a kernel process and return at once (it finishes booting in the background).

    ``forker`` (warm kernels): sends ``{"holder", "uid", "args"}`` to the zygote's owner and returns the
    kernel's pid (a worker's link to its coordinator); None: this process's own zygote.
    Must be called from the thread that will execute the notebook: the manager belongs to that thread's
    event loop (the one nbclient's synchronous API uses)."""
    from tpkit.grading import trusted
    base = Path(tempfile.mkdtemp(prefix="tpkit-kernel-", dir=settings.tmp_root))
    capped = False
    if settings.sandbox:
        from tpkit.grading import quota
        limits = settings.sandbox_limits()
        capped = quota.mount(base, limits.folders_mb, limits.folders_files)
    scratch, exchange = base / "travail", base / "echange"
    scratch.mkdir()
    exchange.mkdir()
    trusted.install_agent(exchange)
    km = _WrappedKernelManager(kernel_name=settings.kernel_name, transport="ipc",
                               ip=str(exchange / "ipc"), connection_file=str(exchange / "kernel.json"))
    kernel = GradingKernel(km, scratch, exchange, str(scratch), capped=capped)
    kernel_cmd: list = []
    if settings.sandbox:
        from tpkit.grading import cgroups, sandbox, zygote
        # its cgroup before its first process: the launcher joins it, everything after inherits it
        kernel.cgroup = cgroups.create(limits.memory_mb, limits.processes)
        procs = kernel.cgroup.procs_files if kernel.cgroup is not None else []
        kernel.uid = _uid_pool().acquire()
        kernel.workdir = sandbox.WORKDIR_INSIDE
        sandbox.prepare_dirs(scratch, exchange, kernel.uid)
        km.owner_uid = kernel.uid
        # a signal would reach the sandbox's launcher, not the kernel: interrupt by message instead
        # (ipykernel then signals itself), so the per-cell timeout still stops an endless cell
        km.kernel_spec.interrupt_mode = "message"
        limits, env = settings.sandbox_limits(), settings.env()

        def wrap(cmd):
            if settings.warm:  # the sandbox runs the holder; the zygote forks the kernel into it
                kernel_cmd[:] = cmd
                cmd = [sys.executable, "-I", "-S", "-c", zygote.HOLDER_CODE]
            return sandbox.command(cmd, workdir=scratch, exchange=exchange, limits=limits,
                                   uid=kernel.uid, env=env, cgroup=procs)
        km.wrap = wrap
    run_sync(km.start_kernel)(
        cwd=str(scratch), env=settings.env(),
        extra_arguments=["--HistoryManager.hist_file=:memory:", f"--InteractiveShell.xmode={TRACEBACKS}",
                         f"--IPKernelApp.exec_lines={settings.startup_line(str(exchange))}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kernel_cmd:
        try:
            kernel.forked = _fork_into(kernel, kernel_cmd, settings, forker)
        except Exception as exc:  # a cold kernel then: slower, same sandbox
            logging.getLogger("tpkit.grading").warning("warm kernel failed (%s): cold start", exc)
            discard_kernel(kernel)
            return start_kernel(dataclasses.replace(settings, warm=False))
    return kernel


def _fork_into(kernel: GradingKernel, cmd: list, settings: KernelSettings, forker=None) -> int:
    """Have the zygote fork the kernel into the sandbox just started (whose holder waits for it)."""
    request = {"holder": _find_holder(kernel.pid), "uid": kernel.uid,
               "args": cmd[cmd.index("ipykernel_launcher") + 1:],
               "cgroup": kernel.cgroup.procs_files if kernel.cgroup is not None else []}
    if forker is not None:
        return int(forker(request))
    return zygote_fork(settings, request)


def zygote_fork(settings: KernelSettings, request: dict) -> int:
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

    def __init__(self, settings: KernelSettings):
        from tpkit.grading import sandbox, zygote
        env = settings.env()
        # fork copies one thread: with OMP/OPENBLAS_NUM_THREADS > 1 (a run with fewer workers than cores)
        # `import numpy` starts OpenBLAS's pool and no kernel could be forked. The zygote imports with
        # one thread; each kernel then sets torch's threads itself (startup_line), numpy's BLAS stays at one
        env.update({k: "1" for k in THREAD_VARIABLES})
        fontlist = sandbox.mpl_fontlist()
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


def _zygote(settings: KernelSettings) -> Zygote:
    key = (tuple(settings.preload), tuple(sorted(settings.env().items())))
    with _zygotes_lock:
        z = _zygotes.get(key)
        if z is None or not z.alive():
            z = _zygotes[key] = Zygote(settings)
        return z


def settings_for(run, tmp_root: Optional[str] = None, **changes) -> KernelSettings:
    """The kernels of a grading run: ``run`` an :class:`~tpkit.grading.options.Options` or its
    :class:`~tpkit.grading.config.TpkitGrading` settings; ``changes``: fields of :class:`KernelSettings`
    set otherwise (tests, a cluster machine's threads)."""
    settings = getattr(run, "settings", run)
    return dataclasses.replace(
        KernelSettings(preload=tuple(settings.preload), threads=settings.kernel_threads(),
                       memory_mb=int(settings.memory_limit or 0), sandbox=bool(settings.sandbox),
                       time_limit=int(settings.time_limit or 0), tmp_root=tmp_root), **changes)


def default_settings(**changes) -> KernelSettings:
    """The kernels of a run with the default settings (one worker), with ``changes``."""
    return settings_for(config.TpkitGrading(workers=1), **{"threads": 1, **changes})


def prestart(settings: KernelSettings) -> None:
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


def kernel_pid(km) -> Optional[int]:
    provisioner = getattr(km, "provisioner", None)
    return getattr(provisioner, "pid", None) if provisioner is not None else None


class CpuMeter:
    """CPU seconds of the kernels of this process, read just before each is killed (a killed warm
    kernel is reaped by the zygote, whose own usage never counts it): the bench adds it to the
    grader's own CPU to get what a run cost."""

    def __init__(self):
        self._lock = threading.Lock()
        self.seconds, self.kernels = 0.0, 0

    def add(self, kernel: "GradingKernel") -> None:
        # its cgroup counts every process it ran, those already gone included
        spent = kernel.cgroup.cpu_seconds() if kernel.cgroup is not None else None
        if spent is None:
            spent = sum(cpu_seconds(pid) for pid in process_tree(kernel.pids))
        with self._lock:
            self.seconds += spent
            self.kernels += 1


#: Every kernel of this process (see :class:`CpuMeter`).
KERNEL_CPU = CpuMeter()


def stray_processes(kernel: Optional[GradingKernel]) -> int:
    """Processes of the kernel's tree other than the kernel itself and the sandbox's own (daemons,
    background jobs the student's code left running); they die with the sandbox."""
    if kernel is None or not kernel.pid:
        return 0
    procs = descendants(kernel.pids)
    from tpkit.grading import zygote
    count, kernel_seen = 0, kernel.forked is not None
    for p in sorted(procs, key=lambda p: p.pid):
        if p.pid == kernel.forked:
            continue
        try:
            name, cmd = p.name(), " ".join(p.cmdline())
        except psutil.Error:
            continue
        if name == "bwrap" or zygote.HOLDER_MARK in cmd:
            continue
        if not kernel_seen and "ipykernel_launcher" in cmd:
            kernel_seen = True
            continue
        count += 1
    return count


def discard_kernel(kernel: Optional[GradingKernel]) -> None:
    """Kill a kernel and everything it started at once, release its manager's resources, delete its
    folders (no graceful shutdown: the notebook is done, waiting would only cost wall time)."""
    if kernel is None:
        return
    km = kernel.km
    KERNEL_CPU.add(kernel)
    if kernel.cgroup is not None:  # every process of the kernel, wherever it went, then the group
        kernel.cgroup.destroy()
    for pid in kernel.pids:  # killing bwrap ends its pid namespace, the warm kernel included
        kill_tree(pid)
    try:
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:
        pass
    try:
        run_sync(km.cleanup_resources)()
    except Exception:
        pass
    if kernel.capped:
        from tpkit.grading import quota
        quota.unmount(kernel.scratch.parent)
    shutil.rmtree(kernel.scratch.parent, ignore_errors=True)
    if kernel.uid is not None:
        _uid_pool().release(kernel.uid)


class KernelSupply:
    """Hands out started kernels to an executor (given to it explicitly:
    :class:`~tpkit.grading.converters.ParallelAutograde`); :meth:`prefetch` starts one in advance
    (a submission's worker does so before it pre-checks the notebook, which the kernel's boot then
    overlaps). ``forker``: see :func:`start_kernel`."""

    def __init__(self, settings: KernelSettings, forker: Optional[Callable[[dict], int]] = None):
        self.settings = settings
        self.forker = forker
        self._spare = None

    def prefetch(self) -> None:
        if self._spare is None:
            self._spare = start_kernel(self.settings, self.forker)

    def take(self) -> GradingKernel:
        kernel, self._spare = self._spare, None
        if kernel is None or not run_sync(kernel.km.is_alive)():
            discard_kernel(kernel)
            kernel = start_kernel(self.settings, self.forker)
        return kernel

    def close(self) -> None:
        discard_kernel(self._spare)
        self._spare = None
