"""The seccomp filter of grading kernels: system calls a notebook never needs fail with ``EPERM``.

The namespaces of the sandbox already take most privileges away; these calls are the kernel's attack
surface that remains reachable by an unprivileged process (``io_uring``, ``userfaultfd``, ``keyctl``,
``bpf``, ``perf_event_open`` have each had their local privilege escalations), or ways to look at or
reshape the sandbox from inside (``ptrace``, ``process_vm_*``, mount and namespace calls), or calls that
only root could make anyway (modules, ``kexec``, ``reboot``, swap, quotas): denied everywhere, they
need no thought about what the sandbox allows.

The filter is compiled by **libseccomp** (through ``pyseccomp``, its ctypes binding, pinned in
requirements.txt; the system library ``libseccomp.so.2``) into a classic BPF program, once per grading
process (:func:`program`). Calls are answered ``EPERM``, not killed: Python and the libraries probe some
calls and fall back when they fail. The architecture check libseccomp adds kills a process calling
through another ABI (x32, i386: never a Python kernel). Where it is applied:

* cold kernels: bubblewrap's ``--seccomp FD`` (the launcher hands it the program in a ``memfd``),
  installed just before bwrap execs the kernel, after bwrap itself needed ``mount`` and ``unshare``;
* warm kernels: the zygote's child installs the same program (``prctl(PR_SET_SECCOMP)``) once it has
  joined the sandbox and dropped its privileges, before it forks the kernel
  (:mod:`tpkit.grading.zygote`).

Without libseccomp (or pyseccomp) kernels run without a filter, which the run's summary says.
"""
from __future__ import annotations

import errno
import tempfile
import threading
from typing import Optional

#: Denied system calls (one the architecture lacks never matches; one the system's libseccomp does not know is skipped).
DENIED = (
    # kernel attack surface reachable without privileges
    "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "bpf", "perf_event_open",
    "keyctl", "add_key", "request_key",
    # looking into or reshaping the sandbox
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "open_by_handle_at", "name_to_handle_at", "fanotify_init",
    # root's business
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "vhangup", "iopl", "ioperm",
    "settimeofday", "clock_settime", "clock_adjtime", "lookup_dcookie", "nfsservctl", "uselib",
)

_UNKNOWN = -1  # libseccomp's __NR_SCMP_ERROR
_program: Optional[bytes] = None
_why_not: Optional[str] = None
_built = False
_lock = threading.Lock()


def program() -> Optional[bytes]:
    """The filter as a BPF program (``struct sock_filter`` array), built once; None when libseccomp
    is not available (see :func:`unavailable_reason`)."""
    global _program, _why_not, _built
    with _lock:
        if not _built:
            _built = True
            try:
                _program = _compile()
            except (ImportError, OSError, RuntimeError, AttributeError) as exc:
                _why_not = f"{type(exc).__name__}: {exc}"
        return _program


def unavailable_reason() -> Optional[str]:
    program()
    return _why_not


def _compile() -> bytes:
    import pyseccomp
    f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    arch = pyseccomp.system_arch()
    for name in DENIED:
        # a call of another architecture resolves to a negative pseudo-number, which libseccomp accepts;
        # a name this (older) libseccomp does not know is -1 and would fail the whole filter: skipped
        if pyseccomp.resolve_syscall(arch, name) == _UNKNOWN:
            continue
        f.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        data = out.read()
    if not data or len(data) % 8:
        raise RuntimeError("libseccomp exported no program")
    return data
