"""What the per-kernel isolation costs at each kernel start (docs/sandbox.md, « Coût »).

    python bench/isolation_bench.py [RUNS]

Prints, as JSON, the median over RUNS (after one warm-up) of: creating and removing a kernel's
cgroup (tpkit.grading.cgroups), mounting and unmounting its capped folders (tpkit.grading.quota),
compiling the seccomp filter (once per grading process), and a trivial sandboxed command
(``/bin/true``) with and without the seccomp filter and the cgroup.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tpkit.grading import cgroups, quota, sandbox, sandbox_oneoff, seccomp


def _ms(fn, runs: int) -> float | None:
    times = []
    for n in range(runs + 1):
        t0 = time.perf_counter()
        if fn() is False:
            return None
        if n:
            times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def main(runs: int = 20) -> dict:
    sandbox_oneoff.check_available()
    out: dict = {"cgroups": cgroups.backend().describe() if cgroups.backend() else cgroups.unavailable_reason()}

    def group():
        g = cgroups.create(4096, 256)
        if g is None:
            return False
        g.destroy()
    out["cgroup_create_destroy_ms"] = _ms(group, runs)

    def folders():
        with tempfile.TemporaryDirectory() as tmp:
            if not quota.mount(tmp, 512, 10000):
                return False
            Path(tmp, "travail").mkdir()
            quota.unmount(tmp)
    out["folders_mount_unmount_ms"] = _ms(folders, runs)

    program = seccomp.program()
    out["seccomp_compile_ms_once"] = _ms(seccomp._compile, runs) if program else None
    out["seccomp_instructions"] = len(program) // 8 if program else None

    with sandbox_oneoff._scratch_sandbox() as (workdir, exchange, uid):
        def start(filtered: bool, grouped: bool):
            def run():
                g = cgroups.create(4096, 256) if grouped else None
                if grouped and g is None:
                    return False
                cmd = sandbox.command(["/bin/true"], workdir=workdir, exchange=exchange, uid=uid,
                                      env=sandbox.kernel_env(), seccomp_filter=filtered,
                                      cgroup=g.procs_files if g else (),
                                      limits=sandbox.Limits(baseline_mb=0))
                subprocess.run(cmd, check=True, capture_output=True)
                if g is not None:
                    g.destroy()
            return run
        out["sandbox_true_ms"] = _ms(start(False, False), runs)
        out["sandbox_true_seccomp_ms"] = _ms(start(True, False), runs)
        out["sandbox_true_seccomp_cgroup_ms"] = _ms(start(True, True), runs)
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20), indent=1))
