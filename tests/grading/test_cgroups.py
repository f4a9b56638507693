"""Resource shares per kernel (tpkit.grading.cgroups, seccomp, quota): each limit acts, from inside.

Process-level tests run small programs in a sandbox placed in a cgroup of their own (as the launcher
does for a kernel); kernel-level tests start real grading kernels. Skipped where bubblewrap cannot run;
the cgroup tests also where this host gives no cgroup (they say so), the folder caps where the
grader is not root.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import psutil
import pytest

import test_sandbox
from test_kernels import Kernel
from test_sandbox import Box, pytestmark  # noqa: F401 (pytestmark: skipped where the sandbox is unavailable)

from tpkit.grading import cgroups, isolation, kernel_cgroup, kernels, quota, report, sandbox, sandbox_oneoff, seccomp
from tpkit.grading.findings import execution_findings
from tpkit.grading.results import RunReport
from tpkit.grading.watchdog import Watchdog

box = test_sandbox.box  # the fixture: one sandbox's folders and uid

NO_CGROUP = cgroups.unavailable_reason()
needs_cgroups = pytest.mark.skipif(NO_CGROUP is not None, reason=f"no cgroup on this host: {NO_CGROUP}")
needs_root = pytest.mark.skipif(not quota.available(), reason="folder caps need root (a tmpfs mount)")

#: Busy loops in their own sessions, exec'd shells: nothing forks the Python process itself.
HOG = """
import subprocess
hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True)
        for _ in range({n})]
print(len(hogs))
"""

PROBE = """
import ctypes, errno, json
libc = ctypes.CDLL(None, use_errno=True)
calls = {"io_uring_setup": (425, 1, 0), "userfaultfd": (323, 0), "keyctl": (250, 0, 0),
         "bpf": (321, 0, 0, 0), "ptrace": (101, 12, 0, 0, 0), "perf_event_open": (298, 0, 0, -1, -1, 0),
         "unshare": (272, 0), "mount": (165, 0, 0, 0, 0, 0)}
out = {}
for name, (nr, *args) in calls.items():
    ctypes.set_errno(0)
    out[name] = "ok" if libc.syscall(nr, *args) >= 0 else errno.errorcode[ctypes.get_errno()]
print(json.dumps(out))
"""


def run_in_group(box: Box, group, code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = sandbox.command([sys.executable, "-c", textwrap.dedent(code)], workdir=box.workdir,
                          exchange=box.exchange, limits=box.limits, uid=box.uid,
                          env=sandbox.kernel_env(), cgroup=group.procs_files if group else ())
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


# -------------------------------------------------------------------------------------- seccomp

@pytest.mark.skipif(seccomp.program() is None, reason=f"no libseccomp: {seccomp.unavailable_reason()}")
def test_seccomp_denies_what_a_kernel_never_needs(box):
    """io_uring, userfaultfd, keyctl, bpf, ptrace, perf_event_open and mount/namespace calls fail
    with EPERM inside (they succeed or fail otherwise outside); Python itself still works."""
    inside = box().json(PROBE + "import subprocess, threading; threading.Thread(target=print).start()\n"
                        "assert subprocess.run(['true']).returncode == 0\nprint(json.dumps(out))")
    assert inside == dict.fromkeys(inside, "EPERM") and len(inside) == 8
    if os.geteuid() == 0:  # outside, as root, each call does something else than EPERM
        outside = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True).stdout
        assert '"EPERM"' not in outside


# --------------------------------------------------------------------------- memory, processes

@needs_cgroups
@pytest.mark.parametrize("where", ["memfd", "/dev/shm"])
def test_memory_outside_the_heap_counts_in_the_group(box, where):
    """192 MiB written to memfds, or to files of the private /dev/shm (32 MiB each, under
    RLIMIT_FSIZE), with a 128 MiB group: the process is killed by the group's limit (RLIMIT_AS never
    sees these pages), and the group says so."""
    group = cgroups.create(128, 64)
    try:
        code = f"""
            import os
            for i in range(6):
                fd = (os.memfd_create("x") if {where!r} == "memfd" else
                      os.open(f"/dev/shm/x{{i}}", os.O_CREAT | os.O_WRONLY))
                for _ in range(32):
                    os.write(fd, b"x" * (1 << 20))
            print("survived")
        """
        proc = run_in_group(box(limits=sandbox_oneoff.limits(tmpfs_mb=512)), group, code)
        assert "survived" not in proc.stdout
        assert group.oom_killed()
        assert group.memory_peak_bytes() <= 128 << 20
    finally:
        assert group.destroy()


def _create_time(pid):
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _still_running(pid, born, grace=5.0):
    """Whether the process `pid` created at `born` still runs `grace` seconds on (a SIGKILLed process
    under load takes a moment to exit; zombie or dead, it no longer runs)."""
    deadline = time.monotonic() + grace
    while True:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() != born or proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                return False
        except psutil.Error:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)


@needs_cgroups
def test_group_process_limit_and_kill_everything(box):
    """pids.max bounds the group's processes (threads too); destroy() kills every member, daemons in
    their own sessions included, and removes the group's directories."""
    group = cgroups.create(256, 32)
    b = box()
    cmd = sandbox.command([sys.executable, "-c", textwrap.dedent("""
        import subprocess, time
        n = 0
        try:
            while True:
                subprocess.Popen(["sleep", "600"], start_new_session=True); n += 1
        except OSError:
            print(n, flush=True)
        time.sleep(600)
    """)], workdir=b.workdir, exchange=b.exchange, limits=sandbox_oneoff.limits(processes=4096), uid=b.uid,
        env=sandbox.kernel_env(), cgroup=group.procs_files)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    started = int(proc.stdout.readline())
    members = group.pids()
    assert 20 <= started < 32 and len(members) >= started
    born = {p: _create_time(p) for p in members}  # a pid freed by the kill may be reused by another test
    assert group.destroy()
    assert proc.wait(10) is not None
    assert not [p for p, t in born.items() if t is not None and _still_running(p, t)]
    assert not any(os.path.exists(d) for d in group.dirs.values())


# ------------------------------------------------------------------------------------ CPU share

@needs_cgroups
@pytest.mark.slow
def test_fifty_busy_processes_share_one_kernels_cpu():
    """Kernel A starts 50 busy shells in their own sessions; kernel B computes. Measured by their
    groups over the same seconds, B gets about half of what the two get (without cgroups: 1/51),
    and after discard nothing of A is left, its groups are gone."""
    a, b = Kernel(), Kernel()
    try:
        assert a.k.cgroup is not None and b.k.cgroup is not None
        assert a.run(HOG.format(n=50)).strip() == "50"
        time.sleep(1)  # the shells are running
        ua, ub = a.k.cgroup.cpu_seconds(), b.k.cgroup.cpu_seconds()
        b.run("import time\nt = time.monotonic()\nwhile time.monotonic() - t < 4: pass")
        da, db = a.k.cgroup.cpu_seconds() - ua, b.k.cgroup.cpu_seconds() - ub
        print(f"CPU over the window: busy shells {da:.2f} s, honest kernel {db:.2f} s")
        assert db / (da + db) > 0.3, (da, db)
        hogs = a.k.cgroup.pids()
        assert len(hogs) >= 50
    finally:
        a.close()
        b.close()
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in hogs)
    for k in (a.k, b.k):
        assert not any(os.path.exists(d) for d in k.cgroup.dirs.values())
        assert not k.scratch.parent.exists()


@needs_cgroups
def test_warm_kernel_is_in_its_group_filtered_and_capped():
    """The kernel the zygote forks is in the group made for it (so are the sandbox's processes), under
    the seccomp filter, and works in folders of bounded size and file count."""
    k = Kernel()
    try:
        members = k.k.cgroup.pids()
        assert k.k.forked in members and k.k.pid in members
        if seccomp.program() is not None:
            assert set(k.json(PROBE).values()) == {"EPERM"}
        if quota.available():
            limits = kernels.default_settings().sandbox_limits()
            size, files = k.json("import os, json; s = os.statvfs('.'); "
                                 "print(json.dumps([s.f_blocks * s.f_frsize >> 20, s.f_files]))")
            assert (size, files) == (limits.folders_mb, limits.folders_files)
    finally:
        k.close()


@needs_cgroups
@pytest.mark.slow
def test_memfd_and_shm_beyond_the_limit_stop_the_kernel_and_the_finding_says_memory():
    """A notebook holding 200 MiB in /dev/shm and 600 MiB in memfds with a 512 MB kernel limit: the
    group's limit kills the kernel, the cells after it are « non exécutées » for that reason, and
    the run's remarks say « mémoire »."""
    from tpkit.grading.preprocessors import LimitedExecute
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent("""
        import os
        blocs = []  # files of 50 MiB: each under RLIMIT_FSIZE
        for i in range(16):
            fd = os.open(f"/dev/shm/bloc{i}", os.O_CREAT | os.O_WRONLY) if i < 4 else os.memfd_create("bloc")
            for _ in range(50):
                os.write(fd, b"x" * (1 << 20))
            blocs.append(fd)
    """)), nbformat.v4.new_code_cell("print('encore là')")]
    supply = kernels.KernelSupply(kernels.default_settings(time_limit=120, memory_mb=512, warm=True))
    executor = LimitedExecute(timeout=60, supply=supply)
    nb, _ = executor.preprocess(nb, {})
    findings = execution_findings(nb, 512)
    assert any("limite de mémoire (512 Mo) dépassée" in f for f in findings), findings
    assert "encore là" not in str(nb.cells[1].outputs)


# -------------------------------------------------------------------------------- folder caps

@needs_root
def test_scratch_and_exchange_size_and_file_count_caps(tmp_path):
    """Writing past the size cap or the file-count cap fails with ENOSPC inside; the host's
    temporary folder never held those bytes (they were in the tmpfs, gone with it)."""
    base = tmp_path / "k"
    base.mkdir()
    assert quota.mount(base, 16, 200)
    try:
        b = Box(base)
        out = b.json("""
            import errno, json, os
            seen = {}
            try:
                with open("gros", "wb") as f:
                    for _ in range(32):
                        f.write(b"x" * (1 << 20)); f.flush()
            except OSError as e:
                seen["size"] = errno.errorcode[e.errno]
            os.remove("gros")
            try:
                for i in range(1000):
                    open(f"f{i}", "w").close()
            except OSError as e:
                seen["files"] = errno.errorcode[e.errno]
            print(json.dumps(seen))
        """)
        assert out == {"size": "ENOSPC", "files": "ENOSPC"}
        b.close()
        s = os.statvfs(base)
        assert s.f_blocks * s.f_frsize == 16 << 20  # the writes went to the tmpfs
    finally:
        quota.unmount(base)
    assert list(base.iterdir()) == []  # the host folder under it stayed empty


# ------------------------------------------------------------------------- without any cgroup

def test_without_cgroups_the_cpu_watchdog_stops_a_hog_and_the_summary_says_shared(monkeypatch):
    """TPKIT_CGROUPS=off (a laptop without delegation): kernels still start and run; a kernel whose
    busy shells use more than its share is killed by the watchdog (reason « cpu », French reason),
    and the run's summary says that CPU and memory are shared."""
    monkeypatch.setenv(cgroups.DISABLE_ENV, "off")
    cgroups.reset()
    try:
        notice = isolation.isolation_notice(True)
        assert "processeur et mémoire partagés" in notice
        assert isolation.isolation_notice(False) == ""  # without the sandbox, its own warning
        k = Kernel()
        try:
            assert k.k.cgroup is None
            watchdog = Watchdog(k.k.pids, cpu_cores=0.25, cpu_window=2)
            with watchdog:
                k.run(HOG.format(n=20))
                deadline = time.monotonic() + 60
                while watchdog.reason is None and time.monotonic() < deadline:
                    time.sleep(0.2)
            assert watchdog.stop_reason() == "cpu"
            from tpkit.grading.findings import kernel_stop_reason
            assert "part du processeur" in kernel_stop_reason("cpu", 300, 4096)
        finally:
            k.close()
        run = RunReport("tp", [], {}, 0, {}, isolation=notice)
        out = io.StringIO()
        report.summary(run, out=out)
        assert notice in out.getvalue()
        assert RunReport.from_json(run.to_json()).isolation == notice
    finally:
        monkeypatch.delenv(cgroups.DISABLE_ENV)
        cgroups.reset()


def test_cpu_watchdog_spares_a_kernel_within_its_share():
    """One busy process (the kernel's own computing) with a share of one core: never killed."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        watchdog = Watchdog(proc.pid, cpu_cores=1, cpu_window=1)
        with watchdog:
            time.sleep(2.5)
        assert watchdog.reason is None and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_stale_groups_of_a_dead_grader_are_swept():
    """Groups named after a grading process that no longer runs are removed at detection."""
    b = cgroups.backend()
    if b is None:
        pytest.skip(f"no cgroup on this host: {NO_CGROUP}")
    dead = subprocess.Popen(["true"])
    dead.wait()
    name = f"{kernel_cgroup.PREFIX}{dead.pid}-1"
    made = [Path(p) / name for p in set(b.parents.values())]
    for d in made:
        d.mkdir()
    b.sweep()
    assert not any(d.exists() for d in made)


def test_class_report_shows_the_isolation_line(tmp_path):
    """The class report carries the run's isolation line, escaped, above everything else; none when
    the run was isolated."""
    from tpkit.grading import classreport
    png = tmp_path / "f.png"
    png.write_bytes(b"\x89PNG")
    figures = dict.fromkeys(("distribution", "questions", "durees"), png)
    notice = "ATTENTION : rendus partiellement isolés <b>x</b>"
    pages = [classreport.render(None, RunReport("tp", [], {}, 0, {}, isolation=text), figures, [], {},
                                [], {}, {}, set()) for text in (notice, "")]
    assert 'id="isolation">ATTENTION : rendus partiellement isolés &lt;b&gt;x&lt;/b&gt;</p>' in pages[0]
    assert 'id="isolation"' not in pages[1]
