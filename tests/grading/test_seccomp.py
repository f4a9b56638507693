"""tpkit.grading.seccomp on this host: the program libseccomp compiles, installed in a child process
as the zygote installs it (tpkit.grading.zygote._install_seccomp): the denied calls fail with EPERM,
ordinary ones still work. That sandboxed kernels actually run under it is tested with the sandbox
(tests/grading/test_attacks_box.py)."""
import json
import subprocess
import sys
import textwrap

import pytest

from tpkit.grading import seccomp

pyseccomp = pytest.importorskip("pyseccomp")
if seccomp.program() is None:
    pytest.skip(f"no seccomp filter on this host: {seccomp.unavailable_reason()}", allow_module_level=True)

CHILD = textwrap.dedent("""
    import ctypes, errno, json, os, sys
    import pyseccomp
    from tpkit.grading import seccomp, zygote
    libc = ctypes.CDLL(None, use_errno=True)
    arch = pyseccomp.system_arch()
    assert libc.prctl(38, 1, 0, 0, 0) == 0  # no_new_privs, as the zygote's child sets it first
    zygote._install_seccomp(bytes.fromhex(sys.argv[1]))

    def call(name, *args):
        ctypes.set_errno(0)
        result = libc.syscall(pyseccomp.resolve_syscall(arch, name), *args)
        return errno.errorcode.get(ctypes.get_errno(), "ok") if result < 0 else "ok"

    out = {name: call(name) for name in ("userfaultfd", "io_uring_setup", "keyctl", "bpf", "ptrace")}
    out["unshare"] = call("unshare", 0)  # an empty unshare is allowed to anyone: EPERM is the filter
    out["getpid"] = "ok" if os.getpid() > 0 else "?"
    with open(sys.argv[2], "w") as f:
        f.write("écrit")
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    out["fork"] = os.waitpid(pid, 0)[1] >> 8
    print(json.dumps(out))
""")


def test_the_program_is_a_bpf_array_built_once():
    program = seccomp.program()
    assert isinstance(program, bytes) and len(program) % 8 == 0 and len(program) // 8 > len(seccomp.DENIED)
    assert seccomp.program() is program and seccomp.unavailable_reason() is None


def test_every_denied_name_is_a_system_call_libseccomp_knows():
    """A misspelt name would be skipped silently (as a call of another architecture is)."""
    unknown = [n for n in seccomp.DENIED if pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, n) < 0
               and pyseccomp.resolve_syscall(pyseccomp.Arch.AARCH64, n) < 0]
    assert unknown == [] and len(set(seccomp.DENIED)) == len(seccomp.DENIED)


def test_a_name_this_libseccomp_does_not_know_is_skipped_not_the_whole_filter(monkeypatch):
    """An older system libseccomp does not know the newest calls (mount_setattr, quotactl_fd): the filter
    keeps the others instead of failing open (no filter at all)."""
    monkeypatch.setattr(seccomp, "DENIED", seccomp.DENIED + ("appel_inconnu_de_libseccomp",))
    assert seccomp._compile() == seccomp.program()


def test_denied_calls_fail_with_eperm_and_ordinary_ones_work(tmp_path):
    out = subprocess.run([sys.executable, "-c", CHILD, seccomp.program().hex(), str(tmp_path / "f")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result == {"userfaultfd": "EPERM", "io_uring_setup": "EPERM", "keyctl": "EPERM", "bpf": "EPERM",
                      "ptrace": "EPERM", "unshare": "EPERM", "getpid": "ok", "fork": 7}
    assert (tmp_path / "f").read_text() == "écrit"


def test_without_pyseccomp_there_is_no_program_and_the_reason_is_given(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # import fails
    monkeypatch.setattr(seccomp, "_built", False)
    monkeypatch.setattr(seccomp, "_program", None)
    monkeypatch.setattr(seccomp, "_why_not", None)
    assert seccomp.program() is None
    assert seccomp.unavailable_reason().startswith("ModuleNotFoundError") and "pyseccomp" in seccomp.unavailable_reason()
