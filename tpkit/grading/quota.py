"""Size and file-count caps on a kernel's own folders (scratch copy and exchange folder).

Both folders are shared with the grading process (it copies the submission's files into the scratch
folder and reads the trusted checks' answers, ipc sockets and FIFOs from the exchange folder), so a
tmpfs private to the sandbox (bwrap's ``--size`` + ``--tmpfs``) would not do: when the grader runs as
root, :func:`mount` lays a tmpfs of bounded size (``size=``) and number of files (``nr_inodes=``) over
the kernel's base folder *on the host*, before the two folders are made in it; :func:`unmount` removes
it when the kernel is discarded. A submission filling it gets ``ENOSPC`` and the host's ``/tmp``
does not grow. Its pages are RAM charged to the memory cgroup of whoever writes them: what the
kernel writes counts in its memory limit too (:mod:`tpkit.grading.cgroups`).

Without root (no ``CAP_SYS_ADMIN`` to mount) the folders stay plain directories of the host's temporary
folder: file *size* is bounded by ``RLIMIT_FSIZE``, the total is not (said in the run's summary).
Mounts are named ``tpkit-kernel-<grader pid>``; those of a grading process that died are removed
the next time a kernel's folder is mounted (:func:`sweep`).
"""
from __future__ import annotations

import ctypes
import logging
import os
import shutil
import threading

_MS_NOSUID, _MS_NODEV = 2, 4
_MNT_DETACH = 2
SOURCE_PREFIX = "tpkit-kernel-"
_swept = _warned = False
_lock = threading.Lock()


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def available() -> bool:
    """Whether :func:`mount` can work here (root, i.e. CAP_SYS_ADMIN in the host's namespace)."""
    return os.geteuid() == 0


def mount(path, size_mb: int, files: int) -> bool:
    """Lay a tmpfs of ``size_mb`` MiB and ``files`` inodes (files and folders) over ``path`` (an empty
    folder); mode 0700, no devices, no set-uid. False when it cannot be done here (not root)."""
    global _swept
    if not available():
        return False
    with _lock:
        if not _swept:
            _swept = True
            sweep()
    options = f"size={int(size_mb)}m,nr_inodes={int(files)},mode=0700".encode()
    source = f"{SOURCE_PREFIX}{os.getpid()}".encode()
    libc = _libc()
    if libc.mount(source, os.fsencode(path), b"tmpfs", _MS_NOSUID | _MS_NODEV, options) != 0:
        global _warned
        if not _warned:
            _warned = True
            logging.getLogger("tpkit.grading").warning(
                "kernel folders not capped (tmpfs mount: %s)", os.strerror(ctypes.get_errno()))
        return False
    return True


def unmount(path) -> None:
    """Detach the tmpfs at ``path`` (its pages are freed once the sandbox's copy of the mount is gone
    too); the then-empty folder is the caller's to remove."""
    _libc().umount2(os.fsencode(path), _MNT_DETACH)


def sweep() -> None:
    """Unmount and remove the kernel folders of grading processes that no longer run."""
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(rfields) < 2 or rfields[0] != "tmpfs" or not rfields[1].startswith(SOURCE_PREFIX):
            continue
        pid = rfields[1][len(SOURCE_PREFIX):]
        if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
            continue
        point = fields[4].replace("\\040", " ")
        unmount(point)
        shutil.rmtree(point, ignore_errors=True)
