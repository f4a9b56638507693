"""Grade a class in one command.

    python -m tpkit.grading --examples                 # the example submissions shipped with the kit
    python -m tpkit.grading                            # everything in submitted/<student>/<assignment>/
    python -m tpkit.grading --moodle-zip Z.zip [--moodle-worksheet W.csv]
    python -m tpkit.grading --export-only [--moodle-worksheet W.csv]   # after manual grading

Writes autograded/, feedback/<student>/<assignment>/<assignment>.html, exports/grades.csv (and
exports/moodle_worksheet.csv), exports/grading_report.json, exports/logs/<student>.log; prints a line
per submission and a summary. A grading run first moves the previous exports into exports/precedent/
and writes the new ones at its end: after a run that died, exports/ holds no stale grades.csv. Exit status: 0 when the run completed (failed submissions are reported,
not errors), 2 when it could not start (no release, another run in progress, bad arguments), 1 on an
internal error.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import traceback
import warnings
from pathlib import Path

from tpkit import paths


#: RLIMIT_DATA of the grading process (MB): a feedback page or a notebook blown up by a hostile
#: submission stops with MemoryError (that student's grading fails) instead of taking the machine.
DEFAULT_GRADER_MEMORY_MB = 8192


def limit_own_memory(megabytes: int) -> None:
    """Soft ``RLIMIT_DATA`` of this process (0: unchanged). The hard limit is left as it is, so the
    kernels, started later as child processes, can set their own limit (``--memory-limit``) above it;
    a kernel run with ``--memory-limit 0`` keeps this one."""
    if megabytes <= 0:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    wanted = megabytes * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        resource.setrlimit(resource.RLIMIT_DATA, (wanted, hard))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tpkit.grading", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--examples", action="store_true", help="grade the bundled example submissions "
                     "(copied from examples/submissions/ into submitted/)")
    src.add_argument("--submitted", action="store_true", help="grade submitted/ (the default)")
    src.add_argument("--moodle-zip", type=Path, metavar="ZIP", help="import a Moodle 'download all "
                     "submissions' zip into submitted/ and grade it")
    src.add_argument("--export-only", action="store_true", help="no grading: rewrite the feedback and "
                     "exports from the gradebook (e.g. after manual grading)")
    p.add_argument("--moodle-worksheet", type=Path, metavar="CSV", help="Moodle grading worksheet to "
                   "fill (written to exports/moodle_worksheet.csv)")
    p.add_argument("--students", metavar="S1,S2", help="only these student ids")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="parallel kernels (default: cores)")
    p.add_argument("--cell-timeout", type=int, metavar="S", help="seconds per cell (default: "
                   "Execute.timeout of nbgrader_config.py)")
    p.add_argument("--time-limit", type=int, default=300, metavar="S", help="seconds per notebook "
                   "(default: 300)")
    p.add_argument("--memory-limit", type=int, default=4096, metavar="MB", help="memory per kernel "
                   "(default: 4096)")
    p.add_argument("--grader-memory-limit", type=int, default=DEFAULT_GRADER_MEMORY_MB, metavar="MB",
                   help="memory of this grading process itself, kernels excluded: they are processes of "
                   f"their own with --memory-limit (default: {DEFAULT_GRADER_MEMORY_MB}; 0: no limit)")
    p.add_argument("--no-feedback", action="store_true", help="skip the HTML feedback")
    p.add_argument("--sans-bac-a-sable", dest="no_sandbox", action="store_true",
                   help="run the kernels WITHOUT the sandbox (only where user namespaces are forbidden; "
                   "the student's code can then read and change the course's files)")
    p.add_argument("--root", type=Path, default=paths.ROOT, help="course directory (default: this kit)")
    p.add_argument("--assignment", default=paths.ASSIGNMENT)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    limit_own_memory(args.grader_memory_limit)
    # nbgrader and the kernels need the virtual environment's executables (alembic, python)
    bindir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    # library warnings (sqlalchemy, nbformat) are noise here; per-student logs keep nbgrader's messages
    warnings.simplefilter("ignore")

    from tpkit.grading import collect, moodle, pipeline, report
    from tpkit.grading.outputs import export_all, regenerate_feedback

    options = pipeline.Options(root=args.root, assignment=args.assignment, workers=args.workers,
                               cell_timeout=args.cell_timeout, time_limit=args.time_limit,
                               memory_mb=args.memory_limit, feedback=not args.no_feedback,
                               sandbox=not args.no_sandbox)
    if options.sandbox and not args.export_only:
        from tpkit.grading import sandbox
        try:
            sandbox.check_available()  # before anything is written
        except sandbox.SandboxUnavailable as exc:
            print(f"erreur : {exc}", file=sys.stderr)
            return 2
    try:
        if args.export_only:
            report_path, previous = pipeline.find_report(options.exports)
            run = pipeline.RunReport.from_json(report_path.read_text("utf-8"))
            if previous:
                print(f"rapport de correction : {report_path.relative_to(options.root)} (celui de la "
                      "correction précédente : la dernière correction ne s'est pas terminée)")
            if args.students:
                keep = set(args.students.split(","))
                run.results = {k: v for k, v in run.results.items() if k in keep}
            if options.feedback:
                regenerate_feedback(options, run)
        else:
            if args.examples:
                col = collect.from_examples(options.root, options.assignment)
            elif args.moodle_zip:
                col = collect.from_moodle_zip(options.root, options.assignment, args.moodle_zip)
            else:
                col = collect.from_submitted(options.root, options.assignment)
            if args.students:
                keep = set(args.students.split(","))
                col.students = [s for s in col.students if s in keep]
                col.failures = {k: v for k, v in col.failures.items() if k in keep}
            for line in col.notes:
                print(line)
            if not col.students and not col.failures:
                print("aucun rendu à corriger")
                return 0
            names = {s: e.full_name for s, e in moodle.read_roster(options.root / "submitted").items()}
            print(f"Correction de {len(col.students) + len(col.failures)} rendu(s) avec "
                  f"{min(options.workers, max(1, len(col.students)))} worker(s)…", flush=True)
            run = pipeline.grade(col.students, options, progress=report.Progress(names=names),
                                 preset_failures=col.failures, preset_remarks=col.remarks)
        names = {s: e.full_name for s, e in moodle.read_roster(options.root / "submitted").items()}
        lines = export_all(options, run, worksheet=args.moodle_worksheet)
        report.summary(run, names=names, exports=lines)
        return 0
    except pipeline.GradingError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"erreur : fichier introuvable : {exc.filename}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
