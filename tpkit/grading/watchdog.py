"""The watchdog of a grading kernel: the notebook's time limit, the memory backstop, the cgroup's
out-of-memory kills and, for a kernel without cgroup, its share of the CPU (kills the kernel's whole
process tree when one is passed)."""
from __future__ import annotations

import os
import threading
import time
from typing import Optional

from tpkit.grading.proctools import cpu_seconds, kill_tree, process_tree, rss_bytes


#: Without a cgroup (a host that cannot create one: :mod:`tpkit.grading.cgroups`) nothing divides the
#: CPU between kernels: the watchdog kills a kernel whose processes used more than its share of cores
#: (its torch threads) plus :data:`CPU_HOG_MARGIN` over the last :data:`CPU_HOG_WINDOW_S` seconds.
CPU_HOG_WINDOW_S = 5.0
#: Cores of slack above the share (ipykernel's own threads, a short burst of a library).
CPU_HOG_MARGIN = 0.5


class Watchdog:
    """Kills a kernel's process tree when the notebook's time limit is exceeded or its resident memory
    goes over ``memory_mb`` (a backstop: ``RLIMIT_DATA`` normally stops the allocation first), when its
    cgroup's memory limit killed one of its processes (``cgroup``: a :class:`cgroups.KernelCgroup`), and,
    with ``cpu_cores`` (a kernel without cgroup), when its processes use more than that many cores
    (+ :data:`CPU_HOG_MARGIN`) over :data:`CPU_HOG_WINDOW_S` seconds.

    ``reason`` is None, ``"time"``, ``"memory"`` (the cgroup's limit), ``"resident"`` (the backstop) or
    ``"cpu"`` after the fact (the message then names the limit that acted); :meth:`stop_reason`
    also sees an out-of-memory kill that the kernel's death reported before the watchdog did."""

    def __init__(self, pid, time_limit: float = 0, memory_mb: int = 0,
                 interval: float = 0.25, cgroup=None, cpu_cores: float = 0,
                 cpu_window: float = CPU_HOG_WINDOW_S):
        # one pid or several (a warm kernel: the sandbox and the kernel, see GradingKernel.pids)
        self.pids = [p for p in (pid if isinstance(pid, (list, tuple)) else [pid]) if p]
        self.pid = self.pids[0] if self.pids else None
        self.time_limit = time_limit
        self.memory_bytes = memory_mb * 1024 * 1024
        self.interval = interval
        self.cgroup = cgroup
        self.cpu_cores = cpu_cores
        self.cpu_window = cpu_window
        self.reason: Optional[str] = None
        self._samples: list = []  # (time, {pid: CPU seconds}) over the last cpu_window
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tpkit-watchdog", daemon=True)

    @classmethod
    def for_kernel(cls, kernel, time_limit: float, memory_mb: int,
                   cores: float) -> "Watchdog":
        """The watchdog of a grading kernel (:class:`tpkit.grading.kernels.GradingKernel`): its cgroup
        where it has one, else the CPU check with
        ``cores`` as its share."""
        cgroup = getattr(kernel, "cgroup", None)
        return cls(kernel.pids, time_limit, memory_mb, cgroup=cgroup,
                   cpu_cores=0 if cgroup is not None else max(1.0, float(cores)))

    def __enter__(self):
        self._t0 = time.monotonic()
        if self.pid and (self.time_limit or self.memory_bytes or self.cgroup is not None
                         or self.cpu_cores):
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return False

    def stop_reason(self) -> Optional[str]:
        if self.reason is None and self.cgroup is not None and self.cgroup.oom_killed():
            return "memory"
        return self.reason

    def _rss(self) -> int:
        return sum(rss_bytes(pid) for pid in process_tree(self.pids))

    def _cpu_hog(self) -> bool:
        """Whether the tree used more than its share of cores over the last window (a process's
        time counts from its first sample, or entirely when it started within the window)."""
        now = time.monotonic()
        usage = {pid: cpu_seconds(pid) for pid in process_tree(self.pids)}
        self._samples.append((now, usage))
        while len(self._samples) > 1 and now - self._samples[1][0] >= self.cpu_window:
            self._samples.pop(0)
        then, before = self._samples[0]
        if now - then < self.cpu_window:
            return False
        used = sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in usage.items())
        return used / (now - then) > self.cpu_cores + CPU_HOG_MARGIN

    def _run(self) -> None:
        if not any(os.path.exists(f"/proc/{pid}") for pid in self.pids):
            return
        while not self._stop.wait(self.interval):
            if self.time_limit and time.monotonic() - self._t0 > self.time_limit:
                self.reason = "time"
            elif self.cgroup is not None and self.cgroup.oom_killed():
                self.reason = "memory"
            elif self.memory_bytes and self._rss() > self.memory_bytes:
                self.reason = "resident"
            elif self.cpu_cores and self._cpu_hog():
                self.reason = "cpu"
            if self.reason:
                if self.cgroup is not None:
                    self.cgroup.kill()
                for pid in self.pids:
                    kill_tree(pid)
                return
