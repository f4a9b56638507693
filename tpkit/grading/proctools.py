"""What the grader reads of a process tree in /proc (children, resident memory, CPU time) and how it
kills one: small tools the kernels' lifecycle (:mod:`tpkit.grading.kernels`) and their watchdog
(:mod:`tpkit.grading.watchdog`) share."""
from __future__ import annotations

import os
import signal
from typing import Optional

import psutil


def kill_tree(pid: Optional[int]) -> None:
    """SIGKILL a process and everything it started."""
    if not pid:
        return
    try:
        proc = psutil.Process(pid)
        procs = proc.children(recursive=True) + [proc]
    except psutil.Error:
        return
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass


def _children(pid: int) -> Optional[list]:
    """Direct children of a process from /proc/<pid>/task/*/children (None when the kernel does not
    provide these files): reads the process's own entries, not every process of the machine as
    psutil's children() does, which matters for a watchdog polling 4 times a second."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None
        except OSError:
            continue
    return out


def process_tree(pids) -> list:
    """``pids`` and all their descendants (those alive now)."""
    seen, todo = [], [p for p in pids if p]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        children = _children(pid)
        if children is None:  # no /proc/.../children: psutil (a scan of every process)
            try:
                children = [c.pid for c in psutil.Process(pid).children(recursive=True)]
            except psutil.Error:
                children = []
        todo += children
    return seen


_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and of its children it has waited for."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(v) for v in fields[11:15]) / _TICK
    except (OSError, ValueError, IndexError):
        return 0.0


def descendants(pids) -> list:
    """psutil handles of the descendants of ``pids`` (names and command lines can be read)."""
    procs: dict = {}
    for pid in pids:
        try:
            for p in psutil.Process(pid).children(recursive=True):
                procs[p.pid] = p
        except psutil.Error:
            pass
    return list(procs.values())
