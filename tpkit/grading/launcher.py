"""The sandbox's launcher (:mod:`tpkit.grading.sandbox` builds its command line): run as
``python -I -S -B launcher.py --launch ... -- bwrap ...``, standard library only (os, sys, ctypes,
resource), it joins the kernel's cgroup, stages the directories an unprivileged bwrap cannot reach,
writes the data descriptors bwrap reads, drops to the kernel's uid, sets the resource limits and execs
bwrap; it costs about 14 ms. Kept apart from the grader's side, which imports the kit."""
import os
import sys

# ==================================================================================================
# ``python -I -S launcher.py --launch ...``:
#
#   --launch [--cgroup PROCS]... [--uid N] [--rlimit NAME=SOFT:HARD]... [--stage PATH]...
#            [--data FD TEXT]... [--data-hex FD HEX]... -- BWRAP...
# ==================================================================================================

_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18


def blocking_dir(path: str, uid: int) -> str | None:
    """The topmost directory above ``path`` that ``uid`` may not traverse (the sandbox user has no
    supplementary groups and gid = uid), or None when the way is open."""
    current = ""
    for part in path.strip("/").split("/")[:-1]:
        current += "/" + part
        st = os.stat(current)
        if st.st_uid == uid:
            bit = 0o100
        elif st.st_gid == uid:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return current
    return None


def _libc(name: str, *args) -> None:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _stage(sources: list, uid: int) -> None:
    """Make ``sources`` reachable by ``uid``, in a private mount namespace of the launcher's own.

    For each directory that blocks the way (``/root``, mode 0700): open the sources below it, lay a
    small tmpfs (mode 0755) over it and bind each source back at its own path through its file
    descriptor. The host sees none of it; bwrap later binds these paths as usual, and the rest of
    the blocking directory stays out of reach."""
    _libc("unshare", _CLONE_NEWNS)
    _libc("mount", None, b"/", None, _MS_REC | _MS_PRIVATE, None)  # no propagation to the host
    by_blocker: dict = {}
    for src in sources:
        blocker = blocking_dir(src, uid)
        if blocker is not None:  # (a topmost blocker is never below another one)
            by_blocker.setdefault(blocker, []).append(src)
    for blocker, srcs in by_blocker.items():
        fds = [(src, os.open(src, os.O_PATH | os.O_CLOEXEC)) for src in dict.fromkeys(srcs)]
        _libc("mount", b"tpkit-stage", blocker.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV,
              b"mode=0755,size=1m")
        for src, fd in fds:
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(src, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(src), mode=0o755, exist_ok=True)
                os.close(os.open(src, os.O_CREAT | os.O_WRONLY, 0o644))
            _libc("mount", f"/proc/self/fd/{fd}".encode(), src.encode(), None,
                  _MS_BIND | _MS_REC, None)
            os.close(fd)


def _launch(args: list) -> None:
    """Parse the launcher's options, set the process up and exec bwrap (never returns)."""
    uid, rlimits, stage, data, groups = None, [], [], [], []
    while args[0] != "--":
        option = args.pop(0)
        if option == "--cgroup":
            groups.append(args.pop(0))
        elif option == "--uid":
            uid = int(args.pop(0))
        elif option == "--rlimit":
            name, _, value = args.pop(0).partition("=")
            soft, _, hard = value.partition(":")
            rlimits.append((name, int(soft), int(hard or soft)))
        elif option == "--stage":
            stage.append(args.pop(0))
        elif option == "--data":
            data.append((int(args.pop(0)), args.pop(0).encode()))
        elif option == "--data-hex":
            data.append((int(args.pop(0)), bytes.fromhex(args.pop(0))))
        else:
            raise OSError(0, f"unknown option {option}")
    argv = args[1:]
    for procs in groups:
        # the kernel's cgroup (tpkit.grading.cgroups), first: all that follows is counted in it
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    if stage:
        _stage(stage, uid)
    for fd, text in data:
        # contents bwrap copies into the sandbox (--ro-bind-data FD DEST) or reads (--seccomp FD),
        # then closes
        memfd = os.memfd_create("tpkit-sandbox-data")
        os.write(memfd, text)
        os.lseek(memfd, 0, os.SEEK_SET)
        os.dup2(memfd, fd, inheritable=True)
        os.close(memfd)
    if uid is not None:
        # root -> the pool uid, no supplementary groups; capabilities vanish with uid 0
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    # limits last: the data descriptors may lie beyond RLIMIT_NOFILE (they stay valid)
    import resource
    for name, soft, hard in rlimits:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    os.execv(argv[0], argv)


if __name__ == "__main__" and sys.argv[1:2] == ["--launch"]:
    try:
        _launch(sys.argv[2:])
    except (OSError, ValueError, IndexError) as exc:
        print(f"tpkit sandbox launcher: {exc}", file=sys.stderr)
    sys.exit(126)
