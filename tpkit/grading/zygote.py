"""Warm kernels: one pre-imported *zygote* per grading process forks each kernel into a fresh sandbox.

A cold kernel pays Python, ipykernel and ``import torch, numpy, matplotlib`` (about 2.9 s of CPU on
an idle core) before the first cell. Here that is paid once: the zygote (this file run as a script,
never any student code) imports the modules and waits. For each submission::

    grader ── sandbox launcher ── bwrap ── holder (pid 2 inside, a tiny `python -I -S`)
      │                                      ^ namespaces, file system, uid, rlimits of a fresh sandbox
      └── zygote ── fork ── setns(holder's namespaces), setuid, drop capabilities ── fork ── kernel
                                                                                      (pid 3 inside)

* The per-submission sandbox is built exactly as for a cold kernel (:func:`sandbox.command`: fresh
  user/pid/mount/net/ipc/uts/cgroup namespaces, read-only system, private /tmp and /dev/shm, the
  pool uid, the same rlimits), but what it runs is the *holder*, which only waits for pid 3 (the
  kernel) to end, then exits, so the sandbox lives exactly as long as the kernel.
* The zygote's child first joins the kernel's cgroup (:mod:`tpkit.grading.cgroups`, where the
  launcher of the sandbox put itself), then those namespaces (``setns``; the mount namespace puts it at the sandbox's
  root), becomes the pool uid, drops every capability (bounding set included), sets
  ``no_new_privs``, the same rlimits as the launcher and the same seccomp filter as bwrap
  (:mod:`tpkit.grading.seccomp`), then forks the kernel: pid 3 of the
  sandbox's pid namespace (its CPU time counts from the fork). The kernel clears its environment to
  the kernel's, closes every inherited descriptor and runs the ipykernel app on the connection file.
* Nothing crosses from one submission to the next: each kernel is a new process forked from the
  zygote, which never ran student code (module state, monkeypatches: fresh); its /tmp is its own
  sandbox's tmpfs (gone with it); its processes die with its pid namespace when the holder ends or
  the grader kills the sandbox. The zygote is a child subreaper that ignores SIGCHLD: exited kernels
  are reaped at once (kernels reset the disposition).

Protocol (one JSON object per line): the grader writes
``{"holder": host pid, "uid": int|null, "rlimits": [[name, soft, hard]...], "env": {...},
"args": [ipykernel args], "cwd": path, "python_dirs": [...], "cgroup": [cgroup.procs files],
"seccomp": hex BPF program|null}`` on stdin; the zygote answers
``{"pid": kernel host pid}`` or ``{"error": text}``. It prints ``{"ready": true}`` once imported.
This file runs as ``python -s -P zygote.py MODULE...`` (not ``-I``: PYTHONHASHSEED must apply) with the standard library and the preloaded
modules only.
"""
from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import sys

_CLONE = {"ipc": 0x08000000, "uts": 0x04000000, "net": 0x40000000, "cgroup": 0x02000000,
          "pid": 0x20000000, "mnt": 0x00020000, "user": 0x10000000}
_NS_GET_PARENT = 0xB702
_PR_SET_CHILD_SUBREAPER, _PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS = 36, 24, 38
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, _PR_SET_PDEATHSIG = 47, 4, 1
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0 if isinstance(result, int) else False:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _user_ns_chain(holder: int) -> list:
    """Descriptors of the holder's user namespace and its parents up to (excluding) ours, outermost
    first (bwrap nests one for --disable-userns)."""
    own = os.stat("/proc/self/ns/user").st_ino
    fd = os.open(f"/proc/{holder}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    chain = [fd]
    while True:
        parent = _libc.ioctl(chain[0], _NS_GET_PARENT)
        if parent < 0:
            break
        if os.fstat(parent).st_ino == own:
            os.close(parent)
            break
        chain.insert(0, parent)
    return chain


def _drop_capabilities() -> None:
    for cap in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL: past the last capability
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _check(_libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _assert_unprivileged() -> None:
    """(In the kernel: the intermediate is outside the sandbox's pid namespace, its /proc/self is not
    there.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("CapEff", "CapPrm", "CapBnd", "CapAmb")) and int(line.split()[1], 16):
                raise OSError(0, f"capabilities left: {line.strip()}")
            if line.startswith("NoNewPrivs") and line.split()[1] != "1":
                raise OSError(0, "no_new_privs not set")


def _join_cgroup(procs_files: list) -> None:
    """Move this process into the kernel's cgroup (tpkit.grading.cgroups), before anything else: the
    kernel forked next is counted there from its first instruction."""
    for path in procs_files:
        with open(path, "w") as f:
            f.write(str(os.getpid()))


def _install_seccomp(program: bytes) -> None:
    """Install the kernels' seccomp filter (a BPF program compiled by libseccomp on the grader's side,
    tpkit.grading.seccomp), as bwrap's ``--seccomp`` does for a cold kernel. After no_new_privs."""

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    _check(_libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")


def _enter(request: dict) -> None:
    """In the zygote's child: join the holder's sandbox, as its uid, without capabilities."""
    _join_cgroup(request.get("cgroup") or [])
    holder = int(request["holder"])
    users = _user_ns_chain(holder)
    others = [(os.open(f"/proc/{holder}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), name)
              for name in ("ipc", "uts", "net", "cgroup", "pid", "mnt")]
    if os.geteuid() == 0:
        os.setgroups([])  # impossible once inside (bwrap denies setgroups there)
    _check(_libc.setns(users[0], _CLONE["user"]), "setns user")
    for fd, name in others:  # owned by the outer user namespace of the sandbox
        _check(_libc.setns(fd, _CLONE[name]), f"setns {name}")
    for fd in users[1:]:
        _check(_libc.setns(fd, _CLONE["user"]), "setns user (nested)")
    uid = request["uid"] if request["uid"] is not None else os.getuid()
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _drop_capabilities()
    for fd in users + [fd for fd, _ in others]:
        os.close(fd)
    # the launcher's limits, here so that a failure is reported (the kernel inherits them; its CPU
    # time starts from zero at the fork)
    import resource
    for name, soft, hard in request["rlimits"]:
        resource.setrlimit(getattr(resource, name), (int(soft), int(hard)))
    if request.get("seccomp"):
        _install_seccomp(bytes.fromhex(request["seccomp"]))


def _become_kernel(request: dict) -> None:
    """In the kernel process (pid 3 of the sandbox): descriptors, environment, then run."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _assert_unprivileged()
    os.setsid()
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, 1 << 16)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    # the host's sys.path (e.g. the course folder named by a .pth file) is not the sandbox's
    # (cold: the sandbox empties the .pth files naming folders outside the Python installation)
    keep = tuple(d.rstrip("/") + "/" for d in request["python_dirs"])
    sys.path[:] = [request["cwd"]] + [p for p in sys.path if (p.rstrip("/") + "/").startswith(keep)]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:  # config/cache directories were memoized with the zygote's MPLCONFIGDIR
        for fn in (getattr(mpl, "get_configdir", None), getattr(mpl, "get_cachedir", None)):
            for var, cell in zip(getattr(getattr(fn, "__code__", None), "co_freevars", ()),
                                 getattr(fn, "__closure__", None) or ()):
                if var == "called":
                    cell.cell_contents = False
    sys.argv = [sys.executable, "-m", "ipykernel_launcher", *request["args"]]
    from ipykernel import kernelapp
    kernelapp.launch_new_instance(argv=list(request["args"]))


def _fork_kernel(request: dict) -> int:
    """Fork the kernel into the holder's sandbox; its pid on the host."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the intermediate: enter, fork the kernel (pid 3 inside), report, exit
        code = 1
        try:
            os.close(read)
            _enter(request)
            kernel = os.fork()
            if kernel == 0:
                try:
                    _become_kernel(request)
                    os._exit(0)
                except BaseException:
                    os._exit(1)
            os.write(write, json.dumps({"pid": kernel}).encode())
            code = 0
        except BaseException as exc:
            try:
                os.write(write, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
            except OSError:
                pass
        os._exit(code)
    os.close(write)
    chunks = []
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    answer = json.loads(b"".join(chunks) or b'{"error": "no answer"}')
    if "error" in answer:
        raise OSError(0, answer["error"])
    return int(answer["pid"])


def _prewarm() -> None:
    """Pay here, once, what every kernel would otherwise pay on first use: the first optimizer step
    imports torch._dynamo (about 1 s of CPU, per submission that trains a model), the first figure
    rendered to PNG loads matplotlib's fonts. Our own throw-away objects only (no pyplot figure, no
    random draw): a kernel starts from the same state as before, minus the lazy imports, as the
    compute-only floor's interpreter does (tpkit.catalogue.forkrun)."""
    try:
        torch = sys.modules.get("torch")
        if torch is not None:
            w = torch.zeros(1, requires_grad=True)
            opt = torch.optim.SGD([w], lr=1.0)
            w.sum().backward()
            opt.step()
            opt.zero_grad()
        if "matplotlib" in sys.modules:
            import io
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
            fig = Figure()
            fig.add_subplot().plot([0.0, 1.0])
            FigureCanvasAgg(fig).print_png(io.BytesIO())
    except Exception:
        pass  # a kernel then pays it itself


def serve(modules: list) -> None:
    # die with the grader; adopt and auto-reap orphaned kernels
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    _prewarm()
    # the imported modules' objects to gc's permanent generation: a kernel's collections then
    # neither walk them nor write their headers (each such write copies a page of the zygote's)
    import gc
    gc.collect()
    gc.freeze()
    out = sys.stdout
    out.write(json.dumps({"ready": True, "threads": threading_count()}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            answer = {"pid": _fork_kernel(json.loads(line))}
        except Exception as exc:
            answer = {"error": str(exc)}
        out.write(json.dumps(answer) + "\n")
        out.flush()


def threading_count() -> int:
    """Threads of this process (must be 1: fork copies only the calling thread)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


HOLDER_MARK = "tpkit-holder"
#: What the sandbox runs instead of the kernel: wait for pid 3 (the kernel the zygote forks into
#: this pid namespace) to appear (120 s at most), then until it ends.
HOLDER_CODE = (
    f"# {HOLDER_MARK}\n"
    "import os, select, time\n"
    "t = time.monotonic() + 120\n"
    "while not os.path.exists('/proc/3') and time.monotonic() < t: time.sleep(0.002)\n"
    "try: fd = os.pidfd_open(3)\n"
    "except OSError: raise SystemExit(1)\n"
    "p = select.poll(); p.register(fd, select.POLLIN); p.poll()\n")


if __name__ == "__main__":
    serve(sys.argv[1:])
