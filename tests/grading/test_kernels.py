"""Warm kernels (tpkit.grading.zygote): forked from one pre-imported zygote, each into a fresh sandbox.

Two kernels of the same grading process, one after the other, as the grading threads use them
(start_kernel, then discard_kernel): what the first one leaves (a daemon, files in /tmp and /dev/shm,
monkeypatched modules, environment) never reaches the second; each has the sandbox's uid, no
capability, its own pid namespace, and the sandbox's limits. Skipped where bubblewrap cannot run.
"""
from __future__ import annotations

import json
import os
import time
import uuid

import nbformat
import psutil
import pytest
from jupyter_client import BlockingKernelClient

from test_sandbox import host_processes, pytestmark  # noqa: F401 (pytestmark: skipped where the sandbox is unavailable)

from tpkit.grading import kernels, sandbox, zygote_client

MAIN = "tp_reseaux_neurones"  # the course's main assignment


SETTINGS = kernels.default_settings(warm=True)


class Kernel:
    """A warm grading kernel and a client that runs code in it."""

    def __init__(self):
        self.k = kernels.start_kernel(SETTINGS)
        assert self.k.forked, "not a warm kernel"
        self.kc = BlockingKernelClient(connection_file=self.k.km.connection_file)
        self.kc.load_connection_file()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str) -> str:
        """stdout of code; fails the test on an error."""
        out, errors = [], []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
        reply = self.kc.execute_interactive(code, output_hook=hook, timeout=120)
        assert reply["content"]["status"] == "ok", errors
        return "".join(out)

    def json(self, code: str):
        return json.loads(self.run(code).strip().splitlines()[-1])

    def close(self):
        self.kc.stop_channels()
        kernels.discard_kernel(self.k)


PROBE = """
import builtins, json, os, sys, numpy, torch
print(json.dumps({
    "tmp": sorted(n for n in os.listdir("/tmp") if not n.startswith("tpkit-kernel-")),
    "shm": sorted(os.listdir("/dev/shm")),
    "work": sorted(os.listdir(".")),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "me": os.getpid(), "uid": os.getuid(),
    "allclose_real": torch.allclose(torch.zeros(1), torch.ones(1)) is False,
    "pi": numpy.pi, "leak": hasattr(builtins, "fuite"), "env": os.environ.get("FUITE"),
    "seed_draw": float(torch.rand(1)),
}))
"""


def test_nothing_left_by_one_submission_reaches_the_next():
    """A daemon, files in /tmp, /dev/shm and the working folder, monkeypatched torch/numpy/builtins
    and environment: the next kernel of the same zygote sees none of it, and the daemon is dead."""
    marker = f"tpkit-daemon-{uuid.uuid4().hex}"
    first = Kernel()
    try:
        zygote = zygote_client._zygote(SETTINGS).proc.pid
        before = first.json(PROBE)
        first.run(f"""
import builtins, os, subprocess, sys, numpy, torch
for folder in ("/tmp", "/dev/shm", "."):
    open(os.path.join(folder, "laisse.txt"), "w").write("x")
torch.allclose = lambda *a, **k: True
numpy.pi = 3.0
builtins.fuite = 1
os.environ["FUITE"] = "1"
if os.fork() == 0:  # a double-forked daemon
    os.setsid()
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"],
                     start_new_session=True)
    os._exit(0)
""")
        deadline = time.monotonic() + 10
        while not host_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert host_processes(marker), "the daemon did not start"
        # the daemon's parent exits just after starting it: until the pid namespace's init has
        # adopted it, it belongs to no tree (seen once in 8 runs), so wait for the adoption too
        while kernels.stray_processes(first.k) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        # (stray_processes may miss it once the cgroup holds it: what matters is that it dies below)
        dirty = first.json(PROBE)
        assert "laisse.txt" in dirty["tmp"] and dirty["shm"] == ["laisse.txt"]
        assert "laisse.txt" in dirty["work"]
        assert not dirty["allclose_real"] and dirty["pi"] == 3.0 and dirty["leak"]
    finally:
        first.close()
    deadline = time.monotonic() + 10
    while host_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes(marker) == [], "the daemon outlived its submission"

    second = Kernel()
    try:
        assert zygote_client._zygote(SETTINGS).proc.pid == zygote  # same zygote, fresh kernel
        after = second.json(PROBE)
        assert after.pop("uid") == second.k.uid or os.geteuid() != 0
        before.pop("uid")
        assert after == before  # same fresh state, same seeded draw
        assert "laisse.txt" not in after["tmp"] and after["shm"] == [] and after["work"] == []
        assert after["allclose_real"] and after["pi"] == pytest.approx(3.14159, abs=1e-5)
        assert not after["leak"] and after["env"] is None
        assert after["pids"] == [1, 2, 3] and after["me"] == 3  # bwrap's init, the holder, the kernel
        assert kernels.stray_processes(second.k) == 0
    finally:
        second.close()


def test_warm_kernel_has_the_sandbox_identity_and_limits():
    """The pool uid (as root), no capability, no_new_privs, no nested user namespace, no way back to
    the course folder or the network, and the sandbox's rlimits; an allocation over the memory limit
    fails in the kernel."""
    kernel = Kernel()
    try:
        seen = kernel.json(f"""
import json, os, resource, socket, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
try:
    import tpkit
    tpkit_visible = True
except ImportError:
    tpkit_visible = False
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if os.fork() == 0:  # a child tries a user namespace of its own (and so capabilities in it)
    os._exit(0 if libc.unshare(0x10000000) == 0 else 1)
userns = "created" if os.waitstatus_to_exitcode(os.wait()[1]) == 0 else "refused"
try:
    bytearray(8 * 1024 ** 3)
    memory = "allocated"
except MemoryError:
    memory = "MemoryError"
print(json.dumps({{
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "caps": [status[k].strip() for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb")],
    "nnp": status["NoNewPrivs"].strip(),
    "course": [os.path.exists(os.path.join({str(sandbox.COURSE_ROOT)!r}, name))
               for name in ("tpkit", "gradebook.db", "source")],
    "tpkit": tpkit_visible, "sys_path": sys.path,
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "limits": {{n: list(resource.getrlimit(getattr(resource, n))) for n in
               ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CPU", "RLIMIT_CORE")}},
    "memory": memory, "cwd": os.getcwd(), "torch_preloaded": "torch" in sys.modules, "userns": userns,
}}))""")
    finally:
        kernel.close()
    if os.geteuid() == 0:
        assert seen["uid"] == seen["gid"] == kernel.k.uid and seen["uid"] >= 61000
        assert seen["groups"] in ([], [seen["gid"]])
    else:
        assert seen["uid"] == os.getuid()
    assert seen["caps"] == ["0000000000000000"] * 4 and seen["nnp"] == "1"
    assert seen["course"] == [False] * 3 and not seen["tpkit"]
    assert not any(p.startswith(str(sandbox.COURSE_ROOT) + "/") and ".venv" not in p
                   for p in seen["sys_path"]) and str(sandbox.COURSE_ROOT) not in seen["sys_path"]
    assert seen["interfaces"] == ["lo"]
    expected = {name: [soft, hard] for name, soft, hard in sandbox.rlimits(SETTINGS.sandbox_limits())}
    assert seen["limits"] == expected
    assert seen["memory"] == "MemoryError" and seen["userns"] == "refused"
    assert seen["cwd"] == sandbox.WORKDIR_INSIDE and seen["torch_preloaded"]


def test_kernel_death_ends_its_sandbox():
    """os._exit in the kernel: the holder, hence bwrap, end at once (nbclient then sees a dead
    kernel, as with a cold one)."""
    kernel = Kernel()
    try:
        kernel.kc.execute("import os; os._exit(3)")
        deadline = time.monotonic() + 10
        while psutil.pid_exists(kernel.k.pid) and time.monotonic() < deadline:
            try:
                if psutil.Process(kernel.k.pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.Error:
                break
            time.sleep(0.05)
        from jupyter_core.utils import run_sync
        assert not run_sync(kernel.k.km.is_alive)()
    finally:
        kernel.close()


def test_tracebacks_are_plain():
    """Grading kernels format errors in IPython's Plain mode (the failing line of each frame; the
    Context mode's formatting cost ~37 ms of CPU per error, Plain ~6 ms)."""
    k = Kernel()
    try:
        errors = []
        k.kc.execute_interactive("def f():\n    raise NotImplementedError('cellule à compléter')\nf()",
                                 timeout=60, output_hook=lambda m: errors.append(m["content"])
                                 if m["msg_type"] == "error" else None)
        text = "\n".join(errors[0]["traceback"])
        assert "most recent call last" in text and "raise NotImplementedError('cellule à compléter')" in text
        assert "---->" not in text  # Context mode's arrow and surrounding lines
    finally:
        k.close()


@pytest.mark.slow
def test_a_check_whose_call_never_returns_times_out_and_the_notebook_goes_on():
    """Trusted checks in a warm sandboxed kernel: the student's `cout` returns for the notebook's own
    call and loops forever when the check calls it. The check's session is interrupted after the cell
    timeout, only that question fails, and the kernel runs the next cells and checks."""
    from tpkit import execution, paths, submissions
    from tpkit.grading.preprocessors import LimitedExecute
    from tpkit.vocabulary import grade_id
    nb = execution.with_hidden_tests(submissions.solution_submission(assignment=MAIN), assignment=MAIN)
    last = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "q2_cout")
    nb.cells = nb.cells[:last + 1] + [nbformat.v4.new_code_cell("print('encore là', float(loss))")]
    for cell in nb.cells:
        if grade_id(cell) == "r2_cout":
            cell.source = ("import time\n_appels = []\n\ndef cout(Y, Yhat):\n    _appels.append(1)\n"
                           "    while len(_appels) > 1:\n        time.sleep(0.01)\n"
                           "    return -th.mean(th.sum(Y * th.log(Yhat + 1e-16), dim=1))\n\n\nloss = cout(Y, Yhat)\n")
    executor = LimitedExecute(timeout=4, supply=kernels.KernelSupply(kernels.default_settings(time_limit=120, warm=True)))
    t0 = time.monotonic()
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(paths.source_dir(MAIN))}})
    by_id = {grade_id(c): c for c in nb.cells if grade_id(c) and c.cell_type == "code"}
    failed = {gid for gid, c in by_id.items() if any(o.output_type == "error" for o in c.outputs)}
    assert failed == {"q2_cout"}, failed
    assert "délai dépassé" in by_id["q2_cout"].outputs[-1].evalue
    assert nb.cells[-1].outputs[0].text.startswith("encore là")
    assert time.monotonic() - t0 < 60
