"""Fresh, warm kernels for grading, and the limits that guard them.

Every submission runs in a kernel of its own, never reused. Sandboxed kernels start *warm*
(:mod:`tpkit.grading.zygote`): one zygote per grading process imports torch, numpy, matplotlib and
ipykernel once (about 3 s of CPU, see shared/notes/nbgrader-facts.md), and each kernel is a process
forked from it into a fresh sandbox of its own (:func:`start_kernel` starts the sandbox, whose holder
waits; :func:`tpkit.grading.zygote_client.fork_into` asks the zygote). ``TPKIT_KERNELS=cold`` starts every kernel from scratch
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
directory, filled by :class:`~tpkit.grading.executor.LimitedExecute` before the first cell runs;
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

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from tpkit.environment import kernel_variables, venv_on_path
from tpkit.grading.proctools import cpu_seconds, descendants, kill_tree, process_tree
from tpkit.grading import config, zygote_client
# the run's side of the zygote, named here with the kernels it starts
from tpkit.grading.zygote_client import close_zygotes, prestart, zygote_fork  # noqa: F401

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
        from tpkit.grading import sandbox_oneoff
        # memory_mb 0 (no RLIMIT_DATA): the address space and the cgroup stay bounded, at the default
        return sandbox_oneoff.limits(memory_mb=self.memory_mb or config.default("memory_limit"),
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
        from tpkit.grading import cgroups, sandbox, sandbox_oneoff, zygote
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
                                   fontlist=sandbox_oneoff.mpl_fontlist(),
                                   uid=kernel.uid, env=env, cgroup=procs)
        km.wrap = wrap
    run_sync(km.start_kernel)(
        cwd=str(scratch), env=settings.env(),
        extra_arguments=["--HistoryManager.hist_file=:memory:", f"--InteractiveShell.xmode={TRACEBACKS}",
                         f"--IPKernelApp.exec_lines={settings.startup_line(str(exchange))}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kernel_cmd:
        try:
            kernel.forked = zygote_client.fork_into(kernel, kernel_cmd, settings, forker)
        except Exception as exc:  # a cold kernel then: slower, same sandbox
            logging.getLogger("tpkit.grading").warning("warm kernel failed (%s): cold start", exc)
            discard_kernel(kernel)
            return start_kernel(dataclasses.replace(settings, warm=False))
    return kernel


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
