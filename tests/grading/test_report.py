"""Progress of a grading run (issue #9): elapsed time and an estimate of the time left on each line,
and a line while a long submission runs (nothing was printed for 110 s)."""
import io
import re
import time

from tpkit.grading.report import Progress, clock
from tpkit.grading.results import OK, StudentResult


def test_clock():
    assert clock(0) == "0:00" and clock(65) == "1:05" and clock(3725) == "1:02:05"


def test_each_line_says_elapsed_and_left():
    out = io.StringIO()
    p = Progress(out=out, total=4)
    p.t0 -= 30  # 30 s into the run
    p(1, 4, StudentResult("alice", OK, score=10, max_score=20, seconds=30))
    line = out.getvalue().strip()
    assert re.search(r"^\[1/4\] alice\s+10/20  ok  \(30\.0 s\)  écoulé 0:30, reste ~1:30$", line), line
    p(4, 4, StudentResult("bob", OK, score=20, max_score=20, seconds=1))
    assert "reste" not in out.getvalue().strip().split("\n")[-1]


def test_a_line_while_a_long_submission_runs():
    out = io.StringIO()
    p = Progress(out=out, total=2, heartbeat=0.3).start()
    try:
        deadline = time.monotonic() + 20
        while "en cours" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        p.stop()
    assert re.search(r"correction en cours : 0/2 terminé\(s\), écoulé \d+:\d\d", out.getvalue())
