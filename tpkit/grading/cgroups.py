"""One cgroup per grading kernel: an equal CPU share, a memory limit, a process limit, kill-everything.

rlimits are per process: a kernel that starts 100 shell loops in their own sessions gets 100 times
the CPU of a classmate's kernel, and memory held outside the address space (``memfd`` written with
``write``, files in ``/dev/shm`` or ``/tmp``) escapes ``RLIMIT_AS``. A cgroup counts the *group*
(what each group holds and how it ends: :mod:`tpkit.grading.kernel_cgroup`).

The kernel is in its group from its first instruction: the sandbox's launcher writes its own pid into
``cgroup.procs`` before it execs bwrap (everything bwrap forks inherits it), and the zygote's child
that forks a warm kernel does the same before joining the sandbox (:mod:`tpkit.grading.zygote`).

:func:`backend` detects, once per process, what this host allows: cgroup v2 with the ``cpu``,
``memory`` and ``pids`` controllers in a subtree this process may write (a systemd scope started with
``Delegate=yes``, a container's delegated cgroup), else cgroup v1 hierarchies this process may write
(root, on our machines), else nothing: kernels then share the CPU and the memory of the machine,
which the run's summary says (:func:`tpkit.grading.isolation.isolation_notice`), and the watchdog kills
a kernel whose processes use more than one core for :data:`tpkit.grading.watchdog.CPU_HOG_WINDOW_S`
seconds. ``TPKIT_CGROUPS=off`` in the environment behaves as such a host (tests, or a host where the
cgroups misbehave).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional

from tpkit.grading.kernel_cgroup import PREFIX, Backend, KernelCgroup, read_value

#: ``TPKIT_CGROUPS=off``: do as if no cgroup could be created.
DISABLE_ENV = "TPKIT_CGROUPS"
#: v1 controllers a kernel's group needs (each may be a hierarchy of its own, or mounted together).
V1_REQUIRED = ("cpu", "memory", "pids")
#: v1 controllers used when present: CPU accounting (tests, benchmarks), freezing before the kill.
V1_OPTIONAL = ("cpuacct", "freezer")
V2_REQUIRED = ("cpu", "memory", "pids")

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
    controllers = set(read_value(here / "cgroup.controllers").split())
    missing = [c for c in V2_REQUIRED if c not in controllers]
    if missing:
        raise OSError(0, f"cgroup v2: controllers {','.join(missing)} not delegated to {here}")
    if not os.access(here, os.W_OK) or not os.access(here / "cgroup.subtree_control", os.W_OK):
        raise OSError(0, f"cgroup v2: {here} not writable")
    enabled = set(read_value(here / "cgroup.subtree_control").split())
    if not set(V2_REQUIRED) <= enabled:
        # "no internal processes": controllers can be enabled for children only once this group
        # holds no process. Ours moves to a leaf of its own (what systemd asks of delegated units).
        others = set(read_value(here / "cgroup.procs").split()) - {str(os.getpid())}
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
