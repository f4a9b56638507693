"""tpkit.grading.quota: the tmpfs laid over a kernel's folders. That a sandboxed kernel writing past
the size or file-count cap gets ENOSPC is tested in tests/grading/test_cgroups.py; here the mount
itself (its options, where it can run: root), what happens without root or when the mount fails, and
the sweep of a dead grader's mounts."""
import logging
import os
import subprocess
import sys

import pytest

from tpkit.grading import quota

needs_root = pytest.mark.skipif(not quota.available(), reason="a tmpfs mount needs root")


def mounts():
    """{mount point: (source, super options)} of the tmpfs mounts named by the kit."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, source, options = right.split()[:3]
            if fstype == "tmpfs" and source.startswith(quota.SOURCE_PREFIX):
                out[left.split()[4].replace("\\040", " ")] = (source, left.split()[5], options)
    return out


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_without_root_nothing_is_mounted(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert not quota.available()
    assert quota.mount(tmp_path, 16, 200) is False
    assert str(tmp_path) not in mounts()


@needs_root
def test_the_mount_is_a_bounded_private_tmpfs_named_after_the_grader(tmp_path, monkeypatch):
    monkeypatch.setattr(quota, "_swept", True)  # the sweep has its own test
    base = tmp_path / "noyau"
    base.mkdir()
    assert quota.mount(base, 2, 50) is True
    try:
        source, flags, options = mounts()[str(base)]
        assert source == f"{quota.SOURCE_PREFIX}{os.getpid()}"
        assert {"nosuid", "nodev"} <= set(flags.split(","))
        assert {"size=2048k", "nr_inodes=50", "mode=700"} <= set(options.split(","))
        (base / "trace.txt").write_text("dans le tmpfs")
        with pytest.raises(OSError) as info, open(base / "gros", "wb") as f:
            f.write(b"x" * (3 << 20))
            f.flush()
        assert info.value.errno == 28  # ENOSPC, even for root
    finally:
        quota.unmount(base)
    assert str(base) not in mounts() and list(base.iterdir()) == []  # the host folder stayed empty


@needs_root
def test_a_failed_mount_says_so_once_and_leaves_the_folder_uncapped(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(quota, "_swept", True)
    monkeypatch.setattr(quota, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="tpkit.grading"):
        assert quota.mount(tmp_path / "absent", 2, 50) is False
        assert quota.mount(tmp_path / "absent-aussi", 2, 50) is False
    assert [r.getMessage() for r in caplog.records] == [
        "kernel folders not capped (tmpfs mount: No such file or directory)"]


@needs_root
def test_the_sweep_removes_a_dead_grader_s_mounts_and_keeps_a_live_one_s(tmp_path, monkeypatch):
    monkeypatch.setattr(quota, "_swept", True)
    dead, live = tmp_path / "mort avec espace", tmp_path / "vivant"
    dead.mkdir()
    live.mkdir()
    libc = quota._libc()
    assert libc.mount(f"{quota.SOURCE_PREFIX}{dead_pid()}".encode(), os.fsencode(dead), b"tmpfs", 6,
                      b"size=1m") == 0
    assert quota.mount(live, 1, 10)
    try:
        (dead / "reste").write_text("x")
        quota.sweep()
        assert str(dead) not in mounts() and not dead.exists()
        assert str(live) in mounts()
    finally:
        quota.unmount(live)
        if str(dead) in mounts():
            quota.unmount(dead)
