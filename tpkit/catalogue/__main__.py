"""Prove the autograder right.

    python -m tpkit.catalogue [--assignment X] [--workers N] [--only a,b] [--executor fork|kernel|grading]
                              [--doc docs/catalogue.md]
    python -m tpkit.catalogue --flakiness [--assignment X] [--seeds 20] [--seeds-2-threads 5] [--secrets 10]
                              [--workers N]

The first form grades every catalogue entry (mistakes and valid variants) once, prints the matrix
entry × question (points lost), sensitivity, specificity and blast radius, and lists the problems
(escaped mistakes, penalised variants, unlisted losses); exit status 1 when there is one.
The second grades the reference solution under many seeds and 1 and 2 torch threads, and prints
the lowest margin between each measured value and its threshold, then grades the catalogue's sample
(all of it with TPKIT_CATALOGUE=full) under `--secrets` course secrets, on which the checks draw their
inputs; exit status 1 if a run is flaky or an entry is misjudged under any secret.
`--assignment` picks the assignment (default: the main one).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tpkit.catalogue", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="processes at once (default: cores)")
    p.add_argument("--only", metavar="A,B", help="only these entries")
    p.add_argument("--executor", choices=("fork", "kernel", "grading"), default="fork",
                   help="fork: shared prefixes in forked processes (default); kernel: a fresh Jupyter "
                        "kernel per entry (tpkit.execution.run, slower); grading: every entry handed in to "
                        "the real grading command (trusted checks, sandboxed kernels; slowest)")
    p.add_argument("--assignment", default=None, help="the assignment whose catalogue is graded "
                   "(default: the main one)")
    p.add_argument("--root", type=Path, default=None, metavar="DIR",
                   help="another course folder holding the assignment (docs/exemple for the worked example)")
    p.add_argument("--doc", type=Path, metavar="PATH", help="also write the Markdown report there")
    p.add_argument("--with-flakiness", action="store_true",
                   help="with --doc: run the flakiness audit too and add it to the report")
    p.add_argument("--flakiness", action="store_true", help="run the flakiness audit instead")
    p.add_argument("--seeds", type=int, default=20, help="seeds with 1 torch thread (audit)")
    p.add_argument("--seeds-2-threads", type=int, default=5,
                   help="seeds with 2 torch threads (audit; 5 as in the test suite)")
    p.add_argument("--secrets", type=int, default=None,
                   help="course secrets the catalogue is graded under (audit; default: "
                        "flakiness.AUDIT_SECRETS = 10; 0: none)")
    args = p.parse_args(argv)
    if args.root is not None:  # the assignment's notebooks are that course's
        from tpkit import paths
        with paths.course(args.root):
            return _main(p, args)
    return _main(p, args)



def _main(p, args) -> int:
    from tpkit import assignments, paths
    from tpkit.catalogue import flakiness, runner
    known = list(assignments.names(paths.course_root()))  # the course's (--root: that folder's)
    assignment = args.assignment or known[0]
    if assignment not in known:
        print(f"erreur : pas de catalogue pour le devoir « {assignment} » "
              f"(devoirs : {', '.join(known)})", file=sys.stderr)
        return 2
    if args.flakiness:
        audit = flakiness.audit(range(args.seeds), range(args.seeds_2_threads), workers=args.workers,
                                assignment=assignment)
        print(flakiness.report_text(audit), flush=True)
        count = flakiness.AUDIT_SECRETS if args.secrets is None else args.secrets
        runs = flakiness.catalogue_under_secrets(assignment, flakiness.audit_secrets(count),
                                                 workers=args.workers) if count else []
        if runs:
            print("\n" + flakiness.secrets_report_text(runs, assignment))
        return 1 if audit.flaky() or audit.missing_measures() or flakiness.secrets_flaky(runs) else 0

    selected = runner.entries(assignment)
    if args.only:
        keep = set(args.only.split(","))
        unknown = keep - {e.name for e in selected}
        if unknown:
            p.error(f"unknown entries: {', '.join(sorted(unknown))}")
        selected = [e for e in selected if e.name in keep]
    report = runner.run(selected, workers=args.workers, executor=args.executor, assignment=assignment)
    print(runner.matrix_text(report))
    print()
    print(runner.summary_text(report))
    problems = report.problems()
    print(f"\n{len(problems)} problem(s)" + (":" if problems else ""))
    for line in problems:
        print("  " + line)
    flaky_text, flaky = None, False
    if args.doc and args.with_flakiness:
        audit = flakiness.audit(range(args.seeds), range(args.seeds_2_threads), workers=args.workers,
                                assignment=assignment)
        flaky_text = flakiness.report_text(audit)
        flaky = bool(audit.flaky() or audit.missing_measures())
        print("\n" + flaky_text)
    if args.doc:
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        args.doc.write_text(runner.markdown(report, assignment, flaky_text), encoding="utf-8")
        print(f"written: {args.doc}")
    return 1 if problems or flaky else 0


if __name__ == "__main__":
    sys.exit(main())
