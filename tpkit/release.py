"""Generate the student release from the instructor notebook: `python -m tpkit.release`
(every assignment of source/; `--assignment A` for one).

Runs `nbgrader generate_assignment --force`, which also stores the hidden tests in
gradebook.db (autograde restores them from there), then checks that no solution or hidden
test reached the release.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from tpkit import paths

LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                "tpkit")


def nbgrader_env() -> dict:
    """nbgrader needs the venv's executables (alembic, jupyter) on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def generate(root: Path = paths.ROOT, assignment: str = paths.ASSIGNMENT) -> Path:
    # the trusted executor runs hidden regions on the grader's side: they may only call verifier(...)
    from tpkit.grading.trusted import HiddenTestError, validate_hidden_tests
    sources = [c.source for nb in (root / "source" / assignment).glob("*.ipynb")
               for c in nbformat.read(str(nb), as_version=4).cells if c.cell_type == "code"]
    try:
        validate_hidden_tests(sources)
    except HiddenTestError as exc:
        raise SystemExit(f"test caché invalide : {exc}")
    cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
           "--log-level=WARN"]
    proc = subprocess.run(cmd, cwd=root, env=nbgrader_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"nbgrader generate_assignment failed:\n{proc.stdout}\n{proc.stderr}")
    release = root / "release" / assignment
    leaks = [f"{p.relative_to(root)}: {m}" for p in release.rglob("*") if p.is_file()
             for m in LEAK_MARKERS if m.encode() in p.read_bytes()]
    if leaks:
        raise SystemExit("solution or hidden test found in the release:\n" + "\n".join(leaks))
    return release


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(prog="python -m tpkit.release")
    parser.add_argument("--assignment", choices=paths.assignments(),
                        help="only this assignment (default: every assignment of source/)")
    args = parser.parse_args()
    for name in [args.assignment] if args.assignment else paths.assignments():
        out = generate(assignment=name)
        print(f"release written: {out.relative_to(paths.ROOT)}")
