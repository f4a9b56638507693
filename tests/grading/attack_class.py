"""The adversarial suites' class (tests/grading/test_attacks.py and test_attacks_box.py): both sets of
hostile submissions and the honest student graded in ONE run of the real command (2 workers, cell
timeout 10 s, notebook time limit 120 s, memory limit 2048 MB: the options both suites used), once per
test session. A class run costs its fixed part (course copy, start-up, exports, class report) once
instead of twice; each suite reads what it asserts about its own students, and both assert that every
student of the class has its row.

Before it, the honest student is graded alone with the same options (test_attacks_box compares its
grade in the class with that one). What each suite snapshots around the run is taken here: the kit's
and the course's files (test_attacks), the processes, files and cgroups left after it
(test_attacks_box)."""
import glob
import subprocess
import time
from pathlib import Path

from conftest import generated_course, once

from tpkit import paths, release


def _compute(session_dir: Path) -> dict:
    import test_attacks as ta
    import test_attacks_box as tb

    alone = generated_course(session_dir, session_dir / "boite" / "seul")
    tb._honest(alone)
    baseline = tb._grade(alone)

    root = generated_course(session_dir, session_dir / "attaques" / "cours")
    listener = ta.Listener()
    listener.start()
    attacks = ta._attacks(root, paths.ROOT, listener.port)
    assert not set(attacks) & set(tb.ATTACKS), "one student id in both suites"
    ta.lay_out(root, attacks)
    for student, (code, _) in tb.ATTACKS.items():
        tb._submission(root, student, code)
    tb._honest(root)

    course_before = ta._hash_tree(root, skip=ta.COURSE_SKIP)
    kit_before = ta._kit_files()
    cgroups_before = tb._cgroups()
    env = release.nbgrader_env()
    env["TPKIT_CANARY"] = ta.CANARY
    run = tb._grade(root, env)
    # (the daemon of `demon_exports` strikes 4 s after its notebook starts, long before the run ends)
    listener.stop = True
    time.sleep(1)  # what the run's end killed has exited
    leftovers = [line for line in subprocess.run(["ps", "-eo", "pid,user,args"], capture_output=True,
                                                  text=True).stdout.splitlines() if tb.MARK in line]
    files = [p for pattern in ("/tmp/*", "/tmp/*/*", "/tmp/*/*/*", "/dev/shm/*") for p in
             glob.glob(pattern) if tb.MARK in p]
    return dict(root=str(root), alone=str(alone), baseline=baseline, run=run, port=listener.port,
                received=[r.decode("latin-1") for r in listener.received], course_before=course_before,
                kit_before=kit_before, leftovers=leftovers, files=files[:20], cgroups_before=cgroups_before,
                cgroups_after=tb._orphan_cgroups(), students=sorted(attacks) + sorted(tb.ATTACKS))


def graded_class(session_dir: Path) -> dict:
    """The class run (computed by the first xdist worker that asks; the paths as Path)."""
    run = once(session_dir, "attack_class", lambda: _compute(session_dir))
    run["root"], run["alone"] = Path(run["root"]), Path(run["alone"])
    return run


def students(run: dict) -> set:
    """Every student of the class: both suites' attackers and the honest student."""
    import test_attacks as ta
    return set(run["students"]) | {ta.HONEST}

