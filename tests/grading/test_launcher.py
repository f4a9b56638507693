"""The sandbox's launcher (tpkit/grading/launcher.py), run as the grader runs it: standard library only,
before bwrap. What it sets up inside a real sandbox (cgroup, uid, limits, staged folders) is tested with
the sandbox (tests/grading/test_sandbox.py, test_cgroups.py)."""
import os
import subprocess
import sys

from tpkit.grading import launcher, sandbox


def _launch(*args, **kw):
    return subprocess.run([sys.executable, "-I", "-S", "-B", sandbox.LAUNCHER, "--launch", *args],
                          capture_output=True, text=True, timeout=30, **kw)


def test_it_sets_the_limits_and_execs_the_command():
    out = _launch("--rlimit", "RLIMIT_NOFILE=64:64", "--", sys.executable, "-c",
                  "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE))")
    assert out.returncode == 0 and out.stdout.strip() == "(64, 64)", out.stderr


def test_it_hands_data_to_the_command_through_descriptors():
    out = _launch("--data", "100", "bonjour", "--", sys.executable, "-c", "import os; print(os.read(100, 64).decode())",
                  pass_fds=())
    assert out.returncode == 0 and out.stdout.strip() == "bonjour", out.stderr


def test_a_bad_option_exits_126_with_its_reason():
    out = _launch("--nimporte", "--", "/bin/true")
    assert out.returncode == 126 and "tpkit sandbox launcher: " in out.stderr and "--nimporte" in out.stderr
    assert _launch("--rlimit", "RLIMIT_NOFILE=x", "--", "/bin/true").returncode == 126


def test_it_imports_nothing_of_the_kit():
    # run with -I -S: a launcher that imported tpkit (or a site package) would fail before bwrap
    source = open(sandbox.LAUNCHER, encoding="utf-8").read()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.strip().startswith(("import ", "from "))}
    assert imports <= {"os", "sys", "ctypes", "resource", "__future__"}, imports


def test_blocking_dir_finds_the_first_folder_a_uid_cannot_cross(tmp_path):
    closed = tmp_path / "ferme"
    (closed / "dedans").mkdir(parents=True)
    closed.chmod(0o700)
    try:
        target = str(closed / "dedans" / "fichier")
        other = 65534 if os.stat(closed).st_uid != 65534 else 65533
        above = launcher.blocking_dir(str(tmp_path / "x"), other)  # what the folders above already block
        assert launcher.blocking_dir(target, other) == (above or str(closed))
        owner = os.stat(closed).st_uid
        assert launcher.blocking_dir(target, owner) == launcher.blocking_dir(str(tmp_path / "x"), owner)
    finally:
        closed.chmod(0o755)
