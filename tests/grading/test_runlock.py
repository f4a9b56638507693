"""tpkit.grading.runlock: one grading or export run at a time on a course (``exports/.grading.lock``).
A second process is refused at once, in French, naming the lock; the same process may take it again
(the command around the grader); the lock is released on exit, even by an error."""
import subprocess
import sys
import textwrap

import pytest

from tpkit.grading import runlock

HOLDER = textwrap.dedent("""
    import sys, filelock
    lock = filelock.FileLock(sys.argv[1])
    lock.acquire(timeout=0)
    print("tenu", flush=True)
    sys.stdin.read()  # held until the test closes our stdin
""")


@pytest.fixture
def other_process(tmp_path):
    """Another process holding exports/.grading.lock (as a second grading command would)."""
    exports = tmp_path / "exports"
    exports.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(exports / runlock.LOCK_NAME)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "tenu"
        yield exports, proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def test_a_second_run_is_refused_in_french_naming_the_lock(other_process):
    exports, proc = other_process
    with pytest.raises(runlock.RunInProgress) as info:
        with runlock.course_lock(exports):
            pytest.fail("the lock was taken while another process held it")
    assert "une autre correction est en cours" in str(info.value)
    assert str(exports / runlock.LOCK_NAME) in str(info.value)
    proc.stdin.close()
    proc.wait(timeout=10)
    with runlock.course_lock(exports):  # the other run is over: this one goes
        pass


def test_the_lock_creates_the_exports_folder_and_is_reentrant_in_one_process(tmp_path):
    exports = tmp_path / "nouveau" / "exports"
    with runlock.course_lock(exports):
        assert (exports / runlock.LOCK_NAME).exists()
        with runlock.course_lock(exports):  # the grader asks again inside the command
            assert runlock._HELD[str(exports / runlock.LOCK_NAME)] == 2
        assert runlock._HELD[str(exports / runlock.LOCK_NAME)] == 1
    assert str(exports / runlock.LOCK_NAME) not in runlock._HELD


def test_the_lock_is_released_by_an_error_so_another_process_can_take_it(tmp_path):
    exports = tmp_path / "exports"
    with pytest.raises(ZeroDivisionError):
        with runlock.course_lock(exports):
            1 / 0
    assert str(exports / runlock.LOCK_NAME) not in runlock._HELD
    out = subprocess.run([sys.executable, "-c", "import sys, filelock; "
                          "filelock.FileLock(sys.argv[1]).acquire(timeout=0); print('ok')",
                          str(exports / runlock.LOCK_NAME)], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "ok", out.stderr


def test_two_courses_do_not_lock_each_other(tmp_path):
    with runlock.course_lock(tmp_path / "a" / "exports"):
        with runlock.course_lock(tmp_path / "b" / "exports"):
            assert len([p for p in runlock._HELD if p.startswith(str(tmp_path))]) == 2
