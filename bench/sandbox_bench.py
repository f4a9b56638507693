"""Start-up times of Python in and out of the grading sandbox, and an idle kernel's address-space
baseline (docs/sandbox.md): `python bench/sandbox_bench.py [RUNS]`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from tpkit.grading import sandbox as sb
from tpkit.grading import sandbox_oneoff


def bench(runs: int = 7) -> dict:
    """Median wall time (s) of Python start-ups outside and inside the sandbox (docs/sandbox.md)."""
    import statistics
    import time
    heavy = "import torch, numpy, matplotlib.pyplot, ipykernel"
    cases = {  # name: (python arguments, extra environment); /tmp: the private one inside
        "python -c pass": (["-c", "pass"], {}),
        heavy: (["-c", heavy], {}),
        # what every start would cost without the prebuilt font list (an empty MPLCONFIGDIR)
        heavy + " (no font list)": (["-c", "import os; os.mkdir('/tmp/mpl'); " + heavy],
                                    {"MPLCONFIGDIR": "/tmp/mpl"}),
    }
    results = {}
    with sandbox_oneoff._scratch_sandbox() as (workdir, exchange, uid):
        for name, (args, extra) in cases.items():
            timings: dict = {"outside": [], "inside": []}
            for n in range(runs + 1):  # the first round warms the page cache: not counted
                with tempfile.TemporaryDirectory() as tmp:  # outside: its own /tmp
                    env = dict(os.environ, **{k: v.replace("/tmp", tmp) for k, v in extra.items()})
                    t0 = time.perf_counter()
                    subprocess.run([sys.executable] + [a.replace("/tmp", tmp) for a in args],
                                   env=env, check=True, capture_output=True)
                    t1 = time.perf_counter()
                cmd = sb.command([sys.executable, *args], workdir=workdir, exchange=exchange,
                              limits=sandbox_oneoff.limits(), uid=uid, env=sb.kernel_env(extra))
                t2 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                t3 = time.perf_counter()
                if n:
                    timings["outside"].append(t1 - t0)
                    timings["inside"].append(t3 - t2)
            results[name] = {k: round(statistics.median(v), 3) for k, v in timings.items()}
    return results


if __name__ == "__main__":
    sb.check_available()
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print(json.dumps({"baseline_mb": sb.baseline_mb(), "start_up_s": bench(runs)}, indent=2))
