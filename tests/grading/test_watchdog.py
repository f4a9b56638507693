"""The kernels' watchdog (tpkit/grading/watchdog.py): the notebook's time limit and the memory backstop
kill the whole tree and say why (the cgroup and CPU-share cases: tests/grading/test_cgroups.py)."""
import subprocess
import sys
import time

from tpkit.grading.watchdog import Watchdog


def test_the_time_limit_kills_the_tree_and_says_time():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    t0 = time.monotonic()
    with Watchdog(proc.pid, time_limit=1, interval=0.05) as dog:
        proc.wait(20)
    assert dog.stop_reason() == "time" and time.monotonic() - t0 < 10


def test_the_memory_backstop_kills_and_says_resident_memory():
    proc = subprocess.Popen([sys.executable, "-c", "b = bytearray(300 * 2**20); import time; time.sleep(60)"])
    with Watchdog(proc.pid, memory_mb=100, interval=0.05) as dog:
        proc.wait(20)
    assert dog.stop_reason() == "resident"  # the message names this limit, not the memory limit


def test_a_process_within_its_limits_is_left_alone():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
    with Watchdog(proc.pid, time_limit=30, memory_mb=2048, interval=0.05) as dog:
        assert proc.wait(20) == 0
    assert dog.stop_reason() is None
