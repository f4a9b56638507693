"""/proc tools shared by the kernels' lifecycle and their watchdog (tpkit/grading/proctools.py)."""
import subprocess
import sys
import time

import psutil

from tpkit.grading import proctools

TREE = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"


def _spawn_tree():
    proc = subprocess.Popen([sys.executable, "-c", TREE])
    deadline = time.monotonic() + 20
    while len(proctools.process_tree([proc.pid])) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def test_a_tree_is_read_measured_and_killed_whole():
    proc = _spawn_tree()
    try:
        tree = proctools.process_tree([proc.pid])
        assert tree[0] == proc.pid and len(tree) == 2
        assert [p.pid for p in proctools.descendants([proc.pid])] == tree[1:]
        assert proctools.rss_bytes(proc.pid) > 1024 * 1024 and proctools.cpu_seconds(proc.pid) >= 0
        proctools.kill_tree(proc.pid)
        proc.wait(10)
        child = tree[1]
        deadline = time.monotonic() + 10
        while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    finally:
        proc.kill()


def test_gone_processes_read_as_nothing():
    assert proctools.rss_bytes(2 ** 22 + 12345) == 0 and proctools.cpu_seconds(2 ** 22 + 12345) == 0.0
    proctools.kill_tree(None)
    proctools.kill_tree(2 ** 22 + 12345)  # no error
