"""One kernel's cgroup, in the cgroup file system: its limits written, its accounting read, its
processes killed (:class:`KernelCgroup`), and where such groups are created (:class:`Backend`).

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

Apart from :mod:`tpkit.grading.cgroups` (what this host allows, detected once per process, and the
calls the grading makes) because this is the file-level work on one group, the same for every host.
"""
from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path
from typing import Optional

#: Kernels' groups are named ``tpkit-<grader pid>-<n>``, beside the grading process's own group (not
#: in a common parent: each kernel then weighs as much as one process of the machine, whatever it
#: starts, and the kernels together as much as that many processes; a parent of weight 1024 would
#: make all of them weigh as one process against the rest of the machine).
PREFIX = "tpkit-"
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
            frozen = freezer is not None and write_value(freezer / "freezer.state", "FROZEN")
            if frozen:  # members cannot fork while we kill them; wait for the freeze to hold
                t = time.monotonic() + 1
                while time.monotonic() < t and read_value(freezer / "freezer.state") == "FREEZING":
                    time.sleep(0.001)
                pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if frozen:
                write_value(freezer / "freezer.state", "THAWED")  # killed processes die when thawed
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
                write_value(d / "memory.swap.max", "0")  # absent without swap accounting
                write_value(d / "memory.oom.group", "1")  # the OOM killer ends the whole kernel
                (d / "pids.max").write_text(str(processes))
            else:
                Path(dirs["cpu"], "cpu.shares").write_text(str(V1_CPU_SHARES))
                memory = Path(dirs["memory"])
                (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
                # memsw (memory + swap) after the memory limit (it must stay >= it); only where
                # swap is accounted
                if (memory / "memory.memsw.limit_in_bytes").exists():
                    (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
                write_value(memory / "memory.swappiness", "0")
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


def read_value(path: Path) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def write_value(path: Path, text: str) -> bool:
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
