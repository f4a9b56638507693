"""One cgroup per grading kernel: an equal CPU share, a memory limit, a process limit, kill-everything.

rlimits are per process: a kernel that starts 100 shell loops in their own sessions gets 100 times
the CPU of a classmate's kernel, and memory held outside the address space (``memfd`` written with
``write``, files in ``/dev/shm`` or ``/tmp``) escapes ``RLIMIT_AS``. A cgroup counts the *group*:

* **CPU**: every kernel's group has the same weight (v1 ``cpu.shares`` 1024, v2 ``cpu.weight`` 100),
  so the scheduler divides the CPU between kernels, whatever the number of processes in each;
* **memory**: v1 ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes`` where swap is
  accounted), v2 ``memory.max`` and ``memory.swap.max`` = 0. Anonymous memory, page tables, and the
  shared memory, ``memfd`` and tmpfs pages the kernel writes are all charged to its group; over the
  limit the kernel's OOM killer kills a process of the group (the kernel), and
  :meth:`KernelCgroup.oom_killed` tells the grading why (« limite de mémoire … dépassée »);
* **processes**: ``pids.max``;
* **the end**: :meth:`KernelCgroup.destroy` kills every process of the group (v2 ``cgroup.kill``; v1:
  freeze, SIGKILL every member, thaw; a loop where there is no freezer), then removes it.

The kernel is in its group from its first instruction: the sandbox's launcher writes its own pid into
``cgroup.procs`` before it execs bwrap (everything bwrap forks inherits it), and the zygote's child
that forks a warm kernel does the same before joining the sandbox (:mod:`tpkit.grading.zygote`).

:func:`backend` detects, once per process, what this host allows: cgroup v2 with the ``cpu``,
``memory`` and ``pids`` controllers in a subtree this process may write (a systemd scope started with
``Delegate=yes``, a container's delegated cgroup), else cgroup v1 hierarchies this process may write
(root, on our machines), else nothing: kernels then share the CPU and the memory of the machine,
which the run's summary says (:func:`isolation_notice`), and the watchdog kills a kernel whose
processes use more than one core for :data:`tpkit.grading.watchdog.CPU_HOG_WINDOW_S` seconds.
``TPKIT_CGROUPS=off`` in the environment behaves as such a host (tests, or a host where the
cgroups misbehave).
"""
from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from pathlib import Path
from typing import Optional

#: ``TPKIT_CGROUPS=off``: do as if no cgroup could be created.
DISABLE_ENV = "TPKIT_CGROUPS"
#: Kernels' groups are named ``tpkit-<grader pid>-<n>``, beside the grading process's own group (not
#: in a common parent: each kernel then weighs as much as one process of the machine, whatever it
#: starts, and the kernels together as much as that many processes; a parent of weight 1024 would
#: make all of them weigh as one process against the rest of the machine).
PREFIX = "tpkit-"
#: v1 controllers a kernel's group needs (each may be a hierarchy of its own, or mounted together).
V1_REQUIRED = ("cpu", "memory", "pids")
#: v1 controllers used when present: CPU accounting (tests, benchmarks), freezing before the kill.
V1_OPTIONAL = ("cpuacct", "freezer")
V2_REQUIRED = ("cpu", "memory", "pids")
#: Equal weights: the CPU is divided between kernels, not between their processes.
V1_CPU_SHARES = 1024
V2_CPU_WEIGHT = 100


class KernelCgroup:
    """The group of one kernel: a directory per v1 hierarchy, or one v2 directory."""

    def __init__(self, version: int, dirs: dict):
        self.version = version
        self.dirs = dirs  # controller (v1) or "" (v2) -> directory

    @property
    def procs_files(self) -> list:
        """The ``cgroup.procs`` files a process writes its pid into to join the group (one per
        hierarchy), in a stable order."""
        return sorted({str(Path(d) / "cgroup.procs") for d in self.dirs.values()})

    def _dir(self, controller: str) -> Optional[Path]:
        d = self.dirs.get("" if self.version == 2 else controller)
        return Path(d) if d else None

    def pids(self) -> set:
        out: set = set()
        for d in set(self.dirs.values()):
            try:
                out.update(int(p) for p in Path(d, "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return out

    def oom_killed(self) -> bool:
        """Whether the memory limit killed a process of the group (v1 ``memory.oom_control``, v2
        ``memory.events``: ``oom_kill``)."""
        d = self._dir("memory")
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in (d / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError, TypeError):
            pass
        return False

    def cpu_seconds(self) -> Optional[float]:
        """CPU time used by the group's processes, dead ones included (None where not accounted)."""
        try:
            if self.version == 2:
                for line in (self._dir("cpu") / "cpu.stat").read_text().splitlines():
                    if line.startswith("usage_usec "):
                        return int(line.split()[1]) / 1e6
                return None
            d = self._dir("cpuacct")
            return int((d / "cpuacct.usage").read_text()) / 1e9 if d else None
        except (OSError, ValueError, TypeError):
            return None

    def memory_peak_bytes(self) -> Optional[int]:
        d = self._dir("memory")
        try:
            name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
            return int((d / name).read_text().split()[0])
        except (OSError, ValueError, TypeError, IndexError):
            return None

    def kill(self, timeout: float = 10) -> bool:
        """SIGKILL every process of the group, until it is empty; True when it is."""
        if self.version == 2:
            try:
                (self._dir("cpu") / "cgroup.kill").write_text("1")
            except OSError:
                pass
        freezer = self._dir("freezer") if self.version == 1 else None
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                return True
            if time.monotonic() > deadline:
                return False
            frozen = freezer is not None and _write(freezer / "freezer.state", "FROZEN")
            if frozen:  # members cannot fork while we kill them; wait for the freeze to hold
                t = time.monotonic() + 1
                while time.monotonic() < t and _read(freezer / "freezer.state") == "FREEZING":
                    time.sleep(0.001)
                pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if frozen:
                _write(freezer / "freezer.state", "THAWED")  # killed processes die when thawed
            time.sleep(0.005)

    def destroy(self) -> bool:
        """Kill every process of the group and remove its directories; True when all are gone."""
        self.kill()
        gone = True
        for d in set(self.dirs.values()):
            for _ in range(200):  # exited processes leave the group a moment after SIGKILL
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.005)
            else:
                gone = False
        return gone


class Backend:
    """Where kernels' groups are created: ``parents`` maps a v1 controller (or "" for v2) to the
    directory under which each kernel gets its own."""

    def __init__(self, version: int, parents: dict):
        self.version = version
        self.parents = parents
        self._seq = itertools.count(1)

    def describe(self) -> str:
        return f"cgroup v{self.version} ({', '.join(sorted(set(map(str, self.parents.values()))))})"

    def create(self, memory_bytes: int, processes: int) -> KernelCgroup:
        """A new, empty group with the limits set (OSError if the host refuses)."""
        name = f"{PREFIX}{os.getpid()}-{next(self._seq)}"
        dirs: dict = {}
        group = KernelCgroup(self.version, dirs)
        try:
            for controller, parent in self.parents.items():
                path = Path(parent) / name
                same = [c for c, p in dirs.items() if Path(p) == path]  # v1 co-mounted controllers
                if not same:
                    path.mkdir(mode=0o755)
                dirs[controller] = str(path)
            if self.version == 2:
                d = Path(dirs[""])
                (d / "cpu.weight").write_text(str(V2_CPU_WEIGHT))
                (d / "memory.max").write_text(str(memory_bytes))
                _write(d / "memory.swap.max", "0")  # absent without swap accounting
                _write(d / "memory.oom.group", "1")  # the OOM killer ends the whole kernel
                (d / "pids.max").write_text(str(processes))
            else:
                Path(dirs["cpu"], "cpu.shares").write_text(str(V1_CPU_SHARES))
                memory = Path(dirs["memory"])
                (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
                # memsw (memory + swap) after the memory limit (it must stay >= it); only where
                # swap is accounted
                if (memory / "memory.memsw.limit_in_bytes").exists():
                    (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
                _write(memory / "memory.swappiness", "0")
                Path(dirs["pids"], "pids.max").write_text(str(processes))
        except OSError:
            group.destroy()
            raise
        return group

    def sweep(self) -> None:
        """Remove the groups a dead grading process left behind (named ``tpkit-<pid>-<n>``)."""
        for parent in set(self.parents.values()):
            try:
                entries = list(os.scandir(parent))
            except OSError:
                continue
            for entry in entries:
                pid, _, n = entry.name[len(PREFIX):].partition("-")
                if entry.name.startswith(PREFIX) and entry.is_dir() and pid.isdigit() and n.isdigit() and not _alive(int(pid)):
                    KernelCgroup(self.version, {"": entry.path} if self.version == 2 else
                                 {c: str(Path(p) / entry.name) for c, p in self.parents.items()
                                  if Path(p, entry.name).is_dir()}).destroy()


_backend: Optional[Backend] = None
_why_not: Optional[str] = None
_detected = False
_lock = threading.Lock()


def backend() -> Optional[Backend]:
    """This host's cgroups for kernels (detected once per process), or None (see
    :func:`unavailable_reason`)."""
    global _backend, _why_not, _detected
    with _lock:
        if not _detected:
            _detected = True
            if os.environ.get(DISABLE_ENV, "").lower() in ("off", "0", "no", "false"):
                _why_not = f"{DISABLE_ENV}={os.environ[DISABLE_ENV]}"
            else:
                errors = []
                for detect in (_detect_v2, _detect_v1):
                    try:
                        _backend = detect()
                        _backend.sweep()
                        break
                    except OSError as exc:
                        errors.append(str(exc))
                if _backend is None:
                    _why_not = "; ".join(errors)
        return _backend


def unavailable_reason() -> Optional[str]:
    backend()
    return _why_not


def reset() -> None:
    """Detect again at the next :func:`backend` (tests)."""
    global _backend, _why_not, _detected
    with _lock:
        _backend, _why_not, _detected = None, None, False


def create(memory_mb: int, processes: int) -> Optional[KernelCgroup]:
    """A group for a new kernel, or None where cgroups are not available (or refuse)."""
    b = backend()
    if b is None:
        return None
    try:
        return b.create(int(memory_mb) * 1024 * 1024, int(processes))
    except OSError:
        return None


def join(procs_files) -> None:
    """Move the calling process into a group (write its pid into each ``cgroup.procs``)."""
    for path in procs_files:
        with open(path, "w") as f:
            f.write(str(os.getpid()))


# --------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------

def _mounts() -> list:
    """[(mount point, root inside the hierarchy, file-system type, super options)] of cgroup mounts."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
                point = fields[4].replace("\\040", " ")
                out.append((point, fields[3], rfields[0], set(rfields[2].split(","))))
    return out


def member_procs_files(pid: int, procs_files) -> list:
    """Those of ``procs_files`` that are kernel groups (``PREFIX…/cgroup.procs``) holding ``pid``: how a
    fork request from a grading worker names its kernel's group without being taken on trust (the
    sandbox's holder joined it at its start). ValueError for any other path."""
    out = []
    for path in procs_files:
        path = Path(str(path))
        if path.name != "cgroup.procs" or not path.parent.name.startswith(PREFIX) or ".." in path.parts:
            raise ValueError(f"not a kernel group: {str(path)[:200]}")
        try:
            members = path.read_text().split()
        except OSError:
            raise ValueError(f"no such kernel group: {str(path)[:200]}") from None
        if str(pid) not in members:
            raise ValueError("the sandbox is not in that kernel group")
        out.append(str(path))
    return sorted(out)


def _own_cgroups() -> dict:
    """/proc/self/cgroup: {controller name (v1) or "" (v2): path inside its hierarchy}."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in (controllers.split(",") if controllers else [""]):
                out[c] = path
    return out


def _inside(point: str, root: str, path: str) -> Path:
    """Directory of the hierarchy path ``path`` under a mount of that hierarchy's ``root``."""
    if root != "/" and (path == root or path.startswith(root.rstrip("/") + "/")):
        path = path[len(root.rstrip("/")):] or "/"
    return Path(point + path.rstrip("/"))


def _detect_v2() -> Backend:
    own = _own_cgroups().get("")
    mount = next(((p, r) for p, r, t, _ in _mounts() if t == "cgroup2"), None)
    if own is None or mount is None:
        raise OSError(0, "cgroup v2: not mounted")
    here = _inside(*mount, own)
    controllers = set(_read(here / "cgroup.controllers").split())
    missing = [c for c in V2_REQUIRED if c not in controllers]
    if missing:
        raise OSError(0, f"cgroup v2: controllers {','.join(missing)} not delegated to {here}")
    if not os.access(here, os.W_OK) or not os.access(here / "cgroup.subtree_control", os.W_OK):
        raise OSError(0, f"cgroup v2: {here} not writable")
    enabled = set(_read(here / "cgroup.subtree_control").split())
    if not set(V2_REQUIRED) <= enabled:
        # "no internal processes": controllers can be enabled for children only once this group
        # holds no process. Ours moves to a leaf of its own (what systemd asks of delegated units).
        others = set(_read(here / "cgroup.procs").split()) - {str(os.getpid())}
        if others:
            raise OSError(0, f"cgroup v2: {here} holds other processes than the grader's")
        leaf = here / f"grader-{os.getpid()}"
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
        (here / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in V2_REQUIRED))
    backend = Backend(2, {"": str(here)})
    backend.create(64 << 20, 8).destroy()  # a probe: limits writable, removal allowed
    return backend


def _detect_v1() -> Backend:
    own = _own_cgroups()
    parents: dict = {}
    for point, root, kind, options in _mounts():
        if kind != "cgroup":
            continue
        for controller in (*V1_REQUIRED, *V1_OPTIONAL):
            if controller in options and controller not in parents and controller in own:
                parents[controller] = _inside(point, root, own[controller])
    missing = [c for c in V1_REQUIRED if c not in parents]
    if missing:
        raise OSError(0, f"cgroup v1: no hierarchy for {','.join(missing)}")
    for controller, parent in list(parents.items()):
        if not os.access(parent, os.W_OK):
            if controller in V1_REQUIRED:
                raise OSError(0, f"cgroup v1: {parent} not writable")
            del parents[controller]
    backend = Backend(1, {c: str(p) for c, p in parents.items()})
    backend.create(64 << 20, 8).destroy()  # a probe: limits writable, removal allowed
    return backend


def _read(path: Path) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _write(path: Path, text: str) -> bool:
    try:
        Path(path).write_text(text)
        return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def isolation_notice(sandbox: bool = True) -> str:
    """One French line for the run's summary and class report when the submissions of this run
    are not isolated from one another in CPU, memory, disk or system calls; "" when they are (and
    without the sandbox, whose own warning says more)."""
    if not sandbox:
        return ""
    from tpkit.grading import quota, seccomp
    from tpkit.grading.watchdog import CPU_HOG_WINDOW_S
    missing = []
    if backend() is None:
        missing.append("processeur et mémoire partagés entre les rendus (pas de cgroup utilisable ; "
                       f"un noyau qui dépasse sa part du processeur plus de {CPU_HOG_WINDOW_S:g} s "
                       "est arrêté)")
    if not quota.available():
        missing.append("dossiers de travail sans limite de taille ni de nombre de fichiers (correction "
                       "lancée sans les droits root)")
    if seccomp.program() is None:
        missing.append("appels système non filtrés (libseccomp ou pyseccomp absent)")
    if not missing:
        return ""
    return "ATTENTION : rendus partiellement isolés les uns des autres : " + " ; ".join(missing) + "."
