"""The workers' fork server (tpkit/grading/forkserver.py): booted ahead of the first worker, with the
grading modules preloaded and the caches filled (what those caches save: test_prewarm.py)."""
import subprocess
import sys

import pytest

from tpkit.grading import forkserver

SCRIPT = r"""
import time
from tpkit.grading import forkserver
forkserver.boot()
ctx = forkserver.context()
deadline = time.monotonic() + 240
while forkserver.cpu_seconds() == 0 and time.monotonic() < deadline:
    time.sleep(0.1)
p = ctx.Process(target=print, args=("worker",))  # forked from the booted server: no second boot
p.start(); p.join(60)
import sys
print(p.exitcode, forkserver.cpu_seconds() > 0.5, 'torch' in sys.modules)
"""


def test_the_preload_ends_with_the_prewarm_and_holds_the_worker():
    assert forkserver.PRELOAD[-1] == "tpkit.grading.prewarm"
    assert "tpkit.grading.worker" in forkserver.PRELOAD and "torch" in forkserver.PRELOAD


@pytest.mark.slow
def test_a_booted_server_forks_workers_with_everything_imported():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=True)
    # the worker printed; the server spent its imports and pre-warm; the coordinator imported no torch
    assert out.stdout.split()[-4:] == ["worker", "0", "True", "False"], out.stdout + out.stderr
