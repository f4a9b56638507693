"""tpkit.grading.zygote without a sandbox: its line protocol (ready, a refused request answered and the
next one served), the privileges its children drop, its error reporting. Warm kernels forked into real
sandboxes (nothing crosses from one submission to the next, uid, capabilities, limits) are tested in
tests/grading/test_kernels.py; the seccomp filter its children install in tests/grading/test_seccomp.py."""
import ctypes
import json
import subprocess
import sys
import textwrap

import pytest

from tpkit.grading import zygote


@pytest.fixture
def server():
    """The zygote as the grader starts it, preloading nothing (``python -s -P zygote.py``)."""
    proc = subprocess.Popen([sys.executable, "-s", "-P", zygote.__file__], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def ask(proc, request) -> dict:
    proc.stdin.write((request if isinstance(request, str) else json.dumps(request)) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def test_the_zygote_says_it_is_ready_with_one_thread_and_answers_every_line(server):
    assert json.loads(server.stdout.readline()) == {"ready": True, "threads": 1}  # fork copies one thread
    assert "holder" in ask(server, {})["error"]
    dead_holder = {"holder": 2**22 + 12345, "uid": None, "rlimits": [], "env": {}, "args": [], "cwd": "/",
                   "python_dirs": []}
    assert "No such file or directory" in ask(server, dead_holder)["error"]
    assert "error" in ask(server, "pas du json")
    assert server.poll() is None  # still serving after three refused requests
    server.stdin.close()
    assert server.wait(timeout=10) == 0  # ends with the grader's pipe


def test_a_failed_system_call_is_an_oserror_naming_the_step():
    assert zygote._check(0, "setns user") == 0 and zygote._check(7, "x") == 7
    ctypes.set_errno(1)
    with pytest.raises(OSError) as info:
        zygote._check(-1, "setns net")
    assert info.value.errno == 1 and str(info.value).endswith("setns net: Operation not permitted")


def test_the_grader_s_own_process_is_not_taken_for_an_unprivileged_one():
    """The check the kernel makes of itself fails where capabilities or no_new_privs are missing."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    if int(fields["CapEff"], 16) == 0 and int(fields["CapBnd"], 16) == 0 and fields["NoNewPrivs"].strip() == "1":
        pytest.skip("this test process is already unprivileged")
    with pytest.raises(OSError, match="capabilities left|no_new_privs not set"):
        zygote._assert_unprivileged()


def test_a_child_that_drops_its_capabilities_has_none_left_and_no_new_privs():
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(zygote.__file__.rsplit('/', 1)[0])!r})
        import zygote
        zygote._drop_capabilities()
        zygote._assert_unprivileged()
        print(open("/proc/self/status").read())
    """)
    out = subprocess.run([sys.executable, "-s", "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    status = dict(line.split(":", 1) for line in out.stdout.strip().splitlines() if ":" in line)
    assert all(int(status[f], 16) == 0 for f in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"))
    assert status["NoNewPrivs"].strip() == "1"


def test_the_holder_code_compiles_and_names_itself():
    compile(zygote.HOLDER_CODE, "<holder>", "exec")
    assert zygote.HOLDER_CODE.startswith(f"# {zygote.HOLDER_MARK}\n")
